// Same-origin JSON calls. Every POST carries the session's CSRF token; every failure becomes an
// ApiError whose message is the server's own words, shown to the coordinator as is.

let csrf = "";

export function setCsrf(token) {
  csrf = token;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function toLogin(response) {
  // A lost session answers 401, or 303 to /login that fetch follows to the form.
  const landed = response.redirected && new URL(response.url).pathname === "/login";
  if (response.status === 401 || landed) {
    window.location.assign("/login?error=session_ended");
    return true;
  }
  return false;
}

async function parse(response) {
  if (toLogin(response)) throw new ApiError(401, "session ended");
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const why = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new ApiError(response.status, `${why || "request failed"} (HTTP ${response.status})`);
  }
  if (body === null) throw new ApiError(response.status, "the server sent no JSON");
  return body;
}

export async function getJSON(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "cannot reach the gateway");
  }
  return parse(response);
}

export async function post(path, body = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "cannot reach the gateway: nothing was done");
  }
  return parse(response);
}

export const caseAction = (code, action, body) =>
  post(`/api/cases/${encodeURIComponent(code)}/${encodeURIComponent(action)}`, body);
