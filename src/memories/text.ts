import { createHash } from 'node:crypto';

/** The form of a text that decides "same text": Unicode NFC, trimmed, runs of whitespace collapsed. */
export function normaliseText(text: string): string {
  return text.normalize('NFC').trim().replace(/\s+/g, ' ');
}

/** SHA-256 (hex) of the normalised text. */
export function textChecksum(text: string): string {
  return createHash('sha256').update(normaliseText(text), 'utf8').digest('hex');
}

/** How deep a JSON value may nest (objects and arrays). Deeper values are refused, not stored. */
export const MAX_JSON_DEPTH = 32;

export type JsonFault = { field: string; problem: 'nul' | 'depth' };

/**
 * The first reason a parsed JSON value cannot be stored: a string (value or object key) holding
 * U+0000, which PostgreSQL cannot store in text or jsonb, or nesting deeper than `maxDepth`
 * (which would overflow the stack of every recursive step after it: validation, canonical JSON,
 * jsonb). Iterative, so any input is checked in bounded stack. Undefined when there is none.
 */
export function findJsonFault(value: unknown, maxDepth = MAX_JSON_DEPTH): JsonFault | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: '', depth: 0 }];
  /** Numbers, booleans and null cannot be at fault: they are not pushed (a vector is 512 of them). */
  const holdsFault = (c: unknown) => typeof c === 'string' || (c !== null && typeof c === 'object');
  while (stack.length > 0) {
    const { value: v, path, depth } = stack.pop() as (typeof stack)[number];
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return { field: path || '(root)', problem: 'nul' };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) return { field: path || '(root)', problem: 'depth' };
    const children: { value: unknown; path: string; depth: number }[] = [];
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++)
        if (holdsFault(v[i])) children.push({ value: v[i], path: `${path}[${i}]`, depth: depth + 1 });
    } else {
      for (const [k, c] of Object.entries(v)) {
        const here = path ? `${path}.${k}` : k;
        if (k.includes('\u0000')) return { field: here, problem: 'nul' };
        if (holdsFault(c)) children.push({ value: c, path: here, depth: depth + 1 });
      }
    }
    // Reversed, so that the first fault in document order is found first.
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return undefined;
}
