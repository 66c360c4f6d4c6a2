import { MemoryLayerError, type Problem } from './errors.js';

/** The `fetch` the client calls: the global one, or one with a dispatcher (mTLS, proxies, pools). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A bearer token, or a function that returns the current one (called before every attempt). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

export interface RetryInfo {
  method: string;
  path: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  /** The status that caused the retry (429, 503), or undefined after a network error. */
  status?: number;
  error?: unknown;
}

export interface TransportOptions {
  baseUrl: string | URL;
  token?: TokenSource;
  fetch?: FetchLike;
  headers?: Record<string, string>;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** First backoff delay (default 200 ms), doubled at each retry with jitter. */
  retryDelayMs?: number;
  /**
   * The longest wait before a retry (default 30 s). A `Retry-After` longer than this is not cut
   * short: the error is thrown instead.
   */
  maxRetryDelayMs?: number;
  /** Aborts an attempt that takes longer (default: no limit). A timed-out attempt counts as a network error. */
  timeoutMs?: number;
  /** Called before each retry's wait. */
  onRetry?: (info: RetryInfo) => void;
}

export interface RawRequest {
  method: string;
  path: string;
  query?: Record<string, unknown>;
  body?: unknown;
  /** A body that is not JSON (NDJSON imports, documents), sent as given with its content type. */
  rawBody?: { type: string; data: string | Uint8Array<ArrayBuffer> };
  headers?: Record<string, string>;
  signal?: AbortSignal;
  idempotencyKey?: string | false;
  retry?: boolean;
}

/**
 * POST routes that honour `Idempotency-Key`: a retried write there gets the stored answer of the
 * first attempt instead of writing twice. On other POSTs the key is sent but not relied upon.
 */
const IDEMPOTENT_POSTS = [
  /^\/v1\/memories$/,
  /^\/v1\/memories\/batch$/,
  /^\/v1\/divisions$/,
  /^\/v1\/divisions\/[^/]+\/agents$/,
  // Chunks committed by an earlier attempt are skipped (`replayed`), the rest written once.
  /^\/v1\/memories\/import$/,
  /^\/v1\/documents$/,
];

/** Connection errors where the request never reached the service: any request may be tried again. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

const RETRY_STATUS = new Set([429, 503]);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** `Retry-After` in seconds (delta-seconds or an HTTP date), or undefined. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function errorCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (typeof e.code === 'string') return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** Combines the caller's signal with a per-attempt timeout. */
function attemptSignal(signal: AbortSignal | undefined, timeoutMs: number | undefined) {
  if (timeoutMs === undefined) return { signal, done: () => undefined };
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
    timeoutMs,
  );
  const onAbort = () => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

async function toError(res: Response, request: { method: string; path: string }): Promise<MemoryLayerError> {
  const requestId = res.headers.get('x-request-id') ?? undefined;
  const retryAfter = retryAfterSeconds(res.headers.get('retry-after'));
  const text = await res.text().catch(() => '');
  let problem: Problem | undefined;
  if (/^application\/(problem\+)?json/.test(res.headers.get('content-type') ?? '')) {
    try {
      const parsed = JSON.parse(text) as Partial<Problem>;
      if (parsed && typeof parsed === 'object' && typeof parsed.code === 'string') {
        problem = {
          type: 'about:blank',
          title: res.statusText,
          detail: '',
          ...parsed,
          status: res.status,
        } as Problem;
      }
    } catch {
      // not JSON after all: described below
    }
  }
  // A proxy or load balancer answered instead of the service.
  problem ??= {
    type: 'about:blank',
    title: res.statusText || 'Error',
    status: res.status,
    code: 'http_error',
    detail: text.slice(0, 500) || `HTTP ${res.status}`,
  };
  return new MemoryLayerError(problem, request, { requestId, retryAfter });
}

async function parseBody(res: Response): Promise<unknown> {
  if (res.status === 204 || res.status === 304) return undefined;
  const type = res.headers.get('content-type') ?? '';
  if (/^application\/([\w.+-]+\+)?json/.test(type)) {
    const text = await res.text();
    return text === '' ? undefined : JSON.parse(text);
  }
  return res.text();
}

/** Sends requests: auth, idempotency keys, retries with backoff, problem+json as MemoryLayerError. */
export function createTransport(opts: TransportOptions) {
  const base = new URL(String(opts.baseUrl));
  const basePath = base.pathname.replace(/\/+$/, '');
  const doFetch: FetchLike = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const retries = opts.retries ?? 3;
  const firstDelay = opts.retryDelayMs ?? 200;
  const maxDelay = opts.maxRetryDelayMs ?? 30_000;

  async function token(): Promise<string | undefined> {
    return typeof opts.token === 'function' ? await opts.token() : opts.token;
  }

  return async function send(req: RawRequest): Promise<{ data: unknown; response: Response }> {
    const method = req.method.toUpperCase();
    const url = `${base.origin}${basePath}${req.path}${queryString(req.query)}`;
    const idempotencyKey =
      method === 'POST' && req.idempotencyKey !== false
        ? (req.idempotencyKey ?? crypto.randomUUID())
        : undefined;
    const retryable =
      req.retry ??
      (method === 'GET' ||
        method === 'HEAD' ||
        (idempotencyKey !== undefined && IDEMPOTENT_POSTS.some((re) => re.test(req.path))));
    const body = req.rawBody?.data ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
    const where = { method, path: req.path };

    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { accept: 'application/json', ...opts.headers, ...req.headers };
      if (body !== undefined) headers['content-type'] = req.rawBody?.type ?? 'application/json';
      if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
      const bearer = await token();
      if (bearer) headers.authorization = `Bearer ${bearer}`;

      const backoff = Math.min(maxDelay, firstDelay * 2 ** (attempt - 1)) * (0.5 + Math.random() * 0.5);
      const attemptAbort = attemptSignal(req.signal, opts.timeoutMs);
      let res: Response;
      try {
        res = await doFetch(url, { method, headers, body, signal: attemptAbort.signal });
      } catch (err) {
        attemptAbort.done();
        // The caller's own abort is never retried.
        if (req.signal?.aborted) throw err;
        const unsent = NOT_SENT.has(errorCode(err) ?? '');
        if (attempt > retries || !(retryable || unsent)) throw err;
        opts.onRetry?.({ ...where, attempt, delayMs: backoff, error: err });
        await sleep(backoff, req.signal);
        continue;
      }
      attemptAbort.done();
      if (res.ok) return { data: await parseBody(res), response: res };

      const error = await toError(res, where);
      if (!retryable || !RETRY_STATUS.has(res.status) || attempt > retries) throw error;
      const delayMs = error.retryAfter !== undefined ? error.retryAfter * 1000 : backoff;
      // Never sooner than the service asked: a wait longer than allowed gives up instead.
      if (delayMs > maxDelay) throw error;
      opts.onRetry?.({ ...where, attempt, delayMs, status: res.status, error });
      await sleep(delayMs, req.signal);
    }
  };
}

export type Transport = ReturnType<typeof createTransport>;
