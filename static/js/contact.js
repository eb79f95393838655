/* 我的 → 联系客服: open the sheet with what the merchant set; copy the WeChat ID. */
(function () {
  "use strict";
  var sheet = document.querySelector("[data-contact]");
  if (!sheet) return;
  function say(text) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    setTimeout(function () { el.hidden = true; }, 2000);
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-contact-open]")) {
      event.preventDefault();
      sheet.hidden = false;
      var close = sheet.querySelector("[data-contact-close]");
      if (close) close.focus();
      return;
    }
    if (event.target.closest("[data-contact-close]") || event.target === sheet) {
      sheet.hidden = true;
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var text = copy.getAttribute("data-copy");
      var done = function () { say("微信号已复制"); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { say("请长按微信号复制"); });
      } else {
        say("请长按微信号复制");
      }
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") sheet.hidden = true;
  });
})();
