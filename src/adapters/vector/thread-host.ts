import type { MessagePort } from 'node:worker_threads';
import type { VectorEntry, VectorHit, VectorIndex, VectorSpace } from './port.js';
import { packHits, type Reply, type Request, unpackEntries } from './thread-protocol.js';
import { createUsearchIndex, type UsearchOptions } from './usearch.js';

/**
 * The vector index's side of its thread (see in-thread.ts): answers each request as it comes, so
 * that searches run while a long write lets them in between its slices, as they do in one thread.
 */
export function hostUsearchIndex(port: MessagePort, options: UsearchOptions): void {
  hostIndex(port, createUsearchIndex(options));
}

interface OpenReplace {
  /** The write function of the index's fill, once the index has called it. */
  write: Promise<(entries: VectorEntry[]) => Promise<void>>;
  end(error?: string): void;
}

export function hostIndex(port: MessagePort, index: VectorIndex): void {
  const replaces = new Map<number, OpenReplace>();

  /** The reply, with a search's hits as the index gave them (packed when sent). */
  const answer = async (req: Request): Promise<Omit<Reply, 'hits'> & { hits?: VectorHit[] }> => {
    switch (req.method) {
      case 'upsert':
        return { id: req.id, value: await index.upsert(space(req.args[0]), unpackEntries(req.args[1])) };
      case 'remove':
        return { id: req.id, value: await index.remove(space(req.args[0]), req.args[1]) };
      case 'search': {
        const [s, division, vector, limit] = req.args;
        return { id: req.id, hits: await index.search(space(s), division, vector, limit) };
      }
      case 'count':
        return { id: req.id, value: await index.count(space(req.args[0]), req.args[1]) };
      case 'ensureSpace':
        return { id: req.id, value: await index.ensureSpace(space(req.args[0])) };
      case 'flush':
        return { id: req.id, value: await index.flush() };
      case 'check':
        return { id: req.id, value: await index.check() };
      case 'storageBytes':
        return { id: req.id, value: await index.storageBytes() };
      case 'close':
        return { id: req.id, value: await index.close() };
      case 'replaceBegin':
        return { id: req.id, value: await replace(req.id, space(req.args[0])) };
      case 'replaceWrite': {
        const open = replaces.get(req.args[0]);
        if (!open) throw new Error(`no replace ${req.args[0]} is open`);
        return { id: req.id, value: await (await open.write)(unpackEntries(req.args[1])) };
      }
      case 'replaceEnd': {
        const open = replaces.get(req.args[0]);
        if (!open) throw new Error(`no replace ${req.args[0]} is open`);
        open.end(req.args[1]);
        return { id: req.id };
      }
    }
  };

  /** The index's replace, with a fill that lasts until the other thread's fill has ended. */
  const replace = (id: number, s: VectorSpace): Promise<void> => {
    let gotWrite!: (write: (entries: VectorEntry[]) => Promise<void>) => void;
    let noWrite!: (err: unknown) => void;
    let ended!: (error?: string) => void;
    const write = new Promise<(entries: VectorEntry[]) => Promise<void>>((resolve, reject) => {
      gotWrite = resolve;
      noWrite = reject;
    });
    write.catch(() => undefined); // read by replaceWrite requests, if any come
    const end = new Promise<string | undefined>((resolve) => {
      ended = resolve;
    });
    replaces.set(id, { write, end: ended });
    return index
      .replace(s, async (w) => {
        gotWrite(w);
        const error = await end;
        // The other thread's fill failed: failing this one makes the replace change nothing.
        if (error !== undefined) throw new Error(error);
      })
      .catch((err: unknown) => {
        noWrite(err); // a replace refused before its fill began (one already running) fails its writes too
        throw err;
      })
      .finally(() => replaces.delete(id));
  };

  port.on('message', (req: Request) => {
    answer(req).then(
      ({ hits, ...reply }) => {
        if (!hits) return port.postMessage(reply);
        const { packed, transfer } = packHits(hits);
        port.postMessage({ ...reply, hits: packed }, transfer);
      },
      (err: unknown) =>
        port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/** A space as it crossed the threads: a plain object with the model's fields. */
const space = (value: unknown) => value as VectorSpace;
