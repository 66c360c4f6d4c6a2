import { createHash } from 'node:crypto';

/** The form of a text that decides "same text": Unicode NFC, trimmed, runs of whitespace collapsed. */
export function normaliseText(text: string): string {
  return text.normalize('NFC').trim().replace(/\s+/g, ' ');
}

/** SHA-256 (hex) of the normalised text. */
export function textChecksum(text: string): string {
  return createHash('sha256').update(normaliseText(text), 'utf8').digest('hex');
}

/**
 * The path of the first string (value or object key) holding U+0000, which PostgreSQL cannot
 * store in text or jsonb; undefined when there is none.
 */
export function findNul(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path || '(root)' : undefined;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = findNul(v, `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const here = path ? `${path}.${k}` : k;
      if (k.includes('\u0000')) return here;
      const found = findNul(v, here);
      if (found) return found;
    }
  }
  return undefined;
}
