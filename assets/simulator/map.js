// A map that needs no network: volunteers and open requests drawn as SVG from
// their coordinates, on a plain background. When the container carries
// `data-tiles` (config `console.map_tiles`, an XYZ URL template), the same dots
// are drawn in Web Mercator over that server's tiles. Used by the board and the simulator.
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

  function bounds(pts) {
    let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
    for (const [la, lo] of pts) {
      minLat = Math.min(minLat, la); maxLat = Math.max(maxLat, la);
      minLon = Math.min(minLon, lo); maxLon = Math.max(maxLon, lo);
    }
    return [minLat, maxLat, minLon, maxLon];
  }

  const PAD = 16;

  // Equirectangular, with longitude shrunk by the latitude so distances look right.
  function plain(pts, width, height) {
    const [minLat, maxLat, minLon, maxLon] = bounds(pts);
    const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    const spanX = Math.max((maxLon - minLon) * k, 0.002);
    const spanY = Math.max(maxLat - minLat, 0.002);
    const scale = Math.min((width - 2 * PAD) / spanX, (height - 2 * PAD) / spanY);
    const offX = (width - spanX * scale) / 2;
    const offY = (height - spanY * scale) / 2;
    return (lat, lon) => [offX + (lon - minLon) * k * scale, height - (offY + (lat - minLat) * scale)];
  }

  const TILE = 256;
  const MAX_ZOOM = 17;

  // Web Mercator in world pixels at zoom 0 (0..256 across the world).
  function world(lat, lon) {
    const la = Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI / 180;
    const x = (lon + 180) / 360 * TILE;
    const y = (1 - Math.log(Math.tan(la) + 1 / Math.cos(la)) / Math.PI) / 2 * TILE;
    return [x, y];
  }

  // The deepest zoom at which every point fits; the tiles covering the view go
  // under the dots as <image> elements. Only {z}, {x} and {y} are filled in.
  function mercator(svg, template, pts, width, height) {
    const ws = pts.map(([la, lo]) => world(la, lo));
    const xs = ws.map((w) => w[0]);
    const ys = ws.map((w) => w[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    let z = 0;
    while (z < MAX_ZOOM) {
      const s = 2 ** (z + 1);
      if ((x1 - x0) * s > width - 2 * PAD || (y1 - y0) * s > height - 2 * PAD) break;
      z += 1;
    }
    const s = 2 ** z;
    const offX = width / 2 - ((x0 + x1) / 2) * s;
    const offY = height / 2 - ((y0 + y1) / 2) * s;
    const n = 2 ** z;
    const layer = el("g", { class: "map-tiles" }, svg);
    const tx0 = Math.floor(-offX / TILE), tx1 = Math.floor((width - offX) / TILE);
    const ty0 = Math.max(0, Math.floor(-offY / TILE)), ty1 = Math.min(n - 1, Math.floor((height - offY) / TILE));
    for (let ty = ty0; ty <= ty1; ty++) {
      for (let tx = tx0; tx <= tx1; tx++) {
        const wx = ((tx % n) + n) % n;
        const href = template.split("{z}").join(String(z)).split("{x}").join(String(wx)).split("{y}").join(String(ty));
        el("image", {
          href, x: offX + tx * TILE, y: offY + ty * TILE, width: TILE, height: TILE,
          class: "map-tile", "data-tile": `${z}/${wx}/${ty}`,
        }, layer);
      }
    }
    return (lat, lon) => {
      const [x, y] = world(lat, lon);
      return [offX + x * s, offY + y * s];
    };
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
    const tiles = container.getAttribute("data-tiles");
    const at = tiles ? mercator(svg, tiles, pts, width, height) : plain(pts, width, height);
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
