// How every form of the app reports back: each field's problem under its
// input (tied by aria-describedby, marked aria-invalid, the first one
// focused), anything else under the form, and announced.
//
// A form's elements share a prefix: `login-form` holds `login-email`, whose
// problem goes in `login-email-error`; the form's own in `login-error`.

import { describe, sentence } from "/js/api.js";
import { call, token } from "/js/session.js";
import { $, announce } from "/ui.js";

// The field a wrong password belongs to, per signed-in form.
const PASSWORD_FIELDS = { change: "current_password", email: "password", delete: "password" };

const LOCKED_OR_WRONG =
  "The email or password is wrong. After many failed attempts an account takes logins only from devices that signed in before, for a while: \"Forgot your password?\" lets you in at once.";

/** Runs `send(form)` instead of the browser's own submission. */
export function onSubmit(id, send) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    send(event.currentTarget);
  });
}

/** Empties the form's error slots and unmarks its inputs. */
export function clearErrors(form) {
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

/**
 * Sends `body` to `path` and hands the answer to `done` (by default: signed
 * in with it). A refusal is shown where it belongs; a spent reset link
 * leads to the screen where a new one is asked for.
 */
export async function submitForm(app, form, prefix, path, body, { done = app.signedIn, method = "POST" } = {}) {
  clearErrors(form);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { body: answer } = await call(path, { method, body });
    done(answer);
  } catch (error) {
    if (error.status === 401 && token()) {
      app.sessionEnded();
    } else if (error.code === "wrong_password") {
      showFieldErrors(prefix, { [PASSWORD_FIELDS[prefix]]: "is not right" });
    } else if (error.code === "email_taken" && token()) {
      showFieldErrors(prefix, { email: "has another account" });
    } else if (error.code === "email_taken") {
      showFieldErrors(prefix, { email: "already has an account; log in instead" });
    } else if (!(error.code === "validation_failed" && showFieldErrors(prefix, error.fields))) {
      const message =
        error.code === "invalid_credentials" ? LOCKED_OR_WRONG
        : error.code === "invalid_reset_link" ? "This link is used or expired. Ask for a new one here."
        : describe(error);
      const shownIn = error.code === "invalid_reset_link" ? "forgot" : prefix;
      if (shownIn !== prefix) {
        history.replaceState(null, "", "/forgot-password");
        app.showAuth(shownIn);
      }
      $(`${shownIn}-error`).textContent = message;
      announce(message);
    }
  } finally {
    button.disabled = false;
  }
}
