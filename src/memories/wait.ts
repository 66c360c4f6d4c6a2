import type { Database } from '../adapters/db/port.js';
import type { IndexingWorker } from '../indexing/worker.js';

const POLL_MS = 200;

/**
 * Resolves once none of the memories is pending any more, or after `timeoutMs`. Listens to the
 * in-process worker and also polls, since the worker may run in another process.
 */
export async function waitUntilIndexed(
  db: Database,
  worker: Pick<IndexingWorker, 'events'>,
  ids: string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const stillPending = async () => {
    const res = await db.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM memory_nodes WHERE id = ANY($1::uuid[]) AND status = 'pending' AND deleted_at IS NULL`,
      [ids],
    );
    return res.rows[0].count > 0;
  };
  while ((await stillPending()) && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        worker.events.off('indexed', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
      worker.events.on('indexed', done);
    });
  }
}
