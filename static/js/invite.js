/* 邀请好友加入 on the team page. The button carries the invite (data-share-link, -title,
   -desc). When the shop's share sheet is loaded (window.ShareSheet.open, from share.js) it
   opens that sheet with the invite; otherwise the page's own sheet shows the link to copy,
   the poster, and how to send it from WeChat's menu (the page's share card is the invite). */
(function () {
  "use strict";

  var sheet = document.querySelector("[data-invite-sheet]");

  function close() { if (sheet) sheet.hidden = true; }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-invite]");
    if (button) {
      var invite = {
        title: button.getAttribute("data-share-title"),
        desc: button.getAttribute("data-share-desc"),
        link: button.getAttribute("data-share-link")
      };
      if (window.ShareSheet && typeof window.ShareSheet.open === "function") {
        window.ShareSheet.open(invite);
      } else if (sheet) {
        sheet.hidden = false;
        var first = sheet.querySelector("[data-copy]");
        if (first) first.focus();
      }
      return;
    }
    if (!sheet || sheet.hidden) return;
    if (event.target.closest("[data-invite-close]") || event.target === sheet) close();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
  });
})();
