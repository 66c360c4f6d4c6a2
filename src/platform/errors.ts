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
  internal: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface FieldError {
  /** JSON pointer-ish path of the offending field, e.g. `/items/3/text` or `query.k`. */
  field: string;
  message: string;
}

/** A failure the caller can act on; mapped to RFC 9457 problem+json by the HTTP error handler. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly errors: FieldError[] = [],
    /** Response headers that go with the problem (e.g. `retry-after` on a 503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (code: ErrorCode, message: string, field?: string) =>
  new AppError(400, code, message, field ? [{ field, message }] : []);
export const invalid = (field: string, message: string) =>
  new AppError(400, ErrorCode.validation, message, [{ field, message }]);
export const notFound = (code: ErrorCode, message: string) => new AppError(404, code, message);
