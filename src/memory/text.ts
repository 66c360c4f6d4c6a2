import { createHash } from 'node:crypto';

/** The form of a text that decides "same text": Unicode NFC, trimmed, runs of whitespace collapsed. */
export function normaliseText(text: string): string {
  return text.normalize('NFC').trim().replace(/\s+/g, ' ');
}

/** SHA-256 (hex) of the normalised text. */
export function textChecksum(text: string): string {
  return createHash('sha256').update(normaliseText(text), 'utf8').digest('hex');
}
