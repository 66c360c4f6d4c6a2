/**
 * The loop of a queue worker: runs `once` again at once while it finds work, and after `pollMs`
 * (or sooner, on `notify()`) when it found none. A failed round is reported and the loop goes on.
 */
export function createPollLoop(opts: {
  pollMs: number;
  /** One round; resolves to how much work it found (0: idle). */
  once: () => Promise<number>;
  onError: (err: unknown) => void;
}) {
  let running = false;
  let wake: (() => void) | null = null;
  let loop: Promise<void> | null = null;

  async function run() {
    while (running) {
      let found = 0;
      try {
        found = await opts.once();
      } catch (err) {
        opts.onError(err);
      }
      // Let requests in between rounds: on PGlite every query resolves without I/O, so a backlog
      // would otherwise keep the event loop (and the API sharing it) busy until it is drained.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (found === 0 && running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, opts.pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    }
  }

  return {
    /** Wakes an idle loop at once (work was just queued in this process). */
    notify() {
      wake?.();
    },
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    /** Stops after the round in progress. */
    async stop() {
      running = false;
      wake?.();
      await loop;
      loop = null;
    },
  };
}
