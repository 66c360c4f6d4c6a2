/**
 * Rows held by one worker for a while: jobs and re-embedding runs. `locked_by` names the holder,
 * `lease_until` is when the hold lapses unless renewed; a row whose lease lapsed may be claimed by
 * another holder. One definition of those rules, as SQL fragments over the row's own columns;
 * every timestamp comes from the database clock, so holders on different machines agree.
 */
export const lease = {
  /** SET clause taking (or renewing) the lease: `holder` and `ms` are placeholders, e.g. `$3`. */
  take: (holder: string, ms: string) =>
    `locked_by = ${holder}, lease_until = now() + make_interval(secs => ${ms}::double precision / 1000)`,
  /** SET clause renewing the lease of the current holder. */
  renew: (ms: string) => `lease_until = now() + make_interval(secs => ${ms}::double precision / 1000)`,
  /** Condition: nobody holds the row, or its holder's lease lapsed. */
  lapsed: (alias?: string) => {
    const col = alias ? `${alias}.lease_until` : 'lease_until';
    return `(${col} IS NULL OR ${col} < now())`;
  },
  /** SET clause letting go of the row. */
  release: 'locked_by = NULL, lease_until = NULL',
} as const;

/**
 * Holders (workers, re-embedding runners) alive in this process. On a database one process owns
 * (PGlite), a row held by a holder not in this set was held by a process that has ended: it is
 * claimed again at once instead of after its lease.
 */
export const liveHolders = new Set<string>();
