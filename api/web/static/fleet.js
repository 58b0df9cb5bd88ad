// The gateway fleet: fixed gateways (a site with a position in the registry) apart from mobile
// probes and survey vehicles (no fixed position); sortable tables; a gateway's page with its status
// history, backlog, loss ledger and uplink signal.
(() => {
  "use strict";
  const PW = window.PW;
  const { t, esc, fmt, ago, when, items, windowRange } = PW;
  const $ = (id) => document.getElementById(id);
  const sortBy = { "fleet-fixed": ["gw", 1], "fleet-mobile": ["gw", 1] };
  let groups = { "fleet-fixed": [], "fleet-mobile": [] };

  const status = (g) => (g.online === true ? "online" : g.online === false ? "offline" : "unknown");
  const sortValue = (g, key) => {
    if (key === "status") return status(g);
    if (key === "missing") return g.loss ? g.loss.missing : null;
    if (key === "rsrp") return g.uplink ? g.uplink.rsrp_dbm : null;
    return g[key];
  };
  function compare(key, dir) {
    return (a, b) => {
      const x = sortValue(a, key); const y = sortValue(b, key);
      if (x == null && y == null) return 0;
      if (x == null) return 1; // unknowns last, whichever the direction
      if (y == null) return -1;
      return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true })) * dir;
    };
  }
  function renderTable(id) {
    const [key, dir] = sortBy[id];
    const list = [...groups[id]].sort(compare(key, dir));
    document.querySelectorAll(`#${id} th[data-sort]`).forEach((th) => {
      if (th.dataset.sort === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending"); else th.removeAttribute("aria-sort");
    });
    const tbody = $(id).querySelector("tbody");
    tbody.innerHTML = list.length ? list.map((g) => {
      const st = status(g); const up = g.uplink || {};
      return `<tr data-gw="${esc(g.gw)}"><td><button type="button" class="gw-link" data-gw="${esc(g.gw)}" data-park="${esc(g.park)}">${esc(g.gw)}</button>${$("park").value ? "" : `<br><small>${esc(g.park)}</small>`}</td>` +
        `<td><span class="badge ${st}">${t(st === "offline" ? "offline_gw" : st)}</span></td><td>${ago(g.last_seen_ms)}</td>` +
        `<td class="num">${g.backlog ?? "–"}</td><td class="num">${g.loss ? g.loss.missing : "–"}</td>` +
        `<td class="num">${up.rsrp_dbm != null ? `${fmt(up.rsrp_dbm, 0)} dBm` : "–"}</td></tr>`;
    }).join("") : `<tr><td colspan="6" class="empty">${t("no_data")}</td></tr>`;
    $(id).dataset.rows = String(list.length);
  }
  document.querySelectorAll("table.sortable th[data-sort]").forEach((th) => th.addEventListener("click", () => {
    const id = th.closest("table").id;
    const [key, dir] = sortBy[id];
    sortBy[id] = [th.dataset.sort, key === th.dataset.sort ? -dir : 1];
    renderTable(id);
  }));

  PW.hooks.push(async (seq) => {
    const park = $("park").value;
    const parks = PW.state.parks.filter((p) => !park || p.id === park);
    const [fleet, ...sites] = await Promise.all([
      PW.api("gateways", new URLSearchParams(park ? { park } : {})),
      ...parks.map((p) => PW.api(`parks/${encodeURIComponent(p.id)}/gateways`).catch(() => ({ items: [] }))),
    ]);
    if (seq !== PW.state.seq) return;
    const fixed = new Set(sites.flatMap((s) => items(s)).filter((s) => s.lat != null && s.lon != null).map((s) => `${s.park}/${s.gw}`));
    const all = items(fleet);
    groups = {
      "fleet-fixed": all.filter((g) => fixed.has(`${g.park}/${g.gw}`)),
      "fleet-mobile": all.filter((g) => !fixed.has(`${g.park}/${g.gw}`)),
    };
    renderTable("fleet-fixed"); renderTable("fleet-mobile");
  });

  // ---- a gateway's page ---------------------------------------------------------------------
  const page = document.createElement("div");
  page.id = "gateway-page"; page.hidden = true; page.setAttribute("role", "dialog");
  document.body.appendChild(page);
  let plot = null;
  function close() { page.hidden = true; if (plot) { plot.destroy(); plot = null; } }
  page.addEventListener("click", (e) => { if (e.target === page || e.target.closest(".close")) close(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !page.hidden) close(); });
  document.addEventListener("click", (e) => {
    const link = e.target.closest && e.target.closest("button.gw-link");
    if (link) open(link.dataset.park, link.dataset.gw);
  });

  async function open(park, gw) {
    const { from, to } = windowRange();
    const q = new URLSearchParams({ park, from: from.toISOString(), to: to.toISOString() });
    const [g, hist] = await Promise.all([
      PW.api(`gateways/${encodeURIComponent(gw)}`, new URLSearchParams({ park })),
      PW.api(`gateways/${encodeURIComponent(gw)}/history`, q).catch(() => ({ items: [], total: 0 })),
    ]);
    const up = g.uplink || {}; const loss = g.loss || {};
    const kv = (rows) => `<table>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</table>`;
    const changes = [];
    for (const p of hist.items) if (!changes.length || changes[changes.length - 1].state !== p.state) changes.push(p);
    page.innerHTML = `<div class="sheet"><header><h2>${esc(gw)} <small>${esc(park)}</small></h2><button type="button" class="close">✕ ${t("close")}</button></header>
      <div class="gw-grid">
        <section><h3>${t("status")}</h3>${kv([[t("status"), `<span class="badge ${status(g)}">${t(status(g) === "offline" ? "offline_gw" : status(g))}</span>`], [t("last_seen"), `${when(g.last_seen_ms)} (${ago(g.last_seen_ms)})`], [t("agent"), esc(g.agent_version ?? "–")], [t("config"), esc(g.config_error || g.config_hash || "–")]])}</section>
        <section><h3>${t("uplink")}</h3>${kv([[t("operator"), esc(up.operator ?? "–")], [t("tech"), esc(up.tech ?? "–")], ["RSRP", `${fmt(up.rsrp_dbm)} dBm`], ["SINR", `${fmt(up.sinr_db)} dB`]])}</section>
        <section><h3>${t("backlog")}</h3>${kv([[t("backlog"), g.backlog ?? "–"], [t("buffer_fill"), g.buffer_pct != null ? `${fmt(g.buffer_pct)} %` : "–"], [t("unconfirmed"), g.unconfirmed ?? "–"], [t("dropped"), g.dropped ?? "–"], [t("expired"), g.expired ?? "–"]])}</section>
        <section id="gw-ledger"><h3>${t("loss_ledger")}</h3>${kv([[t("batches_received"), loss.received ?? "–"], [t("batches_missing"), loss.missing ?? "–"], [t("duplicated"), loss.duplicated ?? "–"], [t("late"), loss.late ?? "–"], [t("last_seq"), loss.last_seq ?? "–"], [t("restarts"), loss.restarts ?? "–"]])}</section>
      </div>
      <h3>${t("status_history")} <small>(${hist.total} ${t("reports")})</small></h3>
      <div id="gw-chart" class="chart"></div>
      <ol id="gw-changes" class="changes">${changes.slice(-20).reverse().map((p) => `<li>${when(p.ts_ms)} — <span class="badge ${p.state === "online" ? "online" : p.state === "offline" ? "offline" : "unknown"}">${esc(p.state ?? "?")}</span></li>`).join("") || `<li class="empty">${t("no_data")}</li>`}</ol>
    </div>`;
    page.hidden = false;
    page.dataset.gw = gw;
    const pts = hist.items;
    const box = $("gw-chart");
    box.dataset.points = String(pts.length);
    if (pts.length) {
      plot = new uPlot({
        width: Math.max(240, box.clientWidth || 600), height: 180,
        scales: { n: { range: (u, lo, hi) => [0, Math.max(1, hi) * 1.1] } },
        axes: [{}, { scale: "n", label: t("backlog") }, { scale: "dBm", side: 1, label: "RSRP dBm", grid: { show: false } }],
        series: [{}, { label: t("backlog"), scale: "n", stroke: "#0b6bcb", width: 2, paths: uPlot.paths.stepped({ align: 1 }) },
          { label: "RSRP", scale: "dBm", stroke: "#e66101", width: 1.5 },
          { label: t("online"), scale: "n", stroke: "#2e7d32", width: 1, paths: uPlot.paths.stepped({ align: 1 }) }],
      }, [pts.map((p) => p.ts_ms / 1000), pts.map((p) => p.backlog), pts.map((p) => p.uplink_rsrp_dbm), pts.map((p) => (p.state === "online" ? 1 : 0))], box);
    }
  }
  PW.openGateway = open;
})();
