// The dashboard's queue table: each queue's label (from the job catalogue),
// its counts, workers and last hour as bars, and its pause, resume and
// failed-jobs buttons. A queue whose jobs wait with no worker is marked.
// Also the providers' rate budgets, one row each.

import { call } from "/js/admin/call.js";
import { button, cell } from "/js/admin/elements.js";
import { labelOf } from "/js/labels.js";
import { announce, notice } from "/ui.js";

const SVG = "http://www.w3.org/2000/svg";

/** The row of a provider's rate budget: its limit, use and any 429 hold. */
export function providerRow(budget) {
  const row = document.createElement("tr");
  row.dataset.provider = budget.provider;
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = budget.provider;
  const held = cell(budget.held_for_seconds > 0 ? `${Math.ceil(budget.held_for_seconds)} s (429)` : "no");
  if (budget.held_for_seconds > 0) held.className = "unconsumed";
  row.append(name, cell(`${budget.limit} / ${budget.per_seconds} s`), cell(budget.used), held);
  return row;
}

/** The row of `queue`; `dashboard` refreshes and opens the failed jobs. */
export function queueRow(dashboard, queue) {
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
  const label = document.createElement("span");
  label.className = "queue-label";
  label.textContent = labelOf(queue.queue);
  name.append(label);
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
    button(queue.is_paused ? "Resume" : "Pause", () => setPaused(dashboard, queue.queue, !queue.is_paused)),
    button(`Failed (${queue.failed})`, () => dashboard.failed.show(queue.queue, 0)),
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

async function setPaused(dashboard, queue, paused) {
  try {
    await call(`/api/admin/queues/${encodeURIComponent(queue)}/${paused ? "pause" : "resume"}`, {
      method: "POST",
      action: true,
    });
    announce(`${queue} ${paused ? "paused" : "resumed"}.`);
  } catch (error) {
    notice(error.message);
  }
  await dashboard.refresh();
}
