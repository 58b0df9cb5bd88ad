// Survey upload: a planner sends a drive-test file (CSV, JSON Lines, GeoJSON points) to
// POST /api/v1/imports for the park chosen above; a running ingester imports it, and this panel
// follows the job (GET /api/v1/imports/{id}) until its report is in, then redraws the map.
(() => {
  "use strict";
  const panel = document.getElementById("imports-panel");
  const PW = window.PW;
  if (!panel || !PW) return;
  const TEXT = {
    en: {
      title: "Upload a survey", file: "File", mapping: "Columns", dry: "check only (store nothing)",
      send: "Upload", pick_file: "choose a survey file first", pick_park: "choose the park the survey belongs to first",
      queued: "queued: {rows} rows; a running ingester imports it", running: "importing: {done} of {rows} rows",
      done: "done: {stored} of {rows} readings stored, {cells} map cells", refused: "refused",
      failed: "failed", gave_up: "still queued: is an ingester running with this registry? (docs/import.md)",
    },
    vi: {
      title: "Tải lên dữ liệu khảo sát", file: "Tệp", mapping: "Cột", dry: "chỉ kiểm tra (không lưu)",
      send: "Tải lên", pick_file: "hãy chọn tệp khảo sát trước", pick_park: "hãy chọn khu công nghiệp của dữ liệu khảo sát trước",
      queued: "đã xếp hàng: {rows} dòng; bộ thu nhận đang chạy sẽ nhập", running: "đang nhập: {done}/{rows} dòng",
      done: "xong: lưu {stored}/{rows} bản ghi, {cells} ô bản đồ", refused: "bị từ chối",
      failed: "thất bại", gave_up: "vẫn đang chờ: có bộ thu nhận nào đang chạy với sổ đăng ký này không? (docs/import.md)",
    },
  };
  const tr = (k, vars) => ((TEXT[PW.state.lang] || TEXT.en)[k] || TEXT.en[k]).replace(/\{(\w+)\}/g, (_, v) => String((vars || {})[v] ?? ""));
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  panel.innerHTML = `
    <h2 data-role="title"></h2>
    <form data-role="form" class="imports-form">
      <label><span data-role="l-file"></span> <input type="file" data-role="file" accept=".csv,.txt,.tsv,.jsonl,.ndjson,.geojson,.json"></label>
      <label><span data-role="l-mapping"></span> <select data-role="mapping"><option value="gnettrack">G-NetTrack</option><option value="generic">lat, lon, time, operator, tech, rsrp…</option></select></label>
      <label><input type="checkbox" data-role="dry"> <span data-role="l-dry"></span></label>
      <button type="submit" data-role="send"></button>
    </form>
    <div data-role="status" role="status" class="imports-status"></div>`;
  const $ = (role) => panel.querySelector(`[data-role="${role}"]`);
  function labels() {
    $("title").textContent = tr("title"); $("l-file").textContent = tr("file"); $("l-mapping").textContent = tr("mapping");
    $("l-dry").textContent = tr("dry"); $("send").textContent = tr("send");
  }
  function status(text, error) {
    $("status").innerHTML = text;
    $("status").classList.toggle("error", Boolean(error));
  }
  // The API accepts letters, digits, space, . _ ( ) -: anything else in a file name becomes "_".
  const safeName = (name) => (name.replace(/[^A-Za-z0-9 ._()-]/g, "_").replace(/^[^A-Za-z0-9]+/, "") || "survey.csv").slice(0, 200);
  async function call(method, path, body) {
    const res = await fetch(`/api/v1/${path}`, {
      method, body, headers: { Authorization: `Bearer ${PW.state.key}`, "Content-Type": "application/octet-stream" },
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || `${res.status}`);
    return data;
  }
  function show(job) {
    if (job.status === "queued") status(esc(tr("queued", { rows: job.rows })));
    else if (job.status === "running") status(esc(tr("running", { done: job.rows_done, rows: job.rows })));
    else if (job.status === "failed") status(`${esc(tr("failed"))}: ${esc(job.error)}`, true);
    else {
      const r = job.report || {};
      const refused = Object.entries(r.refused || {}).map(([k, n]) => `${esc(k)} ×${n}`).join(", ");
      status(esc(tr("done", { stored: r.stored, rows: r.rows, cells: r.h3_cells })) + (refused ? `<br>${esc(tr("refused"))}: ${refused}` : ""));
    }
    panel.dataset.job = job.id;
    panel.dataset.status = job.status;
  }
  async function follow(id) {
    const deadline = Date.now() + 10 * 60 * 1000;
    while (Date.now() < deadline) {
      const job = await call("GET", `imports/${encodeURIComponent(id)}`);
      show(job);
      if (job.status === "done") { PW.refresh(); return; }
      if (job.status === "failed") return;
      await new Promise((ok) => setTimeout(ok, 2000));
    }
    status(esc(tr("gave_up")), true);
  }
  $("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = $("file").files[0];
    const park = (document.getElementById("park") || {}).value;
    if (!file) { status(esc(tr("pick_file")), true); return; }
    if (!park) { status(esc(tr("pick_park")), true); return; }
    const q = new URLSearchParams({ park, mapping: $("mapping").value, filename: safeName(file.name), dry_run: String($("dry").checked) });
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone; // times without an offset: the planner's own zone
    if (zone) q.set("timezone", zone);
    $("send").disabled = true;
    try {
      const job = await call("POST", `imports?${q}`, file);
      show(job);
      follow(job.id).catch((err) => status(esc(err.message), true));
    } catch (err) {
      status(esc(err.message), true);
    } finally {
      $("send").disabled = false;
    }
  });
  labels();
  PW.hooks.push(async () => labels()); // the language may have changed
})();
