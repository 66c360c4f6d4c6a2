import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';

/** The console's files as the API serves them, and the audit filter its memory view reads. */
describe.each(backends)('console over HTTP on %s', (backend) => {
  let ta: TestApp;
  beforeAll(async () => {
    ta = await startTestApp(backend, { worker: false });
  });
  afterAll(async () => {
    await ta?.close();
  });

  it('serves the page with a Content-Security-Policy, only its own files, without credentials', async () => {
    const page = await ta.http.inject({ method: 'GET', url: '/console/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    // Scripts only by src: an inline one would be refused by the policy anyway.
    expect(page.body.match(/<script[^>]*>/g)).toEqual(['<script type="module" src="js/main.js">']);

    const js = await ta.http.inject({ method: 'GET', url: '/console/js/verify.js' });
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['content-security-policy']).toBe(csp);
    const again = await ta.http.inject({
      method: 'GET',
      url: '/console/js/verify.js',
      headers: { 'if-none-match': String(js.headers.etag) },
    });
    expect(again.statusCode).toBe(304);

    const bare = await ta.http.inject({ method: 'GET', url: '/console' });
    expect(bare.statusCode).toBe(302);
    expect(bare.headers.location).toBe('/console/');
    for (const url of ['/console/nope.js', '/console/%2e%2e/package.json', '/console/..%2f..%2fconfig.ts']) {
      expectProblem(await ta.http.inject({ method: 'GET', url }), 404, 'not_found');
    }
    // The console is no API route: /openapi.json does not list it.
    const doc = (await ta.http.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: object }>();
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/console'))).toEqual([]);
  });

  it("lists one memory's audit events with resourceType and resourceId", async () => {
    const ids: string[] = [];
    for (const text of ['First memory of the filter test', 'Second memory of the filter test']) {
      const res = await ta.http.inject({ method: 'POST', url: '/v1/memories', payload: { text } });
      expect(res.statusCode).toBe(201);
      ids.push(res.json<{ id: string }>().id);
    }
    const patched = await ta.http.inject({
      method: 'PATCH',
      url: `/v1/memories/${ids[0]}`,
      payload: { tags: ['changed'] },
    });
    expect(patched.statusCode, patched.body).toBe(200);

    const res = await ta.http.inject({
      method: 'GET',
      url: `/v1/audit?resourceType=memory&resourceId=${ids[0]}`,
    });
    expect(res.statusCode, res.body).toBe(200);
    const events = res.json<{ events: { resourceId: string; action: string; seq: number }[] }>().events;
    expect(events.map((e) => e.action).filter((a) => a.startsWith('memory.'))).toEqual([
      'memory.create',
      'memory.update',
    ]);
    expect(events.every((e) => e.resourceId === ids[0])).toBe(true);
    // Paging continues after a seq, within the filter.
    const after = await ta.http.inject({
      method: 'GET',
      url: `/v1/audit?resourceType=memory&resourceId=${ids[0]}&afterSeq=${events[0].seq}`,
    });
    expect(after.json<{ events: { seq: number }[] }>().events.map((e) => e.seq)).toEqual(
      events.slice(1).map((e) => e.seq),
    );

    expectProblem(
      await ta.http.inject({ method: 'GET', url: `/v1/audit?resourceId=${ids[0]}` }),
      400,
      'validation_failed',
      'resourceType',
    );
    expectProblem(
      await ta.http.inject({ method: 'GET', url: '/v1/audit?resourceType=memory' }),
      400,
      'validation_failed',
      'resourceId',
    );
    expectProblem(
      await ta.http.inject({ method: 'GET', url: '/v1/audit?resourceType=memory&resourceId=' }),
      400,
      'validation_failed',
      'resourceId',
    );
  });
});
