/**
 * Waiting in tests. Work that finishes on its own (a worker, a child process, a timer of the code
 * under test) is polled with `waitFor` until it shows; expiries and leases that the code compares
 * with the database clock are not waited for at all: the test sets the timestamp in the row.
 */

/** A value that counts as "reached": anything but false, 0, '', null and undefined. */
export type Reached<T> = Exclude<T, false | 0 | '' | null | undefined>;

export interface WaitOptions {
  /** What is awaited, for the failure message ("memory 42 to be indexed"); a function is read when failing. */
  what: string | (() => string);
  /** Fails after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between two looks (default 25 ms). */
  intervalMs?: number;
}

/** A fixed pause: only to show that something does NOT happen in a while, or to space two timestamps. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` until it returns true or a value, and returns that value. Fails after
 * `timeoutMs` with a message naming what it waited for; an error thrown by `condition` fails at once.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { what, timeoutMs = 10_000, intervalMs = 25 }: WaitOptions,
): Promise<Reached<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as Reached<T>;
    if (Date.now() > until) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`,
      );
    }
    await sleep(intervalMs);
  }
}
