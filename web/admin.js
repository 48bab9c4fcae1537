// The operators' dashboard: open incidents, every queue's counts, workers
// and last hour, the failed jobs (a page at a time) with retry and remove,
// pause and resume, a job lookup, and the log of operators' actions. This
// module signs in and out and refreshes every 5 s; the queue table and the
// failed jobs are modules under /js/admin/, reached through the one
// `dashboard` object made here. All text goes into the page through
// textContent, never as HTML (how the session is held: /js/admin/call.js).

import { call } from "/js/admin/call.js";
import { cell } from "/js/admin/elements.js";
import { createFailed } from "/js/admin/failed.js";
import { providerRow, queueRow } from "/js/admin/queues.js";
import { $, announce, notice } from "/ui.js";

const REFRESH_MS = 5_000;

/** What the dashboard's parts ask of each other, and its one timer. */
const dashboard = { timer: null, refresh };
dashboard.failed = createFailed(dashboard);

function showSignIn(message) {
  clearTimeout(dashboard.timer);
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
  clearTimeout(dashboard.timer);
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
    dashboard.timer = setTimeout(refresh, REFRESH_MS);
    return;
  }
  notice(null);
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  $("sign-out-all").hidden = false;
  showIncidents(incidents.incidents);
  showAudit(audit.entries);
  $("queues").tBodies[0].replaceChildren(...data.queues.map((queue) => queueRow(dashboard, queue)));
  $("providers").tBodies[0].replaceChildren(...data.providers.map(providerRow));
  await dashboard.failed.again();
  dashboard.timer = setTimeout(refresh, REFRESH_MS);
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
