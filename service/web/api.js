// Talking to the service: JSON in and out, errors as ApiError carrying the API's `error` text,
// and the admin token (kept in this tab's sessionStorage) sent as a Bearer header.

const TOKEN_KEY = "perceptron.adminToken";

export class ApiError extends Error {
  constructor(message, { status = 0, code = null, requestId = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  /** True when the service refused an admin action for want of (the right) token. */
  get needsToken() {
    return this.status === 401 || this.status === 403;
  }
}

export function adminToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage can be disabled; the page still works without a token
  }
}

export function setAdminToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: nothing to remember */
  }
  window.dispatchEvent(new CustomEvent("admin-token-changed"));
}

// Asks the person for the admin token: (reason) => Promise<string | null>; set by the page.
let tokenPrompt = null;
let pendingPrompt = null; // requests refused together share one question

export function setTokenPrompt(prompt) {
  tokenPrompt = prompt;
}

function askForToken(reason) {
  if (!tokenPrompt) return Promise.resolve(null);
  pendingPrompt ??= tokenPrompt(reason).finally(() => {
    pendingPrompt = null;
  });
  return pendingPrompt;
}

/** True when a token would change the answer: one is missing, or the one sent is wrong. (A 403
 * without a token means the service has none and refuses remote admin: a token cannot help.) */
function tokenCouldHelp(status, sentToken) {
  return status === 401 || (status === 403 && sentToken);
}

const MAX_TOKEN_QUESTIONS = 3;

/**
 * Sends a request and answers the parsed JSON body. `json` is sent as application/json,
 * `body` as is (FormData, Blob). Rejects with ApiError on a network failure or a non-2xx answer.
 * When the service wants the admin token, the person is asked for it once (unless `askToken` is
 * false); it is kept for the rest of the session (this tab) and the request is sent again.
 */
export async function request(method, path, options = {}) {
  for (let questions = 0; ; questions++) {
    try {
      return await send(method, path, options);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (options.askToken === false) throw error;
      if (!tokenCouldHelp(error.status, error.sentToken) || questions >= MAX_TOKEN_QUESTIONS) throw error;
      const token = await askForToken(error.message);
      if (!token) throw error;
      setAdminToken(token);
    }
  }
}

async function send(method, path, { json, body, signal, blob = false } = {}) {
  const headers = { Accept: blob ? "*/*" : "application/json" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const token = adminToken();
  if (token) headers.Authorization = `Bearer ${token}`;

  let response;
  try {
    response = await fetch(path, { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The service did not answer. Is it still running?");
  }
  if (blob && response.ok) return response.blob();
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message =
      (data && typeof data.error === "string" && data.error) ||
      `${response.status} ${response.statusText || "error"}`;
    const error = new ApiError(message, {
      status: response.status,
      code: data?.code ?? null,
      requestId: data?.request_id ?? response.headers.get("X-Request-ID"),
    });
    error.sentToken = Boolean(token);
    throw error;
  }
  return data;
}

export const getJson = (path, options) => request("GET", path, options);
/** A binary answer (an image, a download) as a Blob, with the admin token like any request. */
export const getBlob = (path, options) => request("GET", path, { ...options, blob: true });
export const postJson = (path, json, options) => request("POST", path, { ...options, json });
