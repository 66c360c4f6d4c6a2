/**
 * Rows in PostgreSQL's COPY text format (tab-separated, one row per line, `\N` for NULL), the
 * fastest way to load many rows: both engines take it (`COPY ... FROM STDIN` on the server,
 * `FROM '/dev/blob'` on PGlite). Each value is encoded by the type of its column.
 */
export type CopyType = 'text' | 'text[]' | 'bytea' | 'jsonb' | 'int' | 'timestamptz';

/** Backslash, newline, carriage return and tab are the characters COPY text reads specially. */
const SPECIAL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeField = (s: string) => s.replace(SPECIAL, (c) => ESCAPES[c]);

/** An array literal: every element quoted, quotes and backslashes escaped inside the quotes. */
const arrayLiteral = (items: readonly string[]) =>
  `{${items.map((s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;

function encode(value: unknown, type: CopyType): string {
  if (value === null || value === undefined) return '\\N';
  switch (type) {
    case 'text':
      return escapeField(String(value));
    case 'text[]':
      return escapeField(arrayLiteral(value as string[]));
    case 'bytea':
      // `\x` hex input; the backslash itself is escaped for COPY.
      return `\\\\x${Buffer.from(value as Uint8Array).toString('hex')}`;
    case 'jsonb':
      return escapeField(typeof value === 'string' ? value : JSON.stringify(value));
    case 'int':
      return String(Math.trunc(value as number));
    case 'timestamptz':
      return value instanceof Date ? value.toISOString() : escapeField(String(value));
  }
}

/** The COPY text of `rows`, each a list of values in the order of `types`. */
export function copyText(types: readonly CopyType[], rows: readonly (readonly unknown[])[]): string {
  const lines: string[] = [];
  for (const row of rows) lines.push(types.map((type, i) => encode(row[i], type)).join('\t'));
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** `COPY table (columns) FROM <source>` with identifiers checked: they are not parameters. */
export function copyStatement(table: string, columns: readonly string[], source: string): string {
  for (const name of [table, ...columns]) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain SQL identifier: ${name}`);
  }
  return `COPY ${table} (${columns.join(', ')}) FROM ${source}`;
}
