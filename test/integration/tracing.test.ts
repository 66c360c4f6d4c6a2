import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { traceRequests } from '../../src/http/tracing.js';
import { createLogger, type Logger } from '../../src/platform/logger.js';
import { createTracing, tracingSettings } from '../../src/platform/tracing.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';

/** A span as OTLP/JSON encodes it (ids in hex), with its resource's attributes. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  links?: { traceId: string; spanId: string }[];
  status?: { code?: number; message?: string };
  resource: Record<string, unknown>;
}

// OTLP enums.
const KIND = { internal: 1, server: 2, client: 3, consumer: 5 };
const STATUS_ERROR = 2;

const attrs = (list: { key: string; value: Record<string, unknown> }[] = []) =>
  Object.fromEntries(
    list.map(({ key, value }) => {
      const v = Object.values(value)[0];
      // int64 values may come as strings.
      return [key, 'intValue' in value ? Number(v) : v];
    }),
  );
const attr = (span: OtlpSpan, key: string) => attrs(span.attributes)[key];

/**
 * A real OTLP/HTTP receiver on loopback: POST /v1/traces. JSON bodies are decoded into spans;
 * protobuf bodies are only counted (their content type is recorded).
 */
async function startReceiver() {
  const spans: OtlpSpan[] = [];
  const requests: { path: string; contentType: string; bytes: number }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers['content-type'] ?? '');
      requests.push({ path: req.url ?? '', contentType, bytes: body.length });
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      if (contentType.startsWith('application/json')) {
        const doc = JSON.parse(body.toString('utf8')) as {
          resourceSpans: {
            resource?: { attributes?: OtlpSpan['attributes'] };
            scopeSpans: { spans: Omit<OtlpSpan, 'resource'>[] }[];
          }[];
        };
        for (const rs of doc.resourceSpans) {
          const resource = attrs(rs.resource?.attributes);
          for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, resource });
        }
      }
      res.writeHead(200, { 'content-type': contentType || 'application/json' });
      res.end(contentType.startsWith('application/json') ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    reset() {
      spans.length = 0;
      requests.length = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

describe('tracing settings (the standard OTEL_* variables)', () => {
  const settings = (env: Record<string, string>) => tracingSettings(loadConfig(env));

  it('is off by default, with OTEL_TRACES_EXPORTER=none and with OTEL_SDK_DISABLED=true', () => {
    expect(settings({})).toBeNull();
    expect(
      settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }),
    ).toBeNull();
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBeNull();
  });

  it('is on with an endpoint or OTEL_TRACES_EXPORTER=otlp, and builds the traces URL as the spec says', () => {
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      resource: { 'service.name': 'memory-layer' },
    });
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c.example/otlp' })?.url).toBe(
      'https://c.example/otlp/v1/traces',
    );
    // The signal-specific endpoint is used as given, and wins.
    expect(
      settings({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:9999/custom',
      })?.url,
    ).toBe('http://t:9999/custom');
    expect(settings({ OTEL_TRACES_EXPORTER: 'otlp' })?.url).toBe('http://localhost:4318/v1/traces');
    expect(
      settings({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      })?.protocol,
    ).toBe('http/json');
  });

  it('names the service: OTEL_SERVICE_NAME, else service.name of OTEL_RESOURCE_ATTRIBUTES, else memory-layer', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(
      settings({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=a,deployment.environment.name=prod%20eu' })
        ?.resource,
    ).toEqual({ 'service.name': 'a', 'deployment.environment.name': 'prod eu' });
    expect(
      settings({ ...on, OTEL_SERVICE_NAME: 'b', OTEL_RESOURCE_ATTRIBUTES: 'service.name=a,bad,=x' })
        ?.resource,
    ).toEqual({ 'service.name': 'b' });
  });

  it('refuses what it cannot honour, naming the variable', () => {
    expect(() => loadConfig({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
  });
});

describe('tracing exporters and HTTP spans', () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());

  it('sends http/protobuf by default', async () => {
    receiver.reset();
    const tracing = await createTracing(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }));
    tracing.startSpan('probe', {}, tracing.extract({})).end();
    await tracing.shutdown();
    expect(receiver.requests).toEqual([
      { path: '/v1/traces', contentType: 'application/x-protobuf', bytes: expect.any(Number) },
    ]);
    expect(receiver.requests[0].bytes).toBeGreaterThan(0);
  });

  it('stamps every log line written inside a traced batch with its trace and span ids', async () => {
    receiver.reset();
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('info', { destination: { write: (s: string) => lines.push(JSON.parse(s)) } });
    const tracing = await createTracing(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }),
    );
    await tracing.traceBatch('index', [{ id: 1, attempts: 1, payload: {} }], async () => {
      logger.info('inside the batch');
      await Promise.resolve();
      logger.info('still inside, after an await');
    });
    logger.info('outside');
    await tracing.shutdown();
    const batch = receiver.spans.find((s) => s.name === 'index batch');
    expect(batch).toBeDefined();
    expect(lines.map((l) => [l.msg, l.traceId, l.spanId])).toEqual([
      ['inside the batch', batch?.traceId, batch?.spanId],
      ['still inside, after an await', batch?.traceId, batch?.spanId],
      ['outside', undefined, undefined],
    ]);
  });

  it('logs a failed export (once a minute at most) instead of failing silently', async () => {
    receiver.reset();
    const logger = { info: vi.fn(), warn: vi.fn() };
    const tracing = await createTracing(
      loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/not-a-receiver` }),
      logger as unknown as Logger,
    );
    expect(logger.info).toHaveBeenCalledWith(
      { url: `${receiver.url}/not-a-receiver`, protocol: 'http/protobuf' },
      'exporting traces',
    );
    tracing.startSpan('lost', {}, tracing.extract({})).end();
    await tracing.flush();
    tracing.startSpan('lost too', {}, tracing.extract({})).end();
    await tracing.shutdown();
    expect(receiver.requests.map((r) => r.path)).toEqual(['/not-a-receiver', '/not-a-receiver']);
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0][1]).toBe('exporting spans failed');
  });

  it('marks 5xx server spans as errors, not 4xx, and names them by route', async () => {
    receiver.reset();
    const tracing = await createTracing(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }),
    );
    const server = Fastify();
    traceRequests(server, tracing);
    server.get('/boom/:id', async () => {
      throw new Error('kaput');
    });
    server.get('/fine', async () => ({ ok: true }));
    expect((await server.inject({ method: 'GET', url: '/boom/7?x=1' })).statusCode).toBe(500);
    expect((await server.inject({ method: 'GET', url: '/fine' })).statusCode).toBe(200);
    expect((await server.inject({ method: 'GET', url: '/nowhere' })).statusCode).toBe(404);
    await server.close();
    await tracing.shutdown();

    const byName = Object.fromEntries(receiver.spans.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(['GET', 'GET /boom/:id', 'GET /fine']);
    const boom = byName['GET /boom/:id'];
    expect(boom.kind).toBe(KIND.server);
    expect(boom.status?.code).toBe(STATUS_ERROR);
    expect(attrs(boom.attributes)).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/boom/:id',
      'url.path': '/boom/7',
      'http.response.status_code': 500,
      'error.type': '500',
    });
    expect(byName['GET /fine'].status?.code ?? 0).not.toBe(STATUS_ERROR);
    expect(byName.GET.status?.code ?? 0).not.toBe(STATUS_ERROR);
    expect(attr(byName.GET, 'http.response.status_code')).toBe(404);
    expect(attr(byName.GET, 'http.route')).toBeUndefined();
  });
});

describe.each(backends)('tracing on %s', (backend) => {
  let receiver: Receiver;
  let traced: TestApp;
  let untraced: TestApp;

  beforeAll(async () => {
    receiver = await startReceiver();
    // Two apps in one process, one tracing and one not: neither may affect the other.
    traced = await startTestApp(backend, {
      worker: false,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test',
      },
    });
    untraced = await startTestApp(backend, {
      worker: false,
      // Pointed at the receiver, but switched off.
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: 'true' },
    });
  });
  afterAll(async () => {
    await traced?.close();
    await untraced?.close();
    await receiver?.close();
  });

  const jobPayloads = async (ta: TestApp, memoryId: string) =>
    (
      await ta.app.db.query<{ payload: Record<string, unknown> }>(
        `SELECT payload FROM jobs WHERE payload->>'nodeId' = $1`,
        [memoryId],
      )
    ).rows.map((r) => r.payload);

  it('follows one write in one trace: HTTP request → job → worker batch → embedder and database write', async () => {
    receiver.reset();
    const traceId = hex(16);
    const callerSpanId = hex(8);
    const res = await traced.http.inject({
      method: 'POST',
      url: '/v1/memories',
      headers: { traceparent: `00-${traceId}-${callerSpanId}-01` },
      payload: { text: 'Traces cross the queue in the job payload' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const memoryId = res.json<{ id: string }>().id;

    // The job carries the request's trace context (next to what it always held).
    const [payload] = await jobPayloads(traced, memoryId);
    expect(payload).toMatchObject({
      nodeId: memoryId,
      trace: { traceparent: expect.stringMatching(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`)) },
    });

    await traced.app.worker.drain();
    const memory = await traced.http.inject({ method: 'GET', url: `/v1/memories/${memoryId}` });
    expect(memory.json<{ status: string }>().status).toBe('indexed');

    const model = traced.app.embedder.model;
    const named = (name: string) => receiver.spans.filter((s) => s.traceId === traceId && s.name === name);
    await vi.waitFor(
      async () => {
        await traced.app.tracing.flush();
        expect(named('index batch')).toHaveLength(1);
      },
      { timeout: 10_000, interval: 100 },
    );

    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    /** Names from a span up to the root of the trace (the caller's span is not exported). */
    const lineage = (s: OtlpSpan): string[] => {
      const parent = s.parentSpanId ? byId.get(s.parentSpanId) : undefined;
      return parent ? [s.name, ...lineage(parent)] : [s.name];
    };

    const [request] = named('POST /v1/memories');
    expect(request.kind).toBe(KIND.server);
    expect(request.parentSpanId).toBe(callerSpanId);
    expect(attrs(request.attributes)).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/memories',
      'http.response.status_code': 201,
    });
    expect(request.resource).toMatchObject({
      'service.name': 'memory-layer',
      'deployment.environment.name': 'test',
    });

    // The job is a child of the write's transaction (where it was enqueued), inside the request.
    const [job] = named('index job');
    expect(job.kind).toBe(KIND.consumer);
    expect(lineage(job)).toEqual(['index job', 'transaction', 'POST /v1/memories']);
    expect(attrs(job.attributes)).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'index',
      'memory_layer.job.attempt': 1,
    });
    const insertJob = spans.find((s) => s.name === 'INSERT jobs');
    expect(insertJob && lineage(insertJob)).toEqual(['INSERT jobs', 'transaction', 'POST /v1/memories']);

    const [batch] = named('index batch');
    expect(lineage(batch)).toEqual(['index batch', ...lineage(job)]);
    expect(attr(batch, 'messaging.batch.message_count')).toBe(1);

    const [embed] = named(`embeddings ${model.name}`);
    expect(embed.kind).toBe(KIND.client);
    expect(lineage(embed)).toEqual([embed.name, ...lineage(batch)]);
    expect(attrs(embed.attributes)).toMatchObject({
      'gen_ai.request.model': model.name,
      'memory_layer.embedding.batch_size': 1,
    });

    // The vector's database write: its UPDATE, after the embedding (a statement of its own, no
    // transaction: the worker writes vectors in slices that each stand alone).
    const write = spans.find(
      (s) => s.name === 'UPDATE memory_nodes' && String(attr(s, 'db.query.text')).includes('SET embedding ='),
    );
    expect(write, 'the UPDATE that stores the vector').toBeDefined();
    expect(write?.kind).toBe(KIND.client);
    expect(lineage(write as OtlpSpan)).toEqual(['UPDATE memory_nodes', ...lineage(batch)]);
    expect(attrs(write?.attributes)).toMatchObject({
      'db.system.name': 'postgresql',
      'db.operation.name': 'UPDATE',
    });
    const [upsert] = named('vector upsert');
    expect(lineage(upsert)).toEqual(['vector upsert', ...lineage(batch)]);
    expect(attrs(upsert.attributes)).toMatchObject({
      'memory_layer.vector_index': traced.app.index.name,
      'memory_layer.vector_count': 1,
    });
  });

  it('starts a trace of its own for a request without traceparent, and never one for idle polling', async () => {
    receiver.reset();
    const res = await traced.http.inject({ method: 'GET', url: '/v1/memories?limit=1' });
    expect(res.statusCode).toBe(200);
    // Polls that claim nothing, and database work outside any request or batch.
    await traced.app.worker.runOnce();
    await traced.app.db.query('SELECT 1');
    await traced.app.tracing.flush();
    const roots = receiver.spans.filter((s) => !s.parentSpanId);
    expect(roots.map((s) => s.name)).toEqual(['GET /v1/memories']);
    expect(receiver.spans.every((s) => s.traceId === roots[0].traceId)).toBe(true);
  });

  it('with tracing off: no wrappers, nothing in the job payload, nothing sent', async () => {
    expect(untraced.app.tracing.enabled).toBe(false);
    expect(untraced.app.db).toBe(untraced.t.db);
    receiver.reset();
    const res = await untraced.http.inject({
      method: 'POST',
      url: '/v1/memories',
      headers: { traceparent: `00-${hex(16)}-${hex(8)}-01` },
      payload: { text: 'Nobody is watching this one' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const memoryId = res.json<{ id: string }>().id;
    expect(await jobPayloads(untraced, memoryId)).toEqual([{ nodeId: memoryId }]);
    await untraced.app.worker.drain();
    await untraced.app.tracing.flush();
    // The traced app is not involved and sends nothing of this.
    await traced.app.tracing.flush();
    expect(receiver.requests).toEqual([]);
  });
});
