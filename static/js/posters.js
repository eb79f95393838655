/* Posters: the 推广海报 page's spinner (polls until the RQ job has rendered the poster) and
   the product page's 生成海报 button (asks /api/v1/distributor/posters, shows the poster in
   a sheet, or explains how to become a distributor). No framework, no build step. */
(function () {
  "use strict";
  var POLL_MS = 700;
  var POLL_TRIES = 7; // then load the image URL itself: it renders on the spot

  function show(stage, url) {
    var img = stage.querySelector("[data-poster-img]");
    var wait = stage.querySelector("[data-poster-wait]");
    img.onload = function () { img.hidden = false; if (wait) wait.hidden = true; };
    img.onerror = function () {
      if (wait) { wait.hidden = false; wait.innerHTML = "<p>海报生成失败，请稍后刷新重试</p>"; }
    };
    img.src = url;
  }

  function poll(stage, tries) {
    if (tries >= POLL_TRIES) { show(stage, stage.getAttribute("data-image")); return; }
    fetch(stage.getAttribute("data-status"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (body) {
        if (body.ready) show(stage, body.url);
        else setTimeout(function () { poll(stage, tries + 1); }, POLL_MS);
      })
      .catch(function () { show(stage, stage.getAttribute("data-image")); });
  }

  var stage = document.querySelector("[data-poster-stage]");
  if (stage && stage.querySelector("[data-poster-wait]")) {
    setTimeout(function () { poll(stage, 0); }, 300);
  }

  var pick = document.querySelector("[data-poster-pick]");
  if (pick) {
    pick.addEventListener("change", function () { pick.submit(); });
  }

  // --- the product page's button -------------------------------------------------------
  function sheet(inner) {
    var old = document.querySelector("[data-poster-sheet]");
    if (old) old.remove();
    var el = document.createElement("div");
    el.className = "pp-sheet";
    el.setAttribute("data-poster-sheet", "");
    el.setAttribute("role", "dialog");
    el.innerHTML = inner + '<button type="button" class="pp-close" data-poster-close>关闭</button>';
    el.addEventListener("click", function (event) {
      if (event.target === el || event.target.closest("[data-poster-close]")) el.remove();
    });
    document.body.appendChild(el);
    return el;
  }

  function message(text, link, label) {
    var box = sheet('<div class="pp-msg"><p></p></div>').querySelector(".pp-msg");
    box.querySelector("p").textContent = text; // server text: never parsed as HTML
    if (link) {
      var a = document.createElement("a");
      a.className = "btn";
      a.href = link;
      a.textContent = label;
      box.appendChild(a);
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-poster-product]");
    if (!button) return;
    event.preventDefault();
    var id = button.getAttribute("data-poster-product");
    var el = sheet('<div class="pp-stage"><div class="pp-wait" data-poster-wait role="status">' +
      '<i class="pp-spin" aria-hidden="true"></i><p>海报生成中…</p></div>' +
      '<img class="pp-img" alt="商品推广海报" data-poster-img hidden></div>' +
      "<p>长按图片保存，或发送给朋友</p>");
    fetch("/api/v1/distributor/posters?kind=product&product_id=" + encodeURIComponent(id),
      { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) { return { status: r.status, body: body }; });
      })
      .then(function (res) {
        if (res.status === 200) { show(el.querySelector(".pp-stage"), res.body.path); return; }
        var code = res.body && res.body.error ? res.body.error.code : "";
        if (res.status === 401) {
          window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
        } else if (code === "not_distributor") {
          message("成为分销员后，即可生成带有你专属二维码的商品海报，好友下单你得佣金。", "/distributor", "去加入分销");
        } else {
          message((res.body && res.body.error && res.body.error.message) || "海报生成失败，请稍后重试");
        }
      })
      .catch(function () { message("网络不太好，请稍后重试"); });
  });
})();
