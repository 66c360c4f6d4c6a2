import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';

/** Retries are recognised by what they mean, not by how their JSON happens to be spelled. */
describe.each(backends)('Idempotency-Key on %s', (backend) => {
  let ta: TestApp;
  beforeAll(async () => {
    ta = await startTestApp(backend, { worker: false });
  });
  afterAll(async () => {
    await ta?.close();
  });

  const post = (key: string, payload: string) =>
    ta.http.inject({
      method: 'POST',
      url: '/v1/memories',
      payload,
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
    });

  it('a retry with its keys in another order gets the first answer and creates nothing', async () => {
    const first = await post(
      'retry-1',
      '{"text":"Ana prefers tea","tags":["drinks"],"metadata":{"a":1,"b":2}}',
    );
    expect(first.statusCode, first.body).toBe(201);
    const count = async () =>
      (await ta.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes')).rows[0].n;
    const before = await count();
    const retry = await post(
      'retry-1',
      '{"metadata":{"b":2,"a":1},"tags":["drinks"],"text":"Ana prefers tea"}',
    );
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json().id).toBe(first.json().id);
    expect(await count()).toBe(before);
  });

  it('the same key with a different request is still refused', async () => {
    expect((await post('retry-2', '{"text":"one"}')).statusCode).toBe(201);
    expectProblem(await post('retry-2', '{"text":"two"}'), 422, 'idempotency_key_reused', 'Idempotency-Key');
  });
});
