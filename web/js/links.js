// The screens emails link to with a token: confirming an address
// (/verify-email) and unsubscribing from product mail (/unsubscribe). The
// token is in the URL's fragment, which no server, proxy or log ever sees,
// and each link leaves the address bar once it has been used.

import { describe } from "/js/api.js";
import { call, token } from "/js/session.js";
import { $, announce, notice } from "/ui.js";

/** The token of a link in an email, or "" on a page opened without one. */
export function linkToken() {
  return new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
}

/**
 * The confirmation link: proves the address, then goes where the person
 * would be anyway (home when signed in in this tab, else the login).
 */
export async function confirmAddress(app) {
  const link = linkToken();
  // Spent either way: no reload or shared screen should show it again.
  history.replaceState(null, "", "/");
  let message;
  try {
    await call("/api/email/verify", { method: "POST", body: { token: link } });
    message = "Your email address is confirmed. Welcome aboard!";
  } catch (error) {
    message = error.code === "invalid_verification_link"
      ? "This confirmation link is used or expired. Log in to ask for a new one."
      : describe(error);
  }
  if (token()) await app.showHome();
  else app.showAuth("login");
  notice(message);
  announce(message);
}

/**
 * The unsubscribe link of a product email: asks first (a mail scanner that
 * opens links must not unsubscribe anyone), and only the button posts.
 */
export function showUnsubscribe() {
  $("auth").hidden = true;
  $("home").hidden = true;
  $("unsubscribe").hidden = false;
  document.title = "Unsubscribe · Acme";
}

/** Makes the unsubscribe button post the link's signed token. */
export function wireUnsubscribe() {
  $("unsubscribe-confirm").addEventListener("click", async () => {
    const button = $("unsubscribe-confirm");
    $("unsubscribe-error").textContent = "";
    button.disabled = true;
    try {
      await call(`/api/email/unsubscribe?token=${encodeURIComponent(linkToken())}`, { method: "POST" });
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
}
