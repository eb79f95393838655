/* The 购物车 badge (tab bar, product page). Tab pages are cached for everybody, so the
   count is asked here: GET /cart/count (never cached). No dependencies. */
(function () {
  "use strict";
  var badges = document.querySelectorAll("[data-cart-badge]");
  if (!badges.length) return;
  function show(count) {
    Array.prototype.forEach.call(badges, function (el) {
      el.textContent = count > 99 ? "99+" : String(count);
      el.hidden = !count;
    });
  }
  fetch("/cart/count", { credentials: "same-origin", cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : { count: 0 }; })
    .then(function (data) { show(Number(data.count) || 0); }, function () {});
  /* orders.js tells us when the cart changed on this page. */
  document.addEventListener("cart:count", function (event) { show(Number(event.detail) || 0); });
})();
