import type { AccessAuditMode } from '../audit/access-audit.js';
import type { AuditEventInput } from '../audit/types.js';
import type { Access } from './access.js';
import type { MemoryRow } from './records.js';

/** The audit event of a change to one memory, in the caller's name. */
export function auditOf(access: Access, r: MemoryRow, action: string, change: unknown): AuditEventInput {
  return {
    divisionId: r.division_id,
    actor: access.actor,
    action,
    resourceType: 'memory',
    resourceId: r.id,
    manifestSignatureId: access.manifestSignatureId,
    change,
  };
}

/**
 * `pii.read` events for the rows carrying PII flags that `access` gets unredacted; none with
 * ACCESS_AUDIT=off.
 */
export function piiReadEvents(
  access: Access,
  rows: MemoryRow[],
  via: string,
  mode: AccessAuditMode = 'all',
): AuditEventInput[] {
  if (!access.piiRead || mode === 'off') return [];
  return rows
    .filter((r) => r.pii_flags.length > 0)
    .map((r) => auditOf(access, r, 'pii.read', { via, piiFlags: r.pii_flags, version: r.version }));
}
