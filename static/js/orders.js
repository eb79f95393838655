/* Order pages: cart, checkout, addresses with the region picker, pay, order actions, refunds.
   Every change goes to the JSON API (/api/v1) with the X-CSRFToken header. No dependencies. */
(function () {
  "use strict";

  var toastTimer;
  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) { window.alert(text); return; }
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, 2200);
  }

  function metaToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  /* Cached catalog pages carry no token: ask /cart/session once (it also says who is here). */
  var sessionPromise = null;
  function session(productId) {
    if (!sessionPromise) {
      var token = metaToken();
      var url = "/cart/session" + (productId ? "?product_id=" + productId : "");
      sessionPromise = token
        ? Promise.resolve({ signed_in: true, csrf_token: token })
        : fetch(url, { credentials: "same-origin", cache: "no-store" })
            .then(function (r) { return r.json(); });
    }
    return sessionPromise;
  }

  /* A product with 限购: what this customer may still buy (the page itself is cached for all). */
  var limitEl = document.querySelector("[data-limit]");
  if (limitEl) {
    session(limitEl.getAttribute("data-product")).then(function (s) {
      var p = s.purchase;
      if (!p) return;
      document.dispatchEvent(new CustomEvent("shop:remaining", { detail: { remaining: p.remaining } }));
      if (!p.reached) return;
      limitEl.textContent = "限购 " + p.limit + " 件 · 已达限购";
      limitEl.classList.add("reached");
      Array.prototype.forEach.call(document.querySelectorAll("[data-buy]"), function (btn) {
        btn.disabled = true;
        if (btn.getAttribute("data-buy") === "now") btn.textContent = "已达限购";
      });
    }, function () {});
  }

  function loginUrl() {
    return "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }

  /* Call the API; resolves {ok, status, data}; a 401 sends the visitor to sign in. */
  function api(method, url, body) {
    return session().then(function (s) {
      if (!s.signed_in) { location.href = loginUrl(); return new Promise(function () {}); }
      var init = {
        method: method,
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": s.csrf_token }
      };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(url, init).then(function (r) {
        if (r.status === 401) { location.href = loginUrl(); return new Promise(function () {}); }
        var parse = r.status === 204 ? Promise.resolve(null) : r.json().catch(function () { return null; });
        return parse.then(function (data) { return { ok: r.ok, status: r.status, data: data }; });
      });
    }).catch(function (err) {
      if (err && err.name === "TypeError") toast("网络不太好，请稍后再试");
      throw err;
    });
  }

  function errorText(res) {
    return (res.data && res.data.error && res.data.error.message) || "操作失败，请稍后再试";
  }

  function busy(btn, on) {
    if (!btn) return;
    btn.disabled = on;
    btn.classList.toggle("loading", on);
  }

  function on(selector, handler) {
    document.addEventListener("click", function (event) {
      var target = event.target.closest(selector);
      if (target) handler(target, event);
    });
  }

  /* --- product page: 加入购物车 / 立即购买 (shop.js sends "shop:buy") --------------------- */
  document.addEventListener("shop:buy", function (event) {
    var d = event.detail;
    if (d.action === "now") {
      // A page of its own: anonymous visitors are sent to sign in and come back to it.
      location.href = "/checkout?sku_id=" + d.sku_id + "&quantity=" + d.quantity;
      return;
    }
    busy(d.button, true);
    session().then(function (s) {
      if (!s.signed_in) { keepIntent(d); return; }
      api("POST", "/api/v1/cart/items", { sku_id: d.sku_id, quantity: d.quantity })
        .then(function (res) {
          busy(d.button, false);
          if (!res.ok) { toast(errorText(res)); return; }
          toast("已加入购物车");
          document.dispatchEvent(new CustomEvent("cart:count", { detail: res.data.count }));
        }, function () { busy(d.button, false); });
    }, function () { busy(d.button, false); });
  });

  /* Signed out: the server keeps the chosen SKU in the session (POST /cart/intent) and adds
     it once the WeChat sign-in is back (GET /cart/intent), then returns here with ?added=1. */
  function keepIntent(d) {
    fetch("/cart/session?intent=1", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        return fetch("/cart/intent", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": s.csrf_token },
          body: JSON.stringify({ sku_id: d.sku_id, quantity: d.quantity })
        });
      })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
      .then(function (res) {
        if (!res.ok) { busy(d.button, false); toast(errorText(res)); return; }
        location.href = res.data.login_url;
      })
      .catch(function () { busy(d.button, false); toast("网络不太好，请稍后再试"); });
  }
  if (/[?&]added=1(&|$)/.test(location.search) && document.querySelector("[data-buy]")) {
    toast("已加入购物车");
    if (window.history.replaceState) window.history.replaceState(null, "", location.pathname);
  }

  /* --- cart ------------------------------------------------------------------------------ */
  function cartQuantity(li, quantity) {
    var sku = li.getAttribute("data-sku");
    li.classList.add("loading");
    api("PATCH", "/api/v1/cart/items/" + sku, { quantity: quantity }).then(function (res) {
      if (!res.ok) { toast(errorText(res)); li.classList.remove("loading"); return; }
      location.reload(); // totals, shipping and availability come from the server
    });
  }
  on("[data-cart-step]", function (btn) {
    var li = btn.closest("[data-sku]");
    var input = li.querySelector("[data-cart-qty]");
    var n = (Number(input.value) || 1) + Number(btn.getAttribute("data-cart-step"));
    if (n >= 1) cartQuantity(li, n);
  });
  document.addEventListener("change", function (event) {
    var input = event.target.closest("[data-cart-qty]");
    if (!input) return;
    var n = Math.floor(Number(input.value));
    if (!(n >= 1)) { input.value = "1"; n = 1; }
    cartQuantity(input.closest("[data-sku]"), n);
  });
  on("[data-cart-remove]", function (btn) {
    var li = btn.closest("[data-sku]");
    api("DELETE", "/api/v1/cart/items/" + li.getAttribute("data-sku")).then(function (res) {
      if (!res.ok) { toast(errorText(res)); return; }
      location.reload();
    });
  });

  /* Ticks (勾选) are kept on the server: checkout takes only ticked lines. In 编辑 mode the
     ticks only choose what 删除 removes and are not saved. */
  var cartBox = document.querySelector("[data-cart]");
  function editing() { return cartBox && cartBox.getAttribute("data-mode") === "edit"; }
  function cartTicks() { return Array.prototype.slice.call(document.querySelectorAll("[data-cart-tick]")); }
  function saveSelection(body) {
    api("PUT", "/api/v1/cart/selection", body).then(function (res) {
      if (!res.ok) { toast(errorText(res)); return; }
      location.reload();
    });
  }
  document.addEventListener("change", function (event) {
    var tick = event.target.closest("[data-cart-tick]");
    var all = event.target.closest("[data-cart-all]");
    if (!tick && !all) return;
    if (editing()) {
      if (all) cartTicks().forEach(function (t) { t.checked = all.checked; });
      else document.querySelector("[data-cart-all]").checked = cartTicks().every(function (t) { return t.checked; });
      return;
    }
    if (all) { saveSelection({ selected: all.checked }); return; }
    saveSelection({ sku_ids: [Number(tick.closest("[data-sku]").getAttribute("data-sku"))], selected: tick.checked });
  });
  on("[data-cart-edit]", function (btn) {
    var edit = !editing();
    cartBox.setAttribute("data-mode", edit ? "edit" : "buy");
    btn.textContent = edit ? "完成" : "编辑";
    btn.setAttribute("aria-pressed", edit ? "true" : "false");
    Array.prototype.forEach.call(document.querySelectorAll("[data-show]"), function (el) {
      el.hidden = el.getAttribute("data-show") !== (edit ? "edit" : "buy");
    });
    var allBox = document.querySelector("[data-cart-all]");
    if (edit) {
      cartTicks().forEach(function (t) { t.checked = false; });
      allBox.checked = false;
      allBox.disabled = false;
    } else {
      location.reload(); // back to the saved ticks
    }
  });
  function removeSkus(ids, question) {
    if (!ids.length) { toast("请选择要删除的商品"); return; }
    if (!window.confirm(question)) return;
    api("POST", "/api/v1/cart/remove", { sku_ids: ids }).then(function (res) {
      if (!res.ok) { toast(errorText(res)); return; }
      location.reload();
    });
  }
  on("[data-cart-delete]", function () {
    var ids = cartTicks().filter(function (t) { return t.checked; }).map(function (t) {
      return Number(t.closest("[data-sku]").getAttribute("data-sku"));
    });
    removeSkus(ids, "确定删除选中的 " + ids.length + " 件商品吗？");
  });
  on("[data-cart-clear-invalid]", function (btn) {
    var ids = btn.getAttribute("data-skus").split(",").map(Number);
    removeSkus(ids, "确定清空失效商品吗？");
  });

  /* --- checkout -------------------------------------------------------------------------- */
  on("[data-place]", function (btn) {
    var need = btn.getAttribute("data-need-address");
    if (need) { toast("请先添加收货地址"); setTimeout(function () { location.href = need; }, 600); return; }
    var data = JSON.parse(document.getElementById("checkout-data").textContent);
    var remark = document.querySelector("[data-remark]");
    busy(btn, true);
    api("POST", "/api/v1/orders", {
      items: data.items,
      address_id: data.address_id,
      remark: remark ? remark.value.trim() : "",
      coupon_id: data.coupon_id || null
    }).then(function (res) {
      if (!res.ok) {
        busy(btn, false);
        var link = res.data && res.data.error && res.data.error.link;
        if (link) { showNotice(errorText(res), link); btn.disabled = true; } else { toast(errorText(res)); }
        return;
      }
      location.replace("/orders/" + res.data.id + "/pay");
    }, function () { busy(btn, false); });
  });

  /* A refusal with a way out (e.g. too many unpaid orders: the 待付款 list) stays on the page. */
  function showNotice(text, link) {
    var el = document.querySelector("[data-unpaid-notice]");
    if (!el) {
      el = document.createElement("p");
      el.className = "block unpaid-notice";
      el.setAttribute("role", "alert");
      el.setAttribute("data-unpaid-notice", "");
      var anchor = document.querySelector("[data-address-link]");
      anchor.parentNode.insertBefore(el, anchor);
    }
    el.textContent = text + " ";
    var a = document.createElement("a");
    a.href = link;
    a.textContent = "查看待付款订单 ›";
    el.appendChild(a);
    el.scrollIntoView({ block: "nearest" });
  }

  /* --- addresses: the province / city / district picker ---------------------------------- */
  var form = document.querySelector("[data-address-form]");
  if (form) initAddressForm(form);

  function initAddressForm(form) {
    var selects = {
      province: form.querySelector('[data-region="province"]'),
      city: form.querySelector('[data-region="city"]'),
      district: form.querySelector('[data-region="district"]')
    };
    var placeholders = { province: "省份", city: "城市", district: "区县" };

    function load(level, parent, wanted) {
      var select = selects[level];
      select.innerHTML = '<option value="">' + placeholders[level] + "</option>";
      select.disabled = true;
      var url = "/api/v1/regions" + (parent ? "?parent=" + parent : "");
      return fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (data) {
          data.items.forEach(function (region) {
            var option = document.createElement("option");
            option.value = region.code;
            option.textContent = region.name;
            select.appendChild(option);
          });
          select.disabled = false;
          var pick = (wanted || []).filter(function (code) {
            return data.items.some(function (r) { return r.code === code; });
          })[0];
          if (pick) select.value = pick;
          else if (data.items.length === 1 && level !== "province") select.value = data.items[0].code;
          return select.value;
        });
    }
    function reset(level) {
      selects[level].innerHTML = '<option value="">' + placeholders[level] + "</option>";
      selects[level].disabled = true;
    }

    selects.province.addEventListener("change", function () {
      reset("district");
      if (!selects.province.value) { reset("city"); return; }
      load("city", selects.province.value).then(function (city) { if (city) load("district", city); });
    });
    selects.city.addEventListener("change", function () {
      if (selects.city.value) load("district", selects.city.value); else reset("district");
    });

    /* Editing: choose the saved district's province, city (prefecture, or itself for
       province-governed counties and cities without districts) and district. */
    var code = form.getAttribute("data-district");
    load("province", null, code ? [code.slice(0, 2) + "0000"] : []).then(function (province) {
      if (!code || !province) return;
      return load("city", province, [code.slice(0, 4) + "00", code]).then(function (city) {
        if (city) return load("district", city, [code]);
      });
    });
  }

  on("[data-address-save]", function (btn) {
    var f = document.querySelector("[data-address-form]");
    var id = f.getAttribute("data-address-id");
    var body = {
      name: f.elements.name.value.trim(),
      phone: f.elements.phone.value.replace(/[\s-]/g, ""),
      district_code: f.querySelector('[data-region="district"]').value,
      detail: f.elements.detail.value.trim()
    };
    clearFieldErrors(f);
    var problem = !body.name ? ["name", "请填写收货人"]
      : !/^1[3-9]\d{9}$/.test(body.phone) ? ["phone", "请填写 11 位手机号码"]
      : !body.district_code ? ["district", "请选择省市区"]
      : body.detail.length < 2 ? ["detail", "请填写详细地址"] : null;
    if (problem) { fieldError(f, problem[0], problem[1]); return; }
    if (f.elements.is_default.checked && !f.elements.is_default.disabled) body.is_default = true;
    busy(btn, true);
    api(id ? "PATCH" : "POST", "/api/v1/addresses" + (id ? "/" + id : ""), body).then(function (res) {
      busy(btn, false);
      if (!res.ok) {
        var code = res.data && res.data.error && res.data.error.code;
        var field = { invalid_name: "name", invalid_phone: "phone", invalid_district: "district", invalid_detail: "detail" }[code];
        if (field) fieldError(f, field, errorText(res)); else toast(errorText(res));
        return;
      }
      var next = f.getAttribute("data-next");
      if (next && !id) {
        // From checkout: go back with the new address chosen.
        next += (next.indexOf("?") >= 0 ? "&" : "?") + "address_id=" + res.data.id;
      }
      location.replace(next || "/addresses");
    }, function () { busy(btn, false); });
  });

  /* The field in error is marked (red border, aria-invalid, the reason under it), not only
     toasted; typing in it clears the mark. */
  function fieldBox(f, name) {
    return name === "district" ? f.querySelector(".region") : f.elements[name].closest("label");
  }
  function fieldError(f, name, text) {
    var box = fieldBox(f, name);
    var control = name === "district" ? f.querySelector('[data-region="province"]') : f.elements[name];
    if (name === "district") {
      control = Array.prototype.filter.call(box.querySelectorAll("select"), function (s) { return !s.value && !s.disabled; })[0] || control;
    }
    box.classList.add("invalid");
    Array.prototype.forEach.call(box.querySelectorAll("input,select,textarea"), function (el) { el.setAttribute("aria-invalid", "true"); });
    var note = document.createElement("em");
    note.className = "field-error";
    note.id = "err-" + name;
    note.setAttribute("role", "alert");
    note.textContent = text;
    box.appendChild(note);
    control.setAttribute("aria-describedby", note.id);
    control.focus();
    box.scrollIntoView({ block: "nearest" });
  }
  function clearFieldErrors(f) {
    Array.prototype.forEach.call(f.querySelectorAll(".invalid"), function (box) { box.classList.remove("invalid"); });
    Array.prototype.forEach.call(f.querySelectorAll(".field-error"), function (el) { el.remove(); });
    Array.prototype.forEach.call(f.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
    });
  }
  document.addEventListener("input", function (event) {
    var box = event.target.closest("[data-address-form] .invalid");
    if (!box) return;
    box.classList.remove("invalid");
    var note = box.querySelector(".field-error");
    if (note) note.remove();
    Array.prototype.forEach.call(box.querySelectorAll("[aria-invalid]"), function (el) { el.removeAttribute("aria-invalid"); });
  });

  on("[data-address-delete]", function (btn) {
    var card = btn.closest("[data-address]");
    var id = card ? card.getAttribute("data-address") : btn.getAttribute("data-id");
    if (!window.confirm("确定删除这个地址吗？")) return;
    api("DELETE", "/api/v1/addresses/" + id).then(function (res) {
      if (!res.ok) { toast(errorText(res)); return; }
      if (card) location.reload(); else location.replace("/addresses");
    });
  });

  on("[data-address-default]", function (btn) {
    var id = btn.closest("[data-address]").getAttribute("data-address");
    api("PATCH", "/api/v1/addresses/" + id, { is_default: true }).then(function (res) {
      if (!res.ok) { toast(errorText(res)); return; }
      location.reload();
    });
  });

  /* --- order actions: cancel, confirm receipt ------------------------------------------- */
  on("[data-order-action]", function (btn) {
    var question = btn.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    var id = btn.getAttribute("data-order-id");
    var action = btn.getAttribute("data-order-action");
    busy(btn, true);
    api("POST", "/api/v1/orders/" + id + "/" + action).then(function (res) {
      busy(btn, false);
      if (!res.ok) { toast(errorText(res)); return; }
      toast(action === "cancel" ? "订单已取消" : "已确认收货");
      setTimeout(function () { location.reload(); }, 500);
    }, function () { busy(btn, false); });
  });

  /* --- refund request -------------------------------------------------------------------- */
  var refundForm = document.querySelector("[data-refund-form]");
  if (refundForm) {
    var qty = refundForm.elements.quantity;
    var max = Number(qty.max);
    refundForm.addEventListener("click", function (event) {
      var step = event.target.closest("[data-step]");
      if (!step) return;
      var n = (Number(qty.value) || 1) + Number(step.getAttribute("data-step"));
      qty.value = String(Math.min(Math.max(1, n), max));
    });
  }
  on("[data-refund-submit]", function (btn) {
    var f = document.querySelector("[data-refund-form]");
    var picked = f.querySelector('input[name="reason"]:checked');
    var note = f.elements.note.value.trim();
    var quantity = Math.floor(Number(f.elements.quantity.value));
    if (!picked) { toast("请选择退款原因"); return; }
    var reason = picked.value + (note ? "：" + note : "");
    busy(btn, true);
    var orderId = f.getAttribute("data-order-id");
    api("POST", "/api/v1/orders/" + orderId + "/lines/" + f.getAttribute("data-line-id") + "/refund", {
      quantity: quantity,
      reason: reason
    }).then(function (res) {
      if (!res.ok) { busy(btn, false); toast(errorText(res)); return; }
      toast("退款申请已提交，等待商家处理");
      setTimeout(function () { location.replace("/orders/" + orderId); }, 800);
    }, function () { busy(btn, false); });
  });

  /* --- pay ------------------------------------------------------------------------------- */
  var payPage = document.querySelector("[data-pay-page]");
  if (payPage) initPay(payPage);

  function initPay(page) {
    var orderId = page.getAttribute("data-order-id");
    var states = page.querySelectorAll("[data-pay-state]");
    function show(name) {
      Array.prototype.forEach.call(states, function (el) {
        el.hidden = el.getAttribute("data-pay-state") !== name;
      });
    }

    var deadline = Number(page.getAttribute("data-deadline")) * 1000;
    var countdown = page.querySelector("[data-countdown]");
    function tick() {
      var left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      if (countdown) countdown.textContent = (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
      return left;
    }
    if (page.getAttribute("data-status") === "pending_payment") {
      tick();
      setInterval(tick, 1000);
    }

    /* The page never decides the order is paid: it asks the server, which believes only
       WeChat (its notice, or its answer to the server's own query). */
    var polling = false;
    function poll() {
      if (polling) return;
      polling = true;
      show("waiting");
      var started = Date.now();
      (function again() {
        fetch("/api/v1/orders/" + orderId + "?sync=true", { credentials: "same-origin", cache: "no-store" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (order) {
            if (order && order.status !== "pending_payment") {
              polling = false;
              if (order.status === "cancelled") { show("closed"); return; }
              page.querySelector("[data-done-status]").textContent = order.status_text;
              show("done");
              return;
            }
            if (Date.now() - started > 60000) { polling = false; show("slow"); return; }
            setTimeout(again, 1500);
          })
          .catch(function () { setTimeout(again, 3000); });
      })();
    }

    function invokeBridge(jsapi) {
      window.WeixinJSBridge.invoke("getBrandWCPayRequest", jsapi, function (res) {
        var msg = res && res.err_msg;
        if (msg === "get_brand_wcpay_request:ok") poll();
        else if (msg === "get_brand_wcpay_request:cancel") toast("已取消支付");
        else toast("支付未完成，请重试");
      });
    }

    on("[data-pay]", function (btn) {
      if (tick() <= 0) { toast("订单已超时，请重新下单"); return; }
      busy(btn, true);
      api("POST", "/api/v1/orders/" + orderId + "/pay").then(function (res) {
        busy(btn, false);
        if (!res.ok) {
          toast(errorText(res));
          if (res.status === 409) setTimeout(poll, 800);
          return;
        }
        if (res.data.cashier_url) { location.href = res.data.cashier_url; return; } // the stand-in
        if (window.WeixinJSBridge) { invokeBridge(res.data.jsapi); return; }
        document.addEventListener("WeixinJSBridgeReady", function () { invokeBridge(res.data.jsapi); }, false);
        setTimeout(function () { if (!window.WeixinJSBridge) toast("请在微信中打开页面完成支付"); }, 1500);
      }, function () { busy(btn, false); });
    });
    on("[data-pay-recheck]", function () { poll(); });

    var returned = page.getAttribute("data-returned");
    if (page.getAttribute("data-status") === "pending_payment") {
      if (returned === "ok") poll();
      else if (returned === "cancel") toast("已取消支付");
    }
  }
})();
