/* Coupon pages: claim a coupon through the JSON API (X-CSRFToken from the page's meta). */
(function () {
  "use strict";

  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) { window.alert(text); return; }
    el.textContent = text;
    el.hidden = false;
    setTimeout(function () { el.hidden = true; }, 2200);
  }

  function token() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("click", function (event) {
    var btn = event.target.closest("[data-claim]");
    if (!btn || btn.disabled) return;
    var body = {};
    if (btn.getAttribute("data-distributor")) body.distributor = btn.getAttribute("data-distributor");
    btn.disabled = true;
    fetch("/api/v1/coupons/" + btn.getAttribute("data-claim") + "/claim", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token() },
      body: JSON.stringify(body)
    }).then(function (res) {
      if (res.status === 401) {
        location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
        return;
      }
      return res.json().then(function (data) {
        if (res.ok) {
          btn.textContent = "已领取";
          btn.classList.add("ghost");
          toast("领取成功");
        } else {
          btn.disabled = false;
          toast((data.error && data.error.message) || "领取失败，请稍后再试");
        }
      });
    }, function () { btn.disabled = false; toast("网络不给力，请稍后再试"); });
  });

  /* Checkout: picking another coupon (or none) reloads the page with ?coupon=. */
  var select = document.querySelector("[data-coupon-select]");
  if (select) {
    select.addEventListener("change", function () {
      var url = new URL(location.href);
      url.searchParams.set("coupon", select.value);
      location.replace(url.toString());
    });
  }
})();
