import { randomUUID } from 'node:crypto';
import type { JWK } from 'jose';
import type { Database, Queryable } from '../adapters/db/port.js';
import type { Access } from '../memories/access.js';
import { type MemoryRow, visibleChecksum } from '../memories/records.js';
import type { AccessAudit } from './access-audit.js';
import { appendAudit, auditHead, type ListAuditOptions, listAudit } from './audit-log.js';
import { BUNDLE_FORMAT, type BundleMemory, type ProofBundle } from './bundle.js';
import { bundleArtifacts } from './bundle-artifacts.js';
import { type ChainHead, canonicalJson } from './chain.js';
import { type AuditSigner, parseHeadJws, type SignedHead } from './signer.js';
import type { AuditEvent } from './types.js';

export const MAX_AUDIT_PAGE = 1000;
const EXPORT_PAGE = 5000;

export interface AuditPage {
  events: AuditEvent[];
  /** Pass as `afterSeq` for the next page; null when this page is the last. */
  nextAfterSeq: number | null;
}

export interface AuditHeadView extends ChainHead {
  divisionId: string;
  signedHead: SignedHead;
  publicKey: JWK;
}

export interface ExportOptions {
  /** Export original texts (the caller has pii:read); otherwise redacted texts where there are any. */
  includePii: boolean;
  /** When given, an `export.create` event is appended first (and so is part of the bundle). */
  actor?: string;
  manifestSignatureId?: string;
  /** Who exports: the export is a recorded read of the whole division (ACCESS_AUDIT=all). */
  access?: Access;
}

export interface ExportResult {
  bundle: ProofBundle;
  /** The bundle as canonical JSON (RFC 8785): what to send or store. */
  json: string;
}

export type AuditService = ReturnType<typeof createAuditService>;

/** What a proof export reads of a memory: row columns, when its content was purged, its vector's digest. */
type MemoryExportRow = Pick<
  MemoryRow,
  | 'id'
  | 'agent_id'
  | 'namespace'
  | 'kind'
  | 'text'
  | 'redacted_text'
  | 'checksum'
  | 'tags'
  | 'metadata'
  | 'pii_flags'
  | 'status'
  | 'version'
  | 'created_at'
  | 'updated_at'
  | 'deleted_at'
  | 'legal_hold'
  | 'expires_at'
  | 'embedding_model'
  | 'embedding_model_version'
  | 'embedding_dim'
> & { purged_at: Date | null; embedding_checksum: string | null };

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

function toBundleMemory(r: MemoryExportRow, includePii: boolean): BundleMemory {
  const purged = r.purged_at !== null;
  const redacted = !purged && !includePii && r.redacted_text !== null;
  return {
    id: r.id,
    agentId: r.agent_id,
    namespace: r.namespace,
    kind: r.kind,
    text: purged ? '' : redacted ? (r.redacted_text as string) : r.text,
    redacted,
    checksum: visibleChecksum(r, redacted),
    tags: r.tags,
    metadata: r.metadata,
    piiFlags: r.pii_flags,
    status: r.status,
    version: r.version,
    createdAt: iso(r.created_at) as string,
    updatedAt: iso(r.updated_at) as string,
    deletedAt: iso(r.deleted_at),
    purgedAt: iso(r.purged_at),
    legalHold: r.legal_hold,
    expiresAt: iso(r.expires_at),
    vector:
      r.embedding_checksum !== null && r.embedding_model !== null && r.embedding_dim !== null
        ? {
            model: r.embedding_model,
            version: r.embedding_model_version ?? '',
            dimensions: r.embedding_dim,
            checksum: r.embedding_checksum,
          }
        : null,
  };
}

/**
 * Reading the trail, signing heads and proof exports. Appending is `appendAudit`, inside the
 * transaction of the change it records.
 */
