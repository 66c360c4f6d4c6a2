/** Stable, documented error codes. Clients branch on these, never on messages. */
export const ErrorCode = {
  validation: 'validation_failed',
  malformedJson: 'malformed_json',
  unsupportedMediaType: 'unsupported_media_type',
  payloadTooLarge: 'payload_too_large',
  textTooLarge: 'text_too_large',
  piiInLabels: 'pii_in_labels',
  unauthenticated: 'unauthenticated',
  forbidden: 'forbidden',
  legalHold: 'legal_hold',
  notFound: 'not_found',
  divisionNotFound: 'division_not_found',
  agentNotFound: 'agent_not_found',
  memoryNotFound: 'memory_not_found',
  jobNotFound: 'job_not_found',
  conflict: 'conflict',
  alreadyExists: 'already_exists',
  versionMismatch: 'version_mismatch',
  preconditionInvalid: 'precondition_invalid',
  idempotencyKeyReused: 'idempotency_key_reused',
  vectorDimensionMismatch: 'vector_dimension_mismatch',
  unknownModel: 'unknown_model',
  modelUnavailable: 'model_unavailable',
  modelAlreadyActive: 'model_already_active',
  reembedInProgress: 'reembed_in_progress',
  reembedNotFound: 'reembed_not_found',
  invalidCursor: 'invalid_cursor',
  queryRequired: 'query_required',
  rateLimited: 'rate_limited',
  unavailable: 'service_unavailable',
  embedderFailed: 'embedder_failed',
  invalidSnapshot: 'invalid_snapshot',
  snapshotCorrupt: 'snapshot_corrupt',
  restoreTargetNotEmpty: 'restore_target_not_empty',
  ciphertextTampered: 'ciphertext_tampered',
  divisionErased: 'division_erased',
  keyUnavailable: 'key_unavailable',
  reencryptionInProgress: 'reencryption_in_progress',
  internal: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface FieldError {
  /** JSON pointer-ish path of the offending field, e.g. `/items/3/text` or `query.k`. */
  field: string;
  message: string;
}

/**
 * What kind of failure an error is, in the domain's words. The HTTP error handler
 * (src/http/problem.ts) is the one place that turns a kind into a status code.
 */
export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'stale'
  | 'too_large'
  | 'unsupported_media'
  | 'unprocessable'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

/** Each code's kind, unless a throw site says otherwise (a snapshot that is not there). */
const KIND_OF: Record<ErrorCode, ErrorKind> = {
  validation_failed: 'invalid',
  malformed_json: 'invalid',
  unsupported_media_type: 'unsupported_media',
  payload_too_large: 'too_large',
  text_too_large: 'too_large',
  pii_in_labels: 'invalid',
  unauthenticated: 'unauthenticated',
  forbidden: 'forbidden',
  legal_hold: 'conflict',
  not_found: 'not_found',
  division_not_found: 'not_found',
  agent_not_found: 'not_found',
  memory_not_found: 'not_found',
  job_not_found: 'not_found',
  conflict: 'conflict',
  already_exists: 'conflict',
  version_mismatch: 'stale',
  precondition_invalid: 'invalid',
  idempotency_key_reused: 'unprocessable',
  vector_dimension_mismatch: 'unprocessable',
  unknown_model: 'unprocessable',
  model_unavailable: 'unavailable',
  model_already_active: 'conflict',
  reembed_in_progress: 'conflict',
  reembed_not_found: 'not_found',
  invalid_cursor: 'invalid',
  query_required: 'invalid',
  rate_limited: 'rate_limited',
  service_unavailable: 'unavailable',
  embedder_failed: 'unavailable',
  invalid_snapshot: 'unprocessable',
  snapshot_corrupt: 'unprocessable',
  restore_target_not_empty: 'conflict',
  ciphertext_tampered: 'internal',
  division_erased: 'conflict',
  key_unavailable: 'unavailable',
  reencryption_in_progress: 'conflict',
  internal_error: 'internal',
};

/**
 * A failure the caller can act on: a stable code, a message, the fields at fault, and its kind
 * (from the code unless given). Domain code throws these; it never names an HTTP status.
 */
export class AppError extends Error {
  readonly kind: ErrorKind;
  /** Response headers that go with the problem (e.g. `retry-after` on a 503). */
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors: FieldError[] = [],
    opts: { kind?: ErrorKind; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'AppError';
    this.kind = opts.kind ?? KIND_OF[code] ?? 'internal';
    this.headers = opts.headers ?? {};
  }
}

export const badRequest = (code: ErrorCode, message: string, field?: string) =>
  new AppError(code, message, field ? [{ field, message }] : []);
export const invalid = (field: string, message: string) =>
  new AppError(ErrorCode.validation, message, [{ field, message }]);
export const notFound = (code: ErrorCode, message: string) => new AppError(code, message);
