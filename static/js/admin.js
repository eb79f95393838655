// Admin pages: ask before destructive POSTs, mark that scripts run.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  // Show the chosen file names next to the styled "选择图片" button.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.hasAttribute || !input.hasAttribute("data-file-input")) return;
    var out = input.form && input.form.querySelector("[data-file-names]");
    if (!out) return;
    var names = Array.prototype.map.call(input.files, function (f) { return f.name; });
    out.textContent = names.length ? "已选择 " + names.length + " 个文件：" + names.join("，") : "未选择文件";
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
