import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Database, Queryable } from '../adapters/db/port.js';
import type { Embedder } from '../adapters/embedders/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import type { Config } from '../config.js';
import type { Logger } from './logger.js';

/**
 * OpenTelemetry tracing, off unless the standard variables ask for it.
 *
 * No OpenTelemetry global is registered (tracer provider, context manager, propagator): each app
 * owns its provider, so several apps in one process (tests) start and stop independently. The
 * active span travels in one module-level AsyncLocalStorage, which is per async flow and holds
 * nothing between requests, so apps never see each other's spans either.
 */

/** W3C trace context of a producer, stored in a job's payload (`trace`). */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

const current = new AsyncLocalStorage<Context>();
const propagator = new W3CTraceContextPropagator();

/**
 * The ids of the span active in this async flow (a request, a job batch), for log lines; undefined
 * when nothing is being traced.
 */
export function activeTraceIds(): { traceId: string; spanId: string } | undefined {
  const ctx = current.getStore();
  const span = ctx === undefined ? undefined : trace.getSpanContext(ctx);
  return span && span.traceId !== INVALID_SPAN_CONTEXT.traceId
    ? { traceId: span.traceId, spanId: span.spanId }
    : undefined;
}

/**
 * Runs `fn` outside any trace: for work a request starts but does not wait for (it would otherwise
 * add spans to the request's trace after the request ended).
 */
export function untraced<T>(fn: () => T): T {
  return current.exit(fn);
}

/** The trace context to store with a job enqueued now; undefined when nothing is being traced. */
export function traceCarrier(): TraceCarrier | undefined {
  const ctx = current.getStore();
  if (ctx === undefined) return undefined;
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, defaultTextMapSetter);
  return carrier.traceparent ? (carrier as unknown as TraceCarrier) : undefined;
}

export interface TracingSettings {
  /** Where spans are POSTed (the traces endpoint itself). */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  /** Resource attributes, service.name included. */
  resource: Record<string, string>;
}

/**
 * Tracing is on when OTEL_TRACES_EXPORTER=otlp, or when it is unset and an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) is set; never with
 * OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true. The specification's default exporter is
 * otlp; ours is none, so that a plain start sends nothing anywhere.
 */
export function tracingSettings(config: Config): TracingSettings | null {
  if (config.OTEL_SDK_DISABLED || config.OTEL_TRACES_EXPORTER === 'none') return null;
  const base = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  const explicit = config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (config.OTEL_TRACES_EXPORTER !== 'otlp' && !base && !explicit) return null;
  // The signal-specific endpoint is used as given; the general one gets the signal's path.
  const url = explicit ?? `${(base ?? 'http://localhost:4318').replace(/\/+$/, '')}/v1/traces`;
  const protocol =
    config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  const resource = parseResourceAttributes(config.OTEL_RESOURCE_ATTRIBUTES);
  resource['service.name'] = config.OTEL_SERVICE_NAME ?? resource['service.name'] ?? 'memory-layer';
  return { url, protocol, resource };
}

/** `key=value,key=value` with percent-encoded values; malformed entries are skipped. */
function parseResourceAttributes(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    try {
      out[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      // A bad percent-encoding: leave the attribute out rather than refuse to start.
    }
  }
  return out;
}

/** What tracing needs of a claimed job. */
type TracedJob = { id: number; attempts: number; payload: object };

export interface Tracing {
  readonly enabled: boolean;
  /** The parent context named by incoming W3C headers (`traceparent`, `tracestate`); root when none. */
  extract(headers: Record<string, string | string[] | undefined>): Context;
  startSpan(name: string, options: SpanOptions, parent: Context): Span;
  /** Runs `fn` with `ctx` active: spans started under it (decorators, enqueued jobs) become its children. */
  with<T>(ctx: Context, fn: () => T): T;
  /**
   * Traces one claimed batch of jobs. Each job carrying a producer context gets a `<queue> job`
   * span, child of that context (so a write's trace shows its job). The `<queue> batch` span,
   * under which `fn` runs, is a child of the first such job span and links the others: the
   * batch's embedding and database work then sits in the first job's trace and is one hop from
   * every other job's.
   */
  traceBatch<T>(queue: string, jobs: TracedJob[], fn: () => Promise<T>): Promise<T>;
  /** Decorators that add a child span per call made inside a traced request or batch. */
  database(db: Database): Database;
  embedder(embedder: Embedder): Embedder;
  vectorIndex(index: VectorIndex): VectorIndex;
  /** Exports the spans ended so far. */
  flush(): Promise<void>;
  /** Flushes and stops exporting (app.close()). */
  shutdown(): Promise<void>;
}

