// The Acme web app: sign up or log in, see the profile, upload a photo, and
// watch the background jobs. Plain JavaScript, no framework, no build step.
//
// Safety: text from users or the server only ever enters the page through
// textContent or attributes, never as HTML, and the page's
// Content-Security-Policy runs no inline script. The bearer token lives in
// sessionStorage: it survives a reload of this tab, is gone when the tab
// closes, is never sent automatically (so no request can be forged on the
// user's behalf, unlike a cookie), and with no HTML injection and no
// third-party script there is nothing on the page to read it. The device
// token lives in localStorage, for as long as the browser keeps it: it opens
// nothing by itself (a login still needs the password), and it lets this
// browser log in while strangers' wrong guesses have locked the account.

const TOKEN_KEY = "acme.token";
const DEVICE_KEY = "acme.device";
const FAST_POLL_MS = 500;
const SLOW_POLL_MS = 10_000;
const FINISHED = new Set(["completed", "failed"]);
const JOB_NAMES = {
  "welcome-email": "Welcome email",
  "account-email": "Account email",
  "stripe-customer": "Billing account",
  "slack-notify": "Team notification",
  "onboarding-pdf": "Onboarding guide (PDF)",
  "image-resize": "Photo processing",
  "account-deletion": "Account deletion",
  "follow-up-email": "Follow-up email",
};
// The field a wrong password belongs to, per signed-in form.
const PASSWORD_FIELDS = { change: "current_password", email: "password", delete: "password" };
const STATE_NAMES = {
  pending: "Queued",
  waiting: "Queued",
  delayed: "Retrying soon",
  active: "In progress",
  completed: "Done",
  failed: "Failed",
};

import { $, announce, notice } from "/ui.js";

let token = sessionStorage.getItem(TOKEN_KEY);
let uploadJobId = null;
let deleting = false;
const poll = { timer: null, delay: FAST_POLL_MS, etag: null, jobs: new Map(), offline: false };

/** An answer that was not 2xx (status 0: the server was not reached). */
class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? null;
    this.fields = body?.error?.fields ?? {};
    this.retryAfter = retryAfter === null ? null : Number(retryAfter);
  }
}

/** Calls the api; resolves to {status, etag, body}, 304 included. */
async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, cache: "no-store" };
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

/** What to tell a person about a failed call. */
function describe(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  if (error.status === 0) return "We cannot reach the server. Check your connection and try again.";
  const wait = Number.isFinite(error.retryAfter) ? ` Try again in ${Math.max(1, Math.ceil(error.retryAfter))} s.` : "";
  if (error.status === 429) return `Too many attempts.${wait || " Try again later."}`;
  if (error.status === 503) return `We are busy right now.${wait || " Try again in a moment."}`;
  if (error.status >= 500) return "Something went wrong on our side. Please try again.";
  return sentence(error.message);
}

function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

// --- Forms ---------------------------------------------------------------

function clearErrors(form) {
  for (const element of form.querySelectorAll(".field-error, .form-error")) element.textContent = "";
  for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
}

/** Puts each field's problem next to its input; the first one gets focus. */
function showFieldErrors(prefix, fields) {
  let first = null;
  for (const [name, problem] of Object.entries(fields)) {
    const input = $(`${prefix}-${name}`);
    const slot = $(`${prefix}-${name}-error`);
    if (!input || !slot) continue;
    slot.textContent = sentence(`${label(input)} ${problem}`);
    input.setAttribute("aria-invalid", "true");
    first ??= input;
  }
  first?.focus();
  return first !== null;
}

function label(input) {
  return document.querySelector(`label[for="${input.id}"]`)?.textContent ?? input.name;
}

