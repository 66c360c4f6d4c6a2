// Calls the service's REST API with the tab's bearer token (if any). The token lives only in
// sessionStorage: it is scoped to this tab, survives a reload, and is gone when the tab closes.
// Never localStorage (shared by every tab, kept for ever) and never a cookie (sent by the browser
// on its own, which would open the API to cross-site requests).

const TOKEN_KEY = 'memory-layer.console.token';

export const token = {
  get() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** A problem+json answer: `code` and `errors` as the API sent them. */
export class ApiError extends Error {
  constructor(status, problem) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.code = typeof p.code === 'string' ? p.code : `http_${status}`;
    this.errors = Array.isArray(p.errors) ? p.errors : [];
    this.requestId = p.requestId;
  }
}

const listeners = new Set();
/** Called with every 401: the console then asks for a token. */
export function onUnauthenticated(fn) {
  listeners.add(fn);
}

/**
 * One API call. `query` values that are undefined or '' are left out; `body` is sent as JSON.
 * Resolves with the parsed JSON (null for 204); rejects with ApiError.
 */
export async function api(method, path, { query, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  const headers = { accept: 'application/json' };
  const bearer = token.get();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    redirect: 'error',
  });
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401) for (const fn of listeners) fn();
    throw new ApiError(res.status, data);
  }
  return data;
}

/** Every page of a cursor- or position-paged list, within `max` items. */
export async function allPages(fetchPage, max = 100_000) {
  const out = [];
  let next;
  do {
    const page = await fetchPage(next);
    out.push(...page.items);
    next = page.next;
  } while (next !== null && next !== undefined && out.length < max);
  return out;
}
