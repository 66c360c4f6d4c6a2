import type { FastifyRequest } from 'fastify';
import { actorOf } from '../auth/caller.js';
import { type IdempotencyKey, requestHash } from '../memories/idempotency.js';
import { AppError, ErrorCode } from '../platform/errors.js';

const KEY = /^[\x21-\x7e]{1,255}$/;

/** The `Idempotency-Key` header as sent, checked (1 to 255 visible ASCII characters); undefined without one. */
export function idempotencyHeader(req: FastifyRequest): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !KEY.test(raw)) {
    throw new AppError(ErrorCode.validation, 'Idempotency-Key must be 1 to 255 visible ASCII characters', [
      { field: 'Idempotency-Key', message: 'invalid' },
    ]);
  }
  return raw;
}

/** Reads the `Idempotency-Key` header of a write, scoped to the division it writes to. */
export function idempotencyKeyOf(
  req: FastifyRequest,
  divisionId: string,
  /** What identifies the request (default: its body). */
  identity: unknown = req.body,
): IdempotencyKey | undefined {
  const raw = idempotencyHeader(req);
  if (raw === undefined) return undefined;
  // Keys belong to the caller: another caller reusing the same key neither gets this caller's
  // answer nor learns that the key was used.
  return {
    divisionId,
    key: `${actorOf(req.caller)}\n${raw}`,
    requestHash: requestHash(req.method, req.routeOptions.url ?? req.url, identity),
  };
}