async function submitForm(form, prefix, path, body, done = signedInWith, method = "POST") {
  clearErrors(form);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { body: answer } = await api(path, { method, body });
    done(answer);
  } catch (error) {
    if (error.status === 401 && token) {
      signedOut("Your session has ended. Please log in again.");
    } else if (error.code === "wrong_password") {
      showFieldErrors(prefix, { [PASSWORD_FIELDS[prefix]]: "is not right" });
    } else if (error.code === "email_taken" && token) {
      showFieldErrors(prefix, { email: "has another account" });
    } else if (error.code === "email_taken") {
      showFieldErrors(prefix, { email: "already has an account; log in instead" });
    } else if (!(error.code === "validation_failed" && showFieldErrors(prefix, error.fields))) {
      const message =
        error.code === "invalid_credentials"
          ? "The email or password is wrong. After many failed attempts an account takes logins only from devices that signed in before, for a while: \"Forgot your password?\" lets you in at once."
        : error.code === "invalid_reset_link" ? "This link is used or expired. Ask for a new one here."
        : describe(error);
      // A spent link leads to where a new one is asked for.
      const shownIn = error.code === "invalid_reset_link" ? "forgot" : prefix;
      if (shownIn !== prefix) {
        history.replaceState(null, "", "/forgot-password");
        showAuth(shownIn);
      }
      $(`${shownIn}-error`).textContent = message;
      announce(message);
    }
  } finally {
    button.disabled = false;
  }
}

$("signup-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  submitForm(form, "signup", "/api/signup", {
    name: form.elements.name.value,
    email: form.elements.email.value,
    password: form.elements.password.value,
  });
});

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  submitForm(form, "login", "/api/login", {
    email: form.elements.email.value,
    password: form.elements.password.value,
    device_token: localStorage.getItem(DEVICE_KEY) ?? undefined,
  });
});

$("forgot-link").addEventListener("click", (event) => {
  event.preventDefault();
  history.pushState(null, "", "/forgot-password");
  showAuth("forgot");
  $("forgot-email").value = $("login-email").value;
  $("forgot-email").focus();
});

$("forgot-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  submitForm(form, "forgot", "/api/password/forgot", { email: form.elements.email.value }, (answer) => {
    $("forgot-done").textContent = answer.message;
    announce(answer.message);
  });
});

$("reset-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  submitForm(form, "reset", "/api/password/reset", { token: resetToken(), password: form.elements.password.value }, (answer) => {
    // The link is spent: no reload or shared screen should show it again.
    history.replaceState(null, "", "/");
    signedInWith(answer);
    notice("Your password is changed, and every other session is signed out.");
  });
});

/** The token of a reset link. */
function resetToken() {
  return linkToken();
}

$("change-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    current_password: form.elements.current_password.value,
    new_password: form.elements.new_password.value,
  };
  submitForm(form, "change", "/api/me/password", body, () => {
    form.reset();
    const done = "Your password is changed, and your other sessions are signed out.";
    $("change-done").textContent = done;
    announce(done);
  });
});

$("email-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const address = form.elements.email.value.trim();
  const body = { email: address, password: form.elements.password.value };
  submitForm(form, "email", "/api/me/email", body, () => {
    form.reset();
    const done = `We sent a link to ${address}. Your address changes when you follow it.`;
    $("email-done").textContent = done;
    announce(done);
    startPolling();
  });
});

$("delete-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  $("delete-status").textContent = "";
  const body = { password: form.elements.password.value };
  submitForm(form, "delete", "/api/me", body, (answer) => followDeletion(answer.job), "DELETE");
});

/**
 * Follows the clean-up until the account is gone. The session that asked
 * lasts exactly as long as the account: a 401 (or a job that no longer
 * exists) means it is done.
 */
