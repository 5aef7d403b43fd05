// The simulator's phones. Every press becomes the form Twilio would post, sent
// through /api/simulator/webhook, which signs it and hands it to the real
// webhook handlers. What the service sends back is read from the simulated
// provider's deliveries. All text is shown with textContent: nothing is markup.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let hotline = "";
  let residents = [];
  let volunteers = [];
  const volunteerByPhone = new Map();
  const residentByPhone = new Map();
  let lastDelivery = 0;
  let call = null; // {sid, from, to, direction, pending, rest, started}

  async function api(path, options) {
    const res = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
    if (res.status === 401) { location.href = "/console/login"; throw new Error("log in first"); }
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  }

  async function webhook(path, params) {
    const answer = await api("/api/simulator/webhook", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path, params: Object.entries(params) }),
    });
    if (answer.status !== 200) throw new Error(`the webhook ${path} answered ${answer.status}: ${answer.body}`);
    return answer.body;
  }

  function randomSid(prefix) {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ---- the resident's call ------------------------------------------------

  function screenLine(text, cls) {
    const p = document.createElement("p");
    p.className = cls || "prompt";
    p.textContent = text;
    $("screen").appendChild(p);
    $("screen").scrollTop = $("screen").scrollHeight;
  }

  function speak(text, lang) {
    if (!$("voice").checked || !("speechSynthesis" in window)) return;
    const u = new SpeechSynthesisUtterance(text);
    if (lang) u.lang = lang;
    u.rate = 0.9;
    window.speechSynthesis.speak(u);
  }

  function setStatus(text) { $("call-status").textContent = text; }

  function setControls() {
    const pending = call && call.pending;
    $("call").disabled = !!call;
    $("hangup").disabled = !call;
    $("say").disabled = !(pending && pending.kind === "gather");
    $("wait").disabled = !(pending && pending.kind === "gather");
    $("record-stop").disabled = !(pending && pending.kind === "record");
    $("dial-row").hidden = !(pending && pending.kind === "dial");
  }

  function callParams(extra) {
    return Object.assign({
      AccountSid: "ACsimulator",
      CallSid: call.sid,
      From: call.from,
      To: call.to,
      Direction: call.direction,
      CallStatus: "in-progress",
      ApiVersion: "2010-04-01",
    }, extra || {});
  }

  function sayText(node) {
    // <Say> may wrap its words in <prosody> for a slower voice.
    return node.textContent.trim();
  }

  // Plays TwiML verbs in order until one waits for the caller.
  async function play(twiml) {
    const doc = new DOMParser().parseFromString(twiml, "text/xml");
    if (doc.getElementsByTagName("parsererror").length) {
      screenLine("⚠ The service answered something that is not TwiML.", "error");
      return endCall("error");
    }
    const verbs = Array.from(doc.documentElement.children);
    return run(verbs);
  }

  async function run(verbs) {
    for (let i = 0; i < verbs.length; i++) {
      const v = verbs[i];
      switch (v.nodeName) {
        case "Say": {
          const text = sayText(v);
          screenLine("🔊 " + text);
          speak(text, v.getAttribute("language"));
          break;
        }
        case "Play":
          screenLine("🔊 [" + v.textContent.trim() + "]");
          break;
        case "Pause":
          break;
        case "Gather": {
          for (const s of Array.from(v.children)) {
            if (s.nodeName === "Say") { const t = sayText(s); screenLine("🔊 " + t); speak(t, s.getAttribute("language")); }
            if (s.nodeName === "Play") screenLine("🔊 [" + s.textContent.trim() + "]");
          }
          call.pending = { kind: "gather", action: v.getAttribute("action") };
          call.rest = verbs.slice(i + 1);
          setStatus("等待按键或说话 · Waiting for a key or words");
          return setControls();
        }
        case "Record":
          screenLine("⏺ 请在提示音后说话 · Speak after the tone (type your words above, then Finish recording)", "hint");
          call.pending = { kind: "record", action: v.getAttribute("action"), transcribe: v.getAttribute("transcribeCallback") };
          call.rest = verbs.slice(i + 1);
          setStatus("录音中 · Recording");
          return setControls();
        case "Dial":
          screenLine("☎ 正在转接 " + v.textContent.trim() + " · Transferring", "hint");
          call.pending = { kind: "dial", action: v.getAttribute("action"), number: v.textContent.trim() };
          call.rest = verbs.slice(i + 1);
          setStatus("转接中 · Ringing " + v.textContent.trim());
          return setControls();
        case "Redirect": {
          const next = await webhook(v.textContent.trim(), callParams());
          return play(next);
        }
        case "Hangup":
          return endCall("completed");
        default:
          break;
      }
    }
    // Out of verbs: Twilio hangs up.
    return endCall("completed");
  }

  async function answer(extra) {
    const pending = call.pending;
    call.pending = null;
    setControls();
    try {
      await play(await webhook(pending.action, callParams(extra)));
    } catch (e) {
      screenLine("⚠ " + e.message, "error");
    }
  }

  async function startCall(from, to, direction, firstPath) {
    $("screen").textContent = "";
    call = { sid: randomSid("CA"), from, to, direction, pending: null, rest: [], started: Date.now() };
    setControls();
    setStatus(direction === "inbound" ? "呼叫 580 · Calling 580" : "来电 · Incoming call answered");
    try {
      await play(await webhook(firstPath, callParams({ CallStatus: "ringing" })));
    } catch (e) {
      screenLine("⚠ " + e.message, "error");
    }
  }

  async function endCall(status) {
    if (!call) return;
    const ended = call;
    call = null;
    setControls();
    setStatus("通话结束 · Call ended");
    screenLine("— 通话结束 Call ended —", "hint");
    try {
      await webhook("/twilio/status", {
        AccountSid: "ACsimulator",
        CallSid: ended.sid,
        From: ended.from,
        To: ended.to,
        Direction: ended.direction,
        CallStatus: status === "error" ? "failed" : "completed",
        CallDuration: String(Math.round((Date.now() - ended.started) / 1000)),
      });
    } catch (e) {
      screenLine("⚠ " + e.message, "error");
    }
  }

  function selectedResident() {
    return residents.find((r) => String(r.id) === $("resident").value);
  }

  function bindCallButtons() {
    $("call").addEventListener("click", () => {
      const r = selectedResident();
      if (r) startCall(r.phone, hotline, "inbound", "/twilio/voice");
    });
    $("hangup").addEventListener("click", () => endCall("completed"));
    $("keypad").addEventListener("click", (ev) => {
      const key = ev.target.getAttribute && ev.target.getAttribute("data-key");
      if (!key || !call || !call.pending) return;
      if (call.pending.kind === "gather") {
        screenLine("⌨ " + key, "input");
        answer({ Digits: key });
      } else if (call.pending.kind === "record" && key === "#") {
        finishRecording();
      }
    });
    $("say").addEventListener("click", () => {
      const text = $("speech").value.trim();
      if (!text || !call || !call.pending || call.pending.kind !== "gather") return;
      screenLine("🗣 " + text, "input");
      $("speech").value = "";
      answer({ SpeechResult: text, Confidence: "0.92" });
    });
    $("wait").addEventListener("click", async () => {
      // No key and no words: Twilio goes on with what follows the <Gather>.
      if (!call || !call.pending) return;
      screenLine("… (沉默 silence)", "input");
      const rest = call.rest;
      call.pending = null;
      setControls();
      await run(rest);
    });
    $("record-stop").addEventListener("click", finishRecording);
    $("dial-answered").addEventListener("click", () => answerDial("completed"));
    $("dial-missed").addEventListener("click", () => answerDial("no-answer"));
  }

  async function answerDial(status) {
    if (!call || !call.pending || call.pending.kind !== "dial") return;
    screenLine(status === "completed" ? "☎ 接线员接听了 The operator answered" : "☎ 无人接听 No answer", "input");
    if (status === "completed") {
      // The operator talks with the caller; the call ends when they hang up.
      call.pending = null;
      setControls();
      setStatus("与接线员通话中 · Talking with the operator");
      return;
    }
    await answer({ DialCallStatus: status, DialCallDuration: "0" });
  }

  async function finishRecording() {
    if (!call || !call.pending || call.pending.kind !== "record") return;
    const words = $("speech").value.trim();
    $("speech").value = "";
    const pending = call.pending;
    const sid = call.sid;
    const recording = "https://simulated.invalid/recordings/" + randomSid("RE");
    screenLine("⏹ " + (words ? "“" + words + "”" : "(录音 recording)"), "input");
    await answer({ RecordingUrl: recording, RecordingDuration: "7", Digits: "#" });
    if (pending.transcribe && words) {
      await webhook(pending.transcribe, {
        AccountSid: "ACsimulator",
        CallSid: sid,
        RecordingUrl: recording,
        TranscriptionStatus: "completed",
        TranscriptionText: words,
      }).catch((e) => screenLine("⚠ " + e.message, "error"));
    }
  }

  // ---- text messages -------------------------------------------------------

  function bubble(thread, text, mine) {
    const b = document.createElement("div");
    b.className = mine ? "bubble mine" : "bubble";
    b.textContent = text;
    thread.appendChild(b);
    thread.scrollTop = thread.scrollHeight;
  }

  async function sendSms(from, body, thread) {
    bubble(thread, body, true);
    try {
      const twiml = await webhook("/twilio/sms", {
        AccountSid: "ACsimulator",
        MessageSid: randomSid("SM"),
        From: from,
        To: hotline,
        Body: body,
        NumMedia: "0",
      });
      // A reply in the webhook's own answer is an SMS back at once.
      const doc = new DOMParser().parseFromString(twiml, "text/xml");
      for (const m of Array.from(doc.getElementsByTagName("Message"))) bubble(thread, m.textContent, false);
    } catch (e) {
      bubble(thread, "⚠ " + e.message, false);
    }
  }

  function volunteerPhone(v) {
    const id = "phone-" + v.id;
    let card = document.getElementById(id);
    if (card) return card;
    card = document.createElement("div");
    card.className = "phone";
    card.id = id;
    card.setAttribute("data-phone", v.phone);
    const head = document.createElement("div");
    head.className = "phone-head";
    head.textContent = v.name + " · " + v.phone;
    const thread = document.createElement("div");
    thread.className = "thread";
    const buttons = document.createElement("div");
    buttons.className = "row";
    for (const word of ["YES", "NO", "DONE", "是", "完成"]) {
      const b = document.createElement("button");
      b.textContent = word;
      b.setAttribute("data-reply", word);
      b.addEventListener("click", () => sendSms(v.phone, word, thread));
      buttons.appendChild(b);
    }
    const free = document.createElement("div");
    free.className = "row";
    const input = document.createElement("input");
    input.type = "text";
    input.placeholder = "任何短信 · Any text";
    const send = document.createElement("button");
    send.textContent = "发送 Send";
    send.addEventListener("click", () => {
      if (input.value.trim()) { sendSms(v.phone, input.value.trim(), thread); input.value = ""; }
    });
    free.append(input, send);
    card.append(head, thread, buttons, free);
    $("phones").prepend(card);
    return card;
  }

  function deliver(d) {
    const v = volunteerByPhone.get(d.to_phone);
    if (v) {
      const card = volunteerPhone(v);
      const thread = card.querySelector(".thread");
      if (d.kind === "sms") bubble(thread, d.body, false);
      else bubble(thread, "☎ 来电 Incoming call", false);
      card.classList.add("ringing");
      setTimeout(() => card.classList.remove("ringing"), 1500);
      return;
    }
    const r = residentByPhone.get(d.to_phone);
    if (!r) return;
    if (d.kind === "sms") {
      if (selectedResident() && selectedResident().phone === d.to_phone) bubble($("resident-thread"), d.body, false);
      return;
    }
    // An outbound call (a rating survey, a message read aloud): ring the resident.
    if (!call) {
      $("resident").value = String(r.id);
      $("resident-thread").textContent = "";
      startCall(d.from_phone, d.to_phone, "outbound-api", new URL(d.body, location.origin).pathname + new URL(d.body, location.origin).search);
    }
  }

  async function poll() {
    try {
      const list = await api("/api/simulator/deliveries?after=" + lastDelivery);
      for (const d of list) {
        lastDelivery = Math.max(lastDelivery, d.id);
        deliver(d);
      }
    } catch (e) {
      console.warn(e);
    }
  }

  // ---- the map ---------------------------------------------------------------

  let mapSelected = null;
  let followNewest = true; // until the user picks a request on the map
  async function refreshMap() {
    try {
      const [vols, reqs] = await Promise.all([api("/api/volunteers"), api("/api/requests?limit=200")]);
      volunteers = vols;
      const open = reqs.filter((r) => ["new", "offering", "assigned", "escalated"].includes(r.status));
      if (followNewest && open.length) mapSelected = open[0].id;
      let offers = [];
      if (mapSelected != null) {
        const one = await api("/api/requests/" + mapSelected).catch(() => null);
        offers = one ? one.offers : [];
      }
      window.Hotline580Map.draw($("map"), {
        volunteers: vols, requests: reqs, offers, selected: mapSelected,
        onSelect: (id) => { followNewest = false; mapSelected = id; refreshMap(); },
      });
    } catch (e) {
      console.warn(e);
    }
  }

  async function init() {
    const people = await api("/api/simulator/residents");
    hotline = people.hotline;
    residents = people.residents;
    for (const r of residents) residentByPhone.set(r.phone, r);
    const select = $("resident");
    for (const r of residents) {
      const o = document.createElement("option");
      o.value = String(r.id);
      o.textContent = `${r.name} · ${r.phone} · ${r.grid || ""}`;
      select.appendChild(o);
    }
    select.addEventListener("change", () => { $("resident-thread").textContent = ""; });
    volunteers = await api("/api/volunteers");
    for (const v of volunteers) volunteerByPhone.set(v.phone, v);
    // Only what arrives from now on.
    const old = await api("/api/simulator/deliveries?after=0");
    while (old.length) {
      lastDelivery = old[old.length - 1].id;
      const more = await api("/api/simulator/deliveries?after=" + lastDelivery);
      if (!more.length) break;
      old.splice(0, old.length, ...more);
    }
    bindCallButtons();
    $("resident-send").addEventListener("click", () => {
      const r = selectedResident();
      const text = $("resident-text").value.trim();
      if (r && text) { sendSms(r.phone, text, $("resident-thread")); $("resident-text").value = ""; }
    });
    setControls();
    setInterval(poll, 1000);
    refreshMap();
    setInterval(refreshMap, 3000);
    document.body.setAttribute("data-ready", "true");
  }

  document.addEventListener("DOMContentLoaded", () => {
    init().catch((e) => screenLine("⚠ " + e.message, "error"));
  });
})();
