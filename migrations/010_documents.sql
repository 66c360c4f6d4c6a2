-- Documents (src/documents): a text or Markdown file stored as an artifact and split by the worker
-- into memories ("chunks") of one session, in order. The document row says what was asked and how
-- far the split got; document_chunks lists the current version's chunks in order.

CREATE TABLE documents (
  id            uuid PRIMARY KEY,
  -- Listing order (newest first) and cursor key.
  seq           bigserial NOT NULL UNIQUE,
  division_id   text NOT NULL REFERENCES divisions (id),
  -- The agent its chunks belong to (an agent token's own agent; agent tokens see only theirs).
  agent_id      text,
  namespace     text NOT NULL,
  kind          text NOT NULL,
  title         text,
  content_type  text NOT NULL CHECK (content_type IN ('text/plain', 'text/markdown')),
  session_id    text NOT NULL,
  occurred_at   timestamptz,
  tags          text[] NOT NULL DEFAULT '{}',
  metadata      jsonb NOT NULL DEFAULT '{}',
  -- The original of the current version; NULL once the document is deleted (the artifact with it).
  artifact_id   uuid REFERENCES artifacts (id) ON DELETE SET NULL,
  size          bigint NOT NULL CHECK (size >= 0),
  sha256        text NOT NULL,
  -- 1 at upload, +1 per replacement: a split job names the version it splits.
  version       integer NOT NULL DEFAULT 1,
  -- pending: a split job is queued; splitting: a worker holds it; split: chunks written (each is
  -- then indexed like any memory); failed: the split job was dead-lettered (error says why).
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'splitting', 'split', 'failed')),
  error         text,
  created_by    text NOT NULL,
  -- Who wrote the current version: its chunks are written in that name.
  updated_by    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  deleted_at    timestamptz,
  purged_at     timestamptz
);
CREATE INDEX documents_division_idx ON documents (division_id, seq DESC);

CREATE TABLE document_chunks (
  document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
  position     integer NOT NULL CHECK (position >= 0),
  memory_id    uuid NOT NULL UNIQUE REFERENCES memory_nodes (id) ON DELETE CASCADE,
  division_id  text NOT NULL,
  PRIMARY KEY (document_id, position)
);
