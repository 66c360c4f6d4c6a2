import { AppError, ErrorCode } from '../platform/errors.js';

/** Cursors are opaque to callers and bound to the division they were issued for. */
export function encodeCursor(divisionId: string, key: number): string {
  return Buffer.from(JSON.stringify({ d: divisionId, k: key })).toString('base64url');
}

export function decodeCursor(cursor: string, divisionId: string): number {
  const invalid = new AppError(ErrorCode.invalidCursor, 'cursor is not valid for this listing', [
    { field: 'cursor', message: 'use the nextCursor of a previous page' },
  ]);
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
      d?: unknown;
      k?: unknown;
    };
    if (parsed.d !== divisionId || typeof parsed.k !== 'number' || !Number.isSafeInteger(parsed.k))
      throw invalid;
    return parsed.k;
  } catch {
    throw invalid;
  }
}
