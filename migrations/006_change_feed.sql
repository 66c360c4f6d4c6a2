-- Change feed (src/indexing/change-feed.ts): every insert or update of a memory is stamped with the
-- next value of one sequence (`change_seq`, which orders the versions of a row) and with the id of
-- the transaction that wrote it (`change_xid`, which tells a reader when a change is settled). A
-- process keeping derived data in memory (the keyword index; later, replicas' vector indexes)
-- then reads only the rows that changed since it last looked. Any change counts — text,
-- redaction, deletion, purge, supersede, session fields, status — because every row written is
-- stamped, whatever the statement.

CREATE SEQUENCE memory_change_seq;

ALTER TABLE memory_nodes ADD COLUMN change_seq bigint;
ALTER TABLE memory_nodes ADD COLUMN change_xid xid8;

-- Rows written before this migration: stamped once, in key order, by this transaction (this
-- rewrites the table once).
UPDATE memory_nodes n SET change_seq = o.seq, change_xid = pg_current_xact_id()
FROM (SELECT id, nextval('memory_change_seq') AS seq FROM memory_nodes ORDER BY vector_key) o
WHERE n.id = o.id;
ALTER TABLE memory_nodes ALTER COLUMN change_seq SET NOT NULL;
ALTER TABLE memory_nodes ALTER COLUMN change_xid SET NOT NULL;

-- New rows are stamped by column defaults: a PL/pgSQL trigger on every insert made bulk inserts
-- ~40 % slower on PGlite (WASM), where defaults cost next to nothing.
ALTER TABLE memory_nodes ALTER COLUMN change_seq SET DEFAULT nextval('memory_change_seq');
ALTER TABLE memory_nodes ALTER COLUMN change_xid SET DEFAULT pg_current_xact_id();

CREATE FUNCTION memory_nodes_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := pg_current_xact_id();
  NEW.change_seq := nextval('memory_change_seq');
  RETURN NEW;
END
$$;

-- Updates, whatever the statement, are stamped by this trigger.
CREATE TRIGGER memory_nodes_stamp_update BEFORE UPDATE ON memory_nodes
  FOR EACH ROW EXECUTE FUNCTION memory_nodes_stamp_change();
-- An insert that brings its own stamps (a restore copies the columns from a snapshot of another
-- database) is stamped again: only this transaction's id tells readers when the row settled.
CREATE TRIGGER memory_nodes_stamp_insert BEFORE INSERT ON memory_nodes
  FOR EACH ROW WHEN (NEW.change_xid <> pg_current_xact_id()) EXECUTE FUNCTION memory_nodes_stamp_change();

-- Readers ask for the rows of transactions from a given id on, in (transaction, sequence) order.
CREATE INDEX memory_nodes_change_feed_idx ON memory_nodes (change_xid, change_seq);

-- Advanced by `memory-layer index rebuild`: every process holding derived data in memory rebuilds
-- it from the rows when it sees the value move.
CREATE SEQUENCE derived_index_generation;
