/** Permissions. A route declares the scopes it needs; `admin` implies every other scope. */
export const SCOPES = [
  'memory:read',
  'memory:write',
  'memory:delete',
  'pii:read',
  'legal-hold:write',
  'audit:read',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

/** Who is calling, established before any handler runs. */
export interface Caller {
  kind: 'service' | 'agent' | 'dev';
  /** Service identity (certificate CN) or agent id; 'dev' in AUTH_MODE=dev. */
  id: string;
  /** Divisions the caller may touch: one for agents, a list or '*' for services. */
  divisions: readonly string[] | '*';
  /** Agent tokens are confined to their agent's memories too. */
  agentId?: string;
  scopes: ReadonlySet<Scope>;
  /** Which signed manifest authorised this call (header or token claim); recorded in audit events. */
  manifestSignatureId?: string;
  /** The token's `jti` claim, when it has one: which credential read what (access events). */
  tokenId?: string;
  /** The request being served, for access events: its id and route (`GET /v1/memories/:id`). */
  request?: { id: string; route: string };
}

export const hasScope = (caller: Caller, scope: Scope) =>
  caller.scopes.has('admin') || caller.scopes.has(scope);

/** `agent:support-bot`, `service:billing`, `dev`: how audit events and logs name a caller. */
export const actorOf = (caller: Pick<Caller, 'kind' | 'id'>) =>
  caller.kind === 'dev' ? 'dev' : `${caller.kind}:${caller.id}`;
