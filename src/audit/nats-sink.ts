import {
  connect,
  type JetStreamManager,
  JSONCodec,
  type NatsConnection,
  type NatsError,
  RetentionPolicy,
  StorageType,
} from 'nats';
import type { AuditSink } from './publisher.js';
import type { AuditEvent } from './types.js';

export const DEFAULT_AUDIT_STREAM = 'MEMORY_LAYER_AUDIT';
const DEFAULT_TIMEOUT_MS = 5_000;
/** JetStream API error code: stream not found. */
const STREAM_NOT_FOUND = 10059;

export interface NatsSinkOptions {
  /** e.g. nats://127.0.0.1:4222 (credentials in the URL are never logged or put in errors). */
  url: string;
  /** Events go to `<subject>.<divisionId>`. */
  subject: string;
  /** JetStream stream holding `<subject>.>`; created when missing. */
  stream?: string;
  /** Connect, JetStream API and publish-ack timeout. */
  timeoutMs?: number;
}

/** A subject token: no separators, wildcards or whitespace. */
const TOKEN = /^[^\s.*>]+$/;

/** The URL without user and password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparseable NATS URL)';
  }
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Whether the subject filter `pattern` matches every subject `subject` (itself possibly a wildcard) matches. */
function covers(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return i < s.length;
    if (i >= s.length) return false;
    if (s[i] === '>') return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

async function ensureStream(jsm: JetStreamManager, name: string, subjects: string): Promise<void> {
  const check = (have: string[] | undefined) => {
    if (!(have ?? []).some((p) => covers(p, subjects))) {
      throw new Error(
        `JetStream stream ${name} exists but does not capture ${subjects} (its subjects: ${(have ?? []).join(', ') || 'none'})`,
      );
    }
  };
  try {
    check((await jsm.streams.info(name)).config.subjects);
    return;
  } catch (err) {
    if ((err as NatsError).api_error?.err_code !== STREAM_NOT_FOUND) throw err;
  }
  try {
    await jsm.streams.add({
      name,
      subjects: [subjects],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
    });
  } catch (err) {
    // Another replica created it in between: fine, if it captures our subjects.
    const info = await jsm.streams.info(name).catch(() => undefined);
    if (!info) throw err;
    check(info.config.subjects);
  }
}

/**
 * AUDIT_SINK=nats: publishes each event as JSON to `<subject>.<divisionId>` on a JetStream stream
 * (file storage, limits retention), one at a time and in order, waiting for the server's ack. The
 * message id `<divisionId>:<seq>` lets JetStream drop a re-publish within the stream's duplicate
 * window (two minutes unless the stream says otherwise), e.g. after a crash between the ack and
 * the deletion of the outbox rows. Any failure throws, so the publisher keeps the outbox rows.
 */
export async function createNatsSink(opts: NatsSinkOptions): Promise<AuditSink> {
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const streamName = opts.stream ?? DEFAULT_AUDIT_STREAM;
  if (!opts.subject.split('.').every((t) => TOKEN.test(t))) {
    throw new Error(
      `invalid audit subject ${JSON.stringify(opts.subject)}: tokens without wildcards or spaces`,
    );
  }
  const where = redact(opts.url);

  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.url,
      name: 'memory-layer-audit',
      timeout,
      // Keep trying after a lost connection: publishes fail (and the outbox keeps them) meanwhile.
      maxReconnectAttempts: -1,
    });
  } catch (err) {
    throw new Error(`cannot connect to NATS at ${where}: ${messageOf(err)}`);
  }

  try {
    const jsm = await nc.jetstreamManager({ timeout });
    await ensureStream(jsm, streamName, `${opts.subject}.>`);
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw new Error(`NATS at ${where}: cannot set up JetStream stream ${streamName}: ${messageOf(err)}`);
  }

  const js = nc.jetstream({ timeout });
  const codec = JSONCodec<AuditEvent>();

  return {
    async publish(events) {
      for (const e of events) {
        if (!TOKEN.test(e.divisionId)) {
          throw new Error(`audit event ${e.divisionId}:${e.seq}: division id is not a NATS subject token`);
        }
        const msgID = `${e.divisionId}:${e.seq}`;
        try {
          // `expect`: the server refuses the message unless our stream captures it.
          await js.publish(`${opts.subject}.${e.divisionId}`, codec.encode(e), {
            msgID,
            timeout,
            expect: { streamName },
          });
        } catch (err) {
          throw new Error(`NATS publish of audit event ${msgID} failed: ${messageOf(err)}`);
        }
      }
    },
    async close() {
      if (nc.isClosed() || nc.isDraining()) return nc.closed().then(() => undefined);
      await nc.drain();
    },
  };
}
