import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { CHROMIUM, hasChromium, launchChromium, listen } from '../helpers/browser.js';
import { backends } from '../helpers/db.js';
import { mintToken, type SigningKey, signingKey, TEST_AUDIENCE, TEST_ISSUER } from '../helpers/pki.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against a real
 * server listening on a loopback port: every click goes through the REST API.
 */
const chromiumPresent = hasChromium();
if (!chromiumPresent) {
  console.warn(`console end-to-end tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}
const title = chromiumPresent
  ? 'web console on %s'
  : `web console on %s — skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`;

interface DeadJob {
  id: number;
  memoryId: string | null;
}

describe.skipIf(!chromiumPresent).each(backends)(title, (backend) => {
  let ta: TestApp;
  let base: string;
  let browser: Browser;
  let page: Page;
  /** While true the embedder fails every call: the way a job reaches the dead-letter queue. */
  let failing = false;
  /** Errors the page's scripts threw or logged (a refused CSP or Trusted Types sink shows here). */
  const pageErrors: string[] = [];
  beforeEach(() => {
    pageErrors.length = 0;
  });

  beforeAll(async () => {
    const local = await localEmbedder();
    const switchable: Embedder = {
      model: local.model,
      async embed(texts, signal) {
        if (failing) throw new Error('embedder unavailable (test switch)');
        return local.embed(texts, signal);
      },
      close: async () => {},
    };
    ta = await startTestApp(backend, {
      embedder: switchable,
      env: { JOB_MAX_ATTEMPTS: '1', JOB_BACKOFF_MS: '0' },
    });
    base = await listen(ta);
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await ta?.close();
  });

  it('writes a memory, finds it in the playground with both scores, and shows it with its trail', async () => {
    const marker = `pottery-${backend}`;
    // Markup in memory text must show as text, never become elements.
    const text = `Caroline signed up for the ${marker} class <img src=x id=injected> — write to caroline@example.com`;
    await page.goto(`${base}/console/#/memories`);
    await page.getByRole('heading', { name: 'Memories of default' }).waitFor();
    expect(await page.locator('#caller').textContent()).toContain('dev mode');

    await page.getByLabel('Text', { exact: true }).fill(text);
    await page.getByLabel('Tags (comma-separated)').fill('hobby, caroline');
    await page.getByRole('button', { name: 'Write memory' }).click();
    await page.getByText('Memory written').waitFor();
    const row = page.locator('tbody tr', { hasText: marker });
    await row.waitFor();
    expect(await page.locator('#injected').count()).toBe(0);
    expect(await row.locator('td.text').first().textContent()).toContain('<img src=x id=injected>');
    expect(await row.textContent()).toContain('PII: email');

    // A cold model may take longer than the write's wait: search by meaning once it is indexed.
    await waitFor(
      async () => {
        const res = await ta.http.inject({ method: 'GET', url: '/v1/memories?status=pending' });
        return res.json<{ items: unknown[] }>().items.length === 0;
      },
      { what: 'the written memory to be indexed', timeoutMs: 30_000 },
    );
    await page.getByRole('link', { name: 'Search' }).click();
    await page.getByLabel('Query').fill(`${marker} class`);
    await page.getByLabel('Mode').selectOption('hybrid');
    await page.getByLabel('k', { exact: true }).fill('5');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const hit = page.locator('tbody tr', { hasText: marker });
    await hit.waitFor();
    const cells = await hit.locator('td').allTextContents();
    // #, score, keyword, vector: the keyword and the vector retriever both found it.
    expect(cells[0]).toBe('1');
    expect(Number(cells[2])).toBeGreaterThan(0);
    expect(Number(cells[3])).toBeGreaterThan(0);
    expect(await page.locator('#injected').count()).toBe(0);

    await hit.getByRole('link').click();
    await page.locator('#memory-text').waitFor();
    expect(await page.locator('#memory-text').textContent()).toBe(text);
    const fields = await page.locator('dl.fields').textContent();
    expect(fields).toContain('email');
    expect(fields).toContain('not held');
    await page.getByRole('cell', { name: 'memory.create' }).waitFor();

    // A hold placed from the page is the memory's state, and an event of its trail.
    await page.getByLabel('Hold reason').fill('customer dispute 42');
    await page.getByRole('button', { name: 'Place legal hold' }).click();
    await page.getByRole('button', { name: 'Release hold' }).waitFor();
    expect(await page.locator('dl.fields').textContent()).toContain('held');
    await page.getByRole('cell', { name: 'legal-hold.set' }).waitFor();
    expect(pageErrors).toEqual([]);
  });

  it('verifies the audit chain and its signed head, and names the first broken link', async () => {
    await page.goto(`${base}/console/#/audit`);
    await page.getByRole('heading', { name: 'Audit trail of default' }).waitFor();
    await page.getByRole('button', { name: 'Verify chain' }).click();
    const result = page.locator('#verify-result');
    await result.getByText(/Chain intact|Chain broken/).waitFor();
    const text = (await result.textContent()) ?? '';
    expect(text).toMatch(/Chain intact: \d+ events/);
    expect(text).toContain('Head signature valid');

    // An event edited behind the service's back: the browser's check finds it.
    const db = ta.app.db;
    const { rows } = await db.query<{ actor: string }>(
      "SELECT actor FROM audit_events WHERE division_id = 'default' AND seq = 2",
    );
    await db.query("UPDATE audit_events SET actor = 'mallory' WHERE division_id = 'default' AND seq = 2");
    try {
      await page.getByRole('button', { name: 'Verify chain' }).click();
      await result.getByText('Chain broken at seq 2: hash does not match its content').waitFor();
    } finally {
      await db.query("UPDATE audit_events SET actor = $1 WHERE division_id = 'default' AND seq = 2", [
        rows[0].actor,
      ]);
    }
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await result.getByText(/Chain intact/).waitFor();
  });

  it('retries a dead letter, and the memory gets indexed', async () => {
    failing = true;
    const created = await ta.http.inject({
      method: 'POST',
      url: '/v1/memories',
      payload: { text: `This memory meets a failing embedder (${backend})` },
    });
    expect(created.statusCode, created.body).toBe(201);
    const memoryId = created.json<{ id: string }>().id;
    let lastJobs: unknown[] = [];
    const dead = await waitFor(
      async () => {
        lastJobs = (await ta.app.db.query('SELECT id, status, attempts, last_error, run_at FROM jobs')).rows;
        return (await ta.http.inject({ method: 'GET', url: '/v1/jobs/dead' }))
          .json<{ items: DeadJob[] }>()
          .items.find((j) => j.memoryId === memoryId);
      },
      { what: () => `the job to be dead-lettered; jobs: ${JSON.stringify(lastJobs)}` },
    );
    failing = false;

    await page.goto(`${base}/console/#/dead-letters`);
    const row = page.locator('tbody tr', { hasText: 'embedder unavailable' });
    await row.waitFor();
    await page.getByRole('button', { name: `Retry job ${dead.id}` }).click();
    await page.getByText(`Job ${dead.id} queued again with fresh attempts.`).waitFor();
    await page.getByText('No dead letters.').waitFor();
    await waitFor(
      async () =>
        (await ta.http.inject({ method: 'GET', url: `/v1/memories/${memoryId}` })).json<{ status: string }>()
          .status === 'indexed',
      { what: 'the retried memory to be indexed' },
    );
    // The retry is in the trail.
    const audit = await ta.http.inject({ method: 'GET', url: '/v1/audit?limit=1000' });
    expect(audit.json<{ events: { action: string }[] }>().events.map((e) => e.action)).toContain('job.retry');
    expect(pageErrors).toEqual([]);
  });

  it('shows a problem with its code and field when the API refuses input', async () => {
    await page.goto(`${base}/console/#/search`);
    await page.getByLabel('Query').fill('anything');
    await page.getByLabel('k', { exact: true }).fill('500');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const problem = page.getByRole('alert');
    await problem.waitFor();
    expect(await problem.textContent()).toContain('validation_failed');
    expect(await problem.textContent()).toContain('k');
  });
});

