import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance: string;
  requestId: string;
  errors?: { field: string; in?: string; message: string }[];
}

/**
 * Asserts an RFC 9457 answer: the status, problem+json, the stable code (and its type URI), a
 * title and request id, and — when given — the field named first. Returns the problem.
 */
export function expectProblem(
  res: LightMyRequestResponse,
  status: number,
  code: string,
  field?: string,
): Problem {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const p = res.json<Problem>();
  expect(p).toMatchObject({ status, code, type: `urn:memory-layer:problem:${code}` });
  expect(p.title).toEqual(expect.any(String));
  expect(p.requestId).toEqual(expect.any(String));
  if (field !== undefined) expect(p.errors?.[0]?.field).toBe(field);
  return p;
}
