// Trend charts of the dashboard (vendored uPlot): OEE with A/P/Q per line, energy and peak demand
// per factory, the alarm timeline, the RSRP distribution per operator, readings and loss per
// gateway. Every chart uses the page's one time window and park; it refreshes with the map.
(() => {
  "use strict";
  const PW = window.PW;
  const { t, esc, items, windowRange } = PW;
  const $ = (id) => document.getElementById(id);
  const PALETTE = ["#0b6bcb", "#e66101", "#1a9850", "#7b3294", "#d01c8b", "#4d4d4d", "#a6761d", "#1b9e77"];
  const plots = {};
  const choice = {}; // the line / factory each chart shows, kept across refreshes

  function draw(id, title, opts, data, picker) {
    const box = $(id);
    if (plots[id]) { plots[id].destroy(); delete plots[id]; }
    const points = data.length ? data[0].length : 0;
    box.dataset.series = String(Math.max(0, data.length - 1));
    box.dataset.points = String(points);
    box.innerHTML = `<div class="title">${title}${picker || ""}</div>`;
    if (!points) { box.insertAdjacentHTML("beforeend", `<div class="empty">${t("no_data")}</div>`); return; }
    const width = Math.max(200, box.clientWidth || 300);
    plots[id] = new uPlot({ width, height: 170, legend: { show: true }, cursor: { drag: { x: false, y: false } }, ...opts }, data, box);
  }
  // Charts follow their card's width (phone to wall screen).
  const resize = new ResizeObserver((entries) => {
    for (const e of entries) {
      const p = plots[e.target.id];
      if (p) p.setSize({ width: Math.max(200, e.target.clientWidth), height: 170 });
    }
  });
  document.querySelectorAll(".chart").forEach((el) => resize.observe(el));

  function picker(id, options, current) {
    if (options.length < 2) return "";
    return ` <select class="chart-pick" data-chart="${id}">${options.map(([v, label]) => `<option value="${esc(v)}"${v === current ? " selected" : ""}>${esc(label)}</option>`).join("")}</select>`;
  }
  document.addEventListener("change", (e) => {
    const sel = e.target.closest && e.target.closest("select.chart-pick");
    if (sel) { choice[sel.dataset.chart] = sel.value; render[sel.dataset.chart](); }
  });
  const secs = (ms) => ms / 1000;
  const pctAxis = { scale: "%", values: (u, vals) => vals.map((v) => `${Math.round(v * 100)}%`) };

  const last = {};
  const render = {
    "chart-oee": () => {
      const series = items(last.oee || {});
      const keys = series.map((s) => [`${s.park}/${s.factory}/${s.line}`, `${s.factory} / ${s.line}`]);
      const cur = keys.some(([k]) => k === choice["chart-oee"]) ? choice["chart-oee"] : (keys[0] || [])[0];
      const s = series.find((x) => `${x.park}/${x.factory}/${x.line}` === cur);
      const pts = s ? s.points : [];
      const data = pts.length ? [pts.map((p) => secs(p.t_ms)), ...["oee", "availability", "performance", "quality"].map((k) => pts.map((p) => p[k]))] : [];
      draw("chart-oee", t("chart_oee"), {
        scales: { "%": { range: [0, 1.05] } },
        axes: [{}, pctAxis],
        series: [{}, ...[["OEE", 3], ["A", 1.5], ["P", 1.5], ["Q", 1.5]].map(([label, width], i) => ({ label, scale: "%", stroke: PALETTE[i], width, spanGaps: false, value: (u, v) => (v == null ? "–" : `${(v * 100).toFixed(0)}%`) }))],
      }, data, picker("chart-oee", keys, cur));
    },
    "chart-energy": () => {
      const series = items(last.energy || {});
      const keys = series.map((s) => [`${s.park}/${s.factory}`, s.factory]);
      const cur = keys.some(([k]) => k === choice["chart-energy"]) ? choice["chart-energy"] : (keys[0] || [])[0];
      const s = series.find((x) => `${x.park}/${x.factory}` === cur);
      const pts = s ? s.points : [];
      const step = last.energy && last.energy.step_s ? last.energy.step_s : 3600;
      const stepLabel = step === 3600 ? t("per_hour") : `${t("per")} ${step % 3600 === 0 ? `${step / 3600} h` : `${step / 60} min`}`;
      const data = pts.length ? [pts.map((p) => secs(p.t_ms)), pts.map((p) => p.energy_kwh), pts.map((p) => p.peak_kw)] : [];
      draw("chart-energy", `${t("chart_energy")} (${stepLabel})`, {
        scales: { kWh: { range: (u, lo, hi) => [0, Math.max(1, hi) * 1.1] }, kW: { range: (u, lo, hi) => [0, Math.max(1, hi) * 1.1] } },
        axes: [{}, { scale: "kWh", label: "kWh" }, { scale: "kW", side: 1, label: "kW", grid: { show: false } }],
        series: [{},
          { label: t("energy_kwh"), scale: "kWh", stroke: PALETTE[0], fill: "rgba(11,107,203,.25)", paths: uPlot.paths.bars({ size: [0.8, 40] }) },
          { label: t("peak_kw"), scale: "kW", stroke: PALETTE[1], width: 2, points: { show: true } }],
      }, data, picker("chart-energy", keys, cur));
    },
    "chart-alarms": () => {
      const list = items(last.alarms || {});
      const { from, to } = windowRange();
      const n = 120; const step = (to - from) / n;
      const xs = []; const bySev = {};
      for (const a of list) bySev[a.severity || a.priority || "alarm"] = [];
      for (let i = 0; i <= n; i += 1) {
        const at = from.getTime() + i * step; xs.push(secs(at));
        for (const sev of Object.keys(bySev)) {
          bySev[sev].push(list.filter((a) => (a.severity || a.priority || "alarm") === sev && (a.raised_ms ?? Date.parse(a.raised_at)) <= at && ((a.cleared_ms ?? (a.cleared_at ? Date.parse(a.cleared_at) : null)) ?? Infinity) > at).length);
        }
      }
      const sevs = Object.keys(bySev);
      draw("chart-alarms", t("chart_alarms"), {
        scales: { n: { range: (u, lo, hi) => [0, Math.max(1, hi) + 0.5] } },
        axes: [{}, { scale: "n", label: t("active_alarms") }],
        series: [{}, ...sevs.map((sev, i) => ({ label: sev, scale: "n", stroke: sev === "critical" ? "#c62828" : PALETTE[i + 1], width: 2, paths: uPlot.paths.stepped({ align: 1 }) }))],
      }, sevs.length ? [xs, ...sevs.map((s) => bySev[s])] : []);
    },
    "chart-rsrp": () => {
      const feats = (last.cells && last.cells.features) || [];
      const ops = [...new Set(feats.map((f) => f.properties.operator))].sort();
      const lo = -140; const hi = -60; const w = 5;
      const xs = []; for (let v = lo; v < hi; v += w) xs.push(v + w / 2);
      const hist = ops.map((op) => {
        const vals = feats.filter((f) => f.properties.operator === op).map((f) => f.properties.rsrp_median_dbm).filter((v) => v != null);
        const counts = xs.map(() => 0);
        for (const v of vals) counts[Math.min(xs.length - 1, Math.max(0, Math.floor((v - lo) / w)))] += 1;
        return counts.map((c) => (vals.length ? c / vals.length : 0));
      });
      draw("chart-rsrp", t("chart_rsrp"), {
        scales: { x: { time: false }, "%": { range: (u, a, b) => [0, Math.max(0.05, b) * 1.1] } },
        axes: [{ label: "RSRP (dBm)" }, { ...pctAxis, label: t("share_of_cells") }],
        series: [{ label: "dBm" }, ...ops.map((op, i) => ({ label: op, scale: "%", stroke: PALETTE[i], width: 2, value: (u, v) => (v == null ? "–" : `${(v * 100).toFixed(0)}%`) }))],
      }, ops.length ? [xs, ...hist] : []);
    },
    "chart-gateways": () => {
      const gws = items(last.fleet || {});
      const names = gws.map((g) => g.gw);
      draw("chart-gateways", t("chart_gateways"), {
        scales: { x: { time: false, range: (u) => [-0.6, Math.max(0.6, names.length - 0.4)] }, n: { range: (u, a, b) => [0, Math.max(1, b) * 1.1] } },
        axes: [{ values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? names[v] || "" : "")), rotate: -30, space: 20 }, { scale: "n" }],
        series: [{ label: t("gateway"), value: (u, v) => names[v] || "" },
          { label: t("batches_received"), scale: "n", stroke: PALETTE[0], fill: "rgba(11,107,203,.35)", paths: uPlot.paths.bars({ size: [0.35, 30], align: -1 }) },
          { label: t("batches_missing"), scale: "n", stroke: "#c62828", fill: "rgba(198,40,40,.45)", paths: uPlot.paths.bars({ size: [0.35, 30], align: 1 }) }],
      }, names.length ? [names.map((_, i) => i), gws.map((g) => (g.loss ? g.loss.received : null)), gws.map((g) => (g.loss ? g.loss.missing : null))] : []);
    },
  };

  PW.hooks.push(async (seq) => {
    const { from, to } = windowRange();
    const park = $("park").value;
    const win = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
    if (park) win.set("park", park);
    const cellsQ = PW.filters({ limit: "5000" }); cellsQ.delete("operator");
    const [oee, energy, alarms, cells, fleet] = await Promise.all([
      PW.api("factory/oee/series", win), PW.api("factory/energy/series", win),
      PW.api("alarms", new URLSearchParams([...win, ["limit", "1000"]])).catch(() => ({ items: [] })),
      PW.api("coverage/cells", cellsQ), PW.api("gateways", new URLSearchParams(park ? { park } : {})),
    ]);
    if (seq !== PW.state.seq) return;
    Object.assign(last, { oee, energy, alarms, cells, fleet });
    for (const f of Object.values(render)) f();
  });
  PW.redrawCharts = () => { for (const f of Object.values(render)) f(); };
})();
