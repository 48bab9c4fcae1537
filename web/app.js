// The Acme web app: sign up or log in, see the profile, upload a photo, and
// watch the background jobs. Plain JavaScript modules, no framework, no
// build step; this one starts the app and moves between signed in and
// signed out. Each screen is a module under /js/ and reaches the others
// through the one `app` object made here, never through shared variables.
//
// Safety: text from users or the server only ever enters the page through
// textContent or attributes, never as HTML, and the page's
// Content-Security-Policy runs no inline script (where the tokens live, and
// why: /js/session.js).

import { resetAccount, wireAccount } from "/js/account.js";
import { resetAuthForms, showAuth, wireAuth } from "/js/auth.js";
import { createJobs } from "/js/jobs.js";
import { confirmAddress, linkToken, showUnsubscribe, wireUnsubscribe } from "/js/links.js";
import { createLive } from "/js/live.js";
import { createPhoto } from "/js/photo.js";
import { loadProfile, refreshProfile, showProfile, wireProfile } from "/js/profile.js";
import { call, forget, remember, token } from "/js/session.js";
import { $, announce, notice } from "/ui.js";

/** What the screens ask of each other. */
const app = {
  /** The profile last shown (the body of GET /api/me). */
  profile: null,
  showAuth,
  showHome,
  signedIn,
  signedOut,
  sessionEnded: () => signedOut("Your session has ended. Please log in again."),
  loadProfile: () => loadProfile(app),
  showProfile: (me) => showProfile(app, me),
  refreshProfile: () => refreshProfile(app),
};
app.jobs = createJobs(app);
app.photo = createPhoto(app);
app.live = createLive(app);

/** Signed in with a signup's, login's or reset's answer: home. */
function signedIn(answer) {
  remember(answer);
  resetAuthForms();
  showHome();
}

async function showHome() {
  $("auth").hidden = true;
  $("unsubscribe").hidden = true;
  $("home").hidden = false;
  $("logout").hidden = false;
  document.title = "Your account · Acme";
  notice(null);
  await loadProfile(app);
  app.jobs.start();
  app.live.start();
}

/**
 * Back to a signed-out `screen`, saying why, with nothing of the session
 * left on the page; `forgetDevice` when the account is gone.
 */
function signedOut(message, { screen = "login", forgetDevice = false } = {}) {
  forget({ device: forgetDevice });
  app.live.stop();
  app.profile = null;
  app.jobs.clear();
  app.photo.clear();
  resetAccount();
  showAuth(screen);
  notice(message);
  announce(message);
  $(`${screen}-email`).focus();
}

$("logout").addEventListener("click", async () => {
  try {
    await call("/api/session", { method: "DELETE" });
  } catch {
    // The token is forgotten here either way; it expires on its own.
  }
  signedOut("You are logged out.");
});

wireAuth(app);
wireUnsubscribe();
wireProfile(app);
wireAccount(app);

if (location.pathname === "/verify-email" && linkToken()) confirmAddress(app);
else if (location.pathname === "/unsubscribe" && linkToken()) showUnsubscribe();
else if (location.pathname === "/reset-password" && linkToken()) showAuth("reset");
else if (location.pathname === "/forgot-password") showAuth("forgot");
else if (token()) showHome();
else showAuth("signup");
