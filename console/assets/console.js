// hotline580 console: live updates over /api/events, the red-request alert,
// and actions through the JSON API. Plain JavaScript, no build step.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;

  // ---- sound: browsers allow audio only after a click ----
  let audio = null;
  const soundButton = document.getElementById("sound");
  if (soundButton) {
    if (sessionStorage.getItem("hotline580-sound") === "on") {
      soundButton.classList.add("armed");
    }
    soundButton.addEventListener("click", function () {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume();
      sessionStorage.setItem("hotline580-sound", "on");
      soundButton.textContent = "🔔 " + soundButton.dataset.on;
      soundButton.classList.add("on");
      beep();
    });
    // A page loaded after sound was turned on may start it at the first click anywhere.
    document.addEventListener("click", function () {
      if (!audio && sessionStorage.getItem("hotline580-sound") === "on") {
        audio = new (window.AudioContext || window.webkitAudioContext)();
        soundButton.textContent = "🔔 " + soundButton.dataset.on;
        soundButton.classList.add("on");
      }
    }, { once: true });
  }

  function beep() {
    if (!audio) return;
    const now = audio.currentTime;
    [0, 0.35, 0.7].forEach(function (offset) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.3);
    });
  }

  // ---- the alert banner ----
  const alertBox = document.getElementById("alert");
  // `red`: a new red request; otherwise an `alert` event (an escalation, an emergency).
  function raiseAlert(requestId, red) {
    if (!alertBox) return;
    const title = document.getElementById(red ? "alert-title" : "attention-title").textContent;
    document.getElementById("alert-text").textContent = title + (requestId ? " #" + requestId : "");
    const link = document.getElementById("alert-open");
    link.href = requestId ? "/console/requests/" + requestId : "/console";
    alertBox.hidden = false;
    body.classList.add("alerting");
    beep();
  }
  if (alertBox) {
    document.getElementById("alert-dismiss").addEventListener("click", function () {
      alertBox.hidden = true;
      body.classList.remove("alerting");
    });
  }

  // ---- live updates ----
  function redIds() {
    return new Set(Array.from(document.querySelectorAll('.card[data-grade="red"]'))
      .filter(function (c) { return c.dataset.status !== "done"; })
      .map(function (c) { return c.dataset.requestId; }));
  }
  let knownRed = redIds();

  let refreshTimer = null;
  function refreshSoon(delay) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, delay === undefined ? 200 : delay);
  }

  // Fetches this page again and swaps its live part: the server renders (and
  // escapes) everything; nothing here builds HTML from data.
  function refresh() {
    const id = page === "board" ? "board-live" : page === "request" ? "request-live" : null;
    if (!id) return;
    if (page === "request" && document.activeElement && ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName)
        && document.activeElement.value) {
      refreshSoon(3000); // the operator is typing: later
      return;
    }
    fetch(location.pathname, { credentials: "same-origin" }).then(function (r) {
      if (r.redirected && r.url.indexOf("/console/login") >= 0) { location.href = "/console/login"; return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      const doc = new DOMParser().parseFromString(html, "text/html");
      const fresh = doc.getElementById(id);
      const old = document.getElementById(id);
      if (!fresh || !old) return;
      const flash = document.getElementById("flash");
      const keepFlash = flash && !flash.hidden ? flash.textContent : null;
      old.replaceWith(fresh);
      if (keepFlash) showFlash(keepFlash, false);
      bindActions();
      if (page === "board") drawMap();
      if (page === "board") {
        const now = redIds();
        now.forEach(function (rid) { if (!knownRed.has(rid)) raiseAlert(rid, true); });
        knownRed = now;
      }
    }).catch(function () {});
  }

  // ---- the board's map (map.js): drawn from the JSON API, redrawn with the board ----
  let selectedRequest = null;
  let mapSeq = 0;
  function getJson(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; });
  }
  function drawMap() {
    const box = document.getElementById("board-map");
    if (!box || !window.Hotline580Map) return;
    const seq = ++mapSeq;
    // Open requests by status, however old: the newest N of all would miss a
    // long-escalated one.
    const open = ["new", "offering", "assigned", "escalated"].map(function (st) {
      return getJson("/api/requests?limit=1000&status=" + st);
    });
    Promise.all([
      getJson("/api/volunteers"),
      Promise.all(open),
      selectedRequest ? getJson("/api/requests/" + selectedRequest) : Promise.resolve(null),
    ]).then(function (got) {
      if (seq !== mapSeq || !got[0] || got[1].some(function (l) { return !l; })) return; // a newer drawing is on its way, or a failure
      window.Hotline580Map.draw(box, {
        volunteers: got[0],
        requests: [].concat.apply([], got[1]),
        offers: got[2] ? got[2].offers : [],
        selected: selectedRequest,
        onSelect: function (id) { selectedRequest = id; drawMap(); },
      });
      box.dataset.selected = selectedRequest === null ? "" : String(selectedRequest);
    }).catch(function () {});
  }
  if (page === "board") {
    // map.js is a deferred script after this one: it is there at DOMContentLoaded.
    if (document.readyState === "complete") drawMap();
    else document.addEventListener("DOMContentLoaded", drawMap);
    // A card's pin selects its request on the map instead of opening it;
    // delegated, so it survives the board's re-renders.
    document.addEventListener("click", function (e) {
      const pin = e.target.closest && e.target.closest("[data-select]");
      if (!pin) return;
      e.preventDefault();
      selectedRequest = Number(pin.dataset.select);
      drawMap();
    });
  }

  // Opened after the page's load event: a stream opened before it keeps the
  // page "loading" for good (the tab's spinner, and a browser waiting for it).
  // The stream is closed when the page is left: a page kept in the browser's
  // back/forward cache would otherwise keep its connection, and a few such
  // pages use up the browser's connections to this server.
  let source = null;
  window.addEventListener("pagehide", function () {
    if (source) { source.close(); source = null; }
  });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted && !source) { connectLive(); refreshSoon(0); }
  });
  const liveBadge = document.getElementById("live");
  const liveText = liveBadge ? liveBadge.textContent : "";
  function connectLive() {
    if (liveBadge && window.EventSource) {
      source = new EventSource("/api/events");
      source.onopen = function () {
        liveBadge.textContent = liveText;
        liveBadge.classList.remove("down", "connecting");
        liveBadge.classList.add("up");
      };
      source.onerror = function () {
        liveBadge.textContent = "● " + liveBadge.dataset.offline;
        liveBadge.classList.remove("up");
        liveBadge.classList.add("down");
      };
      source.onmessage = function (m) {
        let ev;
        try { ev = JSON.parse(m.data); } catch (e) { return; }
        if (ev.type === "alert") raiseAlert(ev.request_id, false);
        if (page === "board") refreshSoon();
        if (page === "request" && String(ev.request_id) === body.dataset.requestId) refreshSoon();
      };
    }
  }
  if (document.readyState === "complete") {
    setTimeout(connectLive, 0);
  } else {
    window.addEventListener("load", function () { setTimeout(connectLive, 0); });
  }

  // ---- actions on a request, through the JSON API ----
  function showFlash(text, ok) {
    const flash = document.getElementById("flash");
    if (!flash) return;
    flash.textContent = text;
    flash.className = "flash " + (ok ? "ok" : "bad");
    flash.hidden = false;
  }

  function call(method, url, payload) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(payload || {}),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, ok: r.ok, json: j }; });
    });
  }

  function requestAction(action, button) {
    const id = body.dataset.requestId;
    const base = "/api/requests/" + id;
    let req;
    switch (action) {
      case "assign":
        req = call("POST", base + "/assign", { volunteer_id: Number(button.dataset.volunteerId) });
        break;
      case "assign-other": {
        const v = document.getElementById("other-volunteer").value;
        if (!v) return;
        req = call("POST", base + "/assign", { volunteer_id: Number(v) });
        break;
      }
      case "reoffer": req = call("POST", base + "/reoffer", {}); break;
      case "close": req = call("POST", base + "/close", {}); break;
      case "done": req = call("POST", base + "/done", {}); break;
      case "cancel": {
        const reason = document.getElementById("cancel-reason").value.trim();
        req = call("POST", base + "/cancel", reason ? { reason: reason } : {});
        break;
      }
      case "note": {
        const text = document.getElementById("note").value;
        req = call("POST", base + "/notes", { text: text });
        break;
      }
      case "patch": {
        // Only what was chosen: an unset grade or category stays unset.
        const change = {};
        const grade = document.getElementById("grade").value;
        const category = document.getElementById("category").value;
        if (grade) change.grade = grade;
        if (category) change.category = category;
        req = call("PATCH", base, change);
        break;
      }
      default: return;
    }
    button.disabled = true;
    req.then(function (r) {
      button.disabled = false;
      if (r.ok) {
        const note = document.getElementById("note");
        if (action === "note" && note) note.value = "";
        if (document.activeElement) document.activeElement.blur();
        refresh();
      } else if (action === "done" && r.status === 404 && !r.json.error) {
        showFlash(body.dataset.doneMissing, false);
      } else {
        showFlash(r.json.error || ("HTTP " + r.status), false);
      }
    }).catch(function (e) {
      button.disabled = false;
      showFlash(String(e), false);
    });
  }

  function bindActions() {
    if (page !== "request") return;
    document.querySelectorAll("[data-action]").forEach(function (b) {
      if (b.dataset.bound) return;
      b.dataset.bound = "1";
      b.addEventListener("click", function () { requestAction(b.dataset.action, b); });
    });
  }
  bindActions();

  // ---- volunteers ----
  if (page === "volunteers") {
    const search = document.getElementById("search");
    search.addEventListener("input", function () {
      const q = search.value.trim().toLowerCase();
      document.querySelectorAll("#volunteers tbody tr").forEach(function (tr) {
        tr.hidden = q !== "" && tr.dataset.search.indexOf(q) < 0;
      });
    });
    const dialog = document.getElementById("edit-dialog");
    let editing = null;
    function patchVolunteer(id, payload) {
      return call("PATCH", "/api/volunteers/" + id, payload);
    }
    document.querySelectorAll("#volunteers [data-action]").forEach(function (b) {
      const tr = b.closest("tr");
      b.addEventListener("click", function () {
        if (b.dataset.action === "toggle") {
          patchVolunteer(tr.dataset.volunteerId, { available: tr.dataset.available !== "1" }).then(function (r) {
            if (r.ok) location.reload(); else showFlash(r.json.error || ("HTTP " + r.status), false);
          });
        } else if (b.dataset.action === "edit" && dialog) {
          editing = tr;
          const f = document.getElementById("edit-form");
          f.elements.name.value = tr.dataset.name;
          f.elements.languages.value = tr.dataset.languages;
          f.elements.max_active.value = tr.dataset.maxActive;
          f.elements.quiet_hours.value = tr.dataset.quietHours;
          const skills = tr.dataset.skills.split(",");
          f.querySelectorAll('input[name="skills"]').forEach(function (c) { c.checked = skills.includes(c.value); });
          document.getElementById("edit-error").hidden = true;
          dialog.showModal();
        }
      });
    });
    if (dialog) {
      document.getElementById("edit-cancel").addEventListener("click", function () { dialog.close(); });
      document.getElementById("edit-form").addEventListener("submit", function (e) {
        e.preventDefault();
        const f = e.target;
        const quiet = f.elements.quiet_hours.value.trim();
        const payload = {
          name: f.elements.name.value,
          skills: Array.from(f.querySelectorAll('input[name="skills"]:checked')).map(function (c) { return c.value; }),
          languages: f.elements.languages.value.split(/[,;\s]+/).filter(Boolean),
          max_active: Number(f.elements.max_active.value),
          quiet_hours: quiet === "" ? null : quiet,
        };
        patchVolunteer(editing.dataset.volunteerId, payload).then(function (r) {
          if (r.ok) { dialog.close(); location.reload(); return; }
          const err = document.getElementById("edit-error");
          err.textContent = r.json.error || ("HTTP " + r.status);
          err.hidden = false;
        });
      });
    }
  }

  // ---- figures: shown as the stats endpoint gives them ----
  if (page === "figures") {
    const box = document.getElementById("figures");
    const form = document.getElementById("figures-form");
    function cell(value) {
      if (value !== null && typeof value === "object") return table(value);
      const span = document.createElement("span");
      span.textContent = value === null ? "—" : String(value);
      return span;
    }
    function table(obj) {
      const t = document.createElement("table");
      const rows = Array.isArray(obj) ? obj.map(function (v, i) { return [String(i + 1), v]; }) : Object.entries(obj);
      rows.forEach(function (kv) {
        const tr = t.insertRow();
        const th = document.createElement("th");
        th.textContent = kv[0];
        tr.appendChild(th);
        tr.insertCell().appendChild(cell(kv[1]));
      });
      return t;
    }
    // ---- charts: inline SVG built with DOM calls from the stats' numbers ----
    const charts = document.getElementById("charts");
    const SVG = "http://www.w3.org/2000/svg";
    function svgEl(name, attrs, parent) {
      const e = document.createElementNS(SVG, name);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
      if (parent) parent.appendChild(e);
      return e;
    }
    // A bar chart of `values` (null: no data that day) labelled by `labels`.
    function barChart(id, title, labels, values, show) {
      const fig = document.createElement("figure");
      fig.className = "chart";
      fig.id = id;
      const cap = document.createElement("figcaption");
      cap.textContent = title;
      fig.appendChild(cap);
      const w = 560, h = 200, left = 8, bottom = 34, top = 18;
      const svg = svgEl("svg", { viewBox: "0 0 " + w + " " + h, role: "img", "aria-label": title }, fig);
      const max = Math.max.apply(null, values.map(function (v) { return v || 0; }).concat([0]));
      const slot = (w - 2 * left) / Math.max(values.length, 1);
      svgEl("line", { x1: left, y1: h - bottom, x2: w - left, y2: h - bottom, class: "axis" }, svg);
      values.forEach(function (v, i) {
        const x = left + i * slot;
        const bh = max > 0 && v ? (h - bottom - top) * v / max : 0;
        const bar = svgEl("rect", { x: x + slot * 0.15, y: h - bottom - bh, width: slot * 0.7, height: bh, class: "bar", "data-value": v === null ? "" : v }, svg);
        svgEl("title", {}, bar).textContent = labels[i] + ": " + (v === null ? "—" : show(v));
        if (v !== null && values.length <= 16) {
          svgEl("text", { x: x + slot / 2, y: h - bottom - bh - 4, class: "val" }, svg).textContent = show(v);
        }
        if (values.length <= 16 || i % Math.ceil(values.length / 12) === 0) {
          svgEl("text", { x: x + slot / 2, y: h - bottom + 16, class: "lab" }, svg).textContent = labels[i];
        }
      });
      return fig;
    }
    function drawCharts(j) {
      if (!charts) return;
      const days = j.by_day || [];
      const dayLabels = days.map(function (d) { return String(d.date).slice(5); });
      const cats = j.by_category || [];
      const catLabels = cats.map(function (g) { return g.key || "—"; });
      const minutes = function (s) { return s === null ? null : Math.round(s / 60); };
      const pct = function (x) { return x === null ? null : Math.round(x * 100); };
      charts.replaceChildren(
        barChart("chart-per-day", "每天的求助 Requests per day", dayLabels, days.map(function (d) { return d.received; }), String),
        barChart("chart-accept", "接单用时（分钟，中位数）Time to acceptance (median minutes)", dayLabels, days.map(function (d) { return minutes(d.median_accept_secs); }), function (v) { return v + "m"; }),
        barChart("chart-satisfaction", "满意度 Satisfaction (%)", dayLabels, days.map(function (d) { return pct(d.satisfaction); }), function (v) { return v + "%"; }),
        barChart("chart-category", "按类别 By category (received)", catLabels, cats.map(function (g) { return g.received; }), String)
      );
    }
    function load() {
      const q = new URLSearchParams(new FormData(form)).toString();
      fetch("/api/stats?" + q, { credentials: "same-origin" }).then(function (r) {
        if (r.status === 404) {
          const p = document.createElement("p");
          p.className = "empty";
          p.textContent = box.dataset.missing;
          box.replaceChildren(p);
          return;
        }
        return r.json().then(function (j) {
          if (!r.ok) {
            const p = document.createElement("p");
            p.className = "error";
            p.textContent = j.error || ("HTTP " + r.status);
            box.replaceChildren(p);
          } else {
            drawCharts(j);
            const shown = Object.assign({}, j);
            delete shown.by_day; // drawn above; as a table it would be a month of rows
            box.replaceChildren(table(shown));
          }
        });
      });
    }
    form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
    load();
  }
})();
