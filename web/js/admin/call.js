// Calls as the operator. The dashboard holds no token: signing in trades
// ADMIN_TOKEN for an HttpOnly, SameSite=Strict session cookie the browser
// sends by itself. Actions add the x-acme-admin header, which pages on
// other sites cannot send. Failures are the app's `ApiError`s.

import { request } from "/js/api.js";

const ACTION = { "x-acme-admin": "1" };

/** Calls the operator api; resolves to the JSON body (null for 204). */
export async function call(path, { method = "GET", body, action = false } = {}) {
  const { body: data } = await request(path, { method, body, headers: action ? ACTION : {} });
  return data;
}
