/* 分享赚: the signed-in distributor's commission next to prices, and the share sheet.
   No dependencies, no build step.

   Catalog pages are cached whole and are the same for every visitor, so they carry only
   empty placeholders: [data-share-earn="ID"] on product cards and
   [data-share-earn-product="ID"] on the product page. This file asks the uncached
   GET /api/v1/distributor/share-earnings?product_ids=… once per page (and for cards
   that "加载更多" appends); customers and anonymous visitors get no figures back, so the
   placeholders stay hidden and nobody but a distributor ever sees a commission.

   The share sheet ([data-share-open] buttons, here and in the 推广商品库) offers 复制链接
   (the product link with ?ref=CODE), 生成海报 (posters.js answers [data-poster-product])
   and how to share inside WeChat (the product page's share card keeps the ref: share.js). */
(function () {
  "use strict";

  var API = "/api/v1/distributor/share-earnings?product_ids=";
  var MAX_IDS = 60;
  var inWeChat = /MicroMessenger/i.test(navigator.userAgent || "");
  var context = { ref: null, note: "", base: location.origin };

  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) { window.alert(text); return; }
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 2000);
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }

  function productLink(id) {
    var link = context.base.replace(/\/+$/, "") + "/product/" + id;
    return context.ref ? link + "?ref=" + encodeURIComponent(context.ref) : link;
  }

  /* --- figures on cards and on the product page ---------------------------------------- */
  function pending(root) {
    return Array.prototype.slice.call(
      (root || document).querySelectorAll("[data-share-earn]:not([data-se-done]),[data-share-earn-product]:not([data-se-done])"));
  }

  function idOf(el) {
    return el.getAttribute("data-share-earn") || el.getAttribute("data-share-earn-product");
  }

  /* Money arrives in fen (integers); format without ever dividing into a float. */
  function yuan(fen) {
    var cents = fen % 100;
    return "¥" + Math.floor(fen / 100) + "." + (cents < 10 ? "0" : "") + cents;
  }

  /* The product page's picker (shop.js) says which SKU is chosen: show its own figure. */
  var chosenSku = null;
  var productItem = null;
  function showChosen() {
    var amount = document.querySelector("[data-share-earn-product] .se-amount");
    if (!amount || !productItem) return;
    var label = productItem.label;
    (productItem.skus || []).forEach(function (s) {
      if (s.sku_id === chosenSku) label = yuan(s.commission_fen);
    });
    amount.textContent = label;
  }
  document.addEventListener("shop:sku", function (event) {
    chosenSku = event.detail.sku_id;
    showChosen();
  });

  function showProduct(el, item) {
    productItem = item;
    el.textContent = "";
    var tag = document.createElement("span");
    tag.className = "se-tag";
    tag.textContent = "分享赚";
    var amount = document.createElement("b");
    amount.className = "se-amount";
    amount.textContent = item.label;
    el.appendChild(tag);
    el.appendChild(amount);
    if (context.note) {
      var note = document.createElement("small");
      note.className = "se-note";
      note.textContent = context.note;
      el.appendChild(note);
    }
    var share = document.createElement("button");
    share.type = "button";
    share.className = "se-share";
    share.textContent = "分享";
    share.setAttribute("data-share-open", item.product_id);
    share.setAttribute("data-share-title", document.title.split(" - ")[0]);
    share.setAttribute("data-share-earn-label", item.label);
    share.setAttribute("data-share-here", "");
    el.appendChild(share);
    el.hidden = false;
    showChosen();
  }

  function fill(nodes) {
    nodes.forEach(function (el) { el.setAttribute("data-se-done", ""); });
    var ids = [];
    nodes.forEach(function (el) { var id = idOf(el); if (ids.indexOf(id) < 0) ids.push(id); });
    for (var i = 0; i < ids.length; i += MAX_IDS) ask(ids.slice(i, i + MAX_IDS), nodes);
  }

  function ask(ids, nodes) {
    getJSON(API + ids.join(","))
      .then(function (body) {
        if (!body.distributor) return; // customers never see a commission
        context.ref = body.ref;
        if (body.base_url) context.base = body.base_url;
        context.note = body.self_purchase_note || "";
        document.documentElement.classList.add("is-sharer");
        var byId = {};
        body.items.forEach(function (item) { byId[String(item.product_id)] = item; });
        nodes.forEach(function (el) {
          var item = byId[idOf(el)];
          if (!item || !item.label) return;
          if (el.hasAttribute("data-share-earn-product")) { showProduct(el, item); return; }
          el.textContent = "分享赚 " + item.label;
          el.hidden = false;
        });
      })
      .catch(function () { /* no figures this time; the page itself is unaffected */ });
  }

  var first = pending();
  if (first.length && window.fetch) fill(first);

  /* "加载更多" appends cards to [data-grid]: give them their figures too. */
  if (window.MutationObserver && window.fetch) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-grid]"), function (grid) {
      new MutationObserver(function () {
        var more = pending(grid);
        if (more.length) fill(more);
      }).observe(grid, { childList: true });
    });
  }

  /* --- the share sheet --------------------------------------------------------------- */
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "se-offscreen";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error("copy"));
    });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function closeSheet() {
    var old = document.querySelector("[data-share-sheet]");
    if (old) old.remove();
  }

  function openSheet(button) {
    closeSheet();
    var id = button.getAttribute("data-share-open");
    var link = button.getAttribute("data-share-link") || productLink(id);
    var here = button.hasAttribute("data-share-here");
    var sheet = el("div", "se-sheet");
    sheet.setAttribute("data-share-sheet", "");
    sheet.setAttribute("role", "dialog");
    sheet.setAttribute("aria-label", "分享商品");
    var panel = el("div", "se-panel");
    panel.appendChild(el("h2", "se-head", "分享商品"));
    panel.appendChild(el("p", "se-title", button.getAttribute("data-share-title") || ""));
    var label = button.getAttribute("data-share-earn-label");
    if (label) panel.appendChild(el("p", "se-earn", "好友通过你的分享下单，你预计赚 " + label));
    var actions = el("div", "se-actions");
    var copy = el("button", "se-act", "复制链接");
    copy.type = "button";
    copy.setAttribute("data-se-copy", link);
    var poster = el("button", "se-act", "生成海报");
    poster.type = "button";
    poster.setAttribute("data-poster-product", id);
    actions.appendChild(copy);
    actions.appendChild(poster);
    if (!here) {
      var open = el("a", "se-act", "打开商品页");
      open.href = link;
      actions.appendChild(open);
    }
    panel.appendChild(actions);
    var url = el("p", "se-link", link);
    url.setAttribute("data-se-link", "");
    panel.appendChild(url);
    var hint;
    if (inWeChat) {
      hint = here ? "点右上角「···」，选择「发送给朋友」或「分享到朋友圈」：卡片已带上你的推广码。"
        : "打开商品页后点右上角「···」发送给朋友或分享到朋友圈，卡片会带上你的推广码。";
    } else {
      hint = "在微信中打开商品页，点右上角「···」即可发送给朋友；也可复制链接发到群聊。";
    }
    var hintEl = el("p", "se-hint", hint);
    hintEl.setAttribute("data-se-hint", "");
    panel.appendChild(hintEl);
    var cancel = el("button", "se-cancel", "取消");
    cancel.type = "button";
    cancel.setAttribute("data-se-close", "");
    panel.appendChild(cancel);
    sheet.appendChild(panel);
    sheet.addEventListener("click", function (event) {
      if (event.target === sheet || event.target.closest("[data-se-close]")) closeSheet();
    });
    document.body.appendChild(sheet);
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-share-open]");
    if (opener) { event.preventDefault(); openSheet(opener); return; }
    var copy = event.target.closest("[data-se-copy]");
    if (copy) {
      var text = copy.getAttribute("data-se-copy");
      copyText(text).then(function () { toast("链接已复制，发给好友吧"); },
        function () { window.prompt("长按复制链接", text); });
      return;
    }
    if (event.target.closest("[data-share-sheet] [data-poster-product]")) {
      // posters.js opens its own sheet from the same click; ours steps aside after it.
      setTimeout(closeSheet, 0);
    }
  });
})();
