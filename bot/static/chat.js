// Web chat client: plain DOM, text only (never innerHTML), session kept for this tab only.
(function () {
  "use strict";
  var body = document.body;
  var labels = { user: body.dataset.you, bot: body.dataset.bot, staff: body.dataset.staff };
  var log = document.getElementById("log");
  var form = document.getElementById("form");
  var input = document.getElementById("text");
  var status = document.getElementById("status");
  var lastId = 0;
  var session = sessionStorage.getItem("chat-session");
  var seen = {};

  function quickExit() {
    try { sessionStorage.clear(); } catch (e) { /* ignore */ }
    log.textContent = "";
    window.location.replace(body.dataset.exitUrl);
  }
  document.getElementById("exit").addEventListener("click", quickExit);
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") { quickExit(); } });

  function show(message) {
    if (seen[message.id]) { return; }
    seen[message.id] = true;
    var item = document.createElement("li");
    item.className = message.author;
    item.dir = "auto";
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = labels[message.author] || "";
    var text = document.createElement("span");
    text.dir = "auto";  // Arabic in a French page, Latin in an Arabic page: each reads right
    text.textContent = message.text;
    item.appendChild(who);
    item.appendChild(text);
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
    if (message.id > lastId) { lastId = message.id; }
  }

  function request(method, url, data, headers) {
    var options = { method: method, headers: headers || {}, credentials: "same-origin", cache: "no-store" };
    if (data !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data);
    }
    return fetch(url, options);
  }

  function ensureSession() {
    if (session) { return Promise.resolve(session); }
    return request("POST", "/webchat/sessions").then(function (response) {
      if (!response.ok) { throw new Error("session"); }
      return response.json();
    }).then(function (data) {
      session = data.session;
      sessionStorage.setItem("chat-session", session);
      return session;
    });
  }

  function poll() {
    if (!session) { return; }
    request("GET", "/webchat/sessions/" + session + "/messages?after=" + lastId + "&wait=25")
      .then(function (response) {
        if (response.status === 404) {
          // erased at her request (or no longer kept): nothing of it stays on the page
          session = null; sessionStorage.removeItem("chat-session");
          while (log.firstChild) { log.removeChild(log.firstChild); }
          lastId = 0;
          status.textContent = body.dataset.erased;
          throw new Error("gone");
        }
        return response.json();
      })
      .then(function (data) { data.messages.forEach(show); status.textContent = ""; setTimeout(poll, 50); })
      .catch(function () { setTimeout(poll, 3000); });
  }

  function randomKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function send(text, key, attempt) {
    ensureSession().then(function (token) {
      var first = !pollStarted;
      pollStarted = true;
      return request("POST", "/webchat/sessions/" + token + "/messages", { text: text }, { "Idempotency-Key": key })
        .then(function (response) {
          if (response.status === 404) { session = null; sessionStorage.removeItem("chat-session"); throw new Error("gone"); }
          if (response.status >= 500) { throw new Error("server"); }
          if (response.status === 429) { status.textContent = body.dataset.flood; return; }
          if (!response.ok) { status.textContent = body.dataset.rejected; return; }
          if (first) { poll(); }
        });
    }).catch(function () {
      status.textContent = body.dataset.failed;
      if (attempt < 5) { setTimeout(function () { send(text, key, attempt + 1); }, 2000 * (attempt + 1)); }
    });
  }

  var pollStarted = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send(text, randomKey(), 0);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  if (session) { pollStarted = true; poll(); }
})();
