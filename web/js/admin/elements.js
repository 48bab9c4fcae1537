// The dashboard's small building blocks: a table cell and a button, with
// text always through textContent, never as HTML.

/** A cell showing `text`. */
export function cell(text) {
  const td = document.createElement("td");
  td.textContent = String(text);
  return td;
}

/** A button doing `onClick`: a link-like one, or the primary style. */
export function button(label, onClick, { primary = false } = {}) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = primary ? "primary small" : "link";
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}
