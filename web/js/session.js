// Who is signed in, and the calls made as them. The storage is the state,
// so no copy of the token lives in a variable to go stale.
//
// The bearer token lives in sessionStorage: it survives a reload of this
// tab, is gone when the tab closes, and is never sent automatically (so no
// request can be forged on the user's behalf, unlike a cookie); with no
// HTML injection and no third-party script there is nothing on the page to
// read it. The device token lives in localStorage for as long as the browser
// keeps it: it opens nothing by itself (a login still needs the password),
// and it lets this browser log in while strangers' wrong guesses have
// locked the account.

import { download, request } from "/js/api.js";

const TOKEN_KEY = "acme.token";
const DEVICE_KEY = "acme.device";

/** The bearer token of this tab's session, or null when signed out. */
export const token = () => sessionStorage.getItem(TOKEN_KEY);

/** This browser's device token, sent with a login; undefined when it has none. */
export const deviceToken = () => localStorage.getItem(DEVICE_KEY) ?? undefined;

/** Keeps what a signup, login or reset answered. */
export function remember(answer) {
  if (answer.device_token) localStorage.setItem(DEVICE_KEY, answer.device_token);
  sessionStorage.setItem(TOKEN_KEY, answer.token);
}

/** Forgets the session; with `device`, this browser's device token too (the account is gone). */
export function forget({ device = false } = {}) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (device) localStorage.removeItem(DEVICE_KEY);
}

/** `request` as the signed-in user. */
export const call = (path, options = {}) => request(path, { ...options, token: token() });

/** `download` as the signed-in user. */
export const fetchFile = (path) => download(path, { token: token() });
