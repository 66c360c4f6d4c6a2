import type { Queryable } from '../adapters/db/port.js';
import { VECTOR_INDEX_TABLES } from '../adapters/vector/index.js';

/**
 * Tables a snapshot leaves out: the migration ledger (the manifest records it) and derived data
 * that is rebuilt from the rows (a vector index kept in the database).
 */
const NOT_SNAPSHOTTED = new Set(['schema_migrations', ...VECTOR_INDEX_TABLES]);

export interface TableShape {
  name: string;
  /** Stored columns, in table order: generated columns are recomputed on load. */
  columns: string[];
  /** `bigserial` columns and their sequences' state. */
  serials: string[];
}

export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * The tables of the current schema, in load order: every table after the tables its foreign keys
 * reference. Found from the catalog, so tables added by later migrations are included with no
 * change here.
 */
export async function snapshotTables(q: Queryable): Promise<TableShape[]> {
  const cols = await q.query<{
    table_name: string;
    column_name: string;
    is_generated: string;
    serial: boolean;
  }>(
    `SELECT c.table_name, c.column_name, c.is_generated,
            coalesce(c.column_default LIKE 'nextval(%', false) AS serial
     FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
     ORDER BY c.table_name, c.ordinal_position`,
  );
  const tables = new Map<string, TableShape>();
  for (const c of cols.rows) {
    if (NOT_SNAPSHOTTED.has(c.table_name)) continue;
    const t = tables.get(c.table_name) ?? { name: c.table_name, columns: [], serials: [] };
    if (c.is_generated !== 'ALWAYS') t.columns.push(c.column_name);
    if (c.serial) t.serials.push(c.column_name);
    tables.set(c.table_name, t);
  }
  const fks = await q.query<{ child: string; parent: string }>(
    `SELECT child.relname AS child, parent.relname AS parent
     FROM pg_constraint k
     JOIN pg_class child ON child.oid = k.conrelid
     JOIN pg_class parent ON parent.oid = k.confrelid
     JOIN pg_namespace n ON n.oid = child.relnamespace
     WHERE k.contype = 'f' AND n.nspname = current_schema()`,
  );
  const parents = new Map<string, Set<string>>();
  for (const { child, parent } of fks.rows) {
    if (child !== parent) parents.set(child, (parents.get(child) ?? new Set()).add(parent));
  }
  // Depth-first topological order, names sorted so that the order is the same on every run.
  const ordered: TableShape[] = [];
  const placed = new Set<string>();
  const visit = (name: string, path: string[]) => {
    if (placed.has(name) || !tables.has(name)) return;
    if (path.includes(name)) throw new Error(`foreign keys form a cycle: ${[...path, name].join(' -> ')}`);
    for (const p of [...(parents.get(name) ?? [])].sort()) visit(p, [...path, name]);
    placed.add(name);
    ordered.push(tables.get(name) as TableShape);
  };
  for (const name of [...tables.keys()].sort()) visit(name, []);
  return ordered;
}

/** Rows of one table as JSON text, `pageSize` at a time, from a cursor in the caller's transaction. */
export async function* tableRows(
  tx: Queryable,
  table: TableShape,
  pageSize = 1000,
  /** Only this division's rows (tables with a `division_id` column). */
  divisionId?: string,
): AsyncGenerator<string[]> {
  const cursor = `snapshot_${table.name}`;
  const cols = table.columns.map(quoteIdent).join(', ');
  const where = divisionId === undefined ? '' : ' WHERE division_id = $1';
  await tx.query(
    `DECLARE ${quoteIdent(cursor)} NO SCROLL CURSOR FOR
     SELECT row_to_json(r)::text AS j FROM (SELECT ${cols} FROM ${quoteIdent(table.name)}${where}) r`,
    divisionId === undefined ? [] : [divisionId],
  );
  try {
    for (;;) {
      const page = await tx.query<{ j: string }>(`FETCH ${pageSize} FROM ${quoteIdent(cursor)}`);
      if (page.rows.length === 0) return;
      yield page.rows.map((r) => r.j);
    }
  } finally {
    await tx.query(`CLOSE ${quoteIdent(cursor)}`);
  }
}

/**
 * Inserts rows given as JSON objects (as `tableRows` wrote them). PostgreSQL converts every value
 * from its JSON form to the column's type, exactly as it printed it.
 */
export async function insertRows(tx: Queryable, table: TableShape, jsonRows: string[]): Promise<void> {
  if (jsonRows.length === 0) return;
  const cols = table.columns.map(quoteIdent).join(', ');
  await tx.query(
    `INSERT INTO ${quoteIdent(table.name)} (${cols})
     SELECT ${cols} FROM json_populate_recordset(NULL::${quoteIdent(table.name)}, $1::json)`,
    [`[${jsonRows.join(',')}]`],
  );
}

/** Where each serial column's sequence stands (ahead of the rows is fine: values are never reused). */
export async function sequenceStates(q: Queryable, tables: TableShape[]) {
  const out: { table: string; column: string; lastValue: number; isCalled: boolean }[] = [];
  for (const t of tables) {
    for (const column of t.serials) {
      const seq = await q.query<{ name: string }>('SELECT pg_get_serial_sequence($1, $2) AS name', [
        quoteIdent(t.name),
        column,
      ]);
      const name = seq.rows[0]?.name;
      if (!name) continue;
      const state = await q.query<{ last_value: number | string; is_called: boolean }>(
        `SELECT last_value, is_called FROM ${name}`,
      );
      out.push({
        table: t.name,
        column,
        lastValue: Number(state.rows[0].last_value),
        isCalled: state.rows[0].is_called,
      });
    }
  }
  return out;
}

export async function restoreSequence(
  q: Queryable,
  s: { table: string; column: string; lastValue: number; isCalled: boolean },
): Promise<void> {
  await q.query('SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)', [
    quoteIdent(s.table),
    s.column,
    s.lastValue,
    s.isCalled,
  ]);
}
