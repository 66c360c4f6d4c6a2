-- Data-key rotation (src/encryption/reencrypt-runner.ts): after a division's data key is rotated,
-- a run re-encrypts the division's artifact objects still under an older version (or stored in
-- the clear) with the current one. A runner holds a run by lease (locked_by, lease_until); a run
-- whose runner vanished is claimed again and continues with the artifacts not moved yet (each
-- artifact row names the key version of its object, so the progress is in the rows themselves).
CREATE TABLE key_reencryptions (
  id              uuid PRIMARY KEY,
  division_id     text NOT NULL REFERENCES divisions (id),
  -- The version every object of the division is moved to (the current one when requested).
  target_version  integer NOT NULL CHECK (target_version >= 1),
  status          text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  -- Artifacts of the division, and how many of them are under target_version.
  total           integer NOT NULL DEFAULT 0,
  done            integer NOT NULL DEFAULT 0,
  -- Objects this run rewrote (an interrupted run's successor does not count them again).
  moved           integer NOT NULL DEFAULT 0,
  error           text,
  requested_by    text NOT NULL,
  locked_by       text,
  lease_until     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
-- At most one unfinished run per division.
CREATE UNIQUE INDEX key_reencryptions_active_idx ON key_reencryptions (division_id)
  WHERE status IN ('queued', 'running');
CREATE INDEX key_reencryptions_division_idx ON key_reencryptions (division_id, created_at DESC);
