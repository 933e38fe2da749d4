/* kesu web chat widget: <script src="https://HOST/widget.js" defer></script>
 * Optional: data-title="在线投诉" data-color="#c0392b" data-lang="zh-CN|en".
 * No framework and no third-party requests. Everything lives in a shadow root, and every
 * text from the server is put on the page with textContent: it is never parsed as HTML. */
(function () {
  "use strict";
  if (window.__kesuChat) { return; }

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  var origin = new URL(script.src, location.href);
  var WS_URL = (origin.protocol === "https:" ? "wss://" : "ws://") + origin.host + "/chat/ws";
  var MAX_TEXT = 2000;
  var PHOTO_LIMIT = 2 * 1024 * 1024;
  var KEY = "kesu-chat:" + origin.host + ":";

  var STRINGS = {
    zh: {
      title: "在线投诉", open: "打开在线投诉", close: "关闭聊天窗口", send: "发送", photo: "发送图片",
      placeholder: "请输入消息，Enter 发送，Shift+Enter 换行", input: "输入消息", log: "聊天记录",
      options: "快捷回复", online: "在线", connecting: "正在连接…", offline: "已离线，正在重连…",
      offlineBar: "网络已断开，消息会在恢复连接后自动发送。", pending: "待发送", failed: "未发送",
      you: "我", bot: "投诉助手", agent: "人工客服", system: "系统", launcher: "在线投诉",
      tooLong: "消息太长了（最多2000字），请分几次发送。", photoTooLarge: "图片太大了（最大2MB），请压缩后再发送。",
      photoOffline: "离线时无法发送图片，请在连接恢复后重试。", notImage: "请选择图片文件。", newMessages: "条新消息"
    },
    en: {
      title: "Complaints", open: "Open complaint chat", close: "Close chat", send: "Send", photo: "Send a photo",
      placeholder: "Type a message; Enter sends, Shift+Enter for a new line", input: "Message", log: "Conversation",
      options: "Quick replies", online: "Online", connecting: "Connecting…", offline: "Offline, reconnecting…",
      offlineBar: "You are offline. Messages will be sent when the connection is back.", pending: "Waiting",
      failed: "Not sent", you: "You", bot: "Assistant", agent: "Agent", system: "System", launcher: "Complain",
      tooLong: "The message is too long (2000 characters at most).", photoTooLarge: "The picture is too large (2 MB at most).",
      photoOffline: "Pictures cannot be sent while offline.", notImage: "Please choose a picture.", newMessages: "new"
    }
  };
  var lang = (script.getAttribute("data-lang") || document.documentElement.lang || "zh").toLowerCase();
  var T = STRINGS[lang.indexOf("en") === 0 ? "en" : "zh"];
  var title = script.getAttribute("data-title") || T.title;
  var color = script.getAttribute("data-color");

  // -- storage that may be unavailable (private mode, blocked cookies): fall back to memory --------
  var memory = {};
  function load(name) {
    try { return window.localStorage.getItem(KEY + name); } catch (e) { return memory[name] || null; }
  }
  function save(name, value) {
    try {
      if (value === null) { window.localStorage.removeItem(KEY + name); } else { window.localStorage.setItem(KEY + name, value); }
    } catch (e) { memory[name] = value; }
  }

  // -- DOM -----------------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function svg(path) {
    var ns = "http://www.w3.org/2000/svg";
    var s = document.createElementNS(ns, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    var p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    s.appendChild(p);
    return s;
  }

  var host = el("kesu-chat", { "data-kesu": "chat" });
  host.setAttribute("style", "all: initial !important; display: block !important; position: fixed !important; " +
    "width: 0 !important; height: 0 !important; right: 0 !important; bottom: 0 !important; " +
    "z-index: 2147483000 !important; visibility: visible !important; opacity: 1 !important;");
  var root = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = "__KESU_CSS__";
  root.appendChild(style);
  if (color && window.CSS && CSS.supports("color", color)) { host.style.setProperty("--kesu-accent", color); }

  var panel = el("section", { "class": "panel", role: "dialog", "aria-label": title, id: "kesu-panel" });
  panel.hidden = true;
  var header = el("header");
  var heading = el("div", { "class": "heading" });
  var titleEl = el("h2", { "class": "title" }, title);
  var statusEl = el("div", { "class": "status", role: "status", "data-state": "connecting" }, T.connecting);
  heading.appendChild(titleEl);
  heading.appendChild(statusEl);
  var closeBtn = el("button", { "class": "close", type: "button", "aria-label": T.close }, "×");
  header.appendChild(heading);
  header.appendChild(closeBtn);
  var offlineBar = el("div", { "class": "offline-bar", role: "alert" }, T.offlineBar);
  offlineBar.hidden = true;
  var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
  var options = el("div", { "class": "options", role: "group", "aria-label": T.options });
  var counter = el("div", { "class": "counter", "aria-live": "polite" });
  counter.hidden = true;
  var form = el("form", { "class": "composer" });
  var attach = el("button", { "class": "attach", type: "button", "aria-label": T.photo, title: T.photo });
  attach.appendChild(svg("M21 19V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5l3.5-4.5z"));
  var file = el("input", { type: "file", accept: "image/jpeg,image/png,image/gif,image/webp", tabindex: "-1", "aria-hidden": "true" });
  file.hidden = true;
  var input = el("textarea", { rows: "1", "aria-label": T.input, placeholder: T.placeholder, enterkeyhint: "send" });
  var sendBtn = el("button", { "class": "send", type: "submit" }, T.send);
  [attach, file, input, sendBtn].forEach(function (n) { form.appendChild(n); });
  [header, offlineBar, log, options, counter, form].forEach(function (n) { panel.appendChild(n); });

  var launcher = el("button", { "class": "launcher", type: "button", "aria-label": T.open, "aria-expanded": "false",
    "aria-controls": "kesu-panel" });
  launcher.appendChild(svg("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"));
  launcher.appendChild(el("span", {}, T.launcher));
  var badge = el("span", { "class": "badge" });
  badge.hidden = true;
  launcher.appendChild(badge);
  root.appendChild(panel);
  root.appendChild(launcher);

  // -- conversation state --------------------------------------------------------------------------
  var ws = null, ready = false, attempt = 0, timer = null, opened = false, unread = 0;
  var typing = el("div", { "class": "msg from-bot typing", "aria-hidden": "true" });
  typing.appendChild(el("div", { "class": "bubble" }, "• • •"));
  var shown = {};                                    // message id -> element
  var outbox = [];                                   // [{cid, text}] not yet confirmed by the server
  try { outbox = JSON.parse(load("outbox") || "[]") || []; } catch (e) { outbox = []; }
  function saveOutbox() { save("outbox", outbox.length ? JSON.stringify(outbox) : null); }
  function newCid() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function hhmm(iso) {
    var d = iso ? new Date(iso) : new Date();
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scrollDown(force) { if (force || nearBottom()) { log.scrollTop = log.scrollHeight; } }

  function bubble(from, text, meta) {
    var who = { customer: T.you, bot: T.bot, agent: T.agent, system: T.system }[from] || T.system;
    var node = el("div", { "class": "msg from-" + (who === T.system && from !== "system" ? "system" : from) });
    if (from === "bot" || from === "agent") { node.appendChild(el("div", { "class": "who" }, who)); }
    else { node.appendChild(el("span", { "class": "sr-only" }, who + "：")); }
    node.appendChild(el("div", { "class": "bubble" }, text));      // textContent: never HTML
    node.appendChild(el("div", { "class": "meta" }, meta || ""));
    return node;
  }

  function place(node, seq) {
    node.setAttribute("data-seq", String(seq));
    var after = null;
    var items = log.querySelectorAll(".msg[data-seq]");
    for (var i = items.length - 1; i >= 0; i--) {
      if (Number(items[i].getAttribute("data-seq")) <= seq) { after = items[i]; break; }
    }
    if (after) { after.after(node); } else { log.insertBefore(node, log.firstChild); }
    // pending messages stay last
    log.querySelectorAll(".msg.pending").forEach(function (p) { log.appendChild(p); });
  }

  function showOptions(list) {
    options.textContent = "";
    (list || []).forEach(function (label) {
      var b = el("button", { type: "button" }, label);
      b.addEventListener("click", function () { submit(label); });
      options.appendChild(b);
    });
  }

  function lastIsBot() {
    var items = log.querySelectorAll(".msg[data-seq]");
    var last = items[items.length - 1];
    return last && last.getAttribute("data-options") !== null ? last : null;
  }

  function receive(m, live) {
    if (m.cid) {
      var pend = log.querySelector('.msg.pending[data-cid="' + m.cid.replace(/[^0-9a-zA-Z_-]/g, "") + '"]');
      if (pend) { pend.remove(); }
      outbox = outbox.filter(function (o) { return o.cid !== m.cid; });
      saveOutbox();
    }
    if (shown[m.id]) { return; }
    var node = bubble(m.from, m.text, hhmm(m.at));
    if (m.options && m.options.length) { node.setAttribute("data-options", JSON.stringify(m.options)); }
    node.setAttribute("data-id", String(m.id));
    shown[m.id] = node;
    place(node, m.seq);
    var last = lastIsBot();
    var items = log.querySelectorAll(".msg[data-seq]");
    showOptions(last && last === items[items.length - 1] ? JSON.parse(last.getAttribute("data-options")) : []);
    scrollDown(m.from === "customer");
    if (live && !opened && m.from !== "customer") {
      unread += 1;
      badge.textContent = String(unread);
      badge.hidden = false;
      badge.setAttribute("aria-label", unread + " " + T.newMessages);
    }
  }

  function notice(text) {
    var node = el("div", { "class": "notice msg" });
    node.appendChild(el("div", { "class": "bubble", role: "alert" }, text));
    log.appendChild(node);
    scrollDown(true);
  }

  function showPending(item) {
    var node = bubble("customer", item.text, T.pending);
    node.classList.add("pending");
    node.setAttribute("data-cid", item.cid);
    log.appendChild(node);
    scrollDown(true);
  }

  function failPending(cid, why) {
    outbox = outbox.filter(function (o) { return o.cid !== cid; });
    saveOutbox();
    var node = log.querySelector('.msg.pending[data-cid="' + String(cid).replace(/[^0-9a-zA-Z_-]/g, "") + '"]');
    if (node) {
      node.classList.remove("pending");
      node.classList.add("failed");
      node.querySelector(".meta").textContent = T.failed;
    }
    notice(why);
  }

  function setStatus(state) {
    statusEl.setAttribute("data-state", state);
    statusEl.textContent = T[state];
    offlineBar.hidden = state !== "offline";
  }

  // -- transport -----------------------------------------------------------------------------------
  function frame(obj) {
    if (!ready || !ws || ws.readyState !== 1) { return false; }
    ws.send(JSON.stringify(obj));
    return true;
  }

  function connect() {
    clearTimeout(timer);
    if (ws && (ws.readyState === 0 || ws.readyState === 1)) { return; }
    setStatus(attempt ? "offline" : "connecting");
    try { ws = new WebSocket(WS_URL); } catch (e) { reconnectLater(); return; }
    ws.onopen = function () { ws.send(JSON.stringify({ type: "hello", token: load("token") })); };
    ws.onmessage = function (e) {
      var data;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      handle(data);
    };
    ws.onclose = function () { ready = false; ws = null; setStatus("offline"); reconnectLater(); };
  }

  function reconnectLater() {
    attempt += 1;
    var delay = Math.min(15000, 500 * Math.pow(2, attempt - 1));
    timer = setTimeout(connect, delay / 2 + Math.random() * delay / 2);   // jitter: not all at once
  }

  function handle(data) {
    if (data.type === "welcome") {
      if (data.token) { save("token", data.token); }
      ready = true;
      attempt = 0;
      setStatus("online");
      log.textContent = "";
      shown = {};
      (data.history || []).forEach(function (m) { receive(m, false); });
      outbox.forEach(function (o) { showPending(o); });
      outbox.slice().forEach(function (o) { frame({ type: "message", text: o.text, cid: o.cid }); });
      scrollDown(true);
    } else if (data.type === "message") {
      receive(data, true);
    } else if (data.type === "typing") {
      if (data.on) { log.appendChild(typing); scrollDown(false); } else if (typing.parentNode) { typing.remove(); }
    } else if (data.type === "error") {
      if (data.code === "unknown_session") {
        save("token", null);
        log.textContent = "";
        shown = {};
        if (ws && ws.readyState === 1) { ws.send(JSON.stringify({ type: "hello", token: null })); }
      } else if (data.cid) {
        failPending(data.cid, data.text);
      } else if (data.text) {
        notice(data.text);
      }
    }
  }

  function submit(text) {
    text = String(text || "").trim();
    if (!text) { return; }
    if (text.length > MAX_TEXT) { notice(T.tooLong); return; }
    var item = { cid: newCid(), text: text };
    outbox.push(item);
    saveOutbox();
    showPending(item);
    showOptions([]);
    frame({ type: "message", text: text, cid: item.cid });
    if (!ws) { connect(); }
  }

  function sendPhoto(f) {
    if (!/^image\/(jpeg|png|gif|webp)$/.test(f.type)) { notice(T.notImage); return; }
    if (f.size > PHOTO_LIMIT) { notice(T.photoTooLarge); return; }
    if (!ready) { notice(T.photoOffline); return; }
    var reader = new FileReader();
    reader.onload = function () {
      var data = String(reader.result).split(",")[1] || "";
      var cid = newCid();
      var node = bubble("customer", "[图片] " + f.name, T.pending);
      node.classList.add("pending");
      node.setAttribute("data-cid", cid);
      log.appendChild(node);
      scrollDown(true);
      frame({ type: "photo", cid: cid, name: f.name, mime: f.type, data: data });
    };
    reader.readAsDataURL(f);
  }

  // -- opening, closing, keyboard ------------------------------------------------------------------
  function open() {
    opened = true;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    unread = 0;
    badge.hidden = true;
    save("open", "1");
    connect();
    scrollDown(true);
    setTimeout(function () { input.focus(); }, 0);
  }
  function close() {
    opened = false;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    save("open", null);
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (opened) { close(); } else { open(); } });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); close(); } });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    if (text.trim().length > MAX_TEXT) { notice(T.tooLong); return; }
    input.value = "";
    counter.hidden = true;
    autosize();
    submit(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
  }
  input.addEventListener("input", function () {
    autosize();
    var over = input.value.length > MAX_TEXT;
    counter.hidden = !over;
    counter.textContent = over ? input.value.length + " / " + MAX_TEXT : "";
    sendBtn.disabled = over;
  });
  attach.addEventListener("click", function () { file.click(); });
  file.addEventListener("change", function () { if (file.files[0]) { sendPhoto(file.files[0]); } file.value = ""; });
  window.addEventListener("online", function () { if (!ready) { attempt = 0; connect(); } });

  function mount() {
    document.body.appendChild(host);
    if (load("open") === "1") { open(); } else if (load("token")) { connect(); }
  }
  window.__kesuChat = { open: open, close: close, host: host };
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
