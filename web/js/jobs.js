// The "Background work" panel: every job of the user (GET /api/me/jobs).
// While the live stream is open (/js/live.js) its events update the panel
// and nothing is polled. Otherwise it is polled: from 500 ms, stretching
// by half each time nothing changed (a 304 without a body) up to 10 s,
// back to 500 ms when something did, stopping when every job has
// finished, pausing while the tab is hidden. A job that took a while
// shows a small notice when it is done, whatever screen the user is on.
// The panel's state is its own, in one object.

import { describe } from "/js/api.js";
import { labelOf } from "/js/labels.js";
import { call, token } from "/js/session.js";
import { $, announce, notice, toast } from "/ui.js";

const FAST_POLL_MS = 500;
const SLOW_POLL_MS = 10_000;
const FINISHED = new Set(["completed", "failed"]);
const SHOWN = 20;
// Jobs a user waits on: their end is worth a notice even when quick.
const AWAITED = new Set(["image-resize", "onboarding-pdf"]);
// Any other job that ran longer than this is too.
const LONG_MS = 3_000;
const STATE_NAMES = {
  pending: "Queued",
  waiting: "Queued",
  delayed: "Retrying soon",
  active: "In progress",
  completed: "Done",
  failed: "Failed",
};

/**
 * The poller. `app.loadProfile` runs when a finished job may have changed
 * the profile; `app.photo.jobChanged` sees every job, to follow an upload;
 * `app.sessionEnded` ends a session the api no longer knows.
 */
export function createJobs(app) {
  const poll = {
    timer: null, delay: FAST_POLL_MS, etag: null, jobs: new Map(), offline: false, held: false, live: false,
    // Bumped whenever the way the panel is fed changes: an answer asked
    // for before is older than what the stream has shown since, and is
    // dropped.
    generation: 0,
    // Stream events that came while the list was being fetched, applied
    // after it (they are as new as it, or newer).
    queued: null,
  };

  /** Looks now, fast again: something was just asked of the server. */
  function start() {
    // The stream tells of every change as it happens.
    if (poll.live) return;
    poll.delay = FAST_POLL_MS;
    if (poll.timer !== null) clearTimeout(poll.timer);
    poll.timer = setTimeout(look, 0);
  }

  function stop() {
    if (poll.timer !== null) clearTimeout(poll.timer);
    poll.timer = null;
  }

  async function look({ once = false } = {}) {
    poll.timer = null;
    if (!token() || poll.held || (document.hidden && !once)) return;
    const generation = poll.generation;
    try {
      const headers = poll.etag ? { "If-None-Match": poll.etag } : {};
      const answer = await call("/api/me/jobs?limit=20", { headers });
      if (generation !== poll.generation) return;
      if (answer.status === 304) {
        poll.delay = Math.min(poll.delay * 1.5, SLOW_POLL_MS);
      } else {
        poll.etag = answer.etag;
        poll.delay = FAST_POLL_MS;
        await show(answer.body.jobs);
      }
      // Only the notice the poller put up (the server was unreachable) is
      // the poller's to take down.
      if (poll.offline) notice(null);
      poll.offline = false;
    } catch (error) {
      if (error.status === 401) {
        app.sessionEnded();
        return;
      }
      poll.delay = Math.min(poll.delay * 2, SLOW_POLL_MS);
      if (error.status === 0) {
        notice(describe(error));
        poll.offline = true;
      }
    }
    const unfinished = [...poll.jobs.values()].some((job) => !FINISHED.has(job.state));
    if (!once && !poll.live && token() && unfinished && poll.timer === null) {
      poll.timer = setTimeout(look, poll.delay);
    }
  }

  async function show(jobs) {
    let profileChanged = false;
    for (const job of jobs) profileChanged = take(job) || profileChanged;
    render();
    // Streamed, the profile's own changes come as events; only the words
    // that depend on jobs ("Being written…") need showing again.
    if (profileChanged) await (poll.live ? app.refreshProfile() : app.loadProfile());
  }

  /** Takes one job's status; says whether the profile may have changed. */
  function take(job) {
    const before = poll.jobs.get(job.id);
    poll.jobs.set(job.id, job);
    app.photo.jobChanged(job);
    if (before?.state === job.state || !FINISHED.has(job.state)) return false;
    const words = `${labelOf(job.name)}: ${STATE_NAMES[job.state].toLowerCase()}.`;
    announce(words);
    // Seen running here, and long enough to have been waited on.
    const took = Date.parse(job.finished_at) - Date.parse(job.started_at ?? job.created_at);
    if (before && !FINISHED.has(before.state) && (AWAITED.has(job.name) || took > LONG_MS)) toast(words);
    return before !== undefined || job.state === "completed";
  }

  function render() {
    const jobs = [...poll.jobs.values()]
      .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || b.id.localeCompare(a.id))
      .slice(0, SHOWN);
    // What falls off the panel is forgotten, as a poll of the newest would.
    poll.jobs = new Map(jobs.map((job) => [job.id, job]));
    $("jobs").replaceChildren(...jobs.map(jobItem));
    $("jobs-empty").hidden = jobs.length > 0;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stop();
    else if (token() && !poll.held) start();
  });

  return {
    start,
    /**
     * The live stream opened (`on`), so polling stops, after one look
     * when `refresh` (what changed before the stream began); or it broke,
     * so polling takes over.
     */
    async live(on, { refresh = false } = {}) {
      poll.live = on;
      poll.generation += 1;
      if (on) {
        stop();
        if (refresh) {
          poll.queued = [];
          // Without If-None-Match: the list as it is now, whatever was seen.
          poll.etag = null;
          await look({ once: true });
          const queued = poll.queued ?? [];
          poll.queued = null;
          for (const job of queued) take(job);
          render();
        }
      } else {
        poll.queued = null;
        start();
      }
      // Says which way the panel is fed, once it is (the browser tests read it).
      $("jobs").dataset.live = on ? "on" : "off";
    },
    /** One job's status, from the stream. */
    async apply(job) {
      if (poll.held) return;
      if (poll.queued) {
        poll.queued.push(job);
        return;
      }
      const profileChanged = take(job);
      render();
      if (profileChanged) await app.refreshProfile();
    },
    /** Stops for good, until `clear`: the account is being deleted. */
    hold() {
      poll.held = true;
      stop();
    },
    /** Forgets every job: the next session starts with none. */
    clear() {
      stop();
      poll.held = false;
      poll.live = false;
      poll.jobs.clear();
      poll.etag = null;
      $("jobs").replaceChildren();
    },
    /** A job of `queue` the poller has seen, if any. */
    find(queue) {
      return [...poll.jobs.values()].find((job) => job.name === queue);
    },
  };
}

