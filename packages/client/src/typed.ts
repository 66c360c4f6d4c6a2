/**
 * Types of requests and answers, read from the generated `paths` of the OpenAPI document: a path
 * and method name the operation, whose parameters, JSON body and success answer follow.
 */
import type { paths } from './schema.js';

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'patch';

type Defined<T> = Exclude<T, undefined>;
type Operation<P extends keyof paths, M extends HttpMethod> = Defined<paths[P][M]>;

/** The paths that have an operation for `M`. */
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]-?: [Defined<paths[P][M]>] extends [never] ? never : P;
}[keyof paths];

type Params<O> = O extends { parameters: infer P } ? P : never;
type Part<O, K extends string> = Params<O> extends { [k in K]?: infer X } ? Defined<X> : never;
type JsonBodyOf<O> = O extends { requestBody?: infer RB }
  ? Defined<RB> extends { content: { 'application/json': infer B } }
    ? B
    : never
  : never;

type PathPart<O> = [Part<O, 'path'>] extends [never] ? { path?: never } : { path: Part<O, 'path'> };
type QueryPart<O> = [Part<O, 'query'>] extends [never]
  ? { query?: never }
  : Params<O> extends { query: object }
    ? { query: Part<O, 'query'> }
    : { query?: Part<O, 'query'> };
type BodyPart<O> = [JsonBodyOf<O>] extends [never]
  ? { body?: never }
  : O extends { requestBody: object }
    ? { body: JsonBodyOf<O> }
    : { body?: JsonBodyOf<O> };

/** What one call may say besides the operation's own parameters. */
export interface CallOptions {
  /** Extra headers for this call (e.g. `If-Match`). */
  headers?: Record<string, string>;
  /** Cancels the call, its retries and their waits. */
  signal?: AbortSignal;
  /**
   * The Idempotency-Key of a POST (default: a random UUID per call, the same for its retries);
   * `false` sends none.
   */
  idempotencyKey?: string | false;
  /**
   * Retry this call on network errors, 429 and 503. Default: GET and HEAD, and POSTs to routes that
   * honour Idempotency-Key (memories, batches, divisions, agents) when they carry one.
   */
  retry?: boolean;
}

/** The parameters and body of one operation, plus the call options. */
export type RequestInit<P extends keyof paths, M extends HttpMethod> = PathPart<Operation<P, M>> &
  QueryPart<Operation<P, M>> &
  BodyPart<Operation<P, M>> &
  CallOptions;

type SuccessStatus = 200 | 201 | 202 | 204;
type Answer<R, S> = S extends 204
  ? undefined
  : R extends { content: { 'application/json': infer J } }
    ? J
    : // The route declares no schema for its answer: JSON of a shape the document does not say.
      unknown;
type Responses<O> = O extends { responses: infer R } ? R : never;

/** The JSON a successful answer of the operation carries (`undefined` for 204). */
export type ResponseOf<P extends keyof paths, M extends HttpMethod> = {
  [S in keyof Responses<Operation<P, M>> & SuccessStatus]: Answer<Responses<Operation<P, M>>[S], S>;
}[keyof Responses<Operation<P, M>> & SuccessStatus];

/** The JSON body of the operation. */
export type BodyOf<P extends keyof paths, M extends HttpMethod> = JsonBodyOf<Operation<P, M>>;
/** The query parameters of the operation. */
export type QueryOf<P extends keyof paths, M extends HttpMethod> = Part<Operation<P, M>, 'query'>;

/** Makes the keys `K` of `T` present (the service always sends them). */
export type WithRequired<T, K extends keyof T> = T & { [k in K]-?: Defined<T[k]> };
