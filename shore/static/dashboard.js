/* Seabridge shore dashboard: live updates over server-sent events, alarm banner and sound,
   hotline composer. No framework, no external assets. All text is inserted as text, never as HTML. */
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.dataset.csrf || "";
  var page = body.dataset.page || "";
  if (!body.dataset.role) { return; }  // login page

  // --- helpers ---------------------------------------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text != null) { e.appendChild(document.createTextNode(String(text))); }
    return e;
  }
  function utc(t) {
    if (t == null) { return "—"; }
    return new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }
  function ago(t) {
    var s = Math.max(0, Math.round(Date.now() / 1000 - t));
    if (s < 90) { return s + " s ago"; }
    if (s < 5400) { return Math.floor(s / 60) + " min ago"; }
    if (s < 172800) { return (s / 3600).toFixed(1) + " h ago"; }
    return Math.round(s / 86400) + " d ago";
  }
  function tickAges() {
    var nodes = document.querySelectorAll(".age[data-ts]");
    for (var i = 0; i < nodes.length; i++) {
      var ts = parseFloat(nodes[i].dataset.ts);
      nodes[i].textContent = isNaN(ts) ? "never" : ago(ts);
    }
  }
  function post(url, fields) {
    var form = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { form.append(k, fields[k]); });
    form.append("csrf", csrf);
    return fetch(url, {
      method: "POST", body: form, credentials: "same-origin",
      headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}
    });
  }
  function throttle(fn, ms) {
    var timer = null, again = false;
    return function () {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(function () { timer = null; if (again) { again = false; fn(); } }, ms);
    };
  }
  function refresh(id, url) {
    return throttle(function () {
      fetch(url, {credentials: "same-origin"}).then(function (r) {
        if (r.ok) { return r.text(); }
        throw new Error("HTTP " + r.status);
      }).then(function (html) {
        var box = document.getElementById(id);
        if (box) { box.innerHTML = html; tickAges(); }  // server-rendered and escaped
      }).catch(function () {});
    }, 2000);
  }

  // --- alarm: banner and sound ------------------------------------------------------------------
  var alerts = {};
  var muted = false;
  var audio = null, beepTimer = null;
  var banner = document.getElementById("alarm");
  var list = document.getElementById("alarm-list");
  var soundButton = document.getElementById("sound-toggle");

  function beep() {
    try {
      if (!audio) { audio = new (window.AudioContext || window.webkitAudioContext)(); }
      if (audio.state === "suspended") { audio.resume(); }
      [0, 0.35].forEach(function (offset) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.type = "square";
        osc.frequency.value = offset ? 660 : 880;
        gain.gain.setValueAtTime(0.0001, audio.currentTime + offset);
        gain.gain.exponentialRampToValueAtTime(0.25, audio.currentTime + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + offset + 0.3);
        osc.connect(gain); gain.connect(audio.destination);
        osc.start(audio.currentTime + offset); osc.stop(audio.currentTime + offset + 0.32);
      });
      body.dataset.alarmSound = audio.state === "running" ? "playing" : "blocked";
    } catch (err) {
      body.dataset.alarmSound = "unavailable";
    }
  }
  function updateSound() {
    var any = Object.keys(alerts).length > 0;
    if (any && !muted) {
      if (!beepTimer) { beep(); beepTimer = setInterval(beep, 2000); }
    } else {
      if (beepTimer) { clearInterval(beepTimer); beepTimer = null; }
      body.dataset.alarmSound = muted ? "muted" : "off";
    }
    if (soundButton) { soundButton.textContent = muted ? "Sound off" : "Sound on"; }
  }
  if (soundButton) {
    soundButton.addEventListener("click", function () { muted = !muted; updateSound(); });
  }
  document.addEventListener("click", function () {
    if (audio && audio.state === "suspended") { audio.resume(); }
  });

  function actButton(label, cls, url, a, k) {
    var b = el("button", "small " + cls, label);
    b.type = "button";
    b.addEventListener("click", function () {
      b.disabled = true;
      post(url, {kind: a.kind, ref: a.ref}).then(function (r) {
        if (r.ok) { delete alerts[k]; renderAlarm(); } else { b.disabled = false; }
      });
    });
    return b;
  }
  function alarmItem(k) {
    var a = alerts[k];
    var li = el("li", "alarm-item " + a.kind);
    li.dataset.key = k;
    li.dataset.ref = a.ref;
    var what = a.kind === "sos"
      ? "SOS from " + a.vessel + (a.note ? " — “" + a.note + "”" : "") +
        (a.latitude != null ? " at " + Number(a.latitude).toFixed(4) + ", " + Number(a.longitude).toFixed(4) : "")
      : "Crew member " + (a.handle || ("#" + a.member)) + " on " + a.vessel + " may be in danger";
    li.appendChild(el("b", null, what));
    if (a.false_alarm) {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "false-alarm-note", "FALSE ALARM (marked by " + a.false_alarm + ")"));
    }
    var devices = a.devices || 1;
    li.appendChild(document.createTextNode(" · raised " + utc(a.raised != null ? a.raised : a.at) + " (" ));
    var age = el("span", "age", ago(a.raised != null ? a.raised : a.at));
    age.dataset.ts = a.raised != null ? a.raised : a.at;
    li.appendChild(age);
    li.appendChild(document.createTextNode(") · " + devices + (devices === 1 ? " device" : " devices") +
      " confirmed · ref " + a.ref + " "));
    if (a.kind === "safety") {
      var open = el("a", "button small", "Open conversation");
      open.href = "/hotline?c=" + encodeURIComponent(a.vessel_slug + ":" + a.member);
      li.appendChild(open);
      li.appendChild(document.createTextNode(" "));
    }
    if (a.can_ack !== false) {
      li.appendChild(actButton("Acknowledge", "ack", "/alerts/ack", a, k));
      if (a.kind === "sos" && !a.false_alarm) {
        li.appendChild(document.createTextNode(" "));
        li.appendChild(actButton("Mark false alarm", "false-alarm", "/alerts/false-alarm", a, k));
      }
    }
    return li;
  }
  function renderAlarm() {
    if (!banner) { return; }
    var keys = Object.keys(alerts);
    [["sos", "alarm-sos", list], ["safety", "alarm-safety", document.getElementById("alarm-safety-list")]]
      .forEach(function (part) {
        var mine = keys.filter(function (k) { return alerts[k].kind === part[0]; });
        part[2].textContent = "";
        mine.forEach(function (k) { part[2].appendChild(alarmItem(k)); });
        document.getElementById(part[1]).hidden = mine.length === 0;
      });
    banner.hidden = keys.length === 0;
    updateSound();
  }
  function addAlert(a) {
    alerts[a.kind + ":" + a.ref] = a;
    renderAlarm();
  }
  fetch("/alerts", {credentials: "same-origin"}).then(function (r) { return r.ok ? r.json() : []; })
    .then(function (found) {
      var role = body.dataset.role;
      found.forEach(function (a) { a.can_ack = role !== "viewer"; addAlert(a); });
    }).catch(function () {});

  // --- page refreshers --------------------------------------------------------------------------
  var refreshFleet = refresh("fleet-panel", "/fleet/panel");
  var refreshCatch = refresh("catch-panel", "/catch/panel");
  var thread = document.getElementById("thread");
  var currentKey = thread ? thread.dataset.key : "";
  var refreshConvs = refresh("conv-list", "/hotline/list?c=" + encodeURIComponent(currentKey));

  function appendMessage(m, direction) {
    if (!thread) { return; }
    var d = el("div", "msg " + direction + (m.safety ? " safety" : ""));
    d.dataset.msgId = m.msg_id;
    if (m.id) { d.dataset.id = m.id; }
    d.appendChild(el("div", "text", m.text));
    var meta = el("div", "meta");
    if (direction === "in") {
      meta.appendChild(document.createTextNode(m.handle + " → " + m.to +
        (m.sent_at ? " · written " + utc(m.sent_at) : "") + " · received " + utc(m.at)));
    } else {
      meta.appendChild(document.createTextNode(m.sender + " · " + utc(m.at) + " · " + m.size + " · "));
      var receipt = el("span", "receipt", m.state);
      receipt.dataset.state = m.state;
      meta.appendChild(receipt);
    }
    d.appendChild(meta);
    thread.appendChild(d);
    thread.scrollTop = thread.scrollHeight;
    followReceipts();
  }

  // Receipts of the desk's replies: relay queue → satellite → delivered (with the time it reached the
  // vessel). Asked again every few seconds while a reply in the open thread is not delivered yet.
  var receiptTimer = null;
  function updateReceipts() {
    if (!thread) { return; }
    var url = "/hotline/receipts?vessel=" + encodeURIComponent(thread.dataset.vessel) +
      "&member=" + encodeURIComponent(thread.dataset.member);
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (list) {
      if (!list || !list.forEach) { return; }
      list.forEach(function (m) {
        var nodes = thread.querySelectorAll(".msg.out");
        for (var i = 0; i < nodes.length; i++) {
          var r = nodes[i].dataset.msgId === m.msg_id ? nodes[i].querySelector(".receipt") : null;
          if (!r || r.dataset.state === m.state) { continue; }
          r.dataset.state = m.state;
          r.textContent = (m.state === "delivered" ? "✓ delivered" : m.state) +
            (m.sent ? " · sent via satellite " + utc(m.sent) : "") +
            (m.state === "delivered" ? " · acknowledged " + utc(m.acked) : "");
          r.className = "receipt" + (m.state === "delivered" ? " ok" : "");
        }
      });
      followReceipts();
    }).catch(function () {});
  }
  function followReceipts() {
    clearTimeout(receiptTimer);
    if (thread && thread.querySelector(".receipt:not(.ok)")) { receiptTimer = setTimeout(updateReceipts, 3000); }
  }
  followReceipts();

  // --- live stream ------------------------------------------------------------------------------
  var live = document.getElementById("live");
  var last = body.dataset.last || "0";
  function connect() {
    if (!window.EventSource) { return; }
    var es = new EventSource("/events?after=" + encodeURIComponent(last) + "&page=" + encodeURIComponent(page));
    es.onopen = function () { if (live) { live.className = "live on"; } body.dataset.live = "on"; };
    es.onerror = function () { if (live) { live.className = "live off"; } body.dataset.live = "off"; };
    es.addEventListener("logout", function () { es.close(); window.location = "/login"; });
    es.onmessage = function (ev) {
      if (ev.lastEventId) { last = ev.lastEventId; }
      var m;
      try { m = JSON.parse(ev.data); } catch (err) { return; }
      if (m.type === "alert") {
        addAlert(m);
        if (page === "fleet") { refreshFleet(); }
      } else if (m.type === "cleared") {
        delete alerts[m.kind + ":" + m.ref]; renderAlarm();
        if (page === "fleet") { refreshFleet(); }
      } else if (m.type === "vessel") {
        if (page === "fleet") { refreshFleet(); }
      } else if (m.type === "catch") {
        if (page === "catch") { refreshCatch(); }
      } else if (m.type === "crew") {
        if (page === "hotline") {
          if (thread && m.key === currentKey) {
            appendMessage(m, "in");
            post("/hotline/read", {key: currentKey, last_id: m.id});
          }
          refreshConvs();
        }
        var total = document.getElementById("unread-total");
        if (total && !(thread && m.key === currentKey)) {
          total.hidden = false;
          total.textContent = String((parseInt(total.textContent, 10) || 0) + 1);
        }
      } else if (m.type === "delivery") {
        updateReceipts();
      }
    };
  }
  connect();

  // --- hotline composer -------------------------------------------------------------------------
  var composer = document.getElementById("composer");
  if (composer) {
    var text = document.getElementById("reply-text");
    var est = document.getElementById("estimate");
    var timer = null, seq = 0;
    var estimate = function () {
      var mine = ++seq;
      var value = text.value;
      var url = "/hotline/estimate?vessel=" + encodeURIComponent(thread.dataset.vessel) +
        "&member=" + encodeURIComponent(thread.dataset.member) + "&text=" + encodeURIComponent(value);
      fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (e) {
        if (mine !== seq || e.error) { return; }
        est.textContent = e.label;
        est.dataset.frameBytes = e.frame_bytes;
        est.className = "estimate" + (e.ok || !e.chars ? "" : " over");
      }).catch(function () {});
    };
    text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(estimate, 150); });
    var saved = document.querySelectorAll(".saved-reply");
    for (var i = 0; i < saved.length; i++) {
      saved[i].addEventListener("click", function (ev) {
        text.value = ev.currentTarget.dataset.text; text.focus(); estimate();
      });
    }
    composer.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var value = text.value.trim();
      if (!value) { return; }
      var button = document.getElementById("send-reply");
      button.disabled = true;
      post("/hotline/reply", {vessel: thread.dataset.vessel, member: thread.dataset.member, text: value})
        .then(function (r) { return r.json(); })
        .then(function (m) {
          button.disabled = false;
          if (m.error) { est.textContent = m.error; est.className = "estimate over"; return; }
          appendMessage(m, "out");
          text.value = ""; estimate();
        }).catch(function () { button.disabled = false; });
    });
    if (thread) { thread.scrollTop = thread.scrollHeight; }
  }

  tickAges();
  setInterval(tickAges, 1000);
})();
