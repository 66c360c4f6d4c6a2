import { SHA256_HEX } from '../adapters/objects/port.js';
import { AppError, ErrorCode } from '../platform/errors.js';

/**
 * What an upload declares about its bytes — the expected checksum and the media type — checked
 * before a byte is stored. Errors name the header at fault.
 */

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
// type/subtype and parameters (RFC 9110 tokens); stored as sent, at most 255 characters.
const MEDIA_TYPE =
  /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[^"\\\r\n]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;
const BASE64_SHA256 = /^[A-Za-z0-9+/]{43}=$/;

/** The header an upload's expected SHA-256 comes in. */
export const checksumField = 'X-Checksum-SHA256';

/** The expected checksum as lower-case hex, from hex or base64. */
export function parseExpectedSha256(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (SHA256_HEX.test(v.toLowerCase())) return v.toLowerCase();
  if (BASE64_SHA256.test(v)) return Buffer.from(v, 'base64').toString('hex');
  throw new AppError(
    ErrorCode.validation,
    `${checksumField} must be a SHA-256 in hex (64 digits) or base64`,
    [{ field: checksumField, message: 'not a SHA-256 digest' }],
  );
}

export function parseContentType(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return DEFAULT_CONTENT_TYPE;
  const v = value.trim();
  if (v.length > 255 || !MEDIA_TYPE.test(v)) {
    throw new AppError(ErrorCode.validation, 'Content-Type is not a media type', [
      { field: 'Content-Type', message: 'expected type/subtype, e.g. application/pdf' },
    ]);
  }
  return v;
}
