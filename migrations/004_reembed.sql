-- Re-embedding by model version (src/memory/reembed.ts): each division's active model, the
-- vectors computed for the model a division is moving to, and the runs that compute them.

-- The model search and indexing use for the division. NULL: the configured default (EMBEDDER…).
-- Set when a re-embedding completes, in the transaction that copies the new vectors in.
ALTER TABLE divisions ADD COLUMN embedding_model text;
ALTER TABLE divisions ADD COLUMN embedding_model_version text;
ALTER TABLE divisions ADD CONSTRAINT divisions_embedding_model_pair
  CHECK ((embedding_model IS NULL) = (embedding_model_version IS NULL));

-- One re-embedding of one division to one model. A runner holds it by lease (locked_by,
-- lease_until); a run whose runner vanished is claimed again and continues from the vectors
-- already stored below.
CREATE TABLE reembed_runs (
  id                  uuid PRIMARY KEY,
  division_id         text NOT NULL REFERENCES divisions (id),
  model               text NOT NULL,
  model_version       text NOT NULL,
  -- The division's model when the run was requested (NULL: the configured default).
  from_model          text,
  from_model_version  text,
  status              text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  -- Live memories of the division, and how many of them have a vector of the target model.
  total               integer NOT NULL DEFAULT 0,
  done                integer NOT NULL DEFAULT 0,
  -- Texts this run sent to the embedder (identical texts and resumed work are not sent again).
  embedded            integer NOT NULL DEFAULT 0,
  error               text,
  requested_by        text NOT NULL,
  locked_by           text,
  lease_until         timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  finished_at         timestamptz
);
-- At most one unfinished run per division.
CREATE UNIQUE INDEX reembed_runs_active_idx ON reembed_runs (division_id) WHERE status IN ('queued', 'running');
CREATE INDEX reembed_runs_division_idx ON reembed_runs (division_id, created_at DESC);

-- Vectors under construction: a memory's vector for a model its division is not using yet,
-- with the checksum of the text it was computed from (a changed text needs a new one). Copied
-- into memory_nodes and deleted when the division switches; kept after a failed or cancelled
-- run, so that asking again continues where it stopped.
CREATE TABLE reembed_vectors (
  node_id        uuid NOT NULL REFERENCES memory_nodes (id) ON DELETE CASCADE,
  model          text NOT NULL,
  model_version  text NOT NULL,
  division_id    text NOT NULL,
  dim            integer NOT NULL,
  checksum       text NOT NULL,
  embedding      bytea NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, model, model_version)
);
CREATE INDEX reembed_vectors_division_idx ON reembed_vectors (division_id, model, model_version);
-- Identical texts are embedded once per model, across divisions.
CREATE INDEX reembed_vectors_checksum_idx ON reembed_vectors (checksum, model, model_version);
