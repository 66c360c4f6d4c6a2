import type { VectorIndex } from './port.js';

/**
 * The vector index of a worker-only process when the API replicas keep their own in-process
 * indexes and follow the change feed (VECTOR_INDEX_FOLLOW): what a worker would write there reaches
 * the replicas through PostgreSQL, so it keeps nothing — no file, no memory. It is never searched
 * (a worker serves no search); counts are 0, so a re-embedding's check of its target space re-reads
 * the vectors it stored and writes them nowhere, which is harmless.
 */
export function createWriteOnlyIndex(name: VectorIndex['name']): VectorIndex {
  return {
    name,
    ensureSpace: async () => undefined,
    upsert: async () => undefined,
    remove: async () => undefined,
    async search() {
      throw new Error('this worker process keeps no vector index: the API replicas follow the change feed');
    },
    count: async () => 0,
    replace: async (_space, fill) => fill(async () => undefined),
    flush: async () => undefined,
    check: async () => undefined,
    storageBytes: async () => 0,
    close: async () => undefined,
  };
}
