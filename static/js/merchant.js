/* Ordering-merchant centre: 代客下单. The region picker is orders.js's ([data-address-form]);
   this file sums the chosen SKUs at the merchant's price and posts the order to
   /api/v1/merchant/orders with the X-CSRFToken header, then opens the shop's pay page. */
(function () {
  "use strict";

  var list = document.querySelector("[data-merchant-items]");
  var form = document.querySelector("[data-merchant-form]");
  var submit = document.querySelector("[data-merchant-submit]");
  if (!list || !form || !submit) return;

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
  function items() {
    var chosen = [];
    list.querySelectorAll("[data-sku]").forEach(function (row) {
      var input = row.querySelector("[data-qty]");
      var n = parseInt(input.value, 10);
      if (n > 0) chosen.push({ sku_id: parseInt(row.getAttribute("data-sku"), 10), quantity: n,
        price: parseInt(row.getAttribute("data-price"), 10) });
    });
    return chosen;
  }
  function refresh() {
    var total = items().reduce(function (sum, i) { return sum + i.price * i.quantity; }, 0);
    document.querySelector("[data-merchant-total]").textContent = yuan(total);
  }
  list.addEventListener("input", refresh);

  submit.addEventListener("click", function () {
    var chosen = items();
    var body = {
      items: chosen.map(function (i) { return { sku_id: i.sku_id, quantity: i.quantity }; }),
      name: form.elements.name.value.trim(),
      phone: form.elements.phone.value.replace(/[\s-]/g, ""),
      district_code: form.querySelector('[data-region="district"]').value,
      detail: form.elements.detail.value.trim(),
      remark: form.elements.remark.value.trim()
    };
    if (!chosen.length) { toast("请选择商品和数量"); return; }
    if (!body.name) { toast("请填写客户姓名"); return; }
    if (!/^1[3-9]\d{9}$/.test(body.phone)) { toast("请填写 11 位手机号码"); return; }
    if (!body.district_code) { toast("请选择省市区"); return; }
    if (body.detail.length < 2) { toast("请填写详细地址"); return; }
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
      location.href = "/orders/" + res.data.id + "/pay";
    }, function () { submit.disabled = false; toast("网络错误，请重试"); });
  });
})();
