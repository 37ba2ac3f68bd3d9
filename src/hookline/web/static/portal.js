// The portal's one script: the access key, the theme switch, focus after a screen change.
//
// The key arrives in the link's fragment (#key=…), which browsers never send to a server.
// It is moved to this tab's sessionStorage and removed from the address bar at once, so it
// is not kept in history, bookmarks or screenshots; each htmx request then carries it as
// a bearer header. No cookie is used, so the portal also works in a third-party iframe.
(function () {
  "use strict";
  var root = document.documentElement;
  var storageKey = "hookline.portal." + (root.getAttribute("data-app") || "");
  var inMemory = null;

  function remember(token) {
    inMemory = token;
    try { window.sessionStorage.setItem(storageKey, token); } catch (e) { /* storage blocked */ }
  }
  function recall() {
    try { return window.sessionStorage.getItem(storageKey) || inMemory; } catch (e) { return inMemory; }
  }

  var found = /(?:^#|&)key=([^&]+)/.exec(window.location.hash);
  if (found) {
    remember(decodeURIComponent(found[1]));
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var token = recall();
    if (token && event.detail.path.indexOf("/portal/") === 0) {
      event.detail.headers["Authorization"] = "Bearer " + token;
    }
  });
  // Signed out: the server revoked the key; forget this tab's copy too.
  document.addEventListener("hookline:signed-out", function () {
    inMemory = null;
    try { window.sessionStorage.removeItem(storageKey); } catch (e) { /* storage blocked */ }
  });
  // Refusals (401, 403, 404, 422 …) are screens too: show them rather than nothing.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // A new screen moves focus to its heading, so that a screen reader announces it and the
  // next Tab starts there; the first screen leaves focus where the page put it (the top).
  var firstScreen = true;
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (firstScreen) { firstScreen = false; return; }
    if (target && target.id === "portal-main") {
      var heading = target.querySelector("h2");
      if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: false }); }
    }
  });

  // Navigation: the link of the screen asked for is the current one.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("nav a[hx-get]");
    if (!link) { return; }
    var links = document.querySelectorAll("nav a[hx-get]");
    for (var i = 0; i < links.length; i++) { links[i].removeAttribute("aria-current"); }
    link.setAttribute("aria-current", "page");
  });

  // The theme: the visitor's choice, else the link's darkMode, else the system's.
  var themeKey = "hookline.theme";
  function applyTheme(theme) {
    if (theme) { root.setAttribute("data-theme", theme); }
    var dark = theme ? theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
    var button = document.getElementById("theme-switch");
    if (button) { button.setAttribute("aria-pressed", dark ? "true" : "false"); }
  }
  var chosen = null;
  try { chosen = window.localStorage.getItem(themeKey); } catch (e) { /* storage blocked */ }
  document.addEventListener("DOMContentLoaded", function () {
    applyTheme(chosen || root.getAttribute("data-theme"));
    var button = document.getElementById("theme-switch");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var next = button.getAttribute("aria-pressed") === "true" ? "light" : "dark";
      try { window.localStorage.setItem(themeKey, next); } catch (e) { /* storage blocked */ }
      applyTheme(next);
    });
  });

  // Embedded with svix-react's <AppPortal fullSize>: tell the host page our height, in the
  // message svix-react listens for (type "svix.iframe-resizer-height").
  if (window.parent !== window && "ResizeObserver" in window) {
    document.addEventListener("DOMContentLoaded", function () {
      new ResizeObserver(function () {
        var height = document.documentElement.scrollHeight;
        window.parent.postMessage({ type: "svix.iframe-resizer-height", payload: { height: height } }, "*");
      }).observe(document.body);
    });
  }
})();
