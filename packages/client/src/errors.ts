/** A field the service refused, as named in a problem's `errors`: `text`, `items[3].text`, `If-Match`. */
export interface FieldError {
  field: string;
  message: string;
  /** Where the field was: `body`, `query`, `params`, `headers` (when the service says). */
  in?: string;
}

/** An RFC 9457 problem as the service sends it (`application/problem+json`). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  requestId?: string;
  errors?: FieldError[];
  [extra: string]: unknown;
}

/**
 * An answer of the service that is not a success: its problem+json, typed. `code` is the stable
 * error code to branch on (`validation_failed`, `not_found`, `precondition_failed`,
 * `service_unavailable`, …); `errors` names the fields at fault; `requestId` is the one the service
 * logged, to quote in a bug report.
 */
export class MemoryLayerError extends Error {
  override readonly name = 'MemoryLayerError';
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[];
  readonly requestId: string | undefined;
  readonly type: string;
  readonly instance: string | undefined;
  /** Seconds the service asked to wait before trying again (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
  /** The request that failed: method and path. */
  readonly request: { method: string; path: string };
  /** The problem as received (or as made up for an answer that was not problem+json). */
  readonly problem: Problem;

  constructor(
    problem: Problem,
    request: { method: string; path: string },
    extra: { requestId?: string; retryAfter?: number } = {},
  ) {
    super(`${request.method} ${request.path}: ${problem.status} ${problem.code}: ${problem.detail}`);
    this.problem = problem;
    this.status = problem.status;
    this.code = problem.code;
    this.title = problem.title;
    this.detail = problem.detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.requestId = problem.requestId ?? extra.requestId;
    this.type = problem.type;
    this.instance = problem.instance;
    this.retryAfter = extra.retryAfter;
    this.request = request;
  }

  /** The first error about `field`, if the service named it. */
  fieldError(field: string): FieldError | undefined {
    return this.errors.find((e) => e.field === field);
  }
}

/** `waitUntilIndexed` ran out of time: `pending` lists the memories still waiting for their vector. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
  constructor(
    readonly pending: string[],
    readonly timeoutMs: number,
  ) {
    super(
      `${pending.length} memor${pending.length === 1 ? 'y was' : 'ies were'} not indexed within ${timeoutMs} ms`,
    );
  }
}
