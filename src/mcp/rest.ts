import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance } from 'fastify';
import type { Caller } from '../auth/caller.js';

/** One REST call a tool makes: the route, the body, and the headers that carry semantics. */
export interface RestCall {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path and query string, e.g. `/v1/memories/…?divisionId=sales`. */
  url: string;
  body?: unknown;
  /** The body's type when it is not JSON (a document's text, sent as it is). */
  contentType?: string;
  headers?: Record<string, string>;
}

/** The body as it travels: JSON, unless the call names another type. */
const payloadOf = (call: RestCall): string | undefined =>
  call.body === undefined ? undefined : call.contentType ? String(call.body) : JSON.stringify(call.body);
const typeOf = (call: RestCall): Record<string, string> =>
  call.body !== undefined ? { 'content-type': call.contentType ?? 'application/json' } : {};

export interface RestAnswer {
  status: number;
  /** The parsed JSON body (a memory, a search answer, or a problem+json), or undefined. */
  body: unknown;
}

/**
 * How the MCP tools reach the service: always through its REST routes, so that a tool call gets
 * exactly the route's validation, scopes, confinement, idempotency and audit.
 */
export type Rest = (call: RestCall) => Promise<RestAnswer>;

/**
 * The caller an in-process request acts as. Bound with `run()` around `inject()`, read by the
 * authentication hook only for requests that were injected (no socket): a request that arrives
 * over the network can never pick it up, whatever it sends.
 */
const boundCaller = new AsyncLocalStorage<Caller>();

interface InjectedRaw {
  _lightMyRequest?: unknown;
}

/** The caller bound to an injected request, or undefined for every request from the network. */
export function inProcessCaller(raw: unknown): Caller | undefined {
  if (typeof raw !== 'object' || raw === null || !('_lightMyRequest' in (raw as InjectedRaw)))
    return undefined;
  return boundCaller.getStore();
}

/**
 * REST calls made inside this process through Fastify's `inject`. With `caller` (already
 * authenticated: by the /mcp request's own credentials, or the local operator of `memory-layer
 * mcp`) the request acts as that caller; without one it carries `headers` (e.g. a bearer token)
 * and is authenticated like any request. Either way the injected request runs every hook, schema
 * and handler of the route it names.
 */
export function injectRest(
  server: FastifyInstance,
  opts: { caller?: Caller; headers?: Record<string, string>; requestId?: string },
): Rest {
  const send = async (call: RestCall): Promise<RestAnswer> => {
    const res = await server.inject({
      method: call.method,
      url: call.url,
      headers: {
        ...typeOf(call),
        ...(opts.requestId !== undefined ? { 'x-request-id': opts.requestId } : {}),
        'user-agent': 'memory-layer-mcp',
        ...opts.headers,
        ...call.headers,
      },
      ...(call.body !== undefined ? { payload: payloadOf(call) } : {}),
    });
    return { status: res.statusCode, body: res.body === '' ? undefined : safeJson(res.body) };
  };
  const caller = opts.caller;
  return caller === undefined ? send : (call) => boundCaller.run(caller, () => send(call));
}

/**
 * REST calls to a running service at `baseUrl` (`memory-layer mcp --url`), with a bearer token
 * when one is given. TLS trust comes from Node's usual settings (e.g. NODE_EXTRA_CA_CERTS).
 */
export function httpRest(baseUrl: string, token: string | undefined): Rest {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return async (call) => {
    const res = await fetch(new URL(call.url.replace(/^\//, ''), base), {
      method: call.method,
      headers: {
        accept: 'application/json',
        'user-agent': 'memory-layer-mcp',
        ...typeOf(call),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...call.headers,
      },
      ...(call.body !== undefined ? { body: payloadOf(call) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : safeJson(text) };
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text };
  }
}