/** Tracing off: the decorators return what they are given, nothing is started or sent. */
export const noTracing: Tracing = {
  enabled: false,
  extract: () => ROOT_CONTEXT,
  startSpan: () => trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
  with: (_ctx, fn) => fn(),
  traceBatch: (_queue, _jobs, fn) => fn(),
  database: (db) => db,
  embedder: (embedder) => embedder,
  vectorIndex: (index) => index,
  flush: async () => {},
  shutdown: async () => {},
};

const EXPORT_WARNING_INTERVAL_MS = 60_000;

/** Starts a tracer provider exporting over OTLP/HTTP when the config enables tracing. */
export async function createTracing(config: Config, logger?: Logger): Promise<Tracing> {
  const settings = tracingSettings(config);
  if (!settings) return noTracing;
  // Loaded only when on: a process without tracing never loads the SDK.
  const [{ BasicTracerProvider, BatchSpanProcessor }, { defaultResource, resourceFromAttributes }] =
    await Promise.all([import('@opentelemetry/sdk-trace-base'), import('@opentelemetry/resources')]);
  const { OTLPTraceExporter } =
    settings.protocol === 'http/json'
      ? await import('@opentelemetry/exporter-trace-otlp-http')
      : await import('@opentelemetry/exporter-trace-otlp-proto');
  const exporter = new OTLPTraceExporter({ url: settings.url });
  // The SDK reports failed exports nowhere by default: say so, at most once a minute.
  let warnedAt = 0;
  const export_: typeof exporter.export = (spans, done) =>
    exporter.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS && Date.now() - warnedAt > EXPORT_WARNING_INTERVAL_MS) {
        warnedAt = Date.now();
        logger?.warn({ err: result.error, url: settings.url, spans: spans.length }, 'exporting spans failed');
      }
      done(result);
    });
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes(settings.resource)),
    spanProcessors: [
      new BatchSpanProcessor({
        export: export_,
        shutdown: () => exporter.shutdown(),
        forceFlush: () => exporter.forceFlush(),
      }),
    ],
  });
  logger?.info({ url: settings.url, protocol: settings.protocol }, 'exporting traces');
  return tracingWith(provider.getTracer('memory-layer'), provider);
}

