/**
 * Every PostgreSQL advisory-lock key the service takes, in one place, so that two features can
 * never pick the same number. Keys are 64-bit integers in one namespace per database; ours live
 * in the 727_000_xxx block. Changing a key breaks mutual exclusion with processes still running
 * the old version: add new keys, never renumber.
 */
export const LOCK_KEYS = {
  /** Migrations: one process migrates at a time (transaction-level lock). */
  migrations: 727_000_001,
  /** Leader of the retention sweeper. */
  sweeperLeader: 727_000_002,
  /** One audit archive run at a time (across processes). */
  auditArchive: 727_000_003,
  /** Leader of the audit archive loop. */
  auditArchiveLeader: 727_000_004,
  /** One audit outbox drainer at a time. Kept at its first value ('mlau') for rolling upgrades. */
  auditPublish: 0x6d6c6175,
  /** Creating pgvector's table and per-space indexes (transaction-level lock). */
  vectorEntriesDdl: 727_000_005,
} as const;

export type LockName = keyof typeof LOCK_KEYS;
