/*! Parlor widget loader. Embed with:
 *    <script async src="https://YOUR-PARLOR/widget.js"></script>
 * It draws only the launcher (in a shadow root, so the page's CSS cannot touch
 * it) and loads the chat panel in an iframe served by Parlor when it is first opened.
 * Options, as data- attributes on the tag: data-parlor-title, data-parlor-color,
 * data-parlor-position ("right" | "left").
 * API: Parlor('open' | 'close' | 'toggle' | 'shutdown'), Parlor('on', event, fn) for
 * 'open' and 'close'. Calls made before this file loads are queued by the stub
 *    window.Parlor = window.Parlor || function () { (Parlor.q = Parlor.q || []).push(arguments) };
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__parlorLoaded) return;
  window.__parlorLoaded = true;

  var origin = new URL(script.src).origin;
  var data = script.dataset;
  var title = data.parlorTitle || "Chat with us";
  var color = data.parlorColor || "";
  var side = data.parlorPosition === "left" ? "left" : "right";
  var OPEN_KEY = "parlor.open";

  var host = document.createElement("div");
  host.setAttribute("data-parlor", "");
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483646;width:56px;height:56px;" +
    "border-radius:50%;border:0;cursor:pointer;background:var(--parlor-brand,#2456d3);color:#fff;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center;padding:0}" +
    ".launcher:focus-visible{outline:3px solid #fff;outline-offset:-6px}" +
    ".launcher svg{width:28px;height:28px;fill:currentColor}" +
    ".panel{position:fixed;bottom:88px;" + side + ":20px;z-index:2147483647;width:370px;height:560px;" +
    "max-height:calc(100vh - 108px);border:0;border-radius:12px;overflow:hidden;" +
    "box-shadow:0 8px 32px rgba(0,0,0,.25);background:#fff;display:none}" +
    ".panel.open{display:block}" +
    "@media (max-width:480px){.panel{inset:0;width:100%;height:100%;max-height:none;border-radius:0}}" +
    "</style>" +
    '<button class="launcher" type="button" aria-label="Open chat" aria-expanded="false">' +
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>' +
    "</button>";
  var launcher = root.querySelector(".launcher");
  if (color) launcher.style.background = color;
  var frame = null;
  var isOpen = false;
  var listeners = { open: [], close: [] };

  function emit(name) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(); } catch (e) { /* a listener's error is the page's own */ }
    });
  }

  function remember(open) {
    try { sessionStorage.setItem(OPEN_KEY, open ? "1" : "0"); } catch (e) { /* storage blocked */ }
  }

  function ensureFrame() {
    if (frame) return frame;
    frame = document.createElement("iframe");
    frame.className = "panel";
    frame.title = title;
    frame.setAttribute("allow", "autoplay");
    frame.src = origin + "/widget/#" + new URLSearchParams({ host: location.origin, title: title });
    root.appendChild(frame);
    return frame;
  }

  function open() {
    if (isOpen) return;
    ensureFrame().classList.add("open");
    isOpen = true;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat");
    remember(true);
    emit("open");
  }

  function close() {
    if (!isOpen) return;
    frame.classList.remove("open");
    isOpen = false;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat");
    remember(false);
    launcher.focus();
    emit("close");
  }

  launcher.addEventListener("click", function () { isOpen ? close() : open(); });

  // Only the panel Parlor served may talk to the loader.
  window.addEventListener("message", function (event) {
    if (!frame || event.origin !== origin || event.source !== frame.contentWindow) return;
    var message = event.data;
    if (message && message.parlor === "close") close();
  });

  var commands = {
    open: open,
    close: close,
    toggle: function () { isOpen ? close() : open(); },
    on: function (name, fn) {
      if (listeners[name] && typeof fn === "function") listeners[name].push(fn);
    },
    shutdown: function () { host.remove(); window.__parlorLoaded = false; }
  };
  function Parlor(command) {
    var run = commands[command];
    if (run) run.apply(null, Array.prototype.slice.call(arguments, 1));
  }
  var queued = (window.Parlor && window.Parlor.q) || [];
  window.Parlor = Parlor;

  function mount() {
    document.body.appendChild(host);
    for (var i = 0; i < queued.length; i++) Parlor.apply(null, queued[i]);
    var wasOpen = false;
    try { wasOpen = sessionStorage.getItem(OPEN_KEY) === "1"; } catch (e) { /* storage blocked */ }
    if (wasOpen) open();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
