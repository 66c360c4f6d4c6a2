import { type Access, accessSql, visibleSql } from '../memories/access.js';

/** The filters a search or count shares; always turned into parameterised SQL. */
export interface MemoryFilter {
  divisionId: string;
  namespace?: string;
  agentId?: string;
  kind?: string;
  /** Every listed tag must be present. */
  tags?: string[];
  /** Top-level metadata equality (JSON containment). */
  metadata?: Record<string, unknown>;
  createdAfter?: string;
  createdBefore?: string;
  sessionId?: string;
  occurredAfter?: string;
  occurredBefore?: string;
  /** Superseded memories are skipped unless this is true. */
  includeSuperseded?: boolean;
}

/**
 * Builds `n.`-qualified conditions for memory_nodes, numbering parameters after `params`
 * (which it extends). Only what the caller may see matches; deleted or expired memories never do.
 */
export function filterSql(f: MemoryFilter, access: Access, params: unknown[]): string {
  const add = (value: unknown, cast = '') => {
    params.push(value);
    return `$${params.length}${cast}`;
  };
  const conds = [`n.division_id = ${add(f.divisionId)}`, visibleSql('n'), accessSql(access, params)];
  if (f.namespace !== undefined) conds.push(`n.namespace = ${add(f.namespace)}`);
  if (f.agentId !== undefined) conds.push(`n.agent_id = ${add(f.agentId)}`);
  if (f.kind !== undefined) conds.push(`n.kind = ${add(f.kind)}`);
  if (f.tags !== undefined && f.tags.length > 0) conds.push(`n.tags @> ${add(f.tags, '::text[]')}`);
  if (f.metadata !== undefined && Object.keys(f.metadata).length > 0) {
    conds.push(`n.metadata @> ${add(JSON.stringify(f.metadata), '::jsonb')}`);
  }
  if (f.createdAfter !== undefined) conds.push(`n.created_at >= ${add(f.createdAfter, '::timestamptz')}`);
  if (f.createdBefore !== undefined) conds.push(`n.created_at < ${add(f.createdBefore, '::timestamptz')}`);
  if (f.sessionId !== undefined) conds.push(`n.session_id = ${add(f.sessionId)}`);
  if (f.occurredAfter !== undefined) conds.push(`n.occurred_at >= ${add(f.occurredAfter, '::timestamptz')}`);
  if (f.occurredBefore !== undefined) conds.push(`n.occurred_at < ${add(f.occurredBefore, '::timestamptz')}`);
  if (!f.includeSuperseded) conds.push('n.superseded_by IS NULL');
  return conds.join(' AND ');
}
