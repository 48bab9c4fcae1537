// The signed-in account's own changes: the password, the email address
// (effective once the link sent to the new one is followed), and deleting
// the account, followed until the clean-up job has removed everything.

import { clearErrors, onSubmit, submitForm } from "/js/forms.js";
import { call } from "/js/session.js";
import { $, announce } from "/ui.js";

/** Makes the three forms work; `app` owns the poller and the screens. */
export function wireAccount(app) {
  onSubmit("change-form", (form) => {
    const body = {
      current_password: form.elements.current_password.value,
      new_password: form.elements.new_password.value,
    };
    submitForm(app, form, "change", "/api/me/password", body, {
      done: () => {
        form.reset();
        const done = "Your password is changed, and your other sessions are signed out.";
        $("change-done").textContent = done;
        announce(done);
      },
    });
  });

  onSubmit("email-form", (form) => {
    const address = form.elements.email.value.trim();
    const body = { email: address, password: form.elements.password.value };
    submitForm(app, form, "email", "/api/me/email", body, {
      done: () => {
        form.reset();
        const done = `We sent a link to ${address}. Your address changes when you follow it.`;
        $("email-done").textContent = done;
        announce(done);
        app.jobs.start();
      },
    });
  });

  onSubmit("delete-form", (form) => {
    $("delete-status").textContent = "";
    const body = { password: form.elements.password.value };
    submitForm(app, form, "delete", "/api/me", body, {
      done: (answer) => followDeletion(app, answer.job),
      method: "DELETE",
    });
  });
}

/** Empties the account forms and what they said. */
export function resetAccount() {
  for (const name of ["change", "email", "delete"]) {
    $(`${name}-form`).reset();
    clearErrors($(`${name}-form`));
  }
  $("change-done").textContent = "";
  $("email-done").textContent = "";
  $("delete-status").textContent = "";
}

/**
 * Follows the clean-up until the account is gone. The session that asked
 * lasts exactly as long as the account: a 401 (or a job that no longer
 * exists) means it is done.
 */
async function followDeletion(app, job) {
  // The stream ends with the session; its 401 must not cut this short.
  app.live.stop();
  app.jobs.hold();
  setHomeEnabled(false);
  $("delete-status").textContent = "Deleting your account and everything in it…";
  announce("Deleting your account.");
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    try {
      const { body } = await call(`/api/jobs/${job.id}`);
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
  setHomeEnabled(true);
  app.signedOut("Your account and everything in it are deleted.", { screen: "signup", forgetDevice: true });
}

function setHomeEnabled(enabled) {
  for (const input of document.querySelectorAll("#home input, #home button")) input.disabled = !enabled;
}
