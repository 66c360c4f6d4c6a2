import type { Embedder, EmbeddingModel } from './port.js';

export interface OpenAIEmbedderOptions {
  /** Base URL ending in `/v1` (OpenAI, Ollama, vLLM, TEI, or our own embeddings server). */
  url: string;
  model: string;
  /** Recorded with every vector; bump it when the served weights change so old vectors are not mixed in. */
  version?: string;
  dimensions: number;
  apiKey?: string;
  /** Per request (one batch), including reading the response. */
  timeoutMs: number;
  batchSize: number;
}

/** Enough of an error body to diagnose, not enough to flood logs. */
const BODY_SNIPPET = 200;

/** An embedder speaking the OpenAI-compatible `POST /embeddings` API. Every failure throws; the worker retries. */
export function createOpenAIEmbedder(opts: OpenAIEmbedderOptions): Embedder {
  const endpoint = `${opts.url.replace(/\/+$/, '')}/embeddings`;
  const model: EmbeddingModel = Object.freeze({
    name: opts.model,
    version: opts.version ?? 'api',
    dimensions: opts.dimensions,
  });
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  // Servers sometimes echo the key back in error bodies ("Incorrect API key provided: ...").
  const redact = (s: string) => (opts.apiKey ? s.split(opts.apiKey).join('[redacted]') : s);

  async function embedBatch(input: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: opts.model, input, encoding_format: 'float' }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      text = await res.text();
    } catch (err) {
      // The caller's abort propagates as is, so it can tell cancellation from failure.
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted)
        throw new Error(`embedding request to ${endpoint} timed out after ${opts.timeoutMs} ms`);
      throw new Error(`embedding request to ${endpoint} failed: ${(err as Error).message}`, { cause: err });
    }

    if (!res.ok) {
      const snippet = redact(text.slice(0, BODY_SNIPPET)).trim();
      throw new Error(
        `embedding request to ${endpoint} failed with status ${res.status}: ${snippet || '(empty body)'}`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(
        `embedding response from ${endpoint} is not JSON: ${redact(text.slice(0, BODY_SNIPPET))}`,
      );
    }
    return parseVectors(body, input.length, opts.dimensions);
  }

  return {
    model,
    async embed(texts, signal) {
      const out: Float32Array[] = [];
      for (let i = 0; i < texts.length; i += opts.batchSize) {
        signal?.throwIfAborted();
        out.push(...(await embedBatch(texts.slice(i, i + opts.batchSize), signal)));
      }
      return out;
    },
    async close() {},
  };
}

/**
 * Checks the response shape strictly: a vector of the wrong size would poison the index, and a
 * missing or duplicated index would attach vectors to the wrong texts.
 */
function parseVectors(body: unknown, count: number, dimensions: number): Float32Array[] {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new Error('embedding response has no "data" array');
  if (data.length !== count)
    throw new Error(`embedding response has ${data.length} vectors for ${count} texts`);

  const out = new Array<Float32Array | undefined>(count);
  data.forEach((item: { index?: unknown; embedding?: unknown }, position) => {
    // `index` is optional in some servers; fall back to the position in `data`.
    const index = item?.index ?? position;
    if (
      !Number.isInteger(index) ||
      (index as number) < 0 ||
      (index as number) >= count ||
      out[index as number]
    ) {
      throw new Error(`embedding response has an invalid or repeated index: ${JSON.stringify(item?.index)}`);
    }
    const vector = item.embedding;
    if (!Array.isArray(vector)) {
      throw new Error(`embedding response item ${index} has no embedding array (base64 is not supported)`);
    }
    if (vector.length !== dimensions) {
      throw new Error(
        `embedding model returned ${vector.length} dimensions, expected ${dimensions} (check EMBEDDER_DIMENSIONS)`,
      );
    }
    if (!vector.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new Error(`embedding response item ${index} contains a non-finite or non-numeric value`);
    }
    out[index as number] = Float32Array.from(vector);
  });
  return out as Float32Array[];
}
