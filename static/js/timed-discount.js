/* 限时折扣 countdown on the product page.
   The page (cached for every visitor) carries the end as epoch milliseconds in
   data-ends-ms; this counts down in the visitor's clock: "2天 03:04:05", then "已结束"
   and a reload, which shows the list price again (the server decides the price). */
(function () {
  "use strict";
  var bar = document.querySelector("[data-timed-discount]");
  if (!bar) return;
  var out = bar.querySelector("[data-td-left]");
  var ends = parseInt(bar.getAttribute("data-ends-ms"), 10);
  if (!out || !isFinite(ends)) return;
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  var timer = null;
  function tick() {
    var left = Math.floor((ends - Date.now()) / 1000);
    if (left <= 0) {
      out.textContent = "已结束";
      bar.classList.add("over");
      if (timer) clearInterval(timer);
      setTimeout(function () { location.reload(); }, 1500);
      return;
    }
    var days = Math.floor(left / 86400);
    var rest = left % 86400;
    var text = pad(Math.floor(rest / 3600)) + ":" + pad(Math.floor(rest % 3600 / 60)) + ":" + pad(rest % 60);
    out.textContent = (days ? days + "天 " : "") + text;
  }
  tick();
  timer = setInterval(tick, 1000);
})();
