export {
  type AuditEvent,
  type AuditHead,
  type ChainCheck,
  canonicalJson,
  eventHash,
  verifyChain,
  verifySignedHead,
} from './audit-chain.js';
export * from './client.js';
export { type FieldError, MemoryLayerError, type Problem, WaitTimeoutError } from './errors.js';
export type { components, operations, paths } from './schema.js';
export type { FetchLike, RetryInfo, TokenSource, TransportOptions } from './transport.js';
export type {
  BodyOf,
  CallOptions,
  HttpMethod,
  PathsWith,
  QueryOf,
  RequestInit,
  ResponseOf,
} from './typed.js';