async function followDeletion(job) {
  deleting = true;
  stopPolling();
  for (const input of document.querySelectorAll("#home input, #home button")) input.disabled = true;
  $("delete-status").textContent = "Deleting your account and everything in it…";
  announce("Deleting your account.");
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    try {
      const { body } = await api(`/api/jobs/${job.id}`);
      if (body.state === "completed") break;
      if (body.state === "failed") {
        $("delete-status").textContent = "";
        $("delete-error").textContent =
          "Deleting your account is taking longer than it should. It can no longer be used, and our team has been told to finish it.";
        return;
      }
    } catch (error) {
      if (error.status === 401 || error.status === 404) break;
      // Unreachable or busy: the clean-up goes on without us; look again.
    }
  }
  deleting = false;
  for (const input of document.querySelectorAll("#home input, #home button")) input.disabled = false;
  localStorage.removeItem(DEVICE_KEY);
  signedOut("Your account and everything in it are deleted.", "signup");
}

$("verify-resend").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  $("verify-status").textContent = "";
  $("verify-error").textContent = "";
  try {
    await api("/api/email/verify/resend", { method: "POST" });
    const sent = "A new link is on its way. It can take a minute to arrive.";
    $("verify-status").textContent = sent;
    announce(sent);
    startPolling();
  } catch (error) {
    if (error.status === 401) return signedOut("Your session has ended. Please log in again.");
    if (error.code === "already_verified") return loadProfile();
    const message = error.status === 429 && error.code === "rate_limited"
      ? "We have sent several links in the last hour. Check your inbox and spam folder, or try again later."
      : describe(error);
    $("verify-error").textContent = message;
    announce(message);
  } finally {
    button.disabled = false;
  }
});

/** The token of a link in an email: in the fragment, which no server ever sees. */
function linkToken() {
  return new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
}

/**
 * The confirmation link: proves the address, then goes where the person
 * would be anyway (home when signed in in this tab, else the login).
 */
async function confirmAddress() {
  const link = linkToken();
  // Spent either way: no reload or shared screen should show it again.
  history.replaceState(null, "", "/");
  let message;
  try {
    await api("/api/email/verify", { method: "POST", body: { token: link } });
    message = "Your email address is confirmed. Welcome aboard!";
  } catch (error) {
    message = error.code === "invalid_verification_link"
      ? "This confirmation link is used or expired. Log in to ask for a new one."
      : describe(error);
  }
  if (token) await showHome();
  else showAuth("login");
  notice(message);
  announce(message);
}

$("switch").addEventListener("click", () => {
  // From the login screen to signup; from any other to login.
  if (location.pathname !== "/") history.pushState(null, "", "/");
  showAuth($("login-form").hidden ? "login" : "signup");
});

// --- Screens -------------------------------------------------------------

const AUTH_SCREENS = {
  signup: { title: "Create your account", page: "Sign up", switchText: "Already have an account?", switchTo: "Log in" },
  login: { title: "Log in", page: "Log in", switchText: "New here?", switchTo: "Create an account" },
  forgot: { title: "Forgot your password?", page: "Reset your password", switchText: "Remembered it?", switchTo: "Log in" },
  reset: { title: "Choose a new password", page: "New password", switchText: "Remembered it?", switchTo: "Log in" },
};

function showAuth(mode) {
  const screen = AUTH_SCREENS[mode];
  $("home").hidden = true;
  $("unsubscribe").hidden = true;
  $("logout").hidden = true;
  $("auth").hidden = false;
  for (const name of Object.keys(AUTH_SCREENS)) {
    const form = $(`${name}-form`);
    form.hidden = name !== mode;
    clearErrors(form);
  }
  $("forgot-done").textContent = "";
  $("auth-title").textContent = screen.title;
  $("switch-text").textContent = screen.switchText;
  $("switch").textContent = screen.switchTo;
  document.title = `${screen.page} · Acme`;
}

function signedInWith(answer) {
  if (answer.device_token) localStorage.setItem(DEVICE_KEY, answer.device_token);
  signedIn(answer.token);
}

function signedIn(newToken) {
  token = newToken;
  sessionStorage.setItem(TOKEN_KEY, token);
  for (const name of Object.keys(AUTH_SCREENS)) $(`${name}-form`).reset();
  showHome();
}