function tracingWith(tracer: Tracer, provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> }) {
  /** Runs `fn` in a new span, ended when `fn` settles; a failure marks the span and propagates. */
  async function inSpan<T>(name: string, options: SpanOptions, parent: Context, fn: () => Promise<T>) {
    const span = tracer.startSpan(name, options, parent);
    try {
      return await current.run(trace.setSpan(parent, span), fn);
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * A child of the active span, or just `fn` outside any: polling, leader election and sweeps
   * would otherwise each start a trace of their own, every few hundred milliseconds.
   */
  function child<T>(name: string, options: SpanOptions, fn: () => Promise<T>): Promise<T> {
    const parent = current.getStore();
    return parent === undefined ? fn() : inSpan(name, options, parent, fn);
  }

  function tracedQueryable(q: Queryable): Queryable {
    return {
      query: (text, params) => {
        const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';
        const table = /\b(?:FROM|INTO|UPDATE)\s+([a-z_][a-z0-9_]*)/i.exec(text)?.[1];
        return child(table ? `${operation} ${table}` : operation, dbSpan(operation, text), () =>
          q.query(text, params),
        );
      },
      exec: (script) => child('EXEC', dbSpan('EXEC'), () => q.exec(script)),
      copyFrom: (table, columns, data) =>
        child(`COPY ${table}`, dbSpan('COPY'), () => q.copyFrom(table, columns, data)),
    };
  }

  return {
    enabled: true,
    extract: (headers) => propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter),
    startSpan: (name, options, parent) => tracer.startSpan(name, options, parent),
    with: (ctx, fn) => current.run(ctx, fn),

    async traceBatch(queue, jobs, fn) {
      const jobSpans: Span[] = [];
      for (const job of jobs) {
        const parent = producerContext((job.payload as { trace?: unknown }).trace);
        if (!parent) continue;
        const attributes = {
          'messaging.operation.type': 'process',
          'messaging.destination.name': queue,
          'messaging.message.id': String(job.id),
          'memory_layer.job.attempt': job.attempts,
        };
        jobSpans.push(tracer.startSpan(`${queue} job`, { kind: SpanKind.CONSUMER, attributes }, parent));
      }
      const [first, ...others] = jobSpans;
      const options: SpanOptions = {
        attributes: { 'messaging.destination.name': queue, 'messaging.batch.message_count': jobs.length },
        links: others.map((s) => ({ context: s.spanContext() })),
      };
      try {
        return await inSpan(
          `${queue} batch`,
          options,
          first ? trace.setSpan(ROOT_CONTEXT, first) : ROOT_CONTEXT,
          fn,
        );
      } catch (err) {
        for (const s of jobSpans) fail(s, err);
        throw err;
      } finally {
        for (const s of jobSpans) s.end();
      }
    },

    database(db) {
      const traced = tracedQueryable(db);
      return {
        engine: db.engine,
        singleProcess: db.singleProcess,
        query: traced.query,
        exec: traced.exec,
        copyFrom: traced.copyFrom,
        transaction: (fn) =>
          child('transaction', dbSpan('TRANSACTION'), () => {
            // Queries inside run in the transaction span, whichever async flow the adapter
            // calls `fn` from (pools and PGlite queue transactions).
            const ctx = current.getStore();
            return db.transaction((tx) =>
              ctx === undefined ? fn(tracedQueryable(tx)) : current.run(ctx, () => fn(tracedQueryable(tx))),
            );
          }),
        async reserve() {
          const conn = await db.reserve();
          return { ...tracedQueryable(conn), release: () => conn.release() };
        },
        hasPgvector: () => db.hasPgvector(),
        withExclusiveLock: (key, fn) => db.withExclusiveLock(key, fn),
        lockKey: (key) => db.lockKey(key),
        close: () => db.close(),
      };
    },

    embedder(embedder) {
      return {
        get model() {
          return embedder.model;
        },
        embed(texts, signal) {
          const { model } = embedder;
          const attributes = {
            'gen_ai.operation.name': 'embeddings',
            'gen_ai.request.model': model.name,
            'gen_ai.embeddings.dimension.count': model.dimensions,
            'memory_layer.embedding.model_version': model.version,
            'memory_layer.embedding.batch_size': texts.length,
          };
          return child(`embeddings ${model.name}`, { kind: SpanKind.CLIENT, attributes }, () =>
            embedder.embed(texts, signal),
          );
        },
        close: () => embedder.close(),
      };
    },

    vectorIndex(index) {
      const options = (attributes: Record<string, number>): SpanOptions => ({
        attributes: { 'memory_layer.vector_index': index.name, ...attributes },
      });
      return {
        name: index.name,
        ensureSpace: (space) => index.ensureSpace(space),
        upsert: (space, entries) =>
          child('vector upsert', options({ 'memory_layer.vector_count': entries.length }), () =>
            index.upsert(space, entries),
          ),
        remove: (space, keys) =>
          child('vector remove', options({ 'memory_layer.vector_count': keys.length }), () =>
            index.remove(space, keys),
          ),
        search: (space, division, vector, limit) =>
          child('vector search', options({ 'memory_layer.vector_limit': limit }), () =>
            index.search(space, division, vector, limit),
          ),
        count: (space, division) => index.count(space, division),
        replace: (space, fill) => child('vector replace', options({}), () => index.replace(space, fill)),
        flush: () => index.flush(),
        check: () => index.check(),
        storageBytes: () => index.storageBytes(),
        close: () => index.close(),
      };
    },

    // A failed export is logged where it happens; it must not fail a shutdown.
    flush: () => provider.forceFlush().catch(() => undefined),
    shutdown: () => provider.shutdown().catch(() => undefined),
  } satisfies Tracing;
}

/** The producer's context from a job payload's `trace` field; undefined for jobs without one. */
function producerContext(carrier: unknown): Context | undefined {
  if (typeof carrier !== 'object' || carrier === null) return undefined;
  const ctx = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  return trace.getSpanContext(ctx) ? ctx : undefined;
}

/** Statements are parameterised, so their text holds no values and is safe to record. */
function dbSpan(operation: string, text?: string): SpanOptions {
  return {
    kind: SpanKind.CLIENT,
    attributes: {
      'db.system.name': 'postgresql',
      'db.operation.name': operation,
      ...(text === undefined ? {} : { 'db.query.text': text.replace(/\s+/g, ' ').trim() }),
    },
  };
}

function fail(span: Span, err: unknown) {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}
