import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbedder } from '../../src/adapters/embedders/index.js';
import { createLocalEmbedder } from '../../src/adapters/embedders/local.js';
import { createOpenAIEmbedder } from '../../src/adapters/embedders/openai.js';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { loadConfig } from '../../src/config.js';
import { startEmbeddingsServer } from '../../src/http/embeddings-server.js';

const cosine = (a: Float32Array, b: Float32Array) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
};
const maxDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

const PARAPHRASE = ['The cat is sleeping on the sofa.', 'A kitten naps on the couch.'];
const UNRELATED = 'Quarterly tax filings are due at the end of April.';
const TEXTS = [
  'alpha beta',
  'the weather is nice today',
  'I like green tea',
  'databases store rows',
  'hello',
];

/** A throwaway server for failure modes our own server never produces. */
async function startRawServer(handler: Parameters<typeof createServer>[1]) {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('embedders', () => {
  let local: Embedder;
  /** Texts per request the embeddings server received, to observe client-side batching. */
  const served: number[] = [];
  let server: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    local = await createLocalEmbedder();
    // Real model behind the server; the wrapper only records batch sizes.
    const counting: Embedder = {
      model: local.model,
      embed: (texts, signal) => {
        served.push(texts.length);
        return local.embed(texts, signal);
      },
      close: async () => {},
    };
    server = await startEmbeddingsServer(counting, { host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await local?.close();
  });

  describe('local model', () => {
    it('places a paraphrase closer than an unrelated sentence', async () => {
      const [a, b, c] = await local.embed([...PARAPHRASE, UNRELATED]);
      expect(local.model).toEqual({ name: 'use-lite', version: '0.2.0', dimensions: 512 });
      expect(a).toBeInstanceOf(Float32Array);
      expect([a.length, b.length, c.length]).toEqual([512, 512, 512]);
      expect(cosine(a, b)).toBeGreaterThan(cosine(a, c) + 0.2);
    });

    it('gives the same input the same vector, whatever else is in the call', async () => {
      const [alone] = await local.embed([PARAPHRASE[0]]);
      const [again] = await local.embed([PARAPHRASE[0]]);
      const inBatch = await local.embed([UNRELATED, PARAPHRASE[0]]);
      expect(again).toEqual(alone);
      expect(maxDiff(inBatch[1], alone)).toBeLessThan(1e-5);
    });

    it('embeds more texts than one chunk, in order, including empty strings', async () => {
      const texts = Array.from({ length: 70 }, (_, i) => `note number ${i} about the project`);
      texts[69] = '';
      const vectors = await local.embed(texts);
      expect(vectors).toHaveLength(70);
      const [single] = await local.embed([texts[66]]);
      expect(maxDiff(vectors[66], single)).toBeLessThan(1e-5);
      const [empty] = await local.embed(['']);
      expect(maxDiff(vectors[69], empty)).toBeLessThan(1e-5);
      expect(await local.embed([])).toEqual([]);
    });

    it('stops when the signal is aborted', async () => {
      await expect(local.embed(['x'], AbortSignal.abort(new Error('stop')))).rejects.toThrow('stop');
    });
  });

  describe('OpenAI-compatible adapter against the embeddings server', () => {
    const remote = (over: Partial<Parameters<typeof createOpenAIEmbedder>[0]> = {}) =>
      createOpenAIEmbedder({
        url: server.url,
        model: 'use-lite',
        dimensions: 512,
        timeoutMs: 10_000,
        batchSize: 32,
        ...over,
      });

    it('returns the vectors the local model computes', async () => {
      const expected = await local.embed(TEXTS);
      const got = await remote().embed(TEXTS);
      expect(got).toHaveLength(TEXTS.length);
      got.forEach((v, i) => {
        expect(v).toBeInstanceOf(Float32Array);
        expect(maxDiff(v, expected[i])).toBeLessThan(1e-5);
      });
    });

    it('splits inputs into batches of batchSize', async () => {
      const expected = await local.embed(TEXTS);
      served.length = 0;
      // Trailing slash on the base URL is accepted too.
      const got = await remote({ batchSize: 2, url: `${server.url}/` }).embed(TEXTS);
      expect(served).toEqual([2, 2, 1]);
      for (const [i, v] of got.entries()) expect(maxDiff(v, expected[i])).toBeLessThan(1e-5);
    });

    it('rejects vectors of the wrong size with a message naming the setting', async () => {
      await expect(remote({ dimensions: 768 }).embed(['x'])).rejects.toThrow(
        /returned 512 dimensions, expected 768 .*EMBEDDER_DIMENSIONS/,
      );
    });

    it('reports model info, with a default version', () => {
      expect(remote().model).toEqual({ name: 'use-lite', version: 'api', dimensions: 512 });
      expect(remote({ version: '7' }).model.version).toBe('7');
    });

    it('propagates the caller abort', async () => {
      const ac = new AbortController();
      ac.abort(new Error('caller gave up'));
      await expect(remote().embed(['x'], ac.signal)).rejects.toThrow('caller gave up');
    });
  });

  describe('embeddings server', () => {
    const post = (body: string) =>
      fetch(`${server.url}/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });

    it('answers in the OpenAI shape, for a single string and in base64', async () => {
      const res = await post(JSON.stringify({ model: 'x', input: 'hello' }));
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({
        object: 'list',
        model: 'use-lite',
        usage: { prompt_tokens: 0, total_tokens: 0 },
      });
      expect(body.data).toHaveLength(1);
      expect(body.data[0]).toMatchObject({ object: 'embedding', index: 0 });
      expect(body.data[0].embedding).toHaveLength(512);

      const b64 = await (await post(JSON.stringify({ input: ['hello'], encoding_format: 'base64' }))).json();
      const bytes = Buffer.from(b64.data[0].embedding, 'base64');
      const decoded = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      expect(maxDiff(decoded, Float32Array.from(body.data[0].embedding))).toBe(0);
    });

    it('rejects malformed JSON and a missing input with OpenAI-style errors', async () => {
      for (const raw of ['{not json', JSON.stringify({ model: 'x' }), JSON.stringify({ input: [1, 2] })]) {
        const res = await post(raw);
        expect(res.status).toBe(400);
        const body = await res.json();
        expect(body.error).toMatchObject({ type: 'invalid_request_error' });
        expect(body.error.message).toEqual(expect.any(String));
      }
    });

    it('lists its model and 404s elsewhere', async () => {
      const models = await (await fetch(`${server.url}/models`)).json();
      expect(models).toMatchObject({ object: 'list', data: [{ id: 'use-lite', object: 'model' }] });
      expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    });
  });

  describe('adapter failures', () => {
    it('includes the status and a bounded body on a server error, never the API key', async () => {
      const apiKey = 'sk-secret-key-123';
      const raw = await startRawServer((req, res) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`boom: ${req.headers.authorization} ${'x'.repeat(1000)}`);
      });
      try {
        const err: Error = await createOpenAIEmbedder({
          url: raw.url,
          model: 'm',
          dimensions: 3,
          apiKey,
          timeoutMs: 5_000,
          batchSize: 8,
        })
          .embed(['x'])
          .then(
            () => expect.unreachable(),
            (e: Error) => e,
          );
        expect(err.message).toMatch(/status 500/);
        expect(err.message).toContain('Bearer [redacted]');
        expect(err.message).not.toContain(apiKey);
        expect(err.message.length).toBeLessThan(400);
      } finally {
        await raw.close();
      }
    });

    it('times out a slow server', async () => {
      const raw = await startRawServer(() => {}); // never answers
      try {
        const started = Date.now();
        await expect(
          createOpenAIEmbedder({
            url: raw.url,
            model: 'm',
            dimensions: 3,
            timeoutMs: 300,
            batchSize: 8,
          }).embed(['x']),
        ).rejects.toThrow(/timed out after 300 ms/);
        expect(Date.now() - started).toBeLessThan(5_000);
        // A caller abort in flight surfaces as the caller's reason, not as a timeout.
        const ac = new AbortController();
        setTimeout(() => ac.abort(new Error('shutting down')), 50);
        await expect(
          createOpenAIEmbedder({
            url: raw.url,
            model: 'm',
            dimensions: 3,
            timeoutMs: 5_000,
            batchSize: 8,
          }).embed(['x'], ac.signal),
        ).rejects.toThrow('shutting down');
      } finally {
        await raw.close();
      }
    });

    it('rejects a response whose vector count does not match', async () => {
      const raw = await startRawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: [{ index: 0, embedding: [1, 2, 3] }] }));
      });
      try {
        await expect(
          createOpenAIEmbedder({
            url: raw.url,
            model: 'm',
            dimensions: 3,
            timeoutMs: 5_000,
            batchSize: 8,
          }).embed(['a', 'b']),
        ).rejects.toThrow(/1 vectors for 2 texts/);
      } finally {
        await raw.close();
      }
    });
  });

  it('createEmbedder builds what the configuration names', async () => {
    const openai = await createEmbedder(
      loadConfig({
        EMBEDDER: 'openai',
        EMBEDDER_URL: server.url,
        EMBEDDER_MODEL: 'use-lite',
        EMBEDDER_DIMENSIONS: '512',
      }),
    );
    expect(openai.model).toEqual({ name: 'use-lite', version: 'api', dimensions: 512 });
    expect((await openai.embed(['hi']))[0]).toHaveLength(512);
    const builtIn = await createEmbedder(loadConfig({}));
    expect(builtIn.model.name).toBe('use-lite');
    await builtIn.close();
  });
});