export function createAuditService(deps: {
  db: Database;
  signer: AuditSigner;
  /** The audit of reads: flushed before the trail is read, and exports are recorded reads. */
  readAudit?: Pick<AccessAudit, 'record' | 'flush'>;
}) {
  const { db, signer } = deps;
  /** Staged reads join the chain before anyone reads it: "who saw" answers are up to date. */
  const flushReads = async () => {
    await deps.readAudit?.flush();
  };

  /** Stores a signature (idempotent); several replicas may sign the same head. */
  async function store(q: Queryable, s: SignedHead) {
    await q.query(
      `INSERT INTO audit_signatures (division_id, seq, hash, key_id, signed_at, jws)
       VALUES ($1, $2, $3, $4, $5::timestamptz, $6) ON CONFLICT DO NOTHING`,
      [s.divisionId, s.seq, s.hash, s.keyId, s.signedAt, s.jws],
    );
  }

  /** This signer's signature of a head: the stored one, or a new one (stored unless seq is 0). */
  async function signed(divisionId: string, head: ChainHead): Promise<SignedHead> {
    const found = await db.query<{ jws: string }>(
      'SELECT jws FROM audit_signatures WHERE division_id = $1 AND seq = $2 AND key_id = $3 AND hash = $4',
      [divisionId, head.seq, signer.keyId, head.hash],
    );
    if (found.rows[0]) return parseHeadJws(found.rows[0].jws, signer.keyId);
    const s = await signer.signHead({ divisionId, ...head });
    if (head.seq > 0) await store(db, s);
    return s;
  }

  return {
    /** One page of a division's events, oldest first. */
    async list(
      divisionId: string,
      opts: Pick<ListAuditOptions, 'afterSeq' | 'limit' | 'resource' | 'memoryId' | 'type'> = {},
    ): Promise<AuditPage> {
      const limit = Math.min(Math.max(opts.limit ?? 100, 1), MAX_AUDIT_PAGE);
      await flushReads();
      const events = await listAudit(db, divisionId, {
        afterSeq: opts.afterSeq ?? 0,
        limit,
        resource: opts.resource,
        memoryId: opts.memoryId,
        type: opts.type,
      });
      return { events, nextAfterSeq: events.length === limit ? events[events.length - 1].seq : null };
    },

    /** The division's current head, signed (on demand when its signature is not stored yet). */
    async head(divisionId: string): Promise<AuditHeadView> {
      await flushReads();
      const head = await auditHead(db, divisionId);
      return { divisionId, ...head, signedHead: await signed(divisionId, head), publicKey: signer.publicJwk };
    },

    /** Signs every head that advanced since this key last signed it (run on an interval). */
    async signChangedHeads(): Promise<SignedHead[]> {
      const res = await db.query<{ division_id: string; seq: number | string; hash: string }>(
        `SELECT h.division_id, h.seq, h.hash FROM audit_heads h
         WHERE h.seq > 0 AND NOT EXISTS (
           SELECT 1 FROM audit_signatures s
           WHERE s.division_id = h.division_id AND s.key_id = $1 AND s.seq >= h.seq)
         ORDER BY h.division_id`,
        [signer.keyId],
      );
      const out: SignedHead[] = [];
      for (const r of res.rows) {
        const s = await signer.signHead({ divisionId: r.division_id, seq: Number(r.seq), hash: r.hash });
        await store(db, s);
        out.push(s);
      }
      return out;
    },

    /**
     * A proof bundle of the division: memory records (including deleted and purged ones), vector
     * metadata, the whole audit chain and its signed head, read from one snapshot so that every
     * memory's events are in the chain.
     */
    async exportBundle(divisionId: string, opts: ExportOptions): Promise<ExportResult> {
      if (opts.actor) {
        await db.transaction((tx) =>
          appendAudit(tx, [
            {
              divisionId,
              actor: opts.actor as string,
              action: 'export.create',
              resourceType: 'export',
              resourceId: randomUUID(),
              manifestSignatureId: opts.manifestSignatureId,
              change: { includePii: opts.includePii },
            },
          ]),
        );
      }
      if (opts.access) {
        await deps.readAudit?.record(opts.access, {
          divisionId,
          via: 'export',
          memoryIds: [],
          wholeDivision: true,
        });
      }
      // The bundle carries every read recorded so far, this export's included.
      await flushReads();
      const snapshot = await db.transaction(async (tx) => {
        // One snapshot for the head, the events and the memories (PostgreSQL's default, READ
        // COMMITTED, would let a memory committed between two statements miss its event).
        await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        const head = await auditHead(tx, divisionId);
        const events: AuditEvent[] = [];
        while (events.length < head.seq) {
          const page = await listAudit(tx, divisionId, {
            afterSeq: events.length === 0 ? 0 : events[events.length - 1].seq,
            untilSeq: head.seq,
            limit: EXPORT_PAGE,
          });
          if (page.length === 0) break;
          events.push(...page);
        }
        const memories = await tx.query<MemoryExportRow>(
          `SELECT id, agent_id, namespace, kind, text, redacted_text, checksum, tags, metadata, pii_flags,
             status, version, created_at, updated_at, deleted_at, purged_at, legal_hold, expires_at,
             embedding_model, embedding_model_version, embedding_dim,
             CASE WHEN embedding IS NULL THEN NULL ELSE encode(sha256(embedding), 'hex') END AS embedding_checksum
           FROM memory_nodes WHERE division_id = $1 ORDER BY created_at, id`,
          [divisionId],
        );
        const artifacts = await bundleArtifacts(tx, divisionId);
        return { head, events, memories: memories.rows, artifacts };
      });
      const bundle: ProofBundle = {
        format: BUNDLE_FORMAT,
        divisionId,
        exportedAt: new Date().toISOString(),
        includesPii: opts.includePii,
        memories: snapshot.memories.map((r) => toBundleMemory(r, opts.includePii)),
        artifacts: snapshot.artifacts,
        auditEvents: snapshot.events,
        head: snapshot.head,
        signedHead: await signed(divisionId, snapshot.head),
        publicKey: signer.publicJwk,
      };
      return { bundle, json: canonicalJson(bundle) };
    },
  };
}