async function showHome() {
  $("auth").hidden = true;
  $("unsubscribe").hidden = true;
  $("home").hidden = false;
  $("logout").hidden = false;
  document.title = "Your account · Acme";
  notice(null);
  await loadProfile();
  startPolling();
}

function signedOut(message, screen = "login") {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopPolling();
  poll.jobs.clear();
  poll.etag = null;
  uploadJobId = null;
  $("jobs").replaceChildren();
  $("upload-status").hidden = true;
  $("upload-form").reset();
  $("avatar").removeAttribute("src");
  $("avatar").removeAttribute("srcset");
  for (const name of ["change", "email", "delete"]) {
    $(`${name}-form`).reset();
    clearErrors($(`${name}-form`));
  }
  $("change-done").textContent = "";
  $("email-done").textContent = "";
  $("delete-status").textContent = "";
  showAuth(screen);
  notice(message);
  announce(message);
  $(`${screen}-email`).focus();
}

$("logout").addEventListener("click", async () => {
  try {
    await api("/api/session", { method: "DELETE" });
  } catch {
    // The token is forgotten here either way; it expires on its own.
  }
  signedOut("You are logged out.");
});

// --- Profile -------------------------------------------------------------

async function loadProfile() {
  let me;
  try {
    ({ body: me } = await api("/api/me"));
  } catch (error) {
    if (error.status === 401) signedOut("Your session has ended. Please log in again.");
    else notice(describe(error));
    return;
  }
  $("verify-banner").hidden = me.email_verified;
  $("verify-address").textContent = me.email;
  $("profile-name").textContent = me.name;
  $("profile-email").textContent = me.email;
  $("initials").textContent = initials(me.name);
  const avatar = $("avatar");
  if (me.avatar) {
    // 150 px on phones, 300 px on wide screens: the browser picks the
    // 150 px square or the 600 px one for the screen's density.
    avatar.srcset = `${me.avatar.thumbnail} 150w, ${me.avatar.medium} 600w`;
    avatar.sizes = "(min-width: 52rem) 300px, 150px";
    avatar.src = me.avatar.thumbnail;
    avatar.alt = `Profile photo of ${me.name}`;
    avatar.hidden = false;
    $("initials").hidden = true;
    $("avatar-frame").classList.add("has-photo");
  } else {
    avatar.hidden = true;
    $("initials").hidden = false;
  }
  $("profile-stripe").textContent =
    me.stripe_customer_id ?? (me.email_verified ? pendingText("stripe-customer", "Being set up…") : "After you confirm your address.");
  $("profile-plan").textContent = planText(me.subscription);
  $("product-email").checked = me.product_email;
  $("guide").hidden = !me.onboarding_pdf_url;
  $("guide-pending").hidden = Boolean(me.onboarding_pdf_url);
  $("guide-pending").textContent = pendingText("onboarding-pdf", "Being written…");
}

/** The plan as Stripe last told us: price, status, and when it renews or ends. */
function planText(subscription) {
  if (!subscription) return "Free";
  const parts = [subscription.price_id ?? "Subscription", subscription.status.replaceAll("_", " ")];
  if (subscription.current_period_end && subscription.status !== "canceled") {
    const date = new Date(subscription.current_period_end).toLocaleDateString();
    parts.push(subscription.cancel_at_period_end ? `ends ${date}` : `renews ${date}`);
  }
  return parts.join(" · ");
}

$("product-email").addEventListener("change", async (event) => {
  const box = event.target;
  $("mail-error").textContent = "";
  $("mail-done").textContent = "";
  box.disabled = true;
  try {
    await api("/api/me/preferences", { method: "PUT", body: { product_email: box.checked } });
    $("mail-done").textContent = box.checked
      ? "Saved: you will get tips and reminders."
      : "Saved: no more tips and reminders.";
  } catch (error) {
    box.checked = !box.checked;
    $("mail-error").textContent = describe(error);
  } finally {
    box.disabled = false;
  }
});

