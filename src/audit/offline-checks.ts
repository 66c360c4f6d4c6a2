import type { AuditEvent } from './types.js';

/** Shape checks for audit events read from untrusted files (bundles and archives). */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
export const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
export const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export const EVENT_FIELDS: Record<keyof AuditEvent, (v: unknown) => boolean> = {
  divisionId: (v) => typeof v === 'string',
  seq: isSeq,
  at: (v) => typeof v === 'string',
  actor: (v) => typeof v === 'string',
  action: (v) => typeof v === 'string',
  resourceType: (v) => typeof v === 'string',
  resourceId: (v) => typeof v === 'string',
  manifestSignatureId: (v) => v === null || typeof v === 'string',
  digest: isHash,
  prevHash: isHash,
  hash: isHash,
};

/** The first field of an event that is missing or of the wrong type (unknown fields count too). */
export function malformedEventField(e: unknown): string | undefined {
  if (!isObject(e)) return '(not an object)';
  for (const [key, ok] of Object.entries(EVENT_FIELDS)) if (!ok(e[key])) return key;
  return Object.keys(e).find((k) => !(k in EVENT_FIELDS));
}
