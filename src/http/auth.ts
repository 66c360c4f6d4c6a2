import type { FastifyInstance } from 'fastify';
import type { createAuthenticator } from '../auth/authenticate.js';
import { requireScopes } from '../auth/authorize.js';
import { actorOf, type Caller, type Scope } from '../auth/caller.js';
import { inProcessCaller } from '../mcp/rest.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
  }
  interface FastifyContextConfig {
    /** Scopes the route needs. Routes without any are admin-only, unless `public`. */
    scopes?: Scope[];
    /** Probes and documentation: no caller needed. */
    public?: boolean;
  }
}

export type Authenticate = ReturnType<typeof createAuthenticator>;

/**
 * Establishes the caller and checks the route's scopes before the body is even read, so an
 * unauthenticated or unauthorised request never reaches a handler (401, then 403). Requests an
 * MCP tool makes in-process (src/mcp/rest.ts) carry the caller they act as and skip only the
 * authentication, never the scope check.
 */
export function installAuth(server: FastifyInstance, authenticate: Authenticate) {
  server.decorateRequest('caller', undefined as unknown as Caller);
  server.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config ?? {};
    // Probes, the API documentation, and unknown routes (answered 404 by the not-found handler).
    const route = req.routeOptions.url;
    if (config.public || route === undefined || route.startsWith('/docs')) return;
    // An MCP tool call's in-process REST request acts as the /mcp request's caller, already
    // authenticated; everything from the network is authenticated here.
    const caller =
      inProcessCaller(req.raw) ?? (await authenticate({ headers: req.headers, socket: req.raw.socket }));
    req.caller = { ...caller, request: { id: req.id, route: `${req.method} ${route}` } };
    req.log = req.log.child({ caller: actorOf(req.caller) });
    requireScopes(req.caller, config.scopes ?? ['admin']);
  });
}
