/**
 * Paces a periodic save of an in-process index so that saving takes at most `maxShare` of the
 * time. usearch writes a partition's whole file synchronously, holding the index's thread while
 * it does: a fraction of a second at 100k vectors, seconds at a million. A cheap save runs every
 * `minIntervalMs`; an expensive one waits ten times as long as it took (with the default share),
 * so the index's searches and writes are held at most a tenth of the time. A crash loses at most that
 * interval of index writes, which the start-up reconciliation or the change feed repairs.
 */
export function createSavePacer(minIntervalMs: number, maxShare = 0.1) {
  let lastEnd = Number.NEGATIVE_INFINITY;
  let lastTookMs = 0;
  return {
    /** Whether a save may run now. */
    due(now = Date.now()): boolean {
      return now - lastEnd >= Math.max(minIntervalMs, lastTookMs / maxShare - lastTookMs);
    },
    /** Runs a save, timing it for the next `due()`. */
    async run<T>(save: () => Promise<T>): Promise<T> {
      const started = Date.now();
      try {
        return await save();
      } finally {
        lastEnd = Date.now();
        lastTookMs = lastEnd - started;
      }
    },
    /** How long the last save took (ms). */
    lastTookMs: () => lastTookMs,
  };
}
