// A map with no tiles and no network: volunteers and open requests drawn as SVG
// from their coordinates, on a plain background. Used by the board and the simulator.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const OPEN = ["new", "offering", "assigned", "escalated"];

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  function volunteerState(v) {
    if (!v.available || v.opted_out) return "off";
    return v.active_jobs > 0 ? "busy" : "on";
  }

  // data: {volunteers, requests, offers (of the selected request), selected, onSelect}
  function draw(container, data) {
    const width = container.clientWidth || 600;
    const height = container.clientHeight || 420;
    const vols = (data.volunteers || []).filter((v) => v.lat != null && v.lon != null);
    const reqs = (data.requests || []).filter((r) => OPEN.includes(r.status) && r.lat != null && r.lon != null);
    const pts = vols.map((v) => [v.lat, v.lon]).concat(reqs.map((r) => [r.lat, r.lon]));
    container.textContent = "";
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "map-svg" }, container);
    const title = el("title", {}, svg);
    title.textContent = `${vols.length} volunteers, ${reqs.length} open requests`;
    el("rect", { x: 0, y: 0, width, height, class: "map-bg" }, svg);
    if (pts.length === 0) return;
    let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
    for (const [la, lo] of pts) {
      minLat = Math.min(minLat, la); maxLat = Math.max(maxLat, la);
      minLon = Math.min(minLon, lo); maxLon = Math.max(maxLon, lo);
    }
    // Equirectangular, with longitude shrunk by the latitude so distances look right.
    const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    const spanX = Math.max((maxLon - minLon) * k, 0.002);
    const spanY = Math.max(maxLat - minLat, 0.002);
    const pad = 16;
    const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
    const offX = (width - spanX * scale) / 2;
    const offY = (height - spanY * scale) / 2;
    const at = (lat, lon) => [offX + (lon - minLon) * k * scale, height - (offY + (lat - minLat) * scale)];
    const byId = new Map(vols.map((v) => [v.id, v]));

    const selected = reqs.find((r) => r.id === data.selected);
    if (selected) {
      const [rx, ry] = at(selected.lat, selected.lon);
      for (const o of data.offers || []) {
        const v = byId.get(o.volunteer_id);
        if (!v) continue;
        const [vx, vy] = at(v.lat, v.lon);
        el("line", { x1: rx, y1: ry, x2: vx, y2: vy, class: `offer-line offer-${o.status}` }, svg);
      }
    }
    for (const v of vols) {
      const [x, y] = at(v.lat, v.lon);
      const c = el("circle", { cx: x, cy: y, r: 3.5, class: `vol vol-${volunteerState(v)}`, "data-volunteer": v.id }, svg);
      const t = el("title", {}, c);
      t.textContent = `${v.name} · ${volunteerState(v)} · ${(v.skills || []).join(", ")}`;
    }
    for (const r of reqs) {
      const [x, y] = at(r.lat, r.lon);
      const size = r.id === data.selected ? 14 : 10;
      const s = el("rect", {
        x: x - size / 2, y: y - size / 2, width: size, height: size, rx: 2,
        class: `req req-${r.grade || "none"}${r.id === data.selected ? " req-selected" : ""}`,
        "data-request": r.id,
      }, svg);
      const t = el("title", {}, s);
      t.textContent = `#${r.id} ${r.category || ""} · ${r.status}`;
      if (data.onSelect) s.addEventListener("click", () => data.onSelect(r.id));
    }
  }

  window.Hotline580Map = { draw };
})();
