import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ErrorCode, type ErrorKind, type FieldError } from '../platform/errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance: string;
  requestId: string;
  errors?: (FieldError & { in?: string })[];
}

/** The HTTP status of each kind of domain error: the one place that maps the domain onto HTTP. */
const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  stale: 412,
  too_large: 413,
  unsupported_media: 415,
  unprocessable: 422,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** The HTTP status a domain error answers with. */
export const httpStatusOf = (err: AppError): number => HTTP_STATUS[err.kind] ?? 500;

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/items/3/text` → `items[3].text`; a missing or unknown property is named itself. */
function fieldOf(e: AjvError): string {
  let path = e.instancePath
    .split('/')
    .slice(1)
    .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`))
    .join('');
  if (e.keyword === 'required') path += `.${e.params.missingProperty}`;
  if (e.keyword === 'additionalProperties') path += `.${e.params.additionalProperty}`;
  return path.replace(/^\./, '') || '(root)';
}

function messageOf(e: AjvError): string {
  if (e.keyword === 'additionalProperties') return 'unknown field';
  if (e.keyword === 'required') return 'required';
  return e.message ?? e.keyword;
}

/** Maps any error to RFC 9457 problem+json with a stable code. */
export function toProblem(err: FastifyError | AppError | Error, req: FastifyRequest): Problem {
  const base = { instance: req.url.split('?')[0], requestId: String(req.id) };
  const make = (status: number, code: ErrorCode, detail: string, errors?: Problem['errors']): Problem => ({
    type: `urn:memory-layer:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    ...base,
    ...(errors && errors.length > 0 ? { errors } : {}),
  });
  if (err instanceof AppError) return make(httpStatusOf(err), err.code, err.message, err.errors);
  const fe = err as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fe.validation) {
    const where = fe.validationContext === 'querystring' ? 'query' : (fe.validationContext ?? 'body');
    const errors = fe.validation.map((e) => ({ field: fieldOf(e), in: where, message: messageOf(e) }));
    const first = errors[0];
    return make(400, ErrorCode.validation, `${where} ${first.field}: ${first.message}`, errors);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return make(400, ErrorCode.malformedJson, 'the request body is not valid JSON', [
        { field: '(body)', message: fe.message },
      ]);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return make(413, ErrorCode.payloadTooLarge, 'the request body is larger than the configured limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return make(415, ErrorCode.unsupportedMediaType, 'send the body as application/json', [
        { field: 'Content-Type', message: 'must be application/json' },
      ]);
  }
  if (err instanceof SyntaxError || (fe.statusCode === 400 && /JSON/i.test(fe.message))) {
    return make(400, ErrorCode.malformedJson, 'the request body is not valid JSON');
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return make(fe.statusCode, ErrorCode.validation, fe.message);
  }
  return make(
    500,
    ErrorCode.internal,
    'an unexpected error occurred; quote the request id when reporting it',
  );
}

export function sendProblem(reply: FastifyReply, problem: Problem) {
  return reply.status(problem.status).type('application/problem+json').send(problem);
}
