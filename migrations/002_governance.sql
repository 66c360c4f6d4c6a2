-- Governance: PII flags and redacted text, retention (TTL, purge), legal holds, and the
-- tamper-evident audit trail (a hash chain per division, signed heads, a publishing outbox).

ALTER TABLE memory_nodes ADD COLUMN pii_flags text[] NOT NULL DEFAULT '{}';
-- The text as callers without pii:read see it; NULL when there is nothing to redact.
ALTER TABLE memory_nodes ADD COLUMN redacted_text text;
-- Keyword search for callers without pii:read runs on this, so redacted words never match.
ALTER TABLE memory_nodes ADD COLUMN fts_redacted tsvector
  GENERATED ALWAYS AS (to_tsvector('english', coalesce(redacted_text, text))) STORED;
ALTER TABLE memory_nodes ADD COLUMN expires_at timestamptz;
ALTER TABLE memory_nodes ADD COLUMN legal_hold boolean NOT NULL DEFAULT false;
ALTER TABLE memory_nodes ADD COLUMN purged_at timestamptz;

CREATE INDEX memory_nodes_fts_redacted_idx ON memory_nodes USING gin (fts_redacted);
CREATE INDEX memory_nodes_expiry_idx ON memory_nodes (expires_at) WHERE deleted_at IS NULL AND expires_at IS NOT NULL;
CREATE INDEX memory_nodes_purge_idx ON memory_nodes (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;

-- NULL: the service default (DEFAULT_TTL_DAYS); 0: never expire.
ALTER TABLE divisions ADD COLUMN default_ttl_days integer CHECK (default_ttl_days >= 0);

-- Holds on a whole division or on one agent's memories, besides the per-memory flag.
CREATE TABLE legal_holds (
  id           bigserial PRIMARY KEY,
  division_id  text NOT NULL REFERENCES divisions (id),
  agent_id     text,
  reason       text NOT NULL,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  released_at  timestamptz,
  released_by  text
);
CREATE INDEX legal_holds_active_idx ON legal_holds (division_id, agent_id) WHERE released_at IS NULL;

-- One hash chain per division: each event's hash covers the previous one's (RFC 8785 JSON).
CREATE TABLE audit_events (
  division_id            text NOT NULL,
  seq                    bigint NOT NULL,
  at                     timestamptz NOT NULL,
  actor                  text NOT NULL,
  action                 text NOT NULL,
  resource_type          text NOT NULL,
  resource_id            text NOT NULL,
  manifest_signature_id  text,
  digest                 text NOT NULL,
  prev_hash              text NOT NULL,
  hash                   text NOT NULL,
  PRIMARY KEY (division_id, seq)
);
CREATE INDEX audit_events_resource_idx ON audit_events (division_id, resource_type, resource_id);

-- The latest event per division; locking this row serialises appends to one chain.
CREATE TABLE audit_heads (
  division_id  text PRIMARY KEY,
  seq          bigint NOT NULL,
  hash         text NOT NULL
);

CREATE TABLE audit_signatures (
  division_id  text NOT NULL,
  seq          bigint NOT NULL,
  hash         text NOT NULL,
  key_id       text NOT NULL,
  signed_at    timestamptz NOT NULL DEFAULT now(),
  jws          text NOT NULL,
  PRIMARY KEY (division_id, seq, key_id)
);

-- Outbox: events waiting to be published for archiving. Written with the event, deleted once published.
CREATE TABLE audit_outbox (
  id           bigserial PRIMARY KEY,
  division_id  text NOT NULL,
  seq          bigint NOT NULL,
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text
);
