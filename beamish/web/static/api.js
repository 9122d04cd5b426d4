// JSON calls to the HTTP API through the web app's proxy (the session cookie's token goes
// with them). A refusal throws ApiError with the API's own message and, for a 422, each
// field's problem, so a page can show them as they come.

export class ApiError extends Error {}

// api(path, { method, body }) on the API at base (a page's data-api): the decoded answer,
// or null for 204.
export function apiClient(base) {
  return async function api(path, { method = "GET", body } = {}) {
    const options = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(base + path, options);
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      const problems = (error.details || []).map((p) => `${(p.loc || []).join(".")}: ${p.msg}`);
      throw new ApiError([error.message || `HTTP ${response.status}`, ...problems].join("; "));
    }
    return data;
  };
}
