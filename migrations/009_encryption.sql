-- Envelope encryption of objects written outside PostgreSQL, and erasure of whole divisions.

-- The version of the division's data key an artifact's bytes are encrypted with; NULL: stored
-- in the clear (written while encryption was off).
ALTER TABLE artifacts ADD COLUMN key_version integer;

-- A division erased (DELETE /v1/divisions/{id}?erase=true): its row stays so that its id is never
-- reused and its audit chain (ending with the erasure record) can still be read and verified.
ALTER TABLE divisions ADD COLUMN erased_at timestamptz;

CREATE TABLE division_erasures (
  division_id text PRIMARY KEY REFERENCES divisions (id),
  erased_at timestamptz NOT NULL DEFAULT now(),
  erased_by text NOT NULL,
  -- What was purged (counts and digests) and which data key versions were destroyed.
  destroyed jsonb NOT NULL,
  -- The audit chain's head right after the erasure record, and its signature.
  audit_seq bigint NOT NULL,
  audit_hash text NOT NULL,
  signed_head jsonb
);
