/* Poster template form: colour pickers mirror the #RRGGBB fields, and 预览 posts the unsaved
   form to /admin/posters/preview and shows the JPEG beside the form (without JS the same
   button opens the preview in a new tab). */
(function () {
  "use strict";
  var form = document.querySelector("[data-poster-form]");
  if (!form) return;
  Array.prototype.forEach.call(form.querySelectorAll("[data-color-for]"), function (picker) {
    var field = form.querySelector('[name="' + picker.getAttribute("data-color-for") + '"]');
    picker.addEventListener("input", function () { field.value = picker.value.toUpperCase(); });
    field.addEventListener("input", function () {
      if (/^#[0-9A-Fa-f]{6}$/.test(field.value)) picker.value = field.value.toLowerCase();
    });
  });
  var button = form.querySelector("[data-poster-preview]");
  var img = document.querySelector("[data-preview-img]");
  var note = document.querySelector("[data-preview-note]");
  var lastUrl = null;
  button.addEventListener("click", function (event) {
    event.preventDefault();
    note.textContent = "正在生成预览…";
    fetch(button.getAttribute("formaction"), { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) return r.text().then(function (t) { throw new Error(t || "预览失败"); });
        return r.blob();
      })
      .then(function (blob) {
        if (lastUrl) URL.revokeObjectURL(lastUrl);
        lastUrl = URL.createObjectURL(blob);
        img.src = lastUrl;
        img.hidden = false;
        note.textContent = "预览（示例数据，未保存）";
      })
      .catch(function (err) { note.textContent = err.message.slice(0, 200); });
  });
})();
