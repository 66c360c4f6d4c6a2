import { AppError, ErrorCode } from '../platform/errors.js';
import { type Caller, hasScope, type Scope } from './caller.js';

export const DEFAULT_DIVISION = 'default';

const forbidden = (message: string) => new AppError(ErrorCode.forbidden, message);

/** Throws 403 `forbidden` naming the first scope the caller lacks (`admin` implies all). */
export function requireScopes(caller: Caller, scopes: readonly Scope[]): void {
  for (const scope of scopes) {
    if (!hasScope(caller, scope)) throw forbidden(`this call needs the ${scope} scope`);
  }
}

/** Whether the caller's reach is every division: a service listed with `*`, or dev. */
export const isUnconfined = (caller: Caller) =>
  caller.kind === 'dev' || (caller.kind === 'service' && caller.divisions === '*');

/** Platform-wide operations (creating divisions, foreign queues): 403 for any confined caller. */
export function requireUnconfined(caller: Caller, message: string): void {
  if (!isUnconfined(caller)) throw forbidden(message);
}

/** Whether the caller may touch `division` at all (no existence check: pure). */
export function mayAccessDivision(caller: Caller, division: string): boolean {
  if (caller.kind === 'dev') return true;
  if (caller.kind === 'agent')
    return caller.divisions !== '*' && caller.divisions.length === 1 && caller.divisions[0] === division;
  return caller.divisions === '*' || caller.divisions.includes(division);
}

/**
 * The division a request works in.
 *
 * - Agents: the token's division. Asking for another one is 403 before anything is looked up, so
 *   the answer is the same whether that division exists or not.
 * - Services: the requested one, else their only division if they have exactly one, else
 *   `default`; it must be in their list (or they have `*`).
 * - Dev: the requested one, else `default`.
 */
export function resolveDivision(caller: Caller, requested: string | undefined): string {
  if (caller.kind === 'dev') return requested ?? DEFAULT_DIVISION;
  if (caller.kind === 'agent') {
    const own = caller.divisions !== '*' && caller.divisions.length === 1 ? caller.divisions[0] : undefined;
    if (own === undefined) throw forbidden('the token names no single division');
    if (requested !== undefined && requested !== own)
      throw forbidden('the token does not grant this division');
    return own;
  }
  const division =
    requested ??
    (caller.divisions !== '*' && caller.divisions.length === 1 ? caller.divisions[0] : DEFAULT_DIVISION);
  if (!mayAccessDivision(caller, division)) throw forbidden('this service may not use this division');
  return division;
}

/**
 * Agent tokens are confined to their own agent's memories: the agent id, else undefined. Fails
 * closed: an agent caller without `agentId` is confined to its `id`.
 */
export const agentScope = (caller: Caller): string | undefined =>
  caller.kind === 'agent' ? (caller.agentId ?? caller.id) : undefined;
