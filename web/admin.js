// The operators' dashboard: open incidents, every queue's counts, workers
// and last hour, the failed jobs (a page at a time) with retry and remove,
// pause and resume, a job lookup, and the log of operators' actions.
//
// It holds no token: signing in trades ADMIN_TOKEN for an HttpOnly,
// SameSite=Strict session cookie the browser sends by itself. Actions add
// the x-acme-admin header, which pages on other sites cannot send. All
// text goes into the page through textContent, never as HTML.

const REFRESH_MS = 5_000;
const FAILED_PAGE = 50;
const ACTION = { "x-acme-admin": "1" };
const SVG = "http://www.w3.org/2000/svg";

import { $, announce, notice } from "/ui.js";

let selected = null;
let failedOffset = 0;
let timer = null;

/** Calls the operator api; resolves to the JSON body (null for 204). */
async function call(path, { method = "GET", body, action = false } = {}) {
  const headers = action ? { ...ACTION } : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.error?.message ?? `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function showSignIn(message) {
  clearTimeout(timer);
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("sign-out-all").hidden = true;
  $("sign-in").hidden = false;
  $("admin-token-error").textContent = message ?? "";
  $("admin-token").focus();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await call("/api/admin/session", { method: "POST", body: { token: $("admin-token").value } });
    $("sign-in-form").reset();
    await refresh();
  } catch (error) {
    const message = error.status === 401 ? "That is not the admin token." : error.message;
    $("admin-token-error").textContent = message;
    announce(message);
  }
});

$("sign-out").addEventListener("click", async () => {
  await call("/api/admin/session", { method: "DELETE", action: true }).catch(() => null);
  showSignIn("Signed out.");
});

$("sign-out-all").addEventListener("click", async () => {
  try {
    const { ended } = await call("/api/admin/sessions", { method: "DELETE", action: true });
    showSignIn(`Every session signed out (${ended}).`);
  } catch (error) {
    notice(error.message);
  }
});

// --- Refresh -------------------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  let data;
  let incidents;
  let audit;
  try {
    [data, incidents, audit] = await Promise.all([
      call("/api/admin/queues"),
      call("/api/admin/incidents"),
      call("/api/admin/audit"),
    ]);
  } catch (error) {
    if (error.status === 401) {
      showSignIn();
      return;
    }
    notice(`Could not load the queues: ${error.message}`);
    timer = setTimeout(refresh, REFRESH_MS);
    return;
  }
  notice(null);
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  $("sign-out-all").hidden = false;
  showIncidents(incidents.incidents);
  showAudit(audit.entries);
  $("queues").tBodies[0].replaceChildren(...data.queues.map(queueRow));
  if (selected) await showFailed(selected);
  timer = setTimeout(refresh, REFRESH_MS);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = String(text);
  return td;
}

function button(label, onClick, { primary = false } = {}) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = primary ? "primary small" : "link";
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}

// --- Incidents -----------------------------------------------------------

function showIncidents(incidents) {
  const open = incidents.filter((incident) => !incident.closed_at);
  const closed = incidents.filter((incident) => incident.closed_at);
  $("incidents-open").replaceChildren(...open.map(incidentItem));
  $("incidents-none").hidden = open.length > 0;
  $("incidents-closed").replaceChildren(...closed.map(incidentItem));
  $("incidents-closed-box").hidden = closed.length === 0;
}

function incidentItem(incident) {
  const item = document.createElement("li");
  item.className = incident.closed_at ? "incident closed" : "incident open";
  item.dataset.kind = incident.kind;
  const summary = document.createElement("p");
  summary.className = "incident-summary";
  summary.textContent = incident.summary;
  const meta = document.createElement("p");
  meta.className = "job-meta";
  const since = new Date(incident.opened_at).toLocaleString();
  const told = incident.opened_notified_at ? "team told" : "not told yet";
  meta.textContent = incident.closed_at
    ? `${since} – ${new Date(incident.closed_at).toLocaleString()}`
    : `open since ${since} · ${told}`;
  item.append(summary, meta);
  return item;
}

// --- Queues --------------------------------------------------------------

function queueRow(queue) {
  const row = document.createElement("tr");
  row.dataset.queue = queue.queue;
  // Jobs wait and nobody takes them: the worker is down or lacks this queue.
  const unconsumed = queue.consumers === 0 && queue.waiting > 0;
  if (unconsumed) row.className = "unconsumed";
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = queue.queue;
  if (queue.is_paused) {
    const badge = document.createElement("span");
    badge.className = "state state-delayed";
    badge.textContent = "paused";
    name.append(" ", badge);
  }
  row.append(
    name,
    cell(queue.waiting),
    cell(queue.active),
    cell(queue.delayed),
    cell(queue.failed),
    cell(queue.completed),
    cell(age(queue.oldest_waiting_seconds)),
  );
  const workers = cell(queue.consumers);
  if (unconsumed) {
    const badge = document.createElement("span");
    badge.className = "state state-failed";
    badge.textContent = "no worker";
    workers.append(" ", badge);
  }
  row.append(workers);
  const chart = document.createElement("td");
  chart.append(sparkline(queue.last_hour, queue.queue));
  row.append(chart);
  // A flex box inside the cell: a flex cell would break the table's rows.
  const actions = document.createElement("span");
  actions.className = "actions";
  actions.append(
    button(queue.is_paused ? "Resume" : "Pause", () => setPaused(queue.queue, !queue.is_paused)),
    button(`Failed (${queue.failed})`, () => showFailed(queue.queue, 0)),
  );
  const cellOfActions = document.createElement("td");
  cellOfActions.append(actions);
  row.append(cellOfActions);
  return row;
}

function age(seconds) {
  if (!seconds) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Completed (up) and failed (down) per minute, as bars. */
function sparkline(minutes, name) {
  const width = 180;
  const height = 36;
  const most = Math.max(1, ...minutes.map((m) => Math.max(m.completed, m.failed)));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  const done = minutes.reduce((sum, m) => sum + m.completed, 0);
  const failed = minutes.reduce((sum, m) => sum + m.failed, 0);
  svg.setAttribute("aria-label", `${name}: ${done} completed and ${failed} failed in the last hour`);
  const bar = width / minutes.length;
  const middle = height / 2;
  minutes.forEach((minute, i) => {
    for (const [count, up, kind] of [[minute.completed, true, "done"], [minute.failed, false, "failed"]]) {
      if (!count) continue;
      const size = Math.max(1, (count / most) * (middle - 1));
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", (i * bar).toFixed(2));
      rect.setAttribute("width", Math.max(1, bar - 0.5).toFixed(2));
      rect.setAttribute("y", (up ? middle - size : middle).toFixed(2));
      rect.setAttribute("height", size.toFixed(2));
      rect.setAttribute("class", `bar-${kind}`);
      svg.append(rect);
    }
  });
  return svg;
}

async function setPaused(queue, paused) {
  try {
    await call(`/api/admin/queues/${encodeURIComponent(queue)}/${paused ? "pause" : "resume"}`, {
      method: "POST",
      action: true,
    });
    announce(`${queue} ${paused ? "paused" : "resumed"}.`);
  } catch (error) {
    notice(error.message);
  }
  await refresh();
}

// --- Failed jobs ---------------------------------------------------------

async function showFailed(queue, offset = failedOffset) {
  selected = queue;
  let data;
  try {
    const page = `offset=${offset}&limit=${FAILED_PAGE}`;
    data = await call(`/api/admin/queues/${encodeURIComponent(queue)}/failed?${page}`);
  } catch (error) {
    notice(error.message);
    return;
  }
  // Retries and removals shrink the set: step back rather than show nothing.
  if (data.jobs.length === 0 && offset > 0 && data.total > 0) {
    await showFailed(queue, Math.max(0, offset - FAILED_PAGE));
    return;
  }
  failedOffset = offset;
  $("failed").hidden = false;
  $("failed-title").textContent = `Failed jobs in ${queue}`;
  $("failed-jobs").replaceChildren(...data.jobs.map((job) => failedItem(queue, job)));
  $("failed-empty").hidden = data.jobs.length > 0;
  $("retry-all").hidden = data.jobs.length === 0;
  $("failed-pages").hidden = data.total <= data.jobs.length;
  $("failed-range").textContent =
    `${offset + 1}–${offset + data.jobs.length} of ${data.total.toLocaleString()}`;
  $("failed-newer").disabled = offset === 0;
  $("failed-older").disabled = offset + data.jobs.length >= data.total;
}

$("failed-newer").addEventListener("click", () =>
  showFailed(selected, Math.max(0, failedOffset - FAILED_PAGE)));
$("failed-older").addEventListener("click", () => showFailed(selected, failedOffset + FAILED_PAGE));

// --- Audit ---------------------------------------------------------------

function showAudit(entries) {
  $("audit-empty").hidden = entries.length > 0;
  $("audit").hidden = entries.length === 0;
  $("audit").tBodies[0].replaceChildren(
    ...entries.map((entry) => {
      const row = document.createElement("tr");
      const on = [entry.queue, entry.job_id, entry.detail].filter(Boolean).join(" · ");
      row.append(
        cell(new Date(entry.at).toLocaleString()),
        cell(entry.actor),
        cell(entry.client),
        cell(entry.action.replaceAll("_", " ")),
        cell(on || "—"),
      );
      return row;
    }),
  );
}

function failedItem(queue, job) {
  const item = document.createElement("li");
  item.className = "job";
  item.dataset.jobId = job.id;
  const head = document.createElement("div");
  head.className = "job-head";
  const id = document.createElement("code");
  id.textContent = job.id;
  const actions = document.createElement("span");
  actions.className = "actions";
  actions.append(
    button("Retry", () => act(queue, job.id, "retry")),
    button("Remove", () => act(queue, job.id, "remove")),
  );
  head.append(id, actions);
  const meta = document.createElement("p");
  meta.className = "job-meta";
  const when = job.failed_at ? new Date(job.failed_at).toLocaleString() : "unknown time";
  meta.textContent = `${job.attempts_made} attempt(s) · failed ${when}`;
  const reason = document.createElement("p");
  reason.className = "job-error";
  reason.textContent = job.reason;
  const data = document.createElement("pre");
  data.textContent = JSON.stringify(job.data);
  item.append(head, meta, reason, data);
  return item;
}

async function act(queue, id, what) {
  const path = `/api/admin/queues/${encodeURIComponent(queue)}/failed/${encodeURIComponent(id)}`;
  try {
    if (what === "retry") await call(`${path}/retry`, { method: "POST", action: true });
    else await call(path, { method: "DELETE", action: true });
    announce(`Job ${id} ${what === "retry" ? "retried" : "removed"}.`);
  } catch (error) {
    notice(error.message);
  }
  await refresh();
}

$("retry-all").addEventListener("click", async () => {
  if (!selected) return;
  try {
    const { retried } = await call(`/api/admin/queues/${encodeURIComponent(selected)}/failed/retry`, {
      method: "POST",
      action: true,
    });
    announce(`${retried} job(s) retried.`);
  } catch (error) {
    notice(error.message);
  }
  await refresh();
});

// --- Lookup --------------------------------------------------------------

$("lookup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("job-id-error").textContent = "";
  const id = $("job-id").value.trim();
  try {
    const job = await call(`/api/admin/jobs/${encodeURIComponent(id)}`);
    const { bullmq, ...record } = job;
    $("job-record").textContent = JSON.stringify(record, null, 2);
    $("job-bullmq").textContent = bullmq ? JSON.stringify(bullmq, null, 2) : "Not in Redis any more.";
    $("lookup-result").hidden = false;
  } catch (error) {
    $("lookup-result").hidden = true;
    $("job-id-error").textContent = error.status === 404 ? "No job has this id." : error.message;
  }
});

refresh();
