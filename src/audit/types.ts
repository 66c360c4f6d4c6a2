/** What a change records in the audit trail. `change` is hashed into `digest`, never stored. */
export interface AuditEventInput {
  divisionId: string;
  /** `service:<cn>`, `agent:<id>`, `dev`, `system:<component>` (see actorOf in src/auth/caller.ts). */
  actor: string;
  /** e.g. memory.create, memory.update, memory.delete, memory.expire, memory.purge, legal-hold.set, legal-hold.release, pii.read, export.create */
  action: string;
  resourceType: string;
  resourceId: string;
  manifestSignatureId?: string;
  /** Facts about the change (checksums, versions, flags — never memory text). */
  change: unknown;
  /**
   * Keep `change` next to its digest (`detail`), readable and checkable: access events, whose
   * facts are ids, routes and callers, never text.
   */
  keepChange?: boolean;
  /** The memories this event read ('*': every memory of the division): the "who saw" index. */
  readMemoryIds?: readonly string[];
}

/** A stored event: one link of its division's hash chain. */
export interface AuditEvent {
  divisionId: string;
  seq: number;
  /** ISO 8601 with milliseconds. */
  at: string;
  actor: string;
  action: string;
  resourceType: string;
  resourceId: string;
  manifestSignatureId: string | null;
  /** SHA-256 (hex) of the canonical JSON of the change. */
  digest: string;
  prevHash: string;
  /** SHA-256 (hex) of the canonical JSON (RFC 8785) of every other field but `detail`. */
  hash: string;
  /**
   * The change itself, for events that keep it (access events): not hashed into `hash`, but its
   * digest must be `digest`, so editing it breaks the chain's check all the same.
   */
  detail?: unknown;
}

/** Appends events inside the caller's transaction (the change and its audit commit together). */
export type AppendAudit = (
  tx: import('../adapters/db/port.js').Queryable,
  events: AuditEventInput[],
) => Promise<AuditEvent[]>;
