// parkwatch built-in dashboard: one page, no build step, no CDN. Talks to /api/v1 with the API key
// (from the URL fragment #key=..., or typed in), and listens to the live event stream.
(() => {
  "use strict";
  const CLASS_COLORS = { excellent: "#1a9850", good: "#91cf60", fair: "#fee08b", poor: "#fc8d59", none: "#d73027", unknown: "#bdbdbd" };
  const CLASSES = ["excellent", "good", "fair", "poor", "none"];
  const $ = (id) => document.getElementById(id);
  const state = { lang: localStorage.getItem("pw.lang") || "en", key: null, seq: 0, lastEvent: null, live: null, parks: [], fittedFor: null };

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
    loadKey(); startStream(); refresh();
  });
  function filters(extra) {
    const p = new URLSearchParams(extra || {});
    const hours = Number($("window").value);
    p.set("from", new Date(Date.now() - hours * 3600e3).toISOString());
    for (const id of ["park", "operator", "tech"]) { if ($(id).value) p.set(id, $(id).value); }
    return p;
  }
  async function api(path, params) {
    const res = await fetch(`/api/v1/${path}?${params || ""}`, { headers: { Authorization: `Bearer ${state.key}` } });
    if (res.status === 401 || res.status === 403) {
      $("keybar").hidden = false; $("key-error").textContent = t("bad_key");
      throw new Error(`${path}: ${res.status}`);
    }
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
  }

  // ---- map ----------------------------------------------------------------------------------
  const map = L.map("map", { zoomControl: true, preferCanvas: false }).setView([20.82, 106.72], 12);
  L.control.scale({ metric: true, imperial: false }).addTo(map);
  map.on("moveend", () => { $("map").dataset.bounds = map.getBounds().toBBoxString(); });
  const layers = { roads: L.layerGroup().addTo(map), parks: L.layerGroup().addTo(map), gaps: L.layerGroup().addTo(map), cells: L.layerGroup().addTo(map), zones: L.layerGroup().addTo(map) };

  // Base map: the configured XYZ tiles, or (no tile_url, or tiles that never load) the offline map:
  // park boundaries with their names, the scale bar and the parks' road lines when configured.
  function setBasemap(mode) {
    $("map").dataset.basemap = mode;
    $("map").classList.toggle("offline", mode !== "tiles");
    $("basemap-note").hidden = mode !== "offline-fallback";
  }
  function drawRoads(fc) {
    if (!fc) return;
    L.geoJSON(fc, { interactive: false, style: { color: "#8a8f99", weight: 3, opacity: 0.7, lineCap: "round" } }).addTo(layers.roads);
    $("map").dataset.roads = String((fc.features || []).length);
  }
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

  function renderLegend() {
    const rows = CLASSES.map((c) => `<div><i style="background:${CLASS_COLORS[c]}"></i>${t(c)}</div>`).join("");
    $("legend").innerHTML = `<b>${t("legend_title")}</b>${rows}` +
      `<div><i style="border:2px dashed #000;background:transparent"></i>${t("dead_zone")}</div>` +
      `<div><i style="background:repeating-linear-gradient(45deg,#999 0 2px,transparent 2px 5px)"></i>${t("survey_gap")}</div>`;
  }
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)}%`);
  function ago(ms) {
    if (!ms) return "–";
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return s < 90 ? `${s.toFixed(0)} ${t("ago_s")}` : s < 5400 ? `${(s / 60).toFixed(0)} ${t("ago_m")}` : `${(s / 3600).toFixed(1)} ${t("ago_h")}`;
  }

  function drawCells(fc) {
    layers.cells.clearLayers();
    const bounds = [];
    for (const f of fc.features || []) {
      const p = f.properties;
      const layer = L.geoJSON(f, { style: { color: "#555", weight: 0.4, fillColor: CLASS_COLORS[p.class] || CLASS_COLORS.unknown, fillOpacity: p.insufficient ? 0.3 : 0.7 } });
      layer.bindTooltip(`${esc(p.operator)} ${esc(p.tech)} · ${t(p.class)}${p.insufficient ? ` (${t("insufficient")})` : ""}<br>RSRP p10 ${fmt(p.rsrp_p10_dbm)} dBm · ${t("median")} ${fmt(p.rsrp_median_dbm)} dBm<br>SINR ${fmt(p.sinr_median_db)} dB · ${p.samples} ${t("samples")}`);
      layer.addTo(layers.cells);
      bounds.push(layer.getBounds());
    }
    fitView(bounds.length ? bounds.reduce((a, b) => a.extend(b)) : null);
    $("map").dataset.cells = String((fc.features || []).length);
  }
  function drawZones(fc) {
    layers.zones.clearLayers();
    const list = $("zones"); list.innerHTML = "";
    (fc.features || []).forEach((f) => {
      const p = f.properties;
      const layer = L.geoJSON(f, { style: { color: "#000", weight: 2.5, dashArray: "6 4", fill: true, fillColor: "#d73027", fillOpacity: 0.15 } });
      const label = `${esc((p.operators || []).join(", "))} ${esc(p.tech || "")} · ${(p.area_m2 / 1e4).toFixed(1)} ha · ${p.cell_count} ${t("cells")} · ${t("worst")} ${fmt(p.worst_rsrp_dbm)} dBm`;
      layer.bindTooltip(`<b>${t("dead_zone")} #${p.rank}</b> ${esc(p.park)}<br>${label}`);
      layer.addTo(layers.zones);
      if (list.children.length < 8) {
        const li = document.createElement("li");
        li.innerHTML = `${esc(p.park)} — ${label}`;
        li.addEventListener("click", () => map.fitBounds(layer.getBounds(), { maxZoom: 16 }));
        list.appendChild(li);
      }
    });
    $("map").dataset.zones = String((fc.features || []).length);
  }
  // Park boundaries are always drawn; the view fits the chosen park, or every park for "All parks".
  function drawParks() {
    layers.parks.clearLayers();
    for (const p of state.parks) {
      if (!p.boundary) continue;
      L.geoJSON(p.boundary, { interactive: false, style: { color: "#13233a", weight: 2, fill: false, opacity: 0.8 } })
        .bindTooltip(esc(p.name || p.id), { permanent: true, direction: "center", className: "park-label" }).addTo(layers.parks);
    }
    $("map").dataset.parks = String(state.parks.filter((p) => p.boundary).length);
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
  function drawGaps(fc) {
    layers.gaps.clearLayers();
    L.geoJSON(fc, { style: { color: "#888", weight: 0.5, fillColor: "#999", fillOpacity: 0.25, dashArray: "2 3" } }).addTo(layers.gaps);
    $("map").dataset.gaps = String((fc.features || []).length);
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
  // The first view shows one park, one operator and LTE: overlaid operators hide each other.
  function pickDefaults(summary) {
    if (defaulted || !summary.length) return false;
    defaulted = true;
    const first = summary[0];
    let changed = false;
    for (const [id, v] of [["park", first.park], ["operator", first.operator], ["tech", first.tech]]) {
      if (!$(id).value && v) { fillSelect(id, [v]); $(id).value = v; changed = true; }
    }
    return changed;
  }

  // Every refresh has a number; an answer that arrives after a newer refresh started is dropped, so
  // a slow answer for the previous park never draws over (or zooms to) the one chosen since.
  async function refresh() {
    if (!state.key) return;
    const seq = ++state.seq;
    try {
      const f = filters();
      const [parks, cells, zones, gaps, summary, oee, energy, fleet, alarms] = await Promise.all([
        api("parks").catch(() => ({ items: [] })),
        api("coverage/cells", filters({ limit: "5000" })), api("coverage/dead-zones", f), api("coverage/gaps", f).catch(() => ({ features: [] })),
        api("coverage/summary", f), api("factory/oee", filters({ level: "line" })), api("factory/energy", filters({ level: "factory" })),
        api("gateways", new URLSearchParams($("park").value ? { park: $("park").value } : {})), api("alarms", new URLSearchParams($("park").value ? { park: $("park").value } : {})),
      ]);
      if (seq !== state.seq) { document.body.dataset.dropped = String(Number(document.body.dataset.dropped || 0) + 1); return; }
      state.parks = items(parks);
      drawParks(); drawGaps(gaps); drawCells(cells); drawZones(zones);
      fillSelect("operator", (cells.features || []).map((x) => x.properties.operator));
      const sum = items(summary);
      const names = new Map(state.parks.map((p) => [p.id, p.name || p.id]));
      fillSelect("park", [...state.parks.map((p) => p.id), ...sum.map((s) => s.park), ...items(fleet).map((g) => g.park)].map((id) => [id, names.get(id) || id]));
      if (pickDefaults(sum)) { refresh(); return; }
      rows("summary", sum, (s) => {
        const sh = s.area_share_by_class || {};
        return [td(`${esc(s.operator)}${$("park").value ? "" : `<br><small>${esc(s.park)}</small>`}`), td(esc(s.tech)), td(pct(s.park_area_measured_share), 1),
          td(pct((sh.excellent || 0) + (sh.good || 0)), 1), td(`${s.dead_zones ?? 0} (${fmt((s.dead_zone_area_m2 || 0) / 1e4)} ha)`, 1)];
      });
      rows("oee", items(oee), (o) => [td(esc([o.factory, o.line].filter(Boolean).join(" / ") || o.key || o.id)), td(pct(o.availability), 1), td(o.ideal_cycle_suspect ? `<span class="warn" title="${esc(t("ideal_cycle_suspect"))}">⚠ ${pct(o.performance)}</span>` : pct(o.performance), 1), td(pct(o.quality), 1), td(`<b>${pct(o.oee)}</b>`, 1)]);
      rows("energy", items(energy), (e) => [td(esc(e.factory || e.key || e.id)), td(fmt(e.energy_kwh), 1), td(fmt(e.peak_kw), 1)]);
      rows("fleet", items(fleet), (g) => {
        const st = g.online === true ? "online" : g.online === false ? "offline" : (g.state || "unknown");
        const lost = g.loss || {};
        return [td(esc(g.gw || g.id)), td(`<span class="badge ${st}">${t(st === "offline" ? "offline_gw" : st)}</span>`), td(ago(g.last_seen_ms)), td(g.backlog ?? "–", 1), td(lost.missing ?? "–", 1)];
      });
      const al = $("alarms"); const act = items(alarms).filter((a) => a.active !== false);
      al.innerHTML = act.length ? act.slice(0, 30).map((a) => `<li class="active">${esc(a.rule || a.name)} — ${esc(a.park || "")} ${esc(a.gw || a.device || a.dev || "")} ${a.value !== undefined ? `(${fmt(a.value)})` : ""}</li>`).join("") : `<li class="empty">${t("no_alarms")}</li>`;
      $("updated").textContent = `${t("updated")} ${new Date().toLocaleTimeString()}`;
      document.body.dataset.refreshed = String(Date.now());
    } catch (err) {
      console.warn("refresh failed:", err.message);
    }
  }
  for (const id of ["park", "operator", "tech", "window"]) $(id).addEventListener("change", refresh);

  // ---- live stream (Server-Sent Events over fetch, so the key travels in a header) -----------
  let streamAbort = null;
  async function startStream() {
    if (!state.key) return;
    if (streamAbort) streamAbort.abort();
    streamAbort = new AbortController();
    const live = $("live");
    try {
      const res = await fetch("/api/v1/stream", { headers: { Authorization: `Bearer ${state.key}`, Accept: "text/event-stream" }, signal: streamAbort.signal });
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

  loadKey(); applyLang(); refresh(); startStream();
  setInterval(refresh, 60000); // a safety net; the stream drives updates
})();
