-- Core schema: divisions (tenants), agents, memory nodes, the job queue and idempotency records.
-- Works on PostgreSQL 15+ and on PGlite. Nothing here needs pgvector: vectors are stored as
-- little-endian float32 bytes; vector indexes are derived from them (see src/adapters/vector).

CREATE TABLE divisions (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO divisions (id, name) VALUES ('default', 'Default division');

CREATE TABLE agents (
  division_id text NOT NULL REFERENCES divisions (id),
  id          text NOT NULL,
  name        text NOT NULL,
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (division_id, id)
);

CREATE TABLE memory_nodes (
  id                       uuid PRIMARY KEY,
  -- Dense integer key for vector indexes (usearch keys are 64-bit integers).
  vector_key               bigserial UNIQUE,
  division_id              text NOT NULL REFERENCES divisions (id),
  agent_id                 text,
  namespace                text NOT NULL DEFAULT 'default',
  kind                     text NOT NULL DEFAULT 'note',
  text                     text NOT NULL,
  -- SHA-256 (hex) of the normalised text: identical text with the same model is embedded once.
  checksum                 text NOT NULL,
  tags                     text[] NOT NULL DEFAULT '{}',
  metadata                 jsonb NOT NULL DEFAULT '{}',
  status                   text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'indexed', 'failed')),
  embedding_model          text,
  embedding_model_version  text,
  embedding_dim            integer,
  embedding                bytea,
  embedded_at              timestamptz,
  fts                      tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
  version                  integer NOT NULL DEFAULT 1,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  deleted_at               timestamptz,
  FOREIGN KEY (division_id, agent_id) REFERENCES agents (division_id, id),
  CHECK ((embedding IS NULL) = (embedding_dim IS NULL))
);

CREATE INDEX memory_nodes_list_idx ON memory_nodes (division_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX memory_nodes_ns_idx ON memory_nodes (division_id, namespace) WHERE deleted_at IS NULL;
CREATE INDEX memory_nodes_agent_idx ON memory_nodes (division_id, agent_id) WHERE deleted_at IS NULL;
CREATE INDEX memory_nodes_fts_idx ON memory_nodes USING gin (fts);
CREATE INDEX memory_nodes_tags_idx ON memory_nodes USING gin (tags);
CREATE INDEX memory_nodes_checksum_idx ON memory_nodes (checksum, embedding_model, embedding_model_version) WHERE embedding IS NOT NULL;
CREATE INDEX memory_nodes_pending_idx ON memory_nodes (division_id) WHERE status = 'pending' AND deleted_at IS NULL;

-- Job queue and outbox: a job is written in the same transaction as the change that needs it.
-- Finished jobs are deleted; dead ones stay until retried.
CREATE TABLE jobs (
  id            bigserial PRIMARY KEY,
  queue         text NOT NULL,
  payload       jsonb NOT NULL,
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'dead')),
  attempts      integer NOT NULL DEFAULT 0,
  max_attempts  integer NOT NULL,
  run_at        timestamptz NOT NULL DEFAULT now(),
  locked_at     timestamptz,
  locked_by     text,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_claim_idx ON jobs (queue, run_at, id) WHERE status = 'queued';
CREATE INDEX jobs_running_idx ON jobs (queue, locked_at) WHERE status = 'running';
CREATE INDEX jobs_dead_idx ON jobs (id) WHERE status = 'dead';

-- A retried write with the same Idempotency-Key returns the first answer.
CREATE TABLE idempotency_keys (
  division_id   text NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  status_code   integer,
  response      jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (division_id, key)
);
