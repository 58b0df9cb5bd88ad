// parkwatch built-in dashboard: one page, no build step, no CDN. Talks to /api/v1 with the API key
// (from the URL fragment #key=..., or typed in), and listens to the live event stream.
(() => {
  "use strict";
  const CLASS_COLORS = { excellent: "#1a9850", good: "#91cf60", fair: "#fee08b", poor: "#fc8d59", none: "#d73027", unknown: "#bdbdbd" };
  const CLASSES = ["excellent", "good", "fair", "poor", "none"];
  // SINR bands of the quality layer (dB, lower bound); below 0 dB is the interference floor.
  const QUALITY = [["q_excellent", 20, "#2166ac"], ["q_good", 13, "#67a9cf"], ["q_fair", 0, "#d1e5f0"], ["q_poor", -Infinity, "#b2182b"]];
  const PREDICTED_COLORS = { predicted_dead: "#d73027", predicted_ok: "#1a9850", predicted_uncertain: "#9e9e9e" };
  const SERVER_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
  const OPTIONAL = {
    predicted: "/api/v1/coverage/predicted",
    sites: "/api/v1/sites",
    bestserver: "/api/v1/coverage/best-server",
  };
  const $ = (id) => document.getElementById(id);
  const state = {
    lang: localStorage.getItem("pw.lang") || "en", key: null, seq: 0, lastEvent: null, live: null,
    parks: [], fittedFor: null, optional: {}, drawn: {}, zones: [], sites: [],
  };
  window.PW = { state }; // read by the Chromium tests and by alarms.js (the key, the park filter)

  // ---- i18n ---------------------------------------------------------------------------------
  const t = (k) => (window.PW_I18N[state.lang] || {})[k] || window.PW_I18N.en[k] || k;
  function applyLang() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
    $("lang").textContent = state.lang === "en" ? "VI" : "EN";
    if (state.live) $("live-text").textContent = t(state.live);
    renderLegend();
  }
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "en" ? "vi" : "en";
    localStorage.setItem("pw.lang", state.lang);
    applyLang();
    refresh();
  });

  // ---- API ----------------------------------------------------------------------------------
  function loadKey() {
    const m = location.hash.match(/key=([^&]+)/);
    if (m) { sessionStorage.setItem("pw.key", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
    state.key = sessionStorage.getItem("pw.key");
    $("keybar").hidden = !!state.key;
  }
  $("key-save").addEventListener("click", () => {
    sessionStorage.setItem("pw.key", $("key").value.trim());
    loadKey(); startStream(); probeOptional().then(refresh);
  });
  const composite = () => ($("operator").value === "*worst" ? "worst" : (!$("operator").value || !$("tech").value ? "best" : null));
  function windowRange() {
    const hours = Number($("window").value);
    const to = new Date();
    return { from: new Date(to.getTime() - hours * 3600e3), to };
  }
  function filters(extra) {
    const p = new URLSearchParams(extra || {});
    p.set("from", windowRange().from.toISOString());
    for (const id of ["park", "operator", "tech"]) {
      const v = $(id).value;
      if (v && !v.startsWith("*")) p.set(id, v);
    }
    return p;
  }
  const auth = () => ({ Authorization: `Bearer ${state.key}` });
  async function api(path, params) {
    const res = await fetch(`/api/v1/${path}?${params || ""}`, { headers: auth() });
    if (res.status === 401 || res.status === 403) {
      $("keybar").hidden = false; $("key-error").textContent = t("bad_key");
      throw new Error(`${path}: ${res.status}`);
    }
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
  }
  window.PW.api = api;

  // ---- map ----------------------------------------------------------------------------------
  const map = L.map("map", { zoomControl: true, preferCanvas: false, zoomSnap: 0.25 }).setView([20.82, 106.72], 12);
  L.control.scale({ metric: true, imperial: false }).addTo(map);
  map.on("moveend", () => { $("map").dataset.bounds = map.getBounds().toBBoxString(); });
  // The grid gives the map its size after Leaflet measured it (and again on rotation or resize).
  new ResizeObserver(() => {
    map.invalidateSize({ animate: false });
    if (state.fittedFor) { const again = state.fittedFor; state.fittedFor = null; fitView(null); if (!state.fittedFor) state.fittedFor = again; }
  }).observe($("map"));
  // One SVG renderer for every vector layer, so that the hatch pattern of survey gaps lives in it.
  const svg = L.svg({ padding: 0.5 }).addTo(map);
  const HATCH = "pw-hatch";
  (function addHatch() {
    const ns = "http://www.w3.org/2000/svg";
    const root = svg._container;
    const defs = document.createElementNS(ns, "defs");
    const pat = document.createElementNS(ns, "pattern");
    pat.setAttribute("id", HATCH); pat.setAttribute("patternUnits", "userSpaceOnUse");
    pat.setAttribute("width", "8"); pat.setAttribute("height", "8"); pat.setAttribute("patternTransform", "rotate(45)");
    const line = document.createElementNS(ns, "line");
    line.setAttribute("x1", "0"); line.setAttribute("y1", "0"); line.setAttribute("x2", "0"); line.setAttribute("y2", "8");
    line.setAttribute("stroke", "#6b6b6b"); line.setAttribute("stroke-width", "2.5");
    pat.appendChild(line); defs.appendChild(pat); root.insertBefore(defs, root.firstChild);
  })();
  const layers = {};
  for (const name of ["roads", "parks", "gaps", "predicted", "bestserver", "cells", "interference", "zones", "sites"]) layers[name] = L.layerGroup().addTo(map);

  function setBasemap(mode) {
    $("map").dataset.basemap = mode;
    $("map").classList.toggle("offline", mode !== "tiles");
    $("basemap-note").hidden = mode !== "offline-fallback";
  }
  function drawRoads(fc) {
    if (!fc) return;
    L.geoJSON(fc, { renderer: svg, interactive: false, style: { color: "#8a8f99", weight: 3, opacity: 0.7, lineCap: "round" } }).addTo(layers.roads);
    $("map").dataset.roads = String((fc.features || []).length);
  }
  // Base map: the configured XYZ tiles, or (no tile_url, or tiles that never load) the offline map:
  // park boundaries with their names, the scale bar and the parks' road lines when configured.
  fetch("config.json").then((r) => r.json()).then((cfg) => {
    drawRoads(cfg.roads);
    if (cfg.tile_url) {
      let loaded = 0; let failed = 0;
      const tiles = L.tileLayer(cfg.tile_url, { attribution: cfg.tile_attribution || "", maxZoom: 19 }).addTo(map);
      tiles.on("tileload", () => { loaded += 1; setBasemap("tiles"); });
      tiles.on("tileerror", () => { failed += 1; if (!loaded && failed >= 4) setBasemap("offline-fallback"); });
      setBasemap("tiles");
    } else {
      setBasemap("offline");
    }
    if (!state.fittedFor && cfg.center) map.setView(cfg.center, cfg.zoom || 12);
  }).catch((err) => { console.warn("config.json:", err.message); setBasemap("offline"); });

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)}%`);
  const when = (ms) => (ms ? new Date(ms).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB") : "–");
  function ago(ms) {
    if (!ms) return "–";
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return s < 90 ? `${s.toFixed(0)} ${t("ago_s")}` : s < 5400 ? `${(s / 60).toFixed(0)} ${t("ago_m")}` : `${(s / 3600).toFixed(1)} ${t("ago_h")}`;
  }

  // ---- layer control ------------------------------------------------------------------------
  const layerOn = (name) => { const box = document.querySelector(`#layers input[data-layer="${name}"]`); return !!box && box.checked && !box.closest("label").hidden; };
  const colourMode = () => document.querySelector('#layers input[name="colour"]:checked').value;
  function syncLayers() {
    for (const name of Object.keys(layers)) {
      if (name === "roads" || name === "parks") continue;
      const on = layerOn(name);
      if (on && !map.hasLayer(layers[name])) layers[name].addTo(map);
      if (!on && map.hasLayer(layers[name])) map.removeLayer(layers[name]);
    }
    renderLegend();
  }
  document.querySelectorAll("#layers input").forEach((box) => box.addEventListener("change", () => {
    // Layers fetched only while shown (interference zones, the optional ones) load when ticked.
    if (box.name === "colour") { redrawCells(); } else if (box.checked && (OPTIONAL[box.dataset.layer] || box.dataset.layer === "interference")) { refresh(); }
    syncLayers();
  }));
  // An optional layer (another part of the API: prediction, cell sites, best server) is offered
  // only when the API documents its endpoint; a non-200 answer hides it again.
  async function probeOptional() {
    try {
      const doc = await (await fetch("../openapi.json")).json();
      for (const [name, path] of Object.entries(OPTIONAL)) showOptional(name, path in (doc.paths || {}));
    } catch (err) {
      console.warn("openapi.json:", err.message);
    }
  }
  function showOptional(name, available) {
    state.optional[name] = available;
    const label = document.querySelector(`#layers input[data-layer="${name}"]`).closest("label");
    label.hidden = !available;
    syncLayers();
  }
  async function fetchOptional(name, path, params) {
    if (!state.optional[name] || !layerOn(name)) return null;
    const res = await fetch(`${path}?${params}`, { headers: auth() });
    if (!res.ok) { if (res.status === 404) showOptional(name, false); return null; }
    return res.json();
  }

  // ---- legend: exactly what is drawn --------------------------------------------------------
  const swatch = (style, label, key) => `<div data-legend="${key}"><i style="${style}"></i>${label}</div>`;
  function renderLegend() {
    const d = state.drawn;
    const parts = [];
    if (layerOn("cells") && d.cells) {
      const mode = d.composite ? `<small>${t(d.composite === "worst" ? "worst_operator" : "best_operator")}</small>` : "";
      if (colourMode() === "quality") {
        parts.push(`<b>${t("legend_quality")}</b>${mode}`);
        for (const [k, , c] of QUALITY) if (d.classes[k]) parts.push(swatch(`background:${c}`, t(k), k));
      } else {
        parts.push(`<b>${t("legend_title")}</b>${mode}`);
        for (const c of CLASSES) if (d.classes[c]) parts.push(swatch(`background:${CLASS_COLORS[c]}`, t(c), c));
      }
      if (d.faded) parts.push(swatch("background:#999;opacity:.3", t("faded"), "faded"));
      if (d.uncertain) parts.push(swatch("background:transparent;border:1.5px dotted #333", t("uncertain"), "uncertain"));
    }
    if (layerOn("zones") && d.zones) parts.push(swatch("border:2px dashed #000;background:rgba(215,48,39,.15)", d.composite ? t("dead_zone_any") : t("dead_zone"), "zone"));
    if (layerOn("interference") && d.interference) parts.push(swatch("border:2px dashed #e66101;background:rgba(230,97,1,.15)", t("interference_zone"), "interference"));
    if (layerOn("gaps") && d.gaps) parts.push(swatch("background:repeating-linear-gradient(45deg,#6b6b6b 0 2px,transparent 2px 6px)", t("survey_gap"), "gap"));
    if (layerOn("predicted") && d.predicted) {
      for (const [k, c] of Object.entries(PREDICTED_COLORS)) if (d.predicted[k]) parts.push(swatch(`background:transparent;border:2px dashed ${c}`, t(k), k));
    }
    if (layerOn("bestserver") && d.bestserver) {
      for (const [s, c] of Object.entries(d.bestserver)) parts.push(swatch(`background:transparent;border:2px solid ${c}`, `${t("best_server")} ${esc(s)}`, `server-${esc(s)}`));
      if (d.pollution) parts.push(swatch("background:transparent;border:3px double #000", t("pilot_pollution"), "pollution"));
    }
    if (layerOn("sites") && d.sites) parts.push(swatch("background:#fff;border:2px solid #13233a;border-radius:50%", t("cell_site"), "site"));
    if (state.parks.some((p) => p.boundary)) parts.push(swatch("background:transparent;border:2px solid #13233a", t("park_boundary"), "park"));
    if (d.roads) parts.push(swatch("background:#8a8f99;height:3px", t("road"), "road"));
    $("legend").innerHTML = parts.join("") || `<span class="empty">${t("no_data")}</span>`;
  }

  // ---- drawing --------------------------------------------------------------------------------
  const RANK = { excellent: 5, good: 4, fair: 3, poor: 2, none: 1 };
  // Best (or worst) operator/technology per H3 cell: one polygon per cell, never stacked colours.
  function compositeCells(features, mode) {
    const by = new Map();
    for (const f of features) {
      const p = f.properties;
      const score = (RANK[p.class] || 0) * 1000 + (p.rsrp_median_dbm ?? -200) - (p.insufficient ? 10000 : 0);
      const cur = by.get(p.h3);
      if (!cur || (mode === "worst" ? score < cur.score : score > cur.score)) by.set(p.h3, { f, score });
    }
    return [...by.values()].map((x) => x.f);
  }
  function qualityBand(sinr) {
    if (sinr === null || sinr === undefined) return null;
    return QUALITY.find(([, lo]) => sinr >= lo);
  }
  let lastCells = null;
  function redrawCells() { if (lastCells) drawCells(lastCells); }
  function drawCells(fc) {
    lastCells = fc;
    layers.cells.clearLayers();
    const mode = composite();
    const feats = mode ? compositeCells(fc.features || [], mode) : (fc.features || []);
    const quality = colourMode() === "quality";
    const drawn = { classes: {}, faded: 0, uncertain: 0 };
    const bounds = [];
    for (const f of feats) {
      const p = f.properties;
      let fill = CLASS_COLORS[p.class] || CLASS_COLORS.unknown;
      let key = p.class;
      if (quality) {
        const band = qualityBand(p.sinr_median_db);
        fill = band ? band[2] : CLASS_COLORS.unknown; key = band ? band[0] : "unknown";
      }
      drawn.classes[key] = true;
      if (p.insufficient) drawn.faded += 1;
      const uncertain = p.state === "uncertain" && !p.insufficient;
      if (uncertain) drawn.uncertain += 1;
      const layer = L.geoJSON(f, { renderer: svg, style: {
        color: uncertain ? "#333" : "#555", weight: uncertain ? 1.5 : 0.4, dashArray: uncertain ? "2 3" : null,
        fillColor: fill, fillOpacity: p.insufficient ? 0.3 : 0.7,
      } });
      layer.bindTooltip(`${esc(p.operator)} ${esc(p.tech)} · ${t(p.class)}${p.insufficient ? ` (${t("insufficient")})` : ""}${uncertain ? ` · ${t("uncertain")}` : ""}<br>RSRP p10 ${fmt(p.rsrp_p10_dbm)} dBm · ${t("median")} ${fmt(p.rsrp_median_dbm)} dBm<br>SINR ${fmt(p.sinr_median_db)} dB · ${p.samples} ${t("samples")}`);
      layer.addTo(layers.cells);
      bounds.push(layer.getBounds());
    }
    Object.assign(state.drawn, { cells: feats.length, classes: drawn.classes, faded: drawn.faded, uncertain: drawn.uncertain, composite: mode });
    fitView(bounds.length ? bounds.reduce((a, b) => a.extend(b)) : null);
    $("map").dataset.cells = String(feats.length);
    renderLegend();
  }
  // Park boundaries are always drawn; the view fits the chosen park, or every park for "All parks".
  function drawParks() {
    layers.parks.clearLayers();
    for (const p of state.parks) {
      if (!p.boundary) continue;
      L.geoJSON(p.boundary, { renderer: svg, interactive: false, style: { color: "#13233a", weight: 2, fill: false, opacity: 0.8 } })
        .bindTooltip(esc(p.name || p.id), { permanent: true, direction: "center", className: "park-label" }).addTo(layers.parks);
    }
    $("map").dataset.parks = String(state.parks.filter((p) => p.boundary).length);
    state.drawn.roads = Number($("map").dataset.roads || 0);
  }
  function fitView(cellBounds) {
    const park = $("park").value;
    const want = park || "*";
    if (state.fittedFor === want) return;
    let b = null;
    for (const p of state.parks) {
      if (!p.boundary || (park && p.id !== park)) continue;
      const pb = L.geoJSON(p.boundary).getBounds();
      b = b ? b.extend(pb) : pb;
    }
    if (!b) b = cellBounds;
    if (!b || !b.isValid()) return;
    map.fitBounds(b, { padding: [20, 20], animate: false });
    state.fittedFor = want;
    $("map").dataset.view = want;
  }
  function zoneLabel(p) {
    return `${esc((p.operators || []).join(", "))} ${esc(p.tech || "")} · ${(p.area_m2 / 1e4).toFixed(1)} ha · ${p.cell_count} ${t("cells")} · ${t("worst")} ${fmt(p.worst_rsrp_dbm)} dBm`;
  }
  function drawZones(fc) {
    layers.zones.clearLayers();
    state.zones = fc.features || [];
    const list = $("zones"); list.innerHTML = "";
    state.zones.forEach((f) => {
      const p = f.properties;
      const layer = L.geoJSON(f, { renderer: svg, style: { color: "#000", weight: 2.5, dashArray: "6 4", fill: true, fillColor: "#d73027", fillOpacity: 0.15 } });
      layer.bindTooltip(`<b>${t("dead_zone")} #${p.rank}</b> ${esc(p.park)}<br>${zoneLabel(p)}`);
      layer.on("click", (e) => showZone(f, e.latlng));
      layer.addTo(layers.zones);
      if (list.children.length < 8) {
        const li = document.createElement("li");
        li.innerHTML = `${esc(p.park)} — ${zoneLabel(p)}`;
        li.addEventListener("click", () => { map.fitBounds(layer.getBounds(), { maxZoom: 16 }); showZone(f, layer.getBounds().getCenter()); });
        list.appendChild(li);
      }
    });
    state.drawn.zones = state.zones.length;
    $("map").dataset.zones = String(state.zones.length);
  }
  function drawInterference(fc) {
    layers.interference.clearLayers();
    const feats = (fc && fc.features) || [];
    for (const f of feats) {
      const p = f.properties;
      L.geoJSON(f, { renderer: svg, style: { color: "#e66101", weight: 2, dashArray: "4 3", fillColor: "#e66101", fillOpacity: 0.15 } })
        .bindTooltip(`<b>${t("interference_zone")}</b> ${esc(p.park)}<br>${zoneLabel(p)} · SINR ${fmt(p.median_sinr_db)} dB`).addTo(layers.interference);
    }
    state.drawn.interference = feats.length;
  }
  function drawGaps(fc) {
    layers.gaps.clearLayers();
    L.geoJSON(fc, { renderer: svg, interactive: false, style: { color: "#6b6b6b", weight: 0.6, fillColor: `url(#${HATCH})`, fillOpacity: 1 } }).addTo(layers.gaps);
    state.drawn.gaps = (fc.features || []).length;
    $("map").dataset.gaps = String(state.drawn.gaps);
  }
  function drawPredicted(fc) {
    layers.predicted.clearLayers();
    if (!fc) { state.drawn.predicted = null; return; }
    const seen = {};
    for (const f of fc.features || []) {
      const p = f.properties; const c = PREDICTED_COLORS[p.class] || "#9e9e9e"; seen[p.class] = true;
      L.geoJSON(f, { renderer: svg, style: { color: c, weight: 1.5, dashArray: "3 3", fill: false } })
        .bindTooltip(`${t(p.class)} · ${fmt(p.predicted_rsrp_dbm)} dBm (${fmt(p.lower_dbm)} … ${fmt(p.upper_dbm)})`).addTo(layers.predicted);
    }
    state.drawn.predicted = Object.keys(seen).length ? seen : null;
  }
  function drawBestServer(fc) {
    layers.bestserver.clearLayers();
    if (!fc) { state.drawn.bestserver = null; return; }
    const colours = {}; let pollution = 0;
    for (const f of fc.features || []) {
      const p = f.properties; const s = String(p.server ?? "?");
      if (!(s in colours)) colours[s] = SERVER_COLORS[Object.keys(colours).length % SERVER_COLORS.length];
      if (p.pilot_pollution) pollution += 1;
      L.geoJSON(f, { renderer: svg, style: { color: p.pilot_pollution ? "#000" : colours[s], weight: p.pilot_pollution ? 3 : 1.5, fill: false } })
        .bindTooltip(`${t("best_server")} ${esc(s)} · ${p.servers_within_5db ?? "–"} ${t("within_5db")}${p.pilot_pollution ? ` · ${t("pilot_pollution")}` : ""}`).addTo(layers.bestserver);
    }
    state.drawn.bestserver = Object.keys(colours).length ? colours : null;
    state.drawn.pollution = pollution;
  }
  function drawSites(fc) {
    layers.sites.clearLayers();
    state.sites = (fc && fc.features) || [];
    for (const f of state.sites) {
      const p = f.properties; const [lon, lat] = f.geometry.coordinates;
      L.circleMarker([lat, lon], { renderer: svg, radius: 6, color: "#13233a", weight: 2, fillColor: "#fff", fillOpacity: 1 })
        .bindTooltip(`${esc(p.radio)} ${esc(p.mcc)}-${esc(p.net)} · ${t("cell")} ${esc(p.cell)} · ${fmt(p.range_m, 0)} m`).addTo(layers.sites);
    }
    state.drawn.sites = state.sites.length || null;
  }

  // ---- dead-zone details --------------------------------------------------------------------
  function distM(a, b) {
    const dy = (a[0] - b[0]) * 111320; const dx = (a[1] - b[1]) * 111320 * Math.cos((a[0] * Math.PI) / 180);
    return Math.hypot(dx, dy);
  }
  function nearestSite(p) {
    if (p.nearest_site) return p.nearest_site;
    if (!state.sites.length) return null;
    let best = null;
    for (const s of state.sites) {
      const [lon, lat] = s.geometry.coordinates; const d = distM([p.lat, p.lon], [lat, lon]);
      if (!best || d < best.d) best = { d, s };
    }
    return best && `${esc(best.s.properties.radio)} ${t("cell")} ${esc(best.s.properties.cell)} · ${fmt(best.d / 1000, 2)} km`;
  }
  function showZone(f, latlng) {
    const p = f.properties;
    const cells = p.cells || [];
    const site = nearestSite(p);
    const rows = [
      [t("cells"), `${p.cell_count} <small class="cells">${cells.slice(0, 6).map(esc).join(" ")}${cells.length > 6 ? " …" : ""}</small>`],
      [t("area"), `${(p.area_m2 / 1e4).toFixed(2)} ha`],
      [t("cause"), p.cause ? esc(t(`cause_${p.cause}`).replace(/^cause_/, "")) : "–"],
      [t("confidence"), pct(p.confidence)],
      [t("samples"), `${p.samples ?? "–"} (${p.devices ?? "–"} ${t("devices")})`],
      ["RSRP", `${t("worst")} ${fmt(p.worst_rsrp_dbm)} · ${t("median")} ${fmt(p.median_rsrp_dbm)} dBm`],
      [t("first_seen"), when(p.first_seen_ms)],
      [t("last_seen"), when(p.last_seen_ms)],
    ];
    if (site) rows.push([t("nearest_site"), site]);
    const html = `<div class="zone-popup" id="zone-popup"><b>${esc(p.name || `${t("dead_zone")} #${p.rank}`)}</b> · ${esc(p.park)} · ${esc((p.operators || []).join(", "))} ${esc(p.tech || "")}<table>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</table></div>`;
    L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(html).openOn(map);
  }

  // ---- downloads of the current view ----------------------------------------------------------
  function viewBbox() {
    const b = map.getBounds();
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)].map((v) => v.toFixed(6)).join(",");
  }
  async function download(fmtName) {
    const what = layerOn("cells") || !layerOn("zones") ? "cells" : "dead-zones";
    const params = filters({ format: fmtName, bbox: viewBbox() });
    const res = await fetch(`/api/v1/export/${what}?${params}`, { headers: auth() });
    const status = $("downloads");
    if (!res.ok) { status.dataset.error = String(res.status); status.title = `${res.status}: ${t(res.status === 403 ? "export_forbidden" : "export_failed")}`; return; }
    const blob = await res.blob();
    const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || `parkwatch-${what}.${fmtName}`;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name; document.body.appendChild(a); a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    status.dataset.last = name;
  }
  for (const f of ["geojson", "csv", "kml"]) {
    $(`dl-${f}`).href = "#";
    $(`dl-${f}`).addEventListener("click", (e) => { e.preventDefault(); download(f); });
  }

  // ---- panels -------------------------------------------------------------------------------
  function rows(tbody, items, cells) {
    const el = $(tbody).querySelector("tbody");
    el.innerHTML = items.length ? items.map((it) => `<tr>${cells(it).join("")}</tr>`).join("") : `<tr><td colspan="6" class="empty">${t("no_data")}</td></tr>`;
  }
  const td = (v, num) => `<td${num ? ' class="num"' : ""}>${v}</td>`;
  // Adds the values (strings or [value, label] pairs) not listed yet; repeated values and
  // repeated refreshes add nothing.
  function fillSelect(id, values) {
    const sel = $(id); const cur = sel.value;
    const have = new Set([...sel.options].map((o) => o.value));
    for (const item of values) {
      const [v, label] = Array.isArray(item) ? item : [item, item];
      if (!v || have.has(v)) continue;
      have.add(v);
      sel.add(new Option(label || v, v));
    }
    sel.value = cur;
  }
  const items = (x) => x.items || x.features || [];
  let defaulted = false;
  // The first view shows one park, one operator and one technology (one layer at a time reads
  // best): the LTE layer with the largest dead-zone area, the first one when none has a zone.
  function pickDefaults(summary) {
    if (defaulted || !summary.length) return false;
    defaulted = true;
    const lte = summary.filter((s) => s.tech === "LTE");
    const pool = lte.length ? lte : summary;
    const first = pool.reduce((a, b) => ((b.dead_zone_area_m2 || 0) > (a.dead_zone_area_m2 || 0) ? b : a), pool[0]);
    let changed = false;
    for (const [id, v] of [["park", first.park], ["operator", first.operator], ["tech", first.tech]]) {
      if (!$(id).value && v) { fillSelect(id, [v]); $(id).value = v; changed = true; }
    }
    return changed;
  }

  const hooks = []; // panels added below (charts, fleet) refresh with the map
  // Every refresh has a number; an answer that arrives after a refresh for a newer choice (park,
  // operator, technology, window, language, layers fetched on demand) started is dropped, so a slow answer for the previous
  // park never draws over (or zooms to) the one chosen since. Refreshes for the same choice (the
  // live stream asks every few seconds) are coalesced: one runs, one more follows if asked.
  const viewKey = () => JSON.stringify([...["park", "operator", "tech", "window"].map((id) => $(id).value), state.lang,
    ["interference", ...Object.keys(OPTIONAL)].filter(layerOn)]);
  let inflight = null;
  let again = false;
  async function refresh() {
    if (!state.key) return;
    const key = viewKey();
    if (inflight && inflight.key === key) { again = true; return; }
    const seq = ++state.seq;
    inflight = { key, seq };
    try {
      const f = filters();
      const park = $("park").value;
      const [parks, cells, zones, gaps, summary, oee, energy, interference, predicted, bestserver, sites] = await Promise.all([
        api("parks").catch(() => ({ items: [] })),
        api("coverage/cells", filters({ limit: "5000" })), api("coverage/dead-zones", f), api("coverage/gaps", f).catch(() => ({ features: [] })),
        api("coverage/summary", f), api("factory/oee", filters({ level: "line" })), api("factory/energy", filters({ level: "factory" })),
        layerOn("interference") ? api("coverage/interference-zones", f) : Promise.resolve(null),
        fetchOptional("predicted", OPTIONAL.predicted, f), fetchOptional("bestserver", OPTIONAL.bestserver, f),
        fetchOptional("sites", OPTIONAL.sites, new URLSearchParams(park ? { park } : {})),
      ]);
      if (seq !== state.seq) { document.body.dataset.dropped = String(Number(document.body.dataset.dropped || 0) + 1); return; }
      state.parks = items(parks);
      const sum = items(summary);
      const names = new Map(state.parks.map((p) => [p.id, p.name || p.id]));
      fillSelect("park", [...state.parks.map((p) => p.id), ...sum.map((s) => s.park)].map((id) => [id, names.get(id) || id]));
      fillSelect("operator", (cells.features || []).map((x) => x.properties.operator));
      // The first answer only picks the first view (one park, operator, technology): draw that one.
      if (pickDefaults(sum)) { refresh(); return; }
      drawParks(); drawGaps(gaps); drawCells(cells); drawZones(zones); drawInterference(interference);
      drawPredicted(predicted); drawBestServer(bestserver); drawSites(sites);
      rows("summary", sum, (s) => {
        const sh = s.area_share_by_class || {};
        return [td(`${esc(s.operator)}${park ? "" : `<br><small>${esc(s.park)}</small>`}`), td(esc(s.tech)), td(pct(s.park_area_measured_share), 1),
          td(pct((sh.excellent || 0) + (sh.good || 0)), 1), td(`${s.dead_zones ?? 0} (${fmt((s.dead_zone_area_m2 || 0) / 1e4)} ha)`, 1)];
      });
      rows("oee", items(oee), (o) => [td(esc([o.factory, o.line].filter(Boolean).join(" / ") || o.key || o.id)), td(pct(o.availability), 1), td(o.ideal_cycle_suspect ? `<span class="warn" title="${esc(t("ideal_cycle_suspect"))}">⚠ ${pct(o.performance)}</span>` : pct(o.performance), 1), td(pct(o.quality), 1), td(`<b>${pct(o.oee)}</b>`, 1)]);
      rows("energy", items(energy), (e) => [td(esc(e.factory || e.key || e.id)), td(fmt(e.energy_kwh), 1), td(fmt(e.peak_kw), 1)]);
      renderLegend();
      await Promise.all(hooks.map((h) => h(seq).catch((err) => console.warn("panel:", err.message))));
      if (seq !== state.seq) return;
      $("updated").textContent = `${t("updated")} ${new Date().toLocaleTimeString()}`;
      document.body.dataset.refreshed = String(Date.now());
    } catch (err) {
      console.warn("refresh failed:", err.message);
    } finally {
      if (inflight && inflight.seq === seq) {
        inflight = null;
        if (again) { again = false; refresh(); }
      }
    }
  }
  for (const id of ["park", "operator", "tech", "window"]) $(id).addEventListener("change", refresh);
  Object.assign(window.PW, { hooks, t, esc, fmt, pct, ago, when, items, windowRange, filters, td, rows, map, refresh });

  // ---- live stream (Server-Sent Events over fetch, so the key travels in a header) -----------
  let streamAbort = null;
  async function startStream() {
    if (!state.key) return;
    if (streamAbort) streamAbort.abort();
    streamAbort = new AbortController();
    const live = $("live");
    try {
      const res = await fetch("/api/v1/stream", { headers: { ...auth(), Accept: "text/event-stream" }, signal: streamAbort.signal });
      if (!res.ok) throw new Error(`stream ${res.status}`);
      live.className = "live on"; state.live = "live"; $("live-text").textContent = t("live");
      const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (!data) continue;
          const ev = JSON.parse(data);
          if (state.lastEvent === null || ev.version !== state.lastEvent) { state.lastEvent = ev.version; refresh(); }
          document.body.dataset.events = String(Number(document.body.dataset.events || 0) + 1);
        }
      }
      throw new Error("stream ended");
    } catch (err) {
      if (err.name === "AbortError") return;
      live.className = "live err"; state.live = "offline"; $("live-text").textContent = t("offline");
      setTimeout(startStream, 3000);
    }
  }

  loadKey(); applyLang(); syncLayers();
  // Panels defined in later scripts register their hooks first; then the first refresh runs.
  window.addEventListener("DOMContentLoaded", () => { probeOptional().then(refresh); startStream(); });
  setInterval(refresh, 60000); // a safety net; the stream drives updates
})();
