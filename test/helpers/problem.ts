import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { Reply } from './https-client.js';

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
 * title and request id, `WWW-Authenticate: Bearer` on a 401, and — when given — the field named
 * first. Takes an in-process answer (`inject`) or one read over a real socket (https-client).
 * Returns the problem.
 */
export function expectProblem(
  res: LightMyRequestResponse | Reply,
  status: number,
  code: string,
  field?: string,
): Problem {
  const answer =
    'statusCode' in res
      ? { status: res.statusCode, text: res.body, json: () => res.json<Problem>() }
      : { status: res.status, text: res.text, json: () => res.body as Problem };
  expect(answer.status, answer.text).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const p = answer.json();
  expect(p).toMatchObject({ status, code, type: `urn:memory-layer:problem:${code}` });
  expect(p.title).toEqual(expect.any(String));
  expect(p.requestId).toEqual(expect.any(String));
  if (status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
  if (field !== undefined) expect(p.errors?.[0]?.field).toBe(field);
  return p;
}