/**
 * The unsubscribe link of a product email: asks first (a mail scanner that
 * opens links must not unsubscribe anyone), then posts the signed token.
 */
function showUnsubscribe() {
  $("auth").hidden = true;
  $("home").hidden = true;
  $("unsubscribe").hidden = false;
  document.title = "Unsubscribe · Acme";
}

$("unsubscribe-confirm").addEventListener("click", async () => {
  const button = $("unsubscribe-confirm");
  $("unsubscribe-error").textContent = "";
  button.disabled = true;
  try {
    await api(`/api/email/unsubscribe?token=${encodeURIComponent(linkToken())}`, { method: "POST" });
    $("unsubscribe-done").textContent =
      "You are unsubscribed. You can turn tips back on in your account at any time.";
    button.hidden = true;
    history.replaceState(null, "", "/unsubscribe");
  } catch (error) {
    $("unsubscribe-error").textContent = error.code === "invalid_unsubscribe_link"
      ? "This link is not valid. Use the one in your latest email, or change your preferences in your account."
      : describe(error);
    button.disabled = false;
  }
});

function initials(name) {
  return Array.from(name.trim().split(/\s+/), (part) => Array.from(part)[0] ?? "")
    .slice(0, 2)
    .join("")
    .toUpperCase();
}

/**
 * What to show while `queue`'s job has not produced its value: `waiting`,
 * or why there will be none.
 */
function pendingText(queue, waiting) {
  const job = [...poll.jobs.values()].find((candidate) => candidate.name === queue);
  if (job?.state === "failed") return "Not available right now.";
  // Done without a value: the service is not configured here (e.g. no Stripe key).
  if (job?.state === "completed") return "Not set up.";
  return waiting;
}

$("guide").addEventListener("click", async () => {
  // The guide needs the bearer token, so a plain link cannot fetch it.
  try {
    const response = await fetch("/api/me/onboarding.pdf", {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null), null);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = "onboarding.pdf";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    announce("Your onboarding guide is downloading.");
  } catch (error) {
    notice(describe(error));
  }
});

// --- Photo upload --------------------------------------------------------

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const file = $("photo").files[0];
  if (!file) {
    photoError("Choose a photo first.");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  setUploadStatus("Uploading…", 0);

  // fetch() cannot report upload progress; XMLHttpRequest can.
  const request = new XMLHttpRequest();
  request.open("POST", "/api/photos");
  request.setRequestHeader("Authorization", `Bearer ${token}`);
  request.responseType = "json";
  request.upload.addEventListener("progress", (progress) => {
    if (progress.lengthComputable) {
      setUploadStatus("Uploading…", Math.round((progress.loaded / progress.total) * 100));
    }
  });
  request.addEventListener("load", () => {
    button.disabled = false;
    if (request.status === 202) {
      uploadJobId = request.response.job.id;
      form.reset();
      setUploadStatus("Processing your photo…", 0);
      announce("Photo uploaded. Processing it now.");
      startPolling();
      return;
    }
    $("upload-status").hidden = true;
    const error = new ApiError(request.status, request.response, request.getResponseHeader("Retry-After"));
    if (error.status === 401) {
      signedOut("Your session has ended. Please log in again.");
      return;
    }
    photoError(refusal(error));
  });
  request.addEventListener("error", () => {
    button.disabled = false;
    $("upload-status").hidden = true;
    photoError(describe(new ApiError(0, null, null)));
  });
  const body = new FormData();
  body.append("photo", file);
  request.send(body);
});

/** Why the api refused a photo, in words. */
function refusal(error) {
  switch (error.code) {
    case "payload_too_large":
      return sentence(error.message);
    case "unsupported_media_type":
      return "This file is not a photo we can use. Choose a JPEG, PNG or WebP image.";
    case "validation_failed":
      return error.fields.photo ? sentence(`This photo ${error.fields.photo}`) : describe(error);
    case "rate_limited":
      return `You have uploaded many photos recently.${Number.isFinite(error.retryAfter) ? ` Try again in ${error.retryAfter} s.` : ""}`;
    default:
      return describe(error);
  }
}

