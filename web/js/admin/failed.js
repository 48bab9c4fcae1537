// The dashboard's failed jobs of one queue (the dead-letter set), a page at
// a time, each with its reason and data, and retry, remove and retry all.
// Which queue and page are shown is this module's state, in one object.

import { call } from "/js/admin/call.js";
import { button } from "/js/admin/elements.js";
import { $, announce, notice } from "/ui.js";

const PAGE = 50;

/** The failed-jobs panel; `dashboard.refresh` runs after every action. */
export function createFailed(dashboard) {
  const shown = { queue: null, offset: 0 };

  async function show(queue, offset = shown.offset) {
    shown.queue = queue;
    let data;
    try {
      data = await call(`/api/admin/queues/${encodeURIComponent(queue)}/failed?offset=${offset}&limit=${PAGE}`);
    } catch (error) {
      notice(error.message);
      return;
    }
    // Retries and removals shrink the set: step back rather than show nothing.
    if (data.jobs.length === 0 && offset > 0 && data.total > 0) {
      await show(queue, Math.max(0, offset - PAGE));
      return;
    }
    shown.offset = offset;
    $("failed").hidden = false;
    $("failed-title").textContent = `Failed jobs in ${queue}`;
    $("failed-jobs").replaceChildren(...data.jobs.map((job) => item(queue, job)));
    $("failed-empty").hidden = data.jobs.length > 0;
    $("retry-all").hidden = data.jobs.length === 0;
    $("failed-pages").hidden = data.total <= data.jobs.length;
    $("failed-range").textContent =
      `${offset + 1}–${offset + data.jobs.length} of ${data.total.toLocaleString()}`;
    $("failed-newer").disabled = offset === 0;
    $("failed-older").disabled = offset + data.jobs.length >= data.total;
  }

  function item(queue, job) {
    const element = document.createElement("li");
    element.className = "job";
    element.dataset.jobId = job.id;
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
    element.append(head, meta, reason, data);
    return element;
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
    await dashboard.refresh();
  }

  $("failed-newer").addEventListener("click", () => show(shown.queue, Math.max(0, shown.offset - PAGE)));
  $("failed-older").addEventListener("click", () => show(shown.queue, shown.offset + PAGE));
  $("retry-all").addEventListener("click", async () => {
    if (!shown.queue) return;
    try {
      const { retried } = await call(`/api/admin/queues/${encodeURIComponent(shown.queue)}/failed/retry`, {
        method: "POST",
        action: true,
      });
      announce(`${retried} job(s) retried.`);
    } catch (error) {
      notice(error.message);
    }
    await dashboard.refresh();
  });

  return {
    show,
    /** Shows the open queue's failed jobs again, on the same page. */
    async again() {
      if (shown.queue) await show(shown.queue);
    },
  };
}
