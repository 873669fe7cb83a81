/*! Parlor widget loader: the launcher, and the chat panel in an iframe. See Parlor's README, "Embed the widget". */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__parlorLoaded) return;

  var settings = /*SETTINGS*/{};
  var origin = new URL(script.src).origin;
  var allowed = settings.allowed || [];
  if (allowed.length && allowed.indexOf(location.origin) < 0 && location.origin !== origin) {
    console.error(
      "Parlor: this site (" + location.origin + ") is not allowed to show the chat. " +
      "An admin can add it under Allowed sites on the Appearance page of the Parlor console."
    );
    window.Parlor = function () {};
    return;
  }
  window.__parlorLoaded = true;

  var data = script.dataset;
  var title = data.parlorTitle || settings.title || "Chat with us";
  var color = data.parlorColor || settings.color || "";
  var side = (data.parlorPosition || settings.position) === "left" ? "left" : "right";
  // Intent prefetch: the panel loads in a hidden frame on intent or idle (see warm).
  var prefetch = data.parlorPrefetch !== "off";
  var OPEN_KEY = "parlor.open";
  var UNREAD_KEY = "parlor.unread";
  var LIVE_KEY = "parlor.live";
  // The visitor's token lives here, in the site's own storage: browsers that block
  // storage in third-party frames would otherwise forget the visitor on every page.
  var TOKEN_KEY = "parlor.visitor";
  var EVENTS = ["open", "close", "message", "chat-started", "chat-ended"];

  var css =
    ":host{all:initial}" +
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483646;width:56px;height:56px;" +
    "border-radius:50%;border:0;cursor:pointer;background:#2456d3;color:#fff;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center;padding:0;margin:0}" +
    ".launcher:focus-visible{outline:3px solid #fff;outline-offset:-6px}" +
    ".launcher svg{width:28px;height:28px;fill:currentColor}" +
    ".badge{position:absolute;top:-4px;right:-4px;padding:0 6px;border-radius:9px;background:#c62828;font:700 12px/18px sans-serif}" +
    ".bubble{position:fixed;bottom:88px;" + side + ":20px;z-index:2147483646;max-width:260px;display:flex;" +
    "background:#fff;border-radius:12px;padding:8px;box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".bubble button{all:unset;cursor:pointer;padding:2px 4px;font:14px/1.4 sans-serif;color:#1d2430;overflow-wrap:anywhere}" +
    ".bubble button:focus-visible{outline:2px solid #2456d3}" +
    ".sr{position:absolute;clip:rect(0 0 0 0)}[hidden]{display:none!important}" +
    ".panel{position:fixed;bottom:88px;" + side + ":20px;z-index:2147483647;width:370px;height:560px;" +
    "max-height:calc(100vh - 108px);border:0;border-radius:12px;overflow:hidden;" +
    "box-shadow:0 8px 32px rgba(0,0,0,.25);background:#fff;display:none}" +
    ".panel.open{display:block}" +
    "@media (max-width:480px){.panel{inset:0;width:100%;height:100%;max-height:none;border-radius:0}" +
    ".panel.open~.launcher{display:none}}";

  var host = document.createElement("div");
  host.setAttribute("data-parlor", "");
  var root = host.attachShadow({ mode: "open" });
  // A constructed style sheet is not an inline style: a strict CSP on the page allows it.
  if ("adoptedStyleSheets" in root && typeof CSSStyleSheet === "function") {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } else {
    var style = document.createElement("style");
    style.textContent = css;
    root.appendChild(style);
  }

  function el(tag, className, parent) {
    var e = document.createElement(tag);
    e.className = className;
    if (tag === "button") e.type = "button";
    if (parent) parent.appendChild(e);
    return e;
  }
  var launcher = el("button", "launcher");
  launcher.setAttribute("aria-label", "Open chat");
  launcher.setAttribute("aria-expanded", "false");
  var SVG = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(SVG, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  launcher.appendChild(icon);
  if (color) launcher.style.background = color;
  // A reply while the panel is closed: a count on the launcher, a preview that opens
  // the chat or is dismissed, and an announcement.
  var badge = el("span", "badge", launcher);
  badge.setAttribute("aria-hidden", "true");
  var bubble = el("div", "bubble");
  var say = el("button", "", bubble);
  var dismiss = el("button", "", bubble);
  dismiss.setAttribute("aria-label", "Dismiss");
  dismiss.textContent = "\u2715";
  var news = el("div", "sr");
  news.setAttribute("role", "status");
  var unread = 0;

  var frame = null;
  var frameReady = false;
  // The panel talks to Parlor once wanted (opened, or a live chat): a frame loaded
  // ahead of a click makes no visitor.
  var wanted = false;
  var greeted = false;
  var isOpen = false;
  var identity = null;
  var listeners = {};
  EVENTS.forEach(function (name) { listeners[name] = []; });

  function emit(name, detail) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(detail); } catch (e) { /* a listener's error is the page's own */ }
    });
  }

  function store(kind, key, value) {
    try {
      var s = kind === "session" ? sessionStorage : localStorage;
      if (value === undefined) return s.getItem(key);
      if (value === null) s.removeItem(key); else s.setItem(key, value);
    } catch (e) { /* storage blocked */ }
    return null;
  }

  function tellFrame(message) {
    if (frame && frameReady) frame.contentWindow.postMessage(message, origin);
  }

  function showUnread(preview) {
    store("session", UNREAD_KEY, unread ? String(unread) : null);
    badge.textContent = unread > 9 ? "9+" : String(unread);
    badge.hidden = !unread;
    launcher.setAttribute("aria-label", (isOpen ? "Close chat" : "Open chat") +
      (unread ? ", " + unread + " unread message" + (unread > 1 ? "s" : "") : ""));
    if (preview) say.textContent = preview;
    bubble.hidden = !unread || !say.textContent;
  }

  // The visitor's token goes to the panel this way only, never in its URL.
  function connect() {
    wanted = true;
    if (!frameReady || greeted) return;
    greeted = true;
    tellFrame({ parlor: "hello", token: store("local", TOKEN_KEY) });
  }

  // On intent (pointer, focus, touch on the launcher) or after a few idle seconds, so a
  // click finds the panel ready.
  function warm() {
    if (prefetch) ensureFrame();
  }

  function ensureFrame() {
    if (frame) return frame;
    frame = document.createElement("iframe");
    frame.className = "panel";
    frame.title = title;
    frame.setAttribute("allow", "autoplay");
    var params = { host: location.origin, title: title };
    if (color) params.color = color;
    frame.src = origin + "/widget/#" + new URLSearchParams(params);
    root.insertBefore(frame, launcher);
    return frame;
  }

  function open() {
    if (isOpen) return;
    ensureFrame().classList.add("open");
    connect();
    isOpen = true;
    unread = 0;
    say.textContent = "";
    showUnread();
    launcher.setAttribute("aria-expanded", "true");
    store("session", OPEN_KEY, "1");
    tellFrame({ parlor: "opened" });
    emit("open");
  }

  function close() {
    if (!isOpen) return;
    frame.classList.remove("open");
    isOpen = false;
    launcher.setAttribute("aria-expanded", "false");
    showUnread();
    store("session", OPEN_KEY, "0");
    launcher.focus();
    emit("close");
  }

  function toggle() { isOpen ? close() : open(); }
  launcher.addEventListener("click", toggle);
  launcher.addEventListener("pointerenter", warm);
  launcher.addEventListener("focus", warm);
  launcher.addEventListener("touchstart", warm, { passive: true });
  say.addEventListener("click", open);
  dismiss.addEventListener("click", function () {
    say.textContent = "";
    showUnread();
    launcher.focus();
  });

  // Only the panel Parlor served may talk to the loader, and only with these.
  window.addEventListener("message", function (event) {
    if (!frame || event.origin !== origin || event.source !== frame.contentWindow) return;
    var message = event.data || {};
    if (message.parlor === "ready") {
      frameReady = true;
      // A panel that loaded again (its own reload) is greeted again.
      greeted = false;
      if (identity) tellFrame({ parlor: "identify", visitor: identity });
      if (wanted) connect();
      if (isOpen) tellFrame({ parlor: "opened" });
    } else if (message.parlor === "token" && /^[0-9a-f]{48}$/.test(message.token)) {
      store("local", TOKEN_KEY, message.token);
    } else if (message.parlor === "close") {
      close();
    } else if (message.parlor === "event" && EVENTS.indexOf(message.name) >= 2) {
      if (message.name === "chat-started") store("local", LIVE_KEY, "1");
      if (message.name === "chat-ended") store("local", LIVE_KEY, null);
      var detail = message.detail || {};
      if (message.name === "message" && detail.author === "agent" && !isOpen) {
        unread++;
        var line = detail.name + ": " + detail.body;
        var chars = Array.from(line);
        showUnread(chars.length > 90 ? chars.slice(0, 89).join("") + "\u2026" : line);
        news.textContent = "New message from " + line;
      }
      emit(message.name, message.detail);
    }
  });

  /** Keeps string answers only: the widget shows them as text, nothing else. */
  function identify(visitor) {
    if (!visitor || typeof visitor !== "object") return;
    identity = {};
    Object.keys(visitor).slice(0, 20).forEach(function (key) {
      var value = visitor[key];
      if (typeof value === "string" || typeof value === "number") identity[key] = String(value).slice(0, 200);
    });
    tellFrame({ parlor: "identify", visitor: identity });
  }

  var commands = {
    open: open,
    close: close,
    toggle: toggle,
    identify: identify,
    on: function (name, fn) {
      if (listeners[name] && typeof fn === "function") listeners[name].push(fn);
    },
    shutdown: function () {
      host.remove();
      store("session", OPEN_KEY, null);
      store("session", UNREAD_KEY, null);
      store("local", LIVE_KEY, null);
      store("local", TOKEN_KEY, null);
      window.__parlorLoaded = false;
    }
  };
  function Parlor(command) {
    var run = commands[command];
    if (run) run.apply(null, Array.prototype.slice.call(arguments, 1));
  }
  var queued = (window.Parlor && window.Parlor.q) || [];
  window.Parlor = Parlor;

  function mount() {
    root.appendChild(bubble);
    root.appendChild(launcher);
    root.appendChild(news);
    document.body.appendChild(host);
    unread = Number(store("session", UNREAD_KEY)) || 0;
    showUnread();
    for (var i = 0; i < queued.length; i++) Parlor.apply(null, queued[i]);
    var idle = window.requestIdleCallback || function (fn) { setTimeout(fn, 1); };
    if (store("session", OPEN_KEY) === "1") open();
    else if (store("local", LIVE_KEY) === "1") {
      // A live chat: load the panel quietly so its messages and events arrive.
      idle(function () { ensureFrame(); connect(); });
    } else {
      setTimeout(function () { idle(warm); }, 3000);
    }
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
