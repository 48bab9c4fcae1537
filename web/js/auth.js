// The signed-out screens: sign up, log in, forgot password, and the reset
// link's new password. One card whose form and title change with the
// screen; the browser's address follows, so a reload stays where it was.

import { clearErrors, onSubmit, submitForm } from "/js/forms.js";
import { linkToken } from "/js/links.js";
import { deviceToken } from "/js/session.js";
import { $, announce, notice } from "/ui.js";

const SCREENS = {
  signup: { title: "Create your account", page: "Sign up", switchText: "Already have an account?", switchTo: "Log in" },
  login: { title: "Log in", page: "Log in", switchText: "New here?", switchTo: "Create an account" },
  forgot: { title: "Forgot your password?", page: "Reset your password", switchText: "Remembered it?", switchTo: "Log in" },
  reset: { title: "Choose a new password", page: "New password", switchText: "Remembered it?", switchTo: "Log in" },
};

/** Shows the signed-out screen `mode` (a key of SCREENS), its errors cleared. */
export function showAuth(mode) {
  const screen = SCREENS[mode];
  $("home").hidden = true;
  $("unsubscribe").hidden = true;
  $("logout").hidden = true;
  $("auth").hidden = false;
  for (const name of Object.keys(SCREENS)) {
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

/** Empties every signed-out form, so no password stays in the page. */
export function resetAuthForms() {
  for (const name of Object.keys(SCREENS)) $(`${name}-form`).reset();
}

/** Makes the signed-out screens work; `app` signs in with what they answer. */
export function wireAuth(app) {
  onSubmit("signup-form", (form) =>
    submitForm(app, form, "signup", "/api/signup", {
      name: form.elements.name.value,
      email: form.elements.email.value,
      password: form.elements.password.value,
    }));

  onSubmit("login-form", (form) =>
    submitForm(app, form, "login", "/api/login", {
      email: form.elements.email.value,
      password: form.elements.password.value,
      device_token: deviceToken(),
    }));

  $("forgot-link").addEventListener("click", (event) => {
    event.preventDefault();
    history.pushState(null, "", "/forgot-password");
    showAuth("forgot");
    $("forgot-email").value = $("login-email").value;
    $("forgot-email").focus();
  });

  onSubmit("forgot-form", (form) =>
    submitForm(app, form, "forgot", "/api/password/forgot", { email: form.elements.email.value }, {
      done: (answer) => {
        $("forgot-done").textContent = answer.message;
        announce(answer.message);
      },
    }));

  onSubmit("reset-form", (form) =>
    submitForm(app, form, "reset", "/api/password/reset", { token: linkToken(), password: form.elements.password.value }, {
      done: (answer) => {
        // The link is spent: no reload or shared screen should show it again.
        history.replaceState(null, "", "/");
        app.signedIn(answer);
        notice("Your password is changed, and every other session is signed out.");
      },
    }));

  $("switch").addEventListener("click", () => {
    // From the login screen to signup; from any other to login.
    if (location.pathname !== "/") history.pushState(null, "", "/");
    showAuth($("login-form").hidden ? "login" : "signup");
  });
}
