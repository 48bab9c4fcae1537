// Live job status (GET /api/me/events): the server pushes every change of
// the user's jobs and profile the moment it commits, so the jobs panel
// does not poll while the stream is open. Read with fetch, not
// EventSource, so the token travels in the Authorization header and never
// in a URL (where logs and proxies would keep it).
//
// When the stream cannot be opened (an old proxy, a full server) or
// breaks, the panel polls as it always did and the stream is tried again
// later, a little later each time; the user is told nothing, since
// nothing is wrong that they could act on. A reconnect sends the last
// event's id, and the server replays what changed meanwhile (or says
// `reset`: then everything is fetched again).

import { token } from "/js/session.js";

const FIRST_RETRY_MS = 2_000;
const LONGEST_RETRY_MS = 60_000;
// A stream that lived this long was healthy: the next failure starts the
// backoff over. One that keeps ending sooner is retried ever later.
const HEALTHY_MS = 30_000;

/**
 * The stream. `app.jobs` takes job events and polls while the stream is
 * down; `app.showProfile` takes account events; `app.sessionEnded` ends a
 * session the api no longer knows.
 */
export function createLive(app) {
  const live = {
    controller: null, lastId: null, resumed: false, timer: null, delay: FIRST_RETRY_MS, hint: null, readyAt: null,
  };

  async function connect() {
    live.timer = null;
    if (!token() || live.controller) return;
    const controller = new AbortController();
    live.controller = controller;
    live.hint = null;
    live.readyAt = null;
    let retryAfter = 0;
    try {
      const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
      if (live.lastId) headers["Last-Event-ID"] = live.lastId;
      live.resumed = live.lastId !== null;
      const response = await fetch("/api/me/events", { headers, signal: controller.signal, cache: "no-store" });
      if (response.status === 401) {
        live.controller = null;
        app.sessionEnded();
        return;
      }
      if (!response.ok || !response.body) {
        const wait = Number(response.headers.get("Retry-After"));
        throw new Retry(Number.isFinite(wait) && wait > 0 ? wait * 1000 : null);
      }
      await read(response.body, controller);
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof Retry && error.ms) retryAfter = error.ms;
    } finally {
      if (live.controller === controller) live.controller = null;
    }
    if (controller.signal.aborted || !token()) return;
    // Ended by the server with a hint (it is stopping: another instance
    // takes us at once, and the replay covers the gap): back soon, no
    // polling. Broken, refused or ended without one: poll meanwhile, and
    // try again later each time it fails again soon.
    if (live.readyAt !== null && live.hint !== null) {
      live.timer = setTimeout(connect, live.hint);
      return;
    }
    app.jobs.live(false);
    const healthy = live.readyAt !== null && Date.now() - live.readyAt > HEALTHY_MS;
    live.delay = healthy ? FIRST_RETRY_MS : Math.min(live.delay * 2, LONGEST_RETRY_MS);
    live.timer = setTimeout(connect, Math.max(live.delay, retryAfter));
  }

  /** Reads frames until the stream ends. */
  async function read(body, controller) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || controller.signal.aborted) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        frame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  function frame(block) {
    let id = null;
    let name = null;
    let data = null;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(": ");
      const [field, value] = colon < 0 ? [line, ""] : [line.slice(0, colon), line.slice(colon + 2)];
      if (field === "id") id = value;
      else if (field === "event") name = value;
      else if (field === "data") data = value;
      else if (field === "retry") live.hint = Number(value);
    }
    if (name === null || data === null) return;
    if (id !== null) live.lastId = id;
    const body = JSON.parse(data);
    if (name === "ready") {
      // The `retry:` before it is the default reconnection delay; only one
      // after it is the server's word that it is ending the stream.
      live.hint = null;
      live.readyAt = Date.now();
      // A resumed stream was sent what it missed; a new one looks once
      // at what happened before it began.
      app.jobs.live(true, { refresh: !live.resumed });
    } else if (name === "job") {
      app.jobs.apply(body);
    } else if (name === "account") {
      app.showProfile(body);
    } else if (name === "reset") {
      // Too much was missed to replay: start over from what the api says.
      app.jobs.live(true, { refresh: true });
      app.loadProfile();
    }
  }

  return {
    /** Opens the stream, unless it is open. */
    start() {
      if (live.timer !== null) clearTimeout(live.timer);
      connect();
    },
    /** Closes it for good: nobody is signed in. */
    stop() {
      if (live.timer !== null) clearTimeout(live.timer);
      live.timer = null;
      live.controller?.abort();
      live.controller = null;
      live.lastId = null;
      live.delay = FIRST_RETRY_MS;
    },
  };
}

/** The server said no for now; `ms` is its `Retry-After`, if any. */
class Retry extends Error {
  constructor(ms) {
    super("the stream is not available now");
    this.ms = ms;
  }
}
