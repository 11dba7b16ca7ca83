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
}

/**
 * Sends a request and answers the parsed JSON body. `json` is sent as application/json,
 * `body` as is (FormData, Blob). Rejects with ApiError on a network failure or a non-2xx answer.
 */
export async function request(method, path, { json, body, signal } = {}) {
  const headers = { Accept: "application/json" };
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
    throw new ApiError(message, {
      status: response.status,
      code: data?.code ?? null,
      requestId: data?.request_id ?? response.headers.get("X-Request-ID"),
    });
  }
  return data;
}

export const getJson = (path, options) => request("GET", path, options);
export const postJson = (path, json, options) => request("POST", path, { ...options, json });
