/* Shop pages: toast, "load more", product gallery and the SKU picker. No dependencies. */
(function () {
  "use strict";

  var toastTimer;
  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, 2000);
  }

  /* Money arrives in fen (integers); format without ever dividing into a float. */
  function yuan(fen) {
    var cents = fen % 100;
    return Math.floor(fen / 100) + "." + (cents < 10 ? "0" : "") + cents;
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-toast]");
    if (target) {
      event.preventDefault();
      toast(target.getAttribute("data-toast"));
    }
  });

  /* "加载更多": fetch the next page and append its cards; plain link without JS. */
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-more]");
    if (!link || !window.fetch || !window.DOMParser) return;
    event.preventDefault();
    link.textContent = "加载中…";
    fetch(link.href, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var grid = document.querySelector("[data-grid]");
        var newGrid = doc.querySelector("[data-grid]");
        var pager = link.closest("[data-pager]");
        if (grid && newGrid) {
          while (newGrid.firstElementChild) grid.appendChild(newGrid.firstElementChild);
        }
        var newPager = doc.querySelector("[data-pager]");
        if (pager && newPager) pager.replaceWith(newPager);
      })
      .catch(function () { window.location.href = link.href; });
  });

  /* Product gallery: keep the "1/3" counter in step with the swipe. */
  var slides = document.querySelector("[data-slides]");
  var index = document.querySelector("[data-index]");
  if (slides && index) {
    slides.addEventListener("scroll", function () {
      var i = Math.round(slides.scrollLeft / Math.max(1, slides.clientWidth));
      index.textContent = String(i + 1);
    }, { passive: true });
  }

  var dataEl = document.getElementById("sku-data");
  if (dataEl) initPicker(JSON.parse(dataEl.textContent));

  function initPicker(data) {
    var specs = data.specs, skus = data.skus;
    var picker = document.querySelector("[data-picker]");
    var priceValue = document.querySelector("[data-price-value]");
    var fromEl = document.querySelector("[data-from]");
    var origEl = document.querySelector("[data-orig]");
    var stockEl = document.querySelector("[data-stock]");
    var pickedEl = document.querySelector("[data-picked]");
    var qty = document.querySelector("[data-qty]");
    var minus = document.querySelector("[data-minus]");
    var plus = document.querySelector("[data-plus]");
    var selected = specs.map(function (s) { return s.values.length === 1 ? s.values[0] : null; });
    var maxQty = 0;
    /* 限购: the most one customer may still buy (orders.js learns what they already have). */
    var limit = data.purchase_limit || 0;
    var remaining = limit || Infinity;
    document.addEventListener("shop:remaining", function (event) {
      remaining = event.detail.remaining;
      setQty(Number(qty.value) || 1);
    });

    /* SKUs matching the current choices, ignoring spec ``skip`` (to test its values). */
    function matching(skip) {
      return skus.filter(function (sku) {
        return selected.every(function (v, i) { return i === skip || v === null || sku.values[i] === v; });
      });
    }

    function render() {
      var buttons = picker.querySelectorAll("[data-spec]");
      Array.prototype.forEach.call(buttons, function (group) {
        var i = Number(group.getAttribute("data-spec"));
        var candidates = matching(i);
        Array.prototype.forEach.call(group.querySelectorAll("[data-value]"), function (btn) {
          var value = btn.getAttribute("data-value");
          var available = candidates.some(function (sku) { return sku.values[i] === value && sku.stock > 0; });
          btn.disabled = !available;
          btn.setAttribute("aria-pressed", String(selected[i] === value));
        });
      });

      var current = matching(-1);
      var inStock = current.filter(function (s) { return s.stock > 0; });
      var shown = inStock.length ? inStock : current;
      var prices = shown.map(function (s) { return s.price_fen; });
      var low = Math.min.apply(null, prices);
      var complete = selected.every(function (v) { return v !== null; });
      var sku = complete ? current[0] : null;
      var original = sku ? sku.original_price_fen : Math.max.apply(null, shown.map(function (s) { return s.original_price_fen; }));
      priceValue.textContent = yuan(sku ? sku.price_fen : low);
      // share-earn.js shows the chosen SKU's 分享赚 instead of the range.
      document.dispatchEvent(new CustomEvent("shop:sku", { detail: { sku_id: sku ? sku.id : null } }));
      fromEl.hidden = !!sku || prices.every(function (p) { return p === low; });
      origEl.hidden = !(original > (sku ? sku.price_fen : low));
      origEl.textContent = "¥" + yuan(original);

      maxQty = current.reduce(function (n, s) { return n + s.stock; }, 0);
      stockEl.textContent = maxQty > 0 ? "库存 " + maxQty + " 件" : (data.held ? "已被抢光" : "已售罄");
      stockEl.classList.toggle("out", maxQty === 0);
      setQty(Number(qty.value) || 1);

      if (pickedEl) {
        var missing = specs.filter(function (s, i) { return selected[i] === null; }).map(function (s) { return s.name; });
        pickedEl.textContent = missing.length ? "请选择 " + missing.join(" ") : "已选：" + selected.join(" / ");
      }
    }

    function setQty(n) {
      var cap = Math.max(1, Math.min(maxQty, remaining));
      n = Math.min(Math.max(1, Math.floor(n) || 1), cap);
      qty.value = String(n);
      qty.max = String(cap);
      minus.disabled = n <= 1;
      plus.disabled = n >= cap;
    }

    picker.addEventListener("click", function (event) {
      var btn = event.target.closest("[data-value]");
      if (!btn || btn.disabled) return;
      var i = Number(btn.closest("[data-spec]").getAttribute("data-spec"));
      var value = btn.getAttribute("data-value");
      selected[i] = selected[i] === value ? null : value;
      render();
    });
    minus.addEventListener("click", function () { setQty(Number(qty.value) - 1); });
    plus.addEventListener("click", function () {
      if (limit && Number(qty.value) >= remaining && remaining < maxQty) toast("每人限购 " + limit + " 件");
      else if (Number(qty.value) >= maxQty && maxQty > 0) toast("最多只能买 " + maxQty + " 件");
      setQty(Number(qty.value) + 1);
    });
    qty.addEventListener("change", function () { setQty(Number(qty.value)); });

    Array.prototype.forEach.call(document.querySelectorAll("[data-buy]"), function (btn) {
      btn.addEventListener("click", function () {
        var missing = specs.filter(function (s, i) { return selected[i] === null; });
        if (missing.length) { toast("请选择 " + missing[0].name); return; }
        if (maxQty === 0) { toast("该规格已售罄"); return; }
        if (remaining === 0) { toast("每人限购 " + limit + " 件，您已达限购"); return; }
        // orders.js adds to the cart or goes to checkout (signing in first if needed).
        var chosen = matching(-1).filter(function (s) { return s.stock > 0; })[0];
        document.dispatchEvent(new CustomEvent("shop:buy", { detail: {
          action: btn.getAttribute("data-buy"), sku_id: chosen.id, quantity: Number(qty.value) || 1, button: btn
        } }));
      });
    });

    render();
  }
})();
