import { randomUUID } from 'node:crypto';
import { type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import { detectPii, findPiiInLabels, redactText } from '../governance/pii.js';
import { AppError, ErrorCode, type FieldError } from '../platform/errors.js';
import type { Access } from './access.js';
import type { MemoryRow } from './records.js';
import { normaliseText, textChecksum } from './text.js';
import { vectorToBytes } from './vector-codec.js';

/**
 * What a write brings, and the checks that need no database: text size, agent confinement,
 * personal data in labels, PII flags (detected plus the caller's), a precomputed vector's shape.
 * Fields at fault are named with the item's prefix (`items[3].text`).
 */

export interface NewMemory {
  text: string;
  agentId?: string | null;
  namespace?: string;
  kind?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  /** Flags the caller adds to the detected ones (e.g. `name`, `health`). */
  piiFlags?: string[];
  /** ISO time; null = never expires; absent = the division's (or the service's) default TTL. */
  expiresAt?: string | null;
  /** A precomputed embedding; then `model` names the model that produced it. */
  vector?: number[];
  model?: string;
  /** The conversation, thread or document the memory belongs to. */
  sessionId?: string;
  /** Its place in the session; default: after the session's last memory (arrival order). */
  sequence?: number;
  /** When the remembered thing happened (ISO 8601). */
  occurredAt?: string;
  /** Older memories of the division this one replaces. */
  supersedes?: string[];
}

/** What a PATCH may change: the fields a write sets, but the agent, vector and conversation. */
export type MemoryPatch = Partial<
  Pick<NewMemory, 'text' | 'namespace' | 'kind' | 'tags' | 'metadata' | 'piiFlags' | 'expiresAt'>
>;

/** A new memory checked and classified, ready to insert. */
export interface PreparedMemory {
  id: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  text: string;
  redactedText: string | null;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  piiFlags: string[];
  expiresAt: string | null | undefined;
  /** A precomputed vector, checked against the division's model inside the write's transaction. */
  supplied: { vector: number[]; model: string; field: (name: string) => string } | null;
  sessionId: string | null;
  /** Null: assigned at insert, after the session's last memory. */
  sequence: number | null;
  occurredAt: Date | null;
  supersedes: string[];
  /** How this item's fields are named in errors (`items[3].supersedes`). */
  field: (name: string) => string;
}

/** Detected PII plus the caller's flags; and the redacted text callers without pii:read get. */
export function classify(text: string, extraFlags: string[]) {
  const flags = [...new Set([...detectPii(text).flags, ...extraFlags])].sort();
  return { flags, redacted: redactText(text, flags) };
}

export function refusePiiInLabels(
  tags: string[] | undefined,
  metadata: Record<string, unknown> | undefined,
  prefix: string,
) {
  const found = findPiiInLabels(tags, metadata, prefix);
  if (found) {
    throw new AppError(
      ErrorCode.piiInLabels,
      `${found.field} holds personal data (${found.flag}); put it in the text, where it is flagged and redacted`,
      [{ field: found.field, message: `holds personal data (${found.flag})` }],
    );
  }
}

export function checkText(text: string, field: string, maxTextBytes: number): string {
  if (normaliseText(text) === '') {
    throw new AppError(ErrorCode.validation, 'text must not be empty', [{ field, message: 'empty' }]);
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxTextBytes) {
    throw new AppError(ErrorCode.textTooLarge, `text is ${bytes} bytes; the limit is ${maxTextBytes}`, [
      { field, message: `at most ${maxTextBytes} bytes` },
    ]);
  }
  return text;
}

function suppliedVector(input: NewMemory, field: (name: string) => string): PreparedMemory['supplied'] {
  if (input.vector === undefined && input.model === undefined) return null;
  const errors: FieldError[] = [];
  if (input.vector === undefined)
    errors.push({ field: field('vector'), message: 'required when model is given' });
  if (input.model === undefined)
    errors.push({ field: field('model'), message: 'required when vector is given' });
  if (errors.length > 0) throw new AppError(ErrorCode.validation, 'vector and model go together', errors);
  return { vector: input.vector as number[], model: input.model as string, field };
}

/** A precomputed vector must come from the division's active model (checked under its lock). */
export function checkVector(
  supplied: NonNullable<PreparedMemory['supplied']>,
  model: EmbeddingModel,
): Buffer {
  const { field } = supplied;
  const [name, version] = supplied.model.split('@');
  if (name !== model.name || (version !== undefined && version !== model.version)) {
    throw new AppError(
      ErrorCode.unknownModel,
      `vectors for this division must come from its model ${modelKey(model)}`,
      [{ field: field('model'), message: `expected ${model.name} or ${modelKey(model)}` }],
    );
  }
  const vector = supplied.vector;
  if (vector.length !== model.dimensions) {
    throw new AppError(
      ErrorCode.vectorDimensionMismatch,
      `${model.name} vectors have ${model.dimensions} dimensions, got ${vector.length}`,
      [{ field: field('vector'), message: `expected ${model.dimensions} numbers` }],
    );
  }
  // The constructor copies an array directly; Float32Array.from walks it through its iterator.
  return vectorToBytes(new Float32Array(vector));
}

export function prepareMemory(
  access: Access,
  input: NewMemory,
  prefix: string,
  maxTextBytes: number,
): PreparedMemory {
  const field = (name: string) => (prefix ? `${prefix}.${name}` : name);
  const text = checkText(input.text, field('text'), maxTextBytes);
  if (access.agentId !== undefined && input.agentId != null && input.agentId !== access.agentId) {
    throw new AppError(ErrorCode.forbidden, 'an agent token writes only its own memories', [
      { field: field('agentId'), message: `must be ${access.agentId} or absent` },
    ]);
  }
  refusePiiInLabels(input.tags, input.metadata, prefix);
  const { flags, redacted } = classify(text, input.piiFlags ?? []);
  return {
    id: randomUUID(),
    agentId: access.agentId ?? input.agentId ?? null,
    namespace: input.namespace ?? 'default',
    kind: input.kind ?? 'note',
    text,
    redactedText: redacted,
    checksum: textChecksum(text),
    tags: [...new Set(input.tags ?? [])],
    metadata: input.metadata ?? {},
    piiFlags: flags,
    expiresAt: input.expiresAt,
    supplied: suppliedVector(input, field),
    ...conversationOf(input, field),
    supersedes: [...new Set(input.supersedes ?? [])],
    field,
  };
}

/**
 * The flags a caller sets (beyond those detected in the text) after a patch. Without `pii:read`,
 * a caller sees the redacted text only, so it may add flags but never drop one: dropping
 * `health` from a memory would unmask a text it was not allowed to read. Flags detected in the old
 * text are derived, not kept: the new text's detection decides them.
 */
export function callerFlagsAfter(access: Access, row: MemoryRow, requested: string[] | undefined): string[] {
  const detected = new Set(detectPii(row.text).flags);
  const callerSet = row.pii_flags.filter((f) => !detected.has(f));
  if (requested === undefined) return callerSet;
  if (!access.piiRead) {
    const dropped = callerSet.filter((f) => !requested.includes(f));
    if (dropped.length > 0) {
      throw new AppError(
        ErrorCode.forbidden,
        `removing PII flags (${dropped.join(', ')}) needs the pii:read scope`,
        [
          {
            field: 'piiFlags',
            message: `keep ${dropped.join(', ')}; only callers with pii:read may remove flags`,
          },
        ],
      );
    }
  }
  return requested;
}

/** The conversation fields: a sequence needs its session. */
function conversationOf(input: NewMemory, field: (name: string) => string) {
  if (input.sequence !== undefined && input.sessionId === undefined) {
    throw new AppError(ErrorCode.validation, 'a sequence is a place in a session: give sessionId too', [
      { field: field('sequence'), message: 'needs sessionId' },
    ]);
  }
  return {
    sessionId: input.sessionId ?? null,
    sequence: input.sequence ?? null,
    occurredAt: input.occurredAt === undefined ? null : new Date(input.occurredAt),
  };
}
