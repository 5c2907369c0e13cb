// Building DOM nodes without innerHTML: every value from the API becomes text, never markup.

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export const short = (sha) => (sha ? String(sha).slice(0, 12) : "—");

export function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(rate < 0.01 && rate > 0 ? 2 : 1)}%`;
}

export function millis(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds === Infinity) return "> 1 s";
  return seconds < 0.001 ? `${(seconds * 1e6).toFixed(0)} µs` : `${(seconds * 1000).toFixed(1)} ms`;
}

// A problem (RFC 9457) as the operator should read it: status, title and the full detail.
export function problemBox(err) {
  const problem = err.problem || { title: "Error", detail: String(err.message || err) };
  const extras = ["check", "parameter", "probe", "failure"].filter((key) => problem[key] !== undefined)
    .map((key) => `${key}: ${problem[key]}`).join(" · ");
  return h("div", { class: "problem", role: "alert" },
    h("strong", { text: `${problem.status || ""} ${problem.title || "Refused"}`.trim() }),
    h("p", { class: "problem-detail", text: problem.detail || "" }),
    extras && h("p", { class: "problem-extra", text: extras }));
}
