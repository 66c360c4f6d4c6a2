-- Memories that know their conversation (src/memories, src/search): the session (conversation,
-- thread or document) a memory belongs to, its place in it, and when the remembered thing
-- happened; and which later memory replaced it.

ALTER TABLE memory_nodes ADD COLUMN session_id text;
-- Place in the session; concurrent writes without an explicit sequence may share a number, and
-- ties are ordered by arrival (vector_key).
ALTER TABLE memory_nodes ADD COLUMN sequence integer CHECK (sequence >= 0);
ALTER TABLE memory_nodes ADD COLUMN occurred_at timestamptz;
-- Set on an older memory when a newer one names it in `supersedes`: search skips it unless asked.
ALTER TABLE memory_nodes ADD COLUMN superseded_by uuid;
ALTER TABLE memory_nodes ADD CONSTRAINT memory_nodes_sequence_needs_session
  CHECK (sequence IS NULL OR session_id IS NOT NULL);

CREATE INDEX memory_nodes_session_idx ON memory_nodes (division_id, session_id, sequence, vector_key)
  WHERE session_id IS NOT NULL;
CREATE INDEX memory_nodes_occurred_idx ON memory_nodes (division_id, occurred_at)
  WHERE occurred_at IS NOT NULL;
