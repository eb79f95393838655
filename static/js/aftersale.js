/* After-sale and logistics pages: the amount follows the quantity, the photo count,
   the cancel confirmation and the 复制 button. The pages work without it. */
(function () {
  "use strict";
  function yuan(fen) { return (fen / 100).toFixed(2); }

  var form = document.querySelector("[data-aftersale-form]");
  if (form) {
    var qty = form.querySelector("[data-quantity]");
    var amount = form.querySelector("[data-amount]");
    var maxText = form.querySelector("[data-max-text]");
    qty.addEventListener("change", function () {
      var fen = parseInt(qty.options[qty.selectedIndex].getAttribute("data-max-fen"), 10) || 0;
      amount.value = yuan(fen);
      maxText.textContent = "¥" + yuan(fen);
    });
    var photos = form.querySelector("[data-photos]");
    var hint = form.querySelector("[data-photo-hint]");
    photos.addEventListener("change", function () {
      var max = parseInt(photos.getAttribute("data-max"), 10);
      hint.textContent = photos.files.length > max ? "最多上传 " + max + " 张图片，请重新选择" : "";
    });
  }

  document.querySelectorAll("[data-confirm-submit]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.getAttribute("data-confirm-submit"))) { event.preventDefault(); }
    });
  });

  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var text = btn.getAttribute("data-copy");
      function done() { btn.textContent = "已复制"; }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
      } else { fallback(text); done(); }
    });
  });
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
  }
})();
