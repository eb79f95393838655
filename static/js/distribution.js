/* Distributor centre: copy buttons, the withdrawal fee shown before submitting, and
   确认收款 for WeChat transfers (requestMerchantTransfer, or the stand-in's page). */
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

  /* Money: fen are integers; yuan text is split at the point, never parsed as a float. */
  function yuan(fen) {
    var cents = fen % 100;
    return "¥" + Math.floor(fen / 100) + "." + (cents < 10 ? "0" : "") + cents;
  }
  function toFen(text) {
    var m = /^\s*(\d{1,9})(?:\.(\d{0,2}))?\s*$/.exec(text || "");
    if (!m) return null;
    var frac = (m[2] || "") + "00";
    return parseInt(m[1], 10) * 100 + parseInt(frac.slice(0, 2), 10);
  }

  /* Copy: the Clipboard API where allowed, else a selected textarea (older WeChat). */
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy")); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    copyText(text).then(
      function () { toast("已复制"); },
      function () { window.prompt("长按复制", text); }
    );
  });

  /* Withdraw form: "全部" fills the available amount; the fee is asked from the server. */
  var form = document.querySelector("[data-withdraw]");
  if (form) {
    var input = form.querySelector("[data-amount-input]");
    var preview = form.querySelector("[data-fee-preview]");
    var feeUrl = form.getAttribute("data-fee-url");
    var timer, asked = 0;
    var initial = preview.textContent;

    var showFee = function () {
      var fen = toFen(input.value);
      if (!input.value.trim()) { preview.textContent = initial; return; }
      if (fen === null || fen <= 0) { preview.textContent = "请输入正确的金额（最多两位小数）"; return; }
      var mine = ++asked;
      fetch(feeUrl + "?amount_fen=" + fen, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (fee) {
          if (mine !== asked) return; // an older answer after a newer question
          preview.innerHTML = "";
          preview.appendChild(document.createTextNode("手续费 " + yuan(fee.fee_fen) + "，实际到账 "));
          var b = document.createElement("b");
          b.setAttribute("data-net", String(fee.net_fen));
          b.textContent = yuan(fee.net_fen);
          preview.appendChild(b);
        })
        .catch(function () { preview.textContent = initial; });
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(showFee, 250);
    });
    var all = form.querySelector("[data-fill]");
    if (all) {
      all.addEventListener("click", function () {
        input.value = all.getAttribute("data-fill");
        showFee();
      });
    }
    if (input.value) showFee();
    form.addEventListener("submit", function () {
      var submit = form.querySelector("button[type=submit]");
      if (submit) submit.disabled = true; // one tap, one request
    });
  }

  /* 确认收款: inside WeChat, the pay sheet via WeixinJSBridge; with the stand-in in use the
     link leads to its confirm page instead (href is that page, else "#"). */
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-confirm-transfer]");
    if (!link) return;
    if (link.getAttribute("href") && link.getAttribute("href") !== "#") return;
    event.preventDefault();
    var params = JSON.parse(link.getAttribute("data-confirm-transfer"));
    var bridge = window.WeixinJSBridge;
    if (!bridge || !bridge.invoke) { toast("请在微信中打开本页确认收款"); return; }
    bridge.invoke("requestMerchantTransfer", {
      mchId: params.mchId, appId: params.appId, package: params.package
    }, function (res) {
      if (res && res.err_msg === "requestMerchantTransfer:ok") {
        window.location.href = window.location.pathname + "?transfer_result=ok";
      } else if (res && /cancel/.test(res.err_msg || "")) {
        toast("已取消");
      } else {
        toast("微信版本过低或暂不支持，请升级微信后重试");
      }
    });
  });
})();
