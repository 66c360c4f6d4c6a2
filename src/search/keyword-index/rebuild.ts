import type { Queryable } from '../../adapters/db/port.js';
import { requestRebuild } from '../../indexing/change-feed.js';
import { createKeywordIndex, type KeywordIndexStats } from './index.js';

/**
 * `memory-layer index rebuild`, keyword side. The index lives in each serving process, so this
 * advances the rebuild generation (every running process then builds a fresh index from the rows
 * in the background and swaps it in) and builds one here, from the same rows, to report its size
 * and how long a build takes.
 */
export async function rebuildKeywordIndexes(db: Queryable): Promise<KeywordIndexStats> {
  await requestRebuild(db);
  const index = createKeywordIndex({ db });
  await index.ready();
  return index.stats();
}