function jobItem(job) {
  const item = document.createElement("li");
  item.className = "job";
  item.dataset.jobId = job.id;
  item.dataset.state = job.state;

  const head = document.createElement("div");
  head.className = "job-head";
  const name = document.createElement("span");
  name.className = "job-name";
  name.textContent = labelOf(job.name);
  // A job due later (not a retry) is scheduled, not "retrying soon".
  const scheduled = job.state === "delayed" && job.run_at && job.attempts_made === 0;
  const state = document.createElement("span");
  state.className = `state state-${job.state}`;
  state.textContent = scheduled ? "Scheduled" : (STATE_NAMES[job.state] ?? job.state);
  head.append(name, state);
  item.append(head);

  if (job.state === "active") {
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = job.progress;
    bar.setAttribute("aria-label", `${name.textContent} progress`);
    item.append(bar);
  }

  const meta = document.createElement("p");
  meta.className = "job-meta";
  const attempts = !scheduled && (job.attempts_made > 1 || job.state === "failed" || job.state === "delayed")
    ? `Attempt ${Math.max(job.attempts_made, 1)} of ${job.max_attempts}`
    : "";
  const started = scheduled
    ? `due ${new Date(job.run_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}`
    : `started ${when(job.started_at ?? job.created_at)}`;
  meta.textContent = [attempts, started].filter(Boolean).join(" · ");
  item.append(meta);

  if (job.error) {
    const error = document.createElement("p");
    error.className = "job-error";
    error.textContent = job.error.message;
    item.append(error);
  }
  return item;
}

function when(timestamp) {
  return new Date(timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
