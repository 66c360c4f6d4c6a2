-- Artifacts: files stored in the object store (src/adapters/objects), described here. The bytes
-- live under `object_key` (artifacts/<division>/<id>), written once and never overwritten: a new
-- upload is a new artifact with a new key. `sha256` is computed while the upload streams and
-- checked again on every download.

CREATE TABLE artifacts (
  id              uuid PRIMARY KEY,
  division_id     text NOT NULL REFERENCES divisions (id),
  -- The agent whose token uploaded it (agent tokens only see their own agent's artifacts).
  agent_id        text,
  sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size            bigint NOT NULL CHECK (size >= 0),
  content_type    text NOT NULL,
  object_key      text NOT NULL UNIQUE,
  -- The store's version of the object (S3 buckets with versioning), else NULL.
  object_version  text,
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifacts_division_idx ON artifacts (division_id, created_at DESC, id DESC);
CREATE INDEX artifacts_sha256_idx ON artifacts (division_id, sha256);

-- Memories link to artifacts (many to many, within one division).
CREATE TABLE memory_artifacts (
  memory_id    uuid NOT NULL REFERENCES memory_nodes (id) ON DELETE CASCADE,
  artifact_id  uuid NOT NULL REFERENCES artifacts (id),
  division_id  text NOT NULL,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (memory_id, artifact_id)
);
CREATE INDEX memory_artifacts_artifact_idx ON memory_artifacts (artifact_id);
