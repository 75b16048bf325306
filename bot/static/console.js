// Staff console: live updates from server-sent events, an alert for new requests, and the
// preview of a canned reply in the person's language. Everything shown comes from the server,
// already escaped; nothing here builds HTML from a person's text.
(function () {
  "use strict";
  var queue = document.getElementById("queue");
  var transcript = document.getElementById("transcript");
  var alertBox = document.getElementById("alert");
  var title = document.title;

  function refresh(container) {
    if (!container) return Promise.resolve();
    return fetch(container.dataset.live, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/console/login"); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          // server-rendered, autoescaped fragment of the same page
          container.innerHTML = html;
          container.dispatchEvent(new CustomEvent("refreshed"));
        }
      })
      .catch(function () { /* the next event or the periodic refresh retries */ });
  }

  function beep() {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      var audio = new Context();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.15;
      tone.connect(gain); gain.connect(audio.destination);
      tone.start(); tone.stop(audio.currentTime + 0.35);
    } catch (error) { /* sound may be blocked until the first click */ }
  }

  function raise(text) {
    if (!alertBox) return;
    alertBox.textContent = text;
    alertBox.hidden = false;
    document.title = "(!) " + title;
    beep();
  }

  if (alertBox) {
    alertBox.addEventListener("click", function () { alertBox.hidden = true; document.title = title; });
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) document.title = title;
  });

  if (queue || transcript) {
    var source = new EventSource("/console/events");
    source.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (error) { return; }
      if (data.type === "request" || data.type === "alert") {
        raise(document.body.dataset.alertText + " (n° " + data.handoff + ")");
      } else if (data.type === "message" && !(transcript && String(data.handoff) === transcript.dataset.handoff)) {
        // she wrote in a conversation this page does not show
        raise(document.body.dataset.messageText + " (n° " + data.handoff + ")");
      }
      if (queue) refresh(queue);
      if (transcript && String(data.handoff) === transcript.dataset.handoff) refresh(transcript);
    };
    // after a reconnection, and every 30 s, whatever an event lost in between is shown
    source.onopen = function () { refresh(queue); refresh(transcript); };
    window.setInterval(function () { refresh(queue); refresh(transcript); }, 30000);
  }

  var canned = document.getElementById("canned");
  var preview = document.getElementById("canned-preview");
  var draft = document.getElementById("canned-draft");
  var typed = document.getElementById("reply-text");
  if (canned && typed) {
    // one or the other: choosing a canned reply empties the typed text, typing clears the choice
    typed.addEventListener("input", function () {
      if (typed.value && canned.value) { canned.value = ""; canned.dispatchEvent(new Event("change")); }
    });
  }
  if (canned && preview) {
    canned.addEventListener("change", function () {
      if (canned.value && typed) typed.value = "";
      var option = canned.options[canned.selectedIndex];
      var text = option ? option.dataset.text : "";
      preview.textContent = text || "";
      preview.hidden = !text;
      if (draft) draft.hidden = !text || option.dataset.reviewed === "yes";
    });
  }

  var closeForm = document.querySelector("form.close");
  if (closeForm) {
    closeForm.addEventListener("submit", function (event) {
      if (!window.confirm("Clôturer cette conversation ?")) event.preventDefault();
    });
  }
})();
