import { isUtf8 } from 'node:buffer';
import { detectPii, findPiiInLabels } from '../governance/pii.js';
import { AppError, ErrorCode } from '../platform/errors.js';

/** The media types a document may have; anything else is refused with 415. */
export const DOCUMENT_TYPES = ['text/plain', 'text/markdown'] as const;
export type DocumentType = (typeof DOCUMENT_TYPES)[number];

const BODY = '(body)';

/** `text/markdown; charset=utf-8` → text/markdown; a charset other than UTF-8, or another type: 415. */
export function documentTypeOf(header: string | undefined): DocumentType {
  const [type, ...params] = (header ?? '').split(';').map((p) => p.trim().toLowerCase());
  const charset = params
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  const known = DOCUMENT_TYPES.find((t) => t === type);
  if (!known || (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')) {
    throw new AppError(
      ErrorCode.unsupportedMediaType,
      'send the document as text/plain or text/markdown, in UTF-8',
      [{ field: 'Content-Type', message: 'must be text/plain or text/markdown (charset utf-8)' }],
    );
  }
  return known;
}

/** The body as text: refused (400, naming the body) when empty, blank, not UTF-8 or holding NUL. */
export function decodeDocument(body: Buffer | string | undefined): string {
  if (typeof body === 'string') return checkText(body);
  if (!body || body.length === 0) {
    throw new AppError(ErrorCode.validation, 'the document is empty', [{ field: BODY, message: 'empty' }]);
  }
  if (!isUtf8(body)) {
    throw new AppError(ErrorCode.validation, 'the document is not valid UTF-8', [
      { field: BODY, message: 'not valid UTF-8' },
    ]);
  }
  return checkText(body.toString('utf8'));
}

function checkText(text: string): string {
  if (text === '') {
    throw new AppError(ErrorCode.validation, 'the document is empty', [{ field: BODY, message: 'empty' }]);
  }
  if (text.includes('\u0000')) {
    throw new AppError(ErrorCode.validation, 'the document holds a NUL character (U+0000)', [
      { field: BODY, message: 'NUL characters are not allowed' },
    ]);
  }
  if (text.replace(/^\uFEFF/, '').trim() === '') {
    throw new AppError(ErrorCode.validation, 'the document holds only whitespace', [
      { field: BODY, message: 'blank' },
    ]);
  }
  return text;
}

/**
 * Labels of a document: personal data in the title, tags or metadata is refused as for memories
 * (`pii_in_labels`): the title is shown to callers who may not read personal data.
 */
export function refusePiiInDocumentLabels(
  title: string | undefined,
  tags: string[] | undefined,
  metadata: Record<string, unknown> | undefined,
) {
  const titleFlag = title === undefined ? undefined : detectPii(title).flags[0];
  const label = titleFlag ? { field: 'title', flag: titleFlag } : findPiiInLabels(tags, metadata);
  if (label) {
    throw new AppError(
      ErrorCode.piiInLabels,
      `${label.field} holds personal data (${label.flag}); put it in the document, where it is flagged and redacted`,
      [{ field: label.field, message: `holds personal data (${label.flag})` }],
    );
  }
}

/** `metadata` arrives as JSON text in the query string: an object, or 400 naming it. */
export function parseMetadata(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new AppError(ErrorCode.validation, 'metadata must be a JSON object', [
      { field: 'metadata', message: 'not valid JSON' },
    ]);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AppError(ErrorCode.validation, 'metadata must be a JSON object', [
      { field: 'metadata', message: 'must be an object' },
    ]);
  }
  if (Object.keys(value).length > 64) {
    throw new AppError(ErrorCode.validation, 'metadata has more than 64 properties', [
      { field: 'metadata', message: 'at most 64 properties' },
    ]);
  }
  return value as Record<string, unknown>;
}
