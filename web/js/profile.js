// The profile card and what hangs off it: name, email, avatar, billing
// customer, plan, the onboarding guide's download, the "confirm your
// address" banner and the email preference. A value a job has yet to make
// says why it is missing (being made, not set up here, failed).

import { describe } from "/js/api.js";
import { call, fetchFile } from "/js/session.js";
import { $, announce, notice } from "/ui.js";

/** Shows the signed-in user as the api has them now. */
export async function loadProfile(app) {
  let me;
  try {
    ({ body: me } = await call("/api/me"));
  } catch (error) {
    if (error.status === 401) app.sessionEnded();
    else notice(describe(error));
    return;
  }
  showProfile(app, me);
}

/** Shows the last profile again: a job its words depend on moved. */
export function refreshProfile(app) {
  if (app.profile) showProfile(app, app.profile);
}

/** Shows `me` (the body of GET /api/me, or of a live `account` event). */
export function showProfile(app, me) {
  // Kept to show again when a job its words depend on moves.
  app.profile = me;
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
  const pending = (queue, waiting) => pendingText(app.jobs.find(queue), waiting);
  $("profile-stripe").textContent =
    me.stripe_customer_id ?? (me.email_verified ? pending("stripe-customer", "Being set up…") : "After you confirm your address.");
  $("profile-plan").textContent = planText(me.subscription);
  $("product-email").checked = me.product_email;
  $("guide").hidden = !me.onboarding_pdf_url;
  $("guide-pending").hidden = Boolean(me.onboarding_pdf_url);
  $("guide-pending").textContent = pending("onboarding-pdf", "Being written…");
}

/** Makes the banner's resend, the preference and the guide's button work. */
export function wireProfile(app) {
  $("verify-resend").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    $("verify-status").textContent = "";
    $("verify-error").textContent = "";
    try {
      await call("/api/email/verify/resend", { method: "POST" });
      const sent = "A new link is on its way. It can take a minute to arrive.";
      $("verify-status").textContent = sent;
      announce(sent);
      app.jobs.start();
    } catch (error) {
      if (error.status === 401) return app.sessionEnded();
      if (error.code === "already_verified") return loadProfile(app);
      const message = error.status === 429 && error.code === "rate_limited"
        ? "We have sent several links in the last hour. Check your inbox and spam folder, or try again later."
        : describe(error);
      $("verify-error").textContent = message;
      announce(message);
    } finally {
      button.disabled = false;
    }
  });

  $("product-email").addEventListener("change", async (event) => {
    const box = event.target;
    $("mail-error").textContent = "";
    $("mail-done").textContent = "";
    box.disabled = true;
    try {
      await call("/api/me/preferences", { method: "PUT", body: { product_email: box.checked } });
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

  $("guide").addEventListener("click", async () => {
    // The guide needs the bearer token, so a plain link cannot fetch it.
    try {
      const url = URL.createObjectURL(await fetchFile("/api/me/onboarding.pdf"));
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

function initials(name) {
  return Array.from(name.trim().split(/\s+/), (part) => Array.from(part)[0] ?? "")
    .slice(0, 2)
    .join("")
    .toUpperCase();
}

/** What to show while a job has not produced its value: `waiting`, or why there will be none. */
function pendingText(job, waiting) {
  if (job?.state === "failed") return "Not available right now.";
  // Done without a value: the service is not configured here (e.g. no Stripe key).
  if (job?.state === "completed") return "Not set up.";
  return waiting;
}