describe.skipIf(!chromiumPresent)('web console with enforced authentication', () => {
  let ta: TestApp;
  let base: string;
  let browser: Browser;
  let kernel: SigningKey;
  let dir: string;

  beforeAll(async () => {
    kernel = await signingKey('EdDSA');
    dir = mkdtempSync(join(tmpdir(), 'ml-console-'));
    const keyFile = join(dir, 'kernel.pem');
    writeFileSync(keyFile, kernel.publicPem);
    ta = await startTestApp('pglite', {
      env: { JWT_PUBLIC_KEYS_FILE: keyFile, JWT_ISSUER: TEST_ISSUER, JWT_AUDIENCE: TEST_AUDIENCE },
    });
    base = await listen(ta);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await ta?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('asks for a token, sends it as a bearer, and keeps it in the tab only', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const sent: string[] = [];
    page.on('request', (req) => {
      const auth = req.headers().authorization;
      if (auth) sent.push(`${new URL(req.url()).pathname} ${auth.split(' ')[0]}`);
    });
    await page.goto(`${base}/console/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();

    await page.getByLabel('Bearer token').fill('not-a-token');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByText('The token was refused').waitFor();

    const token = await mintToken(kernel, {
      claims: {
        division: 'default',
        agent: undefined,
        sub: 'console-user',
        scope: 'memory:read memory:write',
      },
    });
    await page.getByLabel('Bearer token').fill(token);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('heading', { name: 'Memories of default' }).waitFor();
    expect(sent).toContain('/v1/memories Bearer');
    expect(await page.locator('#token').inputValue()).toBe('');

    const storage = await page.evaluate(() => ({
      session: Object.values(sessionStorage),
      local: Object.keys(localStorage).length,
      cookie: document.cookie,
    }));
    expect(storage.session).toContain(token);
    expect(storage.local).toBe(0);
    expect(storage.cookie).toBe('');
    expect(await context.cookies()).toEqual([]);

    // A new tab of the same browser starts without it.
    const other = await context.newPage();
    await other.goto(`${base}/console/`);
    await other.getByRole('heading', { name: 'Sign in' }).waitFor();

    await page.getByRole('button', { name: 'Forget token' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await context.close();
  });
});
