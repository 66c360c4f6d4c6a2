import { randomBytes } from 'node:crypto';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../src/audit/audit-log.js';
import { createNatsSink } from '../../src/audit/nats-sink.js';
import { type AuditSink, createAuditPublisher } from '../../src/audit/publisher.js';
import type { AuditEvent, AuditEventInput } from '../../src/audit/types.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';

const logger = pino({ level: 'silent' });
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const event = (divisionId: string, n: number): AuditEventInput => ({
  divisionId,
  actor: 'agent:writer',
  action: 'memory.update',
  resourceType: 'memory',
  resourceId: `r-${n}`,
  manifestSignatureId: n % 2 ? `manifest-${n}` : undefined,
  change: { n },
});

interface Received {
  subject: string;
  msgId: string | undefined;
  event: AuditEvent;
}

describe.each(backends)('NATS JetStream audit sink on %s', (backend) => {
  const suffix = `${randomBytes(4).toString('hex')}_${backend}`;
  const subject = `ml-test.audit.${suffix}`;
  const stream = `ML_TEST_AUDIT_${suffix}`;
  const otherStream = `ML_TEST_OTHER_${suffix}`;
  let t: TestDatabase;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let sink: AuditSink;

  /** Appends each batch in its own transaction; returns the events in outbox (publishing) order. */
  async function append(batches: AuditEventInput[][]): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    for (const batch of batches) {
      const evs = await t.db.transaction((tx) => appendAudit(tx, batch));
      // Within a transaction, appendAudit writes divisions in sorted order.
      out.push(
        ...[...evs].sort((a, b) =>
          a.divisionId === b.divisionId ? a.seq - b.seq : a.divisionId < b.divisionId ? -1 : 1,
        ),
      );
    }
    return out;
  }

  /** Every message in the stream, in stream order, through an ordered consumer. */
  async function readStream(): Promise<Received[]> {
    const { state } = await jsm.streams.info(stream);
    if (state.messages === 0) return [];
    const consumer = await nc.jetstream().consumers.get(stream);
    const msgs = await consumer.fetch({ max_messages: state.messages, expires: 2_000 });
    const out: Received[] = [];
    for await (const m of msgs) {
      out.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), event: m.json<AuditEvent>() });
    }
    await consumer.delete();
    return out;
  }

  const outboxCount = async () =>
    (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_outbox')).rows[0].n;

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    nc = await connect({ servers: natsUrl });
    jsm = await nc.jetstreamManager();
    sink = await createNatsSink({ url: natsUrl, subject, stream, timeoutMs: 5_000 });
  });
  afterAll(async () => {
    await sink?.close();
    if (jsm) {
      for (const name of [stream, otherStream]) await jsm.streams.delete(name).catch(() => undefined);
    }
    await nc?.close();
    await t?.drop();
  });

  it('creates the stream: file storage, limits retention, <subject>.>', async () => {
    const { config } = await jsm.streams.info(stream);
    expect(config).toMatchObject({ subjects: [`${subject}.>`], storage: 'file', retention: 'limits' });
    // An existing stream is fine (another replica, a restart).
    const again = await createNatsSink({ url: natsUrl, subject, stream });
    await again.close();
    await again.close();
  });

  it('publishes every outbox event once, in seq order, as JSON', async () => {
    const expected = await append([
      [event('alpha', 1), event('beta', 2), event('alpha', 3)],
      [event('beta', 4)],
      [event('alpha', 5), event('alpha', 6), event('beta', 7), event('alpha', 8)],
      [event('gamma', 9)],
    ]);
    const publisher = createAuditPublisher({ db: t.db, sink, logger, batch: 3 });
    expect(await publisher.runOnce()).toEqual({ published: 3, failed: 0 });
    expect(await publisher.drain()).toEqual({ published: expected.length - 3, failed: 0 });
    expect(await outboxCount()).toBe(0);

    const got = await readStream();
    expect(got.map((r) => r.event)).toEqual(expected);
    expect(got.map((r) => r.subject)).toEqual(expected.map((e) => `${subject}.${e.divisionId}`));
    expect(got.map((r) => r.msgId)).toEqual(expected.map((e) => `${e.divisionId}:${e.seq}`));
    for (const division of ['alpha', 'beta', 'gamma']) {
      const seqs = got.filter((r) => r.event.divisionId === division).map((r) => r.event.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
    expect(got.find((r) => r.event.seq === 1 && r.event.divisionId === 'alpha')?.event).toMatchObject({
      manifestSignatureId: 'manifest-1',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('a re-publish after a crash does not duplicate messages (Nats-Msg-Id)', async () => {
    const before = await readStream();
    // The same events again, as if the outbox rows had survived a crash after the acks.
    await sink.publish(before.map((r) => r.event));
    expect(await readStream()).toEqual(before);

    // New events: published, then "crash" before the outbox rows were deleted; the publisher
    // publishes them again on restart.
    const fresh = await append([[event('alpha', 10), event('beta', 11)], [event('gamma', 12)]]);
    await sink.publish(fresh);
    expect(await outboxCount()).toBe(fresh.length);
    const publisher = createAuditPublisher({ db: t.db, sink, logger });
    expect(await publisher.drain()).toEqual({ published: fresh.length, failed: 0 });
    expect(await outboxCount()).toBe(0);
    const after = await readStream();
    expect(after.map((r) => r.event)).toEqual([...before.map((r) => r.event), ...fresh]);
    expect(new Set(after.map((r) => r.msgId)).size).toBe(after.length);
  });

  it('fails to connect to a dead server with a clear error, without leaking credentials', async () => {
    await expect(
      createNatsSink({ url: 'nats://127.0.0.1:1', subject, stream, timeoutMs: 2_000 }),
    ).rejects.toThrow(/^cannot connect to NATS at nats:\/\/127\.0\.0\.1:1: /);
    const err = await createNatsSink({
      url: 'nats://audit:s3cret@127.0.0.1:1',
      subject,
      stream,
      timeoutMs: 2_000,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    expect((err as Error).message).not.toContain('s3cret');
  });

  it('refuses a stream that does not capture the subject, and a bad subject', async () => {
    await jsm.streams.add({ name: otherStream, subjects: [`ml-test.other.${suffix}`] });
    await expect(createNatsSink({ url: natsUrl, subject, stream: otherStream })).rejects.toThrow(
      `exists but does not capture ${subject}.>`,
    );
    await expect(createNatsSink({ url: natsUrl, subject: 'audit.*', stream })).rejects.toThrow(
      /invalid audit subject/,
    );
  });

  it('a sink whose connection is gone throws, and the outbox keeps the events', async () => {
    const before = await readStream();
    const gone = await createNatsSink({ url: natsUrl, subject, stream, timeoutMs: 2_000 });
    await gone.close();
    const evs = await append([[event('alpha', 20), event('beta', 21)]]);
    await expect(gone.publish(evs)).rejects.toThrow(/NATS publish of audit event alpha:\d+ failed/);

    const failing = createAuditPublisher({ db: t.db, sink: gone, logger });
    expect(await failing.drain()).toEqual({ published: 0, failed: evs.length });
    const kept = await t.db.query<{ attempts: number; last_error: string }>(
      'SELECT attempts, last_error FROM audit_outbox ORDER BY id',
    );
    expect(kept.rows).toHaveLength(evs.length);
    for (const r of kept.rows) {
      expect(r.attempts).toBe(1);
      expect(r.last_error).toMatch(/NATS publish of audit event .* failed/);
    }
    expect(await readStream()).toEqual(before);

    // A working sink (the restarted process) publishes them.
    expect(await createAuditPublisher({ db: t.db, sink, logger }).drain()).toEqual({
      published: evs.length,
      failed: 0,
    });
    expect((await readStream()).map((r) => r.event)).toEqual([...before.map((r) => r.event), ...evs]);
  });
});
