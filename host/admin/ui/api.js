// The admin API as the console calls it: every call carries the bearer token from
// sessionStorage in a header, never in the URL (URLs reach server and proxy logs).

const TOKEN_KEY = "mwhost.admin.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// NOTE: `#token=<JWT>` logs in: the fragment never leaves the browser; it is removed from
// the address bar (and the history entry) at once, so it is not bookmarked or shared.
// Returns "none" (no such fragment), "taken", or "malformed" (a bad %-escape: no token kept).
export function takeFragmentToken() {
  const found = /^#token=([^&]+)/.exec(location.hash);
  if (!found) return "none";
  history.replaceState(null, "", `${location.pathname}#/pipeline`);
  let value;
  try {
    value = decodeURIComponent(found[1]);
  } catch {
    forgetToken();  // NOTE: the link was meant to replace the stored token: keep neither
    return "malformed";
  }
  setToken(value);
  return "taken";
}

export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function call(method, path, { query, body, contentType } = {}) {
  const headers = { Authorization: `Bearer ${token() || ""}` };
  if (contentType) headers["Content-Type"] = contentType;
  const response = await fetch(withQuery(path, query), {
    method, headers, body, cache: "no-store", credentials: "omit", redirect: "error",
  });
  const type = response.headers.get("Content-Type") || "";
  const payload = type.includes("json") ? await response.json().catch(() => ({})) : await response.text();
  if (response.status === 401) {
    forgetToken();  // NOTE: refused: a reload must not send it again, the login form asks for another
    window.dispatchEvent(new CustomEvent("mwhost:unauthorized"));
  }
  if (!response.ok) {
    const problem = typeof payload === "object" ? payload : { title: response.statusText, detail: payload };
    throw new ApiError(response.status, { status: response.status, ...problem });
  }
  return payload;
}

export const get = (path, query) => call("GET", path, { query });

export const stagePath = (name, rest = "") => `/_admin/middlewares/${encodeURIComponent(name)}${rest}`;
