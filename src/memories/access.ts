import { agentScope } from '../auth/authorize.js';
import type { Caller } from '../auth/caller.js';
import { actorOf, hasScope } from '../auth/caller.js';
import { isHeldSql } from '../governance/retention.js';

/**
 * What the domain needs to know about a caller: where it may look, how to name it in the audit
 * trail, and whether it may see personal data. Built from the authenticated Caller per request.
 */
export interface Access {
  /** Divisions the operation may touch ('*' = any). */
  divisions: readonly string[] | '*';
  /** Set for agent tokens only: they see and write their own agent's memories. */
  agentId?: string;
  actor: string;
  manifestSignatureId?: string;
  piiRead: boolean;
  /** The credential (token `jti`) and request behind the access, recorded with reads. */
  tokenId?: string;
  request?: { id: string; route: string };
}

export function accessOf(caller: Caller, onlyDivision?: string): Access {
  return {
    divisions: onlyDivision !== undefined ? [onlyDivision] : caller.divisions,
    agentId: agentScope(caller),
    actor: actorOf(caller),
    manifestSignatureId: caller.manifestSignatureId,
    piiRead: hasScope(caller, 'pii:read'),
    ...(caller.tokenId !== undefined ? { tokenId: caller.tokenId } : {}),
    ...(caller.request !== undefined ? { request: caller.request } : {}),
  };
}

/** Full access, for internal jobs and tests. */
export const systemAccess = (component: string): Access => ({
  divisions: '*',
  actor: `system:${component}`,
  piiRead: true,
});

/** SQL confining `alias`-qualified memory rows to what `access` may see; extends `params`. */
export function accessSql(access: Access, params: unknown[], alias = 'n'): string {
  const conds: string[] = [];
  if (access.divisions !== '*') {
    params.push(access.divisions);
    conds.push(`${alias}.division_id = ANY($${params.length}::text[])`);
  }
  if (access.agentId !== undefined) {
    params.push(access.agentId);
    conds.push(`${alias}.agent_id = $${params.length}`);
  }
  return conds.length > 0 ? conds.join(' AND ') : 'true';
}

/**
 * Live for reads: not deleted, and not expired unless held. Expired memories disappear at once;
 * the sweeper soft-deletes them later.
 */
export const visibleSql = (alias = 'n') =>
  `${alias}.deleted_at IS NULL AND (${alias}.expires_at IS NULL OR ${alias}.expires_at > now() OR ${heldSql(alias)})`;

/** True when a legal hold covers the memory: its own flag, or a hold on its division or agent. */
export const heldSql = isHeldSql;
