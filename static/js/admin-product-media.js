// Product form, media: the rich description editor and, for a new product, images staged
// before the first save. No dependencies. The server sanitises the description (nh3) and
// checks every image again; this script only makes editing pleasant.
(function () {
  "use strict";
  var form = document.getElementById("product-form");
  if (!form) return;
  var csrf = form.querySelector('input[name="csrf_token"]').value;

  function post(url, data) {
    data.append("csrf_token", csrf);
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error((body.error && body.error.message) || "上传失败，请重试");
        return body;
      }, function () { throw new Error("上传失败，请重试"); });
    });
  }

  // --- rich description -----------------------------------------------------------------
  var source = form.querySelector("[data-rich-source]");
  var editor = form.querySelector("[data-rich-editor]");
  if (source && editor) {
    var field = form.querySelector("[data-rich-field]");
    var status = field.querySelector("[data-rich-status]");
    field.classList.add("rich-on");
    document.execCommand("defaultParagraphSeparator", false, "p");
    var sync = function () {
      var html = editor.innerHTML.trim();
      source.value = html === "<p><br></p>" || html === "<br>" ? "" : html;
    };
    editor.addEventListener("input", sync);
    form.addEventListener("submit", sync);
    field.querySelectorAll("[data-cmd]").forEach(function (btn) {
      btn.addEventListener("mousedown", function (e) { e.preventDefault(); });
      btn.addEventListener("click", function () {
        editor.focus();
        var cmd = btn.getAttribute("data-cmd");
        if (cmd === "bold") document.execCommand("bold");
        else if (cmd === "ul") document.execCommand("insertUnorderedList");
        else document.execCommand("formatBlock", false, cmd);
        sync();
      });
    });
    var picker = field.querySelector("[data-rich-image]");
    var saved = null;
    editor.addEventListener("blur", function () {
      var sel = window.getSelection();
      saved = sel.rangeCount ? sel.getRangeAt(0) : null;
    });
    picker.addEventListener("change", function () {
      var file = picker.files[0];
      if (!file) return;
      var data = new FormData();
      data.append("image", file);
      status.textContent = "图片上传中…";
      post(picker.getAttribute("data-upload-url"), data).then(function (body) {
        var img = document.createElement("img");
        img.src = body.url;
        img.alt = "";
        img.width = body.width;
        img.height = body.height;
        var p = document.createElement("p");
        p.appendChild(img);
        if (saved && editor.contains(saved.commonAncestorContainer)) {
          var block = saved.startContainer;
          while (block && block.parentNode !== editor) block = block.parentNode;
          if (block) editor.insertBefore(p, block.nextSibling);
          else editor.appendChild(p);
        } else {
          editor.appendChild(p);
        }
        status.textContent = "已插入图片";
        sync();
      }, function (err) {
        status.textContent = err.message;
      }).then(function () { picker.value = ""; });
    });
  }

  // --- staged images of a new product ---------------------------------------------------
  var box = document.querySelector("[data-staged]");
  if (!box) return;
  var tokenInput = form.querySelector("[data-staging-token]");
  var input = box.querySelector("[data-stage-input]");
  var list = box.querySelector("[data-staged-list]");
  var empty = box.querySelector("[data-staged-empty]");
  var stageStatus = box.querySelector("[data-stage-status]");

  function show(body) {
    tokenInput.value = body.token;
    list.textContent = "";
    body.images.forEach(function (img, i) {
      var li = document.createElement("li");
      li.setAttribute("data-staged-id", img.id);
      var pic = document.createElement("img");
      pic.src = img.url;
      pic.alt = "待保存图片 " + (i + 1);
      var meta = document.createElement("div");
      meta.className = "gallery-meta";
      if (i === 0) {
        var cover = document.createElement("span");
        cover.className = "badge badge-ok";
        cover.textContent = "封面";
        meta.appendChild(cover);
      }
      var size = document.createElement("span");
      size.className = "muted small";
      size.textContent = img.width + "×" + img.height;
      meta.appendChild(size);
      var actions = document.createElement("div");
      actions.className = "gallery-actions";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "btn btn-small btn-danger";
      remove.textContent = "移除";
      remove.setAttribute("data-unstage", img.id);
      actions.appendChild(remove);
      li.appendChild(pic);
      li.appendChild(meta);
      li.appendChild(actions);
      list.appendChild(li);
    });
    empty.hidden = body.images.length > 0;
  }

  input.addEventListener("change", function () {
    if (!input.files.length) return;
    var data = new FormData();
    data.append("token", tokenInput.value);
    for (var i = 0; i < input.files.length; i++) data.append("images", input.files[i]);
    stageStatus.textContent = "图片上传中…";
    post(box.getAttribute("data-stage-url"), data).then(function (body) {
      show(body);
      stageStatus.textContent = "图片已添加，保存商品后生效";
    }, function (err) {
      stageStatus.textContent = err.message;
    }).then(function () {
      input.value = ""; // staged already: the form's own POST must not send them again
      var names = box.querySelector("[data-file-names]");
      if (names) names.textContent = "未选择文件";
    });
  });

  list.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-unstage]");
    if (!btn) return;
    var data = new FormData();
    data.append("token", tokenInput.value);
    data.append("id", btn.getAttribute("data-unstage"));
    post(box.getAttribute("data-unstage-url"), data).then(show, function (err) {
      stageStatus.textContent = err.message;
    });
  });
})();