function photoError(message) {
  $("photo-error").textContent = message;
  $("photo").setAttribute("aria-invalid", "true");
  announce(message);
}

function setUploadStatus(text, percent) {
  $("upload-status").hidden = false;
  $("upload-label").textContent = text;
  $("upload-progress").value = percent;
}

// --- Jobs panel ----------------------------------------------------------

function startPolling() {
  poll.delay = FAST_POLL_MS;
  if (poll.timer !== null) clearTimeout(poll.timer);
  poll.timer = setTimeout(pollJobs, 0);
}

function stopPolling() {
  if (poll.timer !== null) clearTimeout(poll.timer);
  poll.timer = null;
}

/**
 * One look at the jobs. Fast while things change, slower (up to 10 s)
 * while nothing does, stopped when every job has finished or the tab is
 * hidden. Unchanged answers are 304s without a body.
 */
async function pollJobs() {
  poll.timer = null;
  if (!token || deleting || document.hidden) return;
  try {
    const headers = poll.etag ? { "If-None-Match": poll.etag } : {};
    const answer = await api("/api/me/jobs?limit=20", { headers });
    if (answer.status === 304) {
      poll.delay = Math.min(poll.delay * 1.5, SLOW_POLL_MS);
    } else {
      poll.etag = answer.etag;
      poll.delay = FAST_POLL_MS;
      await showJobs(answer.body.jobs);
    }
    // Only the notice the poller put up (the server was unreachable) is
    // the poller's to take down.
    if (poll.offline) notice(null);
    poll.offline = false;
  } catch (error) {
    if (error.status === 401) {
      signedOut("Your session has ended. Please log in again.");
      return;
    }
    poll.delay = Math.min(poll.delay * 2, SLOW_POLL_MS);
    if (error.status === 0) {
      notice(describe(error));
      poll.offline = true;
    }
  }
  const unfinished = [...poll.jobs.values()].some((job) => !FINISHED.has(job.state));
  if (token && unfinished && poll.timer === null) poll.timer = setTimeout(pollJobs, poll.delay);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) stopPolling();
  else if (token && !deleting) startPolling();
});

async function showJobs(jobs) {
  let profileChanged = false;
  for (const job of jobs) {
    const before = poll.jobs.get(job.id);
    if (before?.state !== job.state && FINISHED.has(job.state)) {
      announce(`${JOB_NAMES[job.name] ?? job.name}: ${STATE_NAMES[job.state].toLowerCase()}.`);
      profileChanged ||= before !== undefined || job.state === "completed";
    }
    poll.jobs.set(job.id, job);
    if (job.id === uploadJobId) showUploadJob(job);
  }
  $("jobs").replaceChildren(...jobs.map(jobItem));
  $("jobs-empty").hidden = jobs.length > 0;
  if (profileChanged) await loadProfile();
}

function showUploadJob(job) {
  if (job.state === "completed") {
    setUploadStatus("Your new photo is ready.", 100);
    uploadJobId = null;
  } else if (job.state === "failed") {
    $("upload-status").hidden = true;
    photoError(job.error?.message ?? "We could not process this photo.");
    uploadJobId = null;
  } else {
    setUploadStatus(`Processing your photo… ${job.progress}%`, job.progress);
  }
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
  name.textContent = JOB_NAMES[job.name] ?? job.name;
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

// --- Start ---------------------------------------------------------------

if (location.pathname === "/verify-email" && linkToken()) confirmAddress();
else if (location.pathname === "/unsubscribe" && linkToken()) showUnsubscribe();
else if (location.pathname === "/reset-password" && resetToken()) showAuth("reset");
else if (location.pathname === "/forgot-password") showAuth("forgot");
else if (token) showHome();
else showAuth("signup");
