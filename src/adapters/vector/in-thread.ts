import { Worker } from 'node:worker_threads';
import { checkDimensions, type VectorEntry, type VectorIndex, type VectorSpace } from './port.js';
import { packEntries, type Reply, type Request, unpackHits } from './thread-protocol.js';
import type { UsearchOptions } from './usearch.js';

/**
 * The usearch index in a worker thread of its own, behind the same port. usearch's calls are
 * synchronous: in the service's thread, a graph insertion, a search's walk or a save holds every
 * request of the process for its length, and with PGlite the database itself waits (it runs on
 * that thread too). In a thread, the service's thread parses, validates and writes the next chunk
 * while the graph takes the last one, and searches walk the graph beside the HTTP work.
 *
 * The thread starts from thread-entry.mjs, which loads the adapter's TypeScript through tsx's
 * loader, so the same source runs whether the service was started by tsx or by a test runner.
 */
type Message = Reply | { ready: true } | { loadError: string };
type Pending = { resolve: (reply: Reply) => void; reject: (err: Error) => void };

/** Starts the thread and resolves once the index is ready in it; rejects with its load error. */
export function startUsearchThread(options: UsearchOptions): Promise<VectorIndex> {
  const worker = new Worker(new URL('./thread-entry.mjs', import.meta.url), { workerData: { options } });
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let failure: Error | undefined;
  const failAll = (err: Error) => {
    failure ??= err;
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  };

  // Idle and ready, the thread never keeps the process alive (see send and the replies).
  /** Sends a request; resolves with its reply, rejects with the error the index threw there. */
  const send = (
    request: Omit<Request, 'id'>,
    transfer: ArrayBuffer[] = [],
    id = nextId++,
  ): Promise<Reply> => {
    if (failure) return Promise.reject(failure);
    return new Promise<Reply>((resolve, reject) => {
      // A request in flight keeps the process alive (a CLI command may have nothing else to).
      if (pending.size === 0) worker.ref();
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id }, transfer);
    });
  };
  const call = async <T>(method: Request['method'], ...args: unknown[]): Promise<T> =>
    (await send({ method, args } as Omit<Request, 'id'>)).value as T;
  const packed = (space: VectorSpace, entries: VectorEntry[]) => {
    for (const e of entries) checkDimensions(space, e.vector);
    return packEntries(entries, space.dimensions);
  };

  const index: VectorIndex = {
    name: 'usearch',
    ensureSpace: (space) => call('ensureSpace', space),
    async upsert(space, entries) {
      if (entries.length === 0) return;
      const { packed: p, transfer } = packed(space, entries);
      await send({ method: 'upsert', args: [space, p] }, transfer);
    },
    remove: (space, keys) => call('remove', space, keys),
    async search(space, divisionId, vector, limit) {
      checkDimensions(space, vector);
      // Its own buffer, transferred: a view into a larger one would be cloned with all of it.
      const query = vector.slice();
      const reply = await send({ method: 'search', args: [space, divisionId, query, limit] }, [query.buffer]);
      return reply.hits ? unpackHits(reply.hits) : [];
    },
    count: (space, divisionId) => call('count', space, divisionId),
    async replace(space, fill) {
      const id = nextId++;
      const done = send({ method: 'replaceBegin', args: [space] }, [], id);
      // A replace the index refused (one already running) fails the writes and the end too
      // ("no replace is open"): the refusal is the error to show.
      let refusal: unknown;
      done.catch((err) => {
        refusal = err;
      });
      try {
        await fill(async (entries) => {
          if (entries.length === 0) return;
          const { packed: p, transfer } = packed(space, entries);
          await send({ method: 'replaceWrite', args: [id, p] }, transfer).catch((err) => {
            throw refusal ?? err;
          });
        });
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        await send({ method: 'replaceEnd', args: [id, error] }).catch(() => undefined);
        await done.catch(() => undefined);
        throw err;
      }
      await send({ method: 'replaceEnd', args: [id] }).catch(() => undefined); // else ended already: see done
      await done;
    },
    flush: () => call('flush'),
    check: () => call('check'),
    storageBytes: () => call('storageBytes'),
    async close() {
      if (!failure) await call('close').catch(() => undefined);
      failAll(new Error('the vector index is closed'));
      await worker.terminate();
    },
  };

  return new Promise<VectorIndex>((resolve, reject) => {
    worker.on('message', (msg: Message) => {
      if ('ready' in msg) {
        if (pending.size === 0) worker.unref();
        resolve(index);
      } else if ('loadError' in msg)
        reject(new Error(`the vector index's thread did not start: ${msg.loadError}`));
      else {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (pending.size === 0) worker.unref();
        if (!p) return;
        if (msg.error !== undefined) p.reject(new Error(msg.error));
        else p.resolve(msg);
      }
    });
    worker.on('error', (err) => {
      failAll(err);
      reject(err);
    });
    worker.on('exit', (code) => {
      const err = new Error(`the vector index's thread exited (code ${code})`);
      failAll(err);
      reject(err);
    });
  });
}
