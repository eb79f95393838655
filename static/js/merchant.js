/* Ordering-merchant centre: 代客下单 in three steps (pick → address → confirm).
   Step 1 works like a cart: 选择 adds a SKU, quantities are edited on the chosen items only;
   the picks live in sessionStorage so searching and paging (page reloads) keep them. The
   region picker is orders.js's ([data-address-form]). The order is posted to
   /api/v1/merchant/orders with the X-CSRFToken header, then the shop's pay page opens.
   The server checks everything again (level price, stock, address). */
(function () {
  "use strict";

  var root = document.querySelector("[data-merchant-order]");
  var form = document.querySelector("[data-merchant-form]");
  var bar = document.querySelector("[data-order-bar]");
  if (!root || !form || !bar) return;
  var KEY = "merchant-order-picks";
  var MAX = parseInt(root.getAttribute("data-max"), 10) || 99;
  var step = 1;
  var picks = load();

  function load() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || []; } catch (e) { return []; }
  }
  function save() {
    try { sessionStorage.setItem(KEY, JSON.stringify(picks)); } catch (e) { /* private mode */ }
  }
  function yuan(fen) {
    return "¥" + Math.floor(fen / 100) + "." + String(fen % 100).padStart(2, "0");
  }
  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) { window.alert(text); return; }
    el.textContent = text;
    el.hidden = false;
    setTimeout(function () { el.hidden = true; }, 2200);
  }
  function find(skuId) {
    for (var i = 0; i < picks.length; i++) if (picks[i].sku_id === skuId) return picks[i];
    return null;
  }
  function label(p) { return p.title + (p.spec ? "（" + p.spec + "）" : ""); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* --- step 1: pick --------------------------------------------------------------------- */
  function rowData(row) {
    return {
      sku_id: parseInt(row.getAttribute("data-sku"), 10),
      price: parseInt(row.getAttribute("data-price"), 10),
      stock: parseInt(row.getAttribute("data-stock"), 10),
      title: row.getAttribute("data-title"),
      spec: row.getAttribute("data-spec"),
      quantity: 1
    };
  }
  root.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-pick]");
    if (!btn) return;
    var item = rowData(btn.closest("[data-sku]"));
    var had = find(item.sku_id);
    if (had) picks.splice(picks.indexOf(had), 1); else picks.push(item);
    save();
    render();
  });

  function renderChosen() {
    var box = root.querySelector("[data-chosen]");
    var list = root.querySelector("[data-chosen-list]");
    list.textContent = "";
    picks.forEach(function (p) {
      var li = el("li");
      li.setAttribute("data-chosen-sku", p.sku_id);
      var left = el("div");
      left.appendChild(el("span", "", label(p)));
      left.appendChild(el("small", "", "我的价 " + yuan(p.price) + " · 库存 " + p.stock));
      var right = el("div", "m-qty");
      var input = el("input");
      input.type = "number";
      input.inputMode = "numeric";
      input.min = "1";
      input.max = String(Math.min(p.stock, MAX));
      input.value = String(p.quantity);
      input.setAttribute("data-qty", "");
      input.setAttribute("aria-label", label(p) + " 数量");
      input.addEventListener("change", function () {
        var n = parseInt(input.value, 10);
        if (!(n >= 1)) n = 1;
        if (n > Math.min(p.stock, MAX)) { n = Math.min(p.stock, MAX); toast("最多可订 " + n + " 件"); }
        p.quantity = n;
        input.value = String(n);
        save();
        totals();
      });
      var rm = el("button", "m-rm", "移除");
      rm.type = "button";
      rm.addEventListener("click", function () {
        picks.splice(picks.indexOf(p), 1);
        save();
        render();
      });
      right.appendChild(input);
      right.appendChild(rm);
      li.appendChild(left);
      li.appendChild(right);
      list.appendChild(li);
    });
    box.hidden = picks.length === 0;
  }

  function markPicked() {
    root.querySelectorAll("[data-sku]").forEach(function (row) {
      var btn = row.querySelector("[data-pick]");
      if (!btn) return;
      var on = !!find(parseInt(row.getAttribute("data-sku"), 10));
      btn.setAttribute("aria-pressed", on ? "true" : "false");
      btn.textContent = on ? "已选" : "选择";
    });
    root.querySelectorAll("details[data-product]").forEach(function (d) {
      var n = d.querySelectorAll('[data-pick][aria-pressed="true"]').length;
      var badge = d.querySelector("[data-picked-count]");
      badge.textContent = "已选 " + n;
      badge.hidden = n === 0;
    });
  }

  function totals() {
    var units = 0, total = 0;
    picks.forEach(function (p) { units += p.quantity; total += p.price * p.quantity; });
    bar.querySelector("[data-picked-units]").textContent = units;
    bar.querySelector("[data-picked-total]").textContent = yuan(total);
    var confirmTotal = root.querySelector("[data-merchant-total]");
    if (confirmTotal) confirmTotal.textContent = yuan(total);
    bar.querySelector("[data-next]").disabled = step === 1 && picks.length === 0;
  }

  function render() {
    markPicked();
    renderChosen();
    totals();
  }

  /* --- steps ---------------------------------------------------------------------------- */
  function values() {
    return {
      name: form.elements.name.value.trim(),
      phone: form.elements.phone.value.replace(/[\s-]/g, ""),
      district_code: form.querySelector('[data-region="district"]').value,
      detail: form.elements.detail.value.trim(),
      remark: form.elements.remark.value.trim()
    };
  }
  function addressProblem(v) {
    if (!v.name) return ["name", "请填写客户姓名"];
    if (!/^1[3-9]\d{9}$/.test(v.phone)) return ["phone", "请填写 11 位手机号码"];
    if (!v.district_code) return ["district", "请选择省市区"];
    if (v.detail.length < 2) return ["detail", "请填写详细地址"];
    return null;
  }
  /* The one way addresses are written (app/regions.py address_text): 省 市 区 详细,
     a name repeated (北京市 北京市) written once. */
  function addressText(detail) {
    var names = [];
    ["province", "city", "district"].forEach(function (level) {
      var s = form.querySelector('[data-region="' + level + '"]');
      var name = s.value ? s.options[s.selectedIndex].textContent : "";
      if (name && names.indexOf(name) === -1) names.push(name);
    });
    if (detail) names.push(detail);
    return names.join(" ");
  }
  function renderConfirm(v) {
    root.querySelector("[data-confirm-who]").textContent = v.name + "  " + v.phone;
    root.querySelector("[data-confirm-address]").textContent = addressText(v.detail);
    var remark = root.querySelector("[data-confirm-remark]");
    remark.textContent = v.remark ? "备注：" + v.remark : "";
    remark.hidden = !v.remark;
    var list = root.querySelector("[data-confirm-items]");
    list.textContent = "";
    picks.forEach(function (p) {
      var li = el("li");
      var left = el("div");
      left.appendChild(el("span", "", label(p)));
      left.appendChild(el("small", "", yuan(p.price) + " × " + p.quantity));
      li.appendChild(left);
      li.appendChild(el("b", "", yuan(p.price * p.quantity)));
      list.appendChild(li);
    });
  }
  function go(next) {
    step = next;
    root.querySelectorAll("[data-step]").forEach(function (s) {
      s.hidden = parseInt(s.getAttribute("data-step"), 10) !== step;
    });
    document.querySelectorAll("[data-step-tab]").forEach(function (t) {
      var n = parseInt(t.getAttribute("data-step-tab"), 10);
      t.className = n === step ? "on" : n < step ? "done" : "";
    });
    var nextBtn = bar.querySelector("[data-next]");
    nextBtn.hidden = step === 3;
    nextBtn.textContent = step === 1 ? "下一步：填写地址" : "下一步：确认订单";
    bar.querySelector("[data-merchant-submit]").hidden = step !== 3;
    bar.querySelector("[data-back]").hidden = step === 1;
    totals();
    window.scrollTo(0, 0);
  }
  var problem = root.querySelector("[data-address-error]");
  bar.querySelector("[data-next]").addEventListener("click", function () {
    if (step === 1) {
      if (!picks.length) { toast("请选择商品"); return; }
      go(2);
      return;
    }
    var v = values();
    var bad = addressProblem(v);
    form.querySelectorAll("[aria-invalid]").forEach(function (f) { f.removeAttribute("aria-invalid"); });
    if (bad) {
      var field = bad[0] === "district" ? form.querySelector('[data-region="province"]') : form.elements[bad[0]];
      if (bad[0] === "district") {
        ["province", "city", "district"].forEach(function (l) {
          var s = form.querySelector('[data-region="' + l + '"]');
          if (!s.value) s.setAttribute("aria-invalid", "true");
        });
      } else {
        field.setAttribute("aria-invalid", "true");
      }
      problem.textContent = bad[1];
      problem.hidden = false;
      field.focus();
      return;
    }
    problem.hidden = true;
    renderConfirm(v);
    go(3);
  });
  bar.querySelector("[data-back]").addEventListener("click", function () { go(step - 1); });

  var submit = bar.querySelector("[data-merchant-submit]");
  submit.addEventListener("click", function () {
    var v = values();
    if (!picks.length) { toast("请选择商品"); go(1); return; }
    if (addressProblem(v)) { go(2); return; }
    var body = {
      items: picks.map(function (p) { return { sku_id: p.sku_id, quantity: p.quantity }; }),
      name: v.name, phone: v.phone, district_code: v.district_code, detail: v.detail, remark: v.remark
    };
    var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
    submit.disabled = true;
    fetch("/api/v1/merchant/orders", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      if (!res.ok) {
        submit.disabled = false;
        toast((res.data.error && res.data.error.message) || "下单失败，请重试");
        return;
      }
      picks = [];
      save();
      location.href = "/orders/" + res.data.id + "/pay";
    }, function () { submit.disabled = false; toast("网络错误，请重试"); });
  });

  render();
})();
