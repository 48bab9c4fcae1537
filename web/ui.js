// What both pages (the app and the operators' dashboard) do the same way:
// find an element, announce a change to screen readers, show a notice.

export const $ = (id) => document.getElementById(id);

export function announce(text) {
  // Cleared first so the same words are announced again.
  $("announce").textContent = "";
  setTimeout(() => { $("announce").textContent = text; }, 50);
}

/** A small notice in a corner for a few seconds, on whatever screen is shown. */
export function toast(text) {
  const item = document.createElement("p");
  item.className = "toast";
  item.textContent = text;
  $("toasts").append(item);
  setTimeout(() => item.remove(), 6_000);
}

export function notice(text) {
  $("notice").textContent = text ?? "";
  $("notice").hidden = !text;
}
