-- Reads of memory content in the audit trail (ACCESS_AUDIT=all).
--
-- A read stages one row here before its answer is sent (one INSERT, no lock on the chain); a
-- flush moves staged rows into the hash chain in batches, deleting them in the same transaction.
-- A crash therefore loses no acknowledged read: the next flush, by any process, chains it.
CREATE TABLE access_pending (
  id                     bigserial PRIMARY KEY,
  division_id            text NOT NULL,
  actor                  text NOT NULL,
  manifest_signature_id  text,
  -- What the event records (route, ids, token id, time of the read); hashed into its digest.
  detail                 jsonb NOT NULL,
  -- The memories read ('*' for a whole division, e.g. a proof export): the "who saw" index.
  memory_ids             text[] NOT NULL
);

-- Events whose facts are kept next to their digest (access events: ids and routes, never text),
-- so that they can be shown and checked against the digest.
ALTER TABLE audit_events ADD COLUMN detail jsonb;

-- Which access events read which memory: answers "who saw this memory" without scanning details.
CREATE TABLE audit_access (
  division_id  text NOT NULL,
  memory_id    text NOT NULL,
  seq          bigint NOT NULL,
  PRIMARY KEY (division_id, memory_id, seq)
);
