// The one way both pages call the api: `request` sends JSON and reads the
// answer (`download` fetches a file), and every answer that is not 2xx
// becomes an `ApiError` with the api's error shape ({error: {code, message,
// fields}}) and `Retry-After`, so the app and the dashboard handle failures
// alike. `describe` turns one into words a person can act on. No state: who
// is calling (a bearer token, the dashboard's header) comes with each call.

/** An answer that was not 2xx (status 0: the server was not reached). */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.error?.message ?? (status === 0 ? "the server cannot be reached" : `HTTP ${status}`));
    this.status = status;
    this.code = body?.error?.code ?? null;
    this.fields = body?.error?.fields ?? {};
    this.retryAfter = retryAfter === null || retryAfter === undefined ? null : Number(retryAfter);
  }
}

/**
 * Calls the api; resolves to {status, etag, body}, 304 included (body
 * null, as for 204). `token` adds the bearer header; the dashboard's
 * session cookie goes by itself (same origin only).
 */
export async function request(path, { method = "GET", body, headers = {}, token = null } = {}) {
  const init = { method, headers: { ...headers }, cache: "no-store", credentials: "same-origin" };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, null, null);
  }
  const etag = response.headers.get("ETag");
  if (response.status === 304) return { status: 304, etag, body: null };
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return { status: response.status, etag, body: data };
}

/** A file the api serves (not JSON), as a Blob; a refusal is an `ApiError` like any other. */
export async function download(path, { token = null } = {}) {
  let response;
  try {
    response = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: "no-store" });
  } catch {
    throw new ApiError(0, null, null);
  }
  if (!response.ok) {
    throw new ApiError(response.status, await response.json().catch(() => null), response.headers.get("Retry-After"));
  }
  return response.blob();
}

/** What to tell a person about a failed call. */
export function describe(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  if (error.status === 0) return "We cannot reach the server. Check your connection and try again.";
  const wait = Number.isFinite(error.retryAfter) ? ` Try again in ${Math.max(1, Math.ceil(error.retryAfter))} s.` : "";
  if (error.status === 429) return `Too many attempts.${wait || " Try again later."}`;
  if (error.status === 503) return `We are busy right now.${wait || " Try again in a moment."}`;
  if (error.status >= 500) return "Something went wrong on our side. Please try again.";
  return sentence(error.message);
}

/** `text` as a sentence: a capital first, a full stop last. */
export function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}
