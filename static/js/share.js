/* Share cards inside WeChat (JS-SDK). No dependencies, no build step.

   Pages that want a card carry <script type="application/json" id="share-data"> with what
   is the same for every visitor (title, price in fen, cover path, page path): catalog pages
   are cached whole. What depends on the visitor or the URL is fetched here, uncached:
   - GET /api/v1/wechat/share-context  → the signed-in distributor's ref and the site origin;
   - GET /api/v1/wechat/jssdk-config?url=…  → wx.config for the page URL (without #…).

   WeChat's jweixin is not vendored and never comes from a third-party CDN: inside WeChat
   (user agent "MicroMessenger") it is loaded from WeChat's own res.wx.qq.com, the only
   place WeChat documents for it; outside WeChat nothing is loaded and the page works
   without share cards. window.__shareData holds the card either way (tests read it).

   iOS WeChat checks the signature against the URL the visitor entered with, Android
   against the current URL. The entry URL is kept in sessionStorage by every page that
   loads this file (base.html); on iOS it is signed first, and if WeChat refuses it
   (wx.error) the current URL is tried once. */
(function () {
  "use strict";

  var JWEIXIN_SRC = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js";
  var ENTRY_KEY = "wxEntryUrl";
  var ua = navigator.userAgent || "";
  var inWeChat = /MicroMessenger/i.test(ua);
  var isIOS = /iPhone|iPad|iPod/i.test(ua);
  var here = location.href.split("#")[0];

  function entryUrl() {
    try {
      var saved = sessionStorage.getItem(ENTRY_KEY);
      if (saved) return saved;
      sessionStorage.setItem(ENTRY_KEY, here);
    } catch (e) { /* storage disabled: the current URL is all we know */ }
    return here;
  }
  var entry = entryUrl();

  var dataEl = document.getElementById("share-data");
  if (!dataEl || !window.fetch || !window.Promise) return;
  var page;
  try { page = JSON.parse(dataEl.textContent); } catch (e) { return; }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }

  /* Money arrives in fen (integers); format without ever dividing into a float. */
  function yuan(fen) {
    var cents = fen % 100;
    return "¥" + Math.floor(fen / 100) + "." + (cents < 10 ? "0" : "") + cents;
  }

  function absolute(base, path) {
    if (!path) return "";
    if (/^https?:\/\//i.test(path)) return path;
    return base.replace(/\/+$/, "") + (path.charAt(0) === "/" ? "" : "/") + path;
  }

  function buildShare(ctx) {
    var base = ctx.base_url || location.origin;
    var link = absolute(base, page.path || location.pathname);
    /* own_link: the page's path already names its distributor (a coupon's ?d=CODE, where
       the claim binds, not the visit), so no ref is added. */
    if (ctx.ref && !page.own_link) link += (link.indexOf("?") < 0 ? "?" : "&") + "ref=" + encodeURIComponent(ctx.ref);
    var price = typeof page.price_fen === "number" ? yuan(page.price_fen) + (page.from ? "起" : "") : "";
    var desc = price ? price + (page.desc ? " · " + page.desc : "") : (page.desc || "");
    var share = {
      title: page.title,
      desc: desc,
      link: link,
      imgUrl: absolute(base, page.image),
      timelineTitle: price ? page.title + " " + price : page.title,
      ref: page.own_link ? null : (ctx.ref || null)
    };
    window.__shareData = share;
    return share;
  }

  function loadWx() {
    if (window.wx && window.wx.config) return Promise.resolve(window.wx);
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = JWEIXIN_SRC;
      script.async = true;
      script.onload = function () { (window.wx && window.wx.config) ? resolve(window.wx) : reject(new Error("no wx")); };
      script.onerror = function () { reject(new Error("jweixin did not load")); };
      document.head.appendChild(script);
    });
  }

  function configure(wx, share) {
    var candidates = isIOS && entry !== here ? [entry, here] : [here];
    var attempt = 0;
    var applied = false;
    wx.ready(function () {
      if (applied) return;
      applied = true;
      wx.updateAppMessageShareData({ title: share.title, desc: share.desc, link: share.link, imgUrl: share.imgUrl });
      wx.updateTimelineShareData({ title: share.timelineTitle, link: share.link, imgUrl: share.imgUrl });
    });
    wx.error(function () {
      attempt += 1;
      if (attempt < candidates.length) sign(candidates[attempt]);
    });
    function sign(url) {
      return getJSON("/api/v1/wechat/jssdk-config?url=" + encodeURIComponent(url))
        .then(function (res) {
          var config = res.config;
          wx.config({
            debug: false,
            appId: config.appId,
            timestamp: config.timestamp,
            nonceStr: config.nonceStr,
            signature: config.signature,
            jsApiList: config.jsApiList
          });
        })
        .catch(function () { /* no card this time; the page itself is unaffected */ });
    }
    sign(candidates[0]);
  }

  getJSON("/api/v1/wechat/share-context")
    .catch(function () { return { ref: null, base_url: location.origin }; })
    .then(function (ctx) {
      var share = buildShare(ctx);
      if (!inWeChat) return;
      return loadWx().then(function (wx) { configure(wx, share); });
    })
    .catch(function () { /* outside WeChat's network or an old client: no share card */ });
})();
