// parkwatch alarm panel: the alarm list with acknowledge / shelve / unshelve, and the ISA-18.2
// KPIs. Self-contained: renders into <section id="alarms-panel"> when the page has one, reads the
// API key the dashboard keeps (sessionStorage "pw.key", or #key=... in the URL) and follows the
// page's park selector (#park) when there is one. No build step, no dependencies.
(() => {
  "use strict";
  const REFRESH_MS = 10000;
  const PRIORITY = { critical: 0, high: 1, medium: 2, low: 3 };
  const STATE_TEXT = {
    active_unacknowledged: "active, unacknowledged",
    active_acknowledged: "active, acknowledged",
    cleared_unacknowledged: "cleared, unacknowledged",
    cleared: "cleared",
    shelved: "shelved",
    suppressed: "suppressed",
    out_of_service: "out of service",
  };
  const CSS = `
#alarms-panel .ap-kpis{display:flex;flex-wrap:wrap;gap:.4rem 1rem;font-size:.85em;margin:.3rem 0 .6rem}
#alarms-panel .ap-kpis b{font-variant-numeric:tabular-nums}
#alarms-panel table{width:100%;border-collapse:collapse;font-size:.85em}
#alarms-panel td,#alarms-panel th{padding:.2rem .3rem;border-bottom:1px solid #8883;text-align:left;vertical-align:top}
#alarms-panel .ap-prio{display:inline-block;min-width:4.5em;padding:0 .3em;border-radius:.3em;color:#fff;font-size:.8em;text-align:center}
#alarms-panel .ap-critical{background:#b00020}#alarms-panel .ap-high{background:#d9480f}
#alarms-panel .ap-medium{background:#b08900}#alarms-panel .ap-low{background:#5c7080}
#alarms-panel tr.ap-active_unacknowledged td{font-weight:600}
#alarms-panel tr.ap-cleared td,#alarms-panel tr.ap-suppressed td,#alarms-panel tr.ap-out_of_service td{opacity:.6}
#alarms-panel button{font-size:.8em;margin:0 .15em .15em 0}
#alarms-panel .ap-shelve-form{display:flex;gap:.3em;margin-top:.2em}
#alarms-panel .ap-shelve-form input[type=number]{width:4.5em}
#alarms-panel .ap-status{font-size:.8em;min-height:1.2em}
#alarms-panel .ap-status.ap-error{color:#b00020}`;

  const panel = document.getElementById("alarms-panel");
  if (!panel) return;
  const style = document.createElement("style");
  style.textContent = CSS;
  document.head.appendChild(style);
  panel.innerHTML = `
    <h2>Alarms</h2>
    <div class="ap-kpis" data-role="kpis"></div>
    <div class="ap-status" data-role="status" role="status"></div>
    <table><thead><tr><th>Priority</th><th>State</th><th>Source</th><th>Message</th><th>Raised</th><th></th></tr></thead>
    <tbody data-role="rows"></tbody></table>`;
  const $ = (role) => panel.querySelector(`[data-role="${role}"]`);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

  function key() {
    const m = location.hash.match(/key=([^&]+)/);
    return (m && decodeURIComponent(m[1])) || sessionStorage.getItem("pw.key") || "";
  }
  function park() {
    const sel = document.getElementById("park");
    return sel ? sel.value : "";
  }
  async function call(method, path, body) {
    const res = await fetch(`/api/v1/${path}`, {
      method,
      headers: { Authorization: `Bearer ${key()}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const msg = (data && data.error && data.error.message) || `HTTP ${res.status}`;
      throw new Error(res.status === 403 ? `not allowed: ${msg}` : msg);
    }
    return data;
  }
  function status(text, error) {
    const el = $("status");
    el.textContent = text || "";
    el.classList.toggle("ap-error", !!error);
  }

  function buttons(a) {
    const out = [];
    if (a.state === "active_unacknowledged" || a.state === "cleared_unacknowledged") {
      out.push(`<button type="button" data-action="ack" data-id="${a.id}">Acknowledge</button>`);
    }
    if (a.state === "shelved") {
      out.push(`<button type="button" data-action="unshelve" data-id="${a.id}">Unshelve</button>`);
    } else if (a.state !== "cleared") {
      out.push(`<button type="button" data-action="shelve" data-id="${a.id}">Shelve…</button>`);
    }
    return out.join("");
  }
  function row(a) {
    const extra = a.state === "shelved" ? `<br><small>until ${esc(when(a.shelved_until))}: ${esc(a.shelve_reason)}</small>`
      : a.state === "suppressed" ? `<br><small>${esc(a.suppressed_by)}</small>`
      : a.acknowledged_by ? `<br><small>ack ${esc(a.acknowledged_by)}</small>` : "";
    return `<tr class="ap-${esc(a.state)}" data-alarm="${a.id}">
      <td><span class="ap-prio ap-${esc(a.priority)}">${esc(a.priority)}</span></td>
      <td data-role="state">${esc(STATE_TEXT[a.state] || a.state)}${extra}</td>
      <td>${esc(a.park)}<br><small>${esc(a.source)}</small></td>
      <td>${esc(a.message)}<br><small>${esc(a.rule_id)}</small></td>
      <td>${esc(when(a.raised_at))}</td>
      <td>${buttons(a)}</td></tr>`;
  }
  function kpis(k) {
    const prio = k.priority_distribution || {};
    $("kpis").innerHTML = [
      ["per day", (k.alarms_per_day ?? 0).toFixed(1)],
      ["max per 10 min", k.alarms_per_10min_max],
      ["time in flood", pct(k.flood_share)],
      ["chattering", (k.chattering || []).length],
      ["stale (>24 h)", (k.stale || []).length],
      ["top 10 share", pct(k.top10_share)],
      ["priorities L/M/H/C", ["low", "medium", "high", "critical"].map((p) => Math.round(100 * (prio[p] || 0))).join("/") + " %"],
    ].map(([name, v]) => `<span data-kpi="${esc(name)}">${esc(name)}: <b>${esc(v)}</b></span>`).join("");
  }

  let busy = false;
  let again = false;
  async function refresh() {
    if (!key()) return;
    if (busy) { again = true; return; }  // an action during a refresh: refresh once more after it
    busy = true;
    try {
      const q = park() ? `park=${encodeURIComponent(park())}` : "";
      const [list, k] = await Promise.all([call("GET", `alarms?${q}`), call("GET", `alarms/kpis?${q}`)]);
      const items = (list.items || []).slice().sort((a, b) =>
        (a.state === "cleared") - (b.state === "cleared") || PRIORITY[a.priority] - PRIORITY[b.priority] || (b.raised_at || "").localeCompare(a.raised_at || ""));
      $("rows").innerHTML = items.length ? items.slice(0, 100).map(row).join("") : `<tr><td colspan="6">No alarms.</td></tr>`;
      kpis(k);
    } catch (e) {
      status(`alarms: ${e.message}`, true);
    } finally {
      busy = false;
      panel.dataset.refreshed = String(Date.now());
      if (again) { again = false; refresh(); }
    }
  }

  panel.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const id = b.dataset.id;
    try {
      if (b.dataset.action === "ack") {
        await call("POST", `alarms/${id}/acknowledge`, {});
        status(`alarm ${id} acknowledged`);
      } else if (b.dataset.action === "unshelve") {
        await call("POST", `alarms/${id}/unshelve`);
        status(`alarm ${id} unshelved`);
      } else if (b.dataset.action === "shelve") {
        const cell = b.parentElement;
        if (!cell.querySelector(".ap-shelve-form")) {
          cell.insertAdjacentHTML("beforeend", `<form class="ap-shelve-form" data-id="${id}">
            <input type="number" name="minutes" min="1" max="10080" value="60" aria-label="minutes">
            <input name="reason" required placeholder="reason" aria-label="reason">
            <button type="submit">OK</button></form>`);
        }
        return;
      }
    } catch (e) {
      status(e.message, true);
    }
    refresh();
  });
  panel.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await call("POST", `alarms/${f.dataset.id}/shelve`, { minutes: Number(f.minutes.value), reason: f.reason.value });
      status(`alarm ${f.dataset.id} shelved`);
    } catch (e) {
      status(e.message, true);
    }
    refresh();
  });
  const sel = document.getElementById("park");
  if (sel) sel.addEventListener("change", refresh);
  window.addEventListener("hashchange", refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
