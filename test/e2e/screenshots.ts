/**
 * Regenerates docs/console/*.png: the console's main views in headless Chromium, against a
 * service on an in-memory database seeded with a small conversation, a dead letter, legal holds
 * and a re-embedding run under way. `npm run console:screenshots`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { startEmbeddingsServer } from '../../src/http/embeddings-server.js';
import { localEmbedder, startTestApp } from '../helpers/app.js';
import { CHROMIUM, hasChromium, launchChromium, listen } from '../helpers/browser.js';
import { waitFor } from '../helpers/wait.js';

const OUT = join(import.meta.dirname, '..', '..', 'docs', 'console');

const TURNS = [
  'Caroline: I went to the LGBTQ support group yesterday',
  'Melanie: how was it?',
  'Caroline: so powerful, I felt accepted. Write to me at caroline@example.com if you want to come along',
  'Melanie: I painted a sunrise over the lake last weekend',
  'Caroline: I am thinking about a career in counselling',
  'Melanie: the kids loved the pottery class',
];

async function main() {
  if (!hasChromium()) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  mkdirSync(OUT, { recursive: true });
  const local = await localEmbedder();
  let failing = false;
  const switchable: Embedder = {
    model: local.model,
    async embed(texts, signal) {
      if (failing) throw new Error('embedder unavailable: connection refused');
      return local.embed(texts, signal);
    },
    close: async () => {},
  };
  // A second model to re-embed with: the built-in one served over the OpenAI-compatible API.
  const remote = await startEmbeddingsServer(local, { host: '127.0.0.1', port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'ml-shots-'));
  const modelsFile = join(dir, 'models.json');
  writeFileSync(
    modelsFile,
    JSON.stringify([{ name: 'use-lite-http', version: '0.2.0', dimensions: 512, url: remote.url }]),
  );
  const ta = await startTestApp('pglite', {
    embedder: switchable,
    env: {
      JOB_MAX_ATTEMPTS: '1',
      JOB_BACKOFF_MS: '0',
      EMBEDDING_MODELS_FILE: modelsFile,
      REEMBED_BATCH_SIZE: '1',
      REEMBED_PAUSE_MS: '1500',
    },
  });
  const browser = await launchChromium();
  try {
    const base = await listen(ta);
    const inject = async (method: string, url: string, payload?: object) => {
      const res = await ta.http.inject({ method: method as 'GET', url, payload });
      if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.body}`);
      return res.json();
    };
    const items = TURNS.map((text, i) => ({
      text,
      sessionId: 'chat-7',
      occurredAt: new Date(Date.UTC(2023, 4, 8, 13, 56 + i)).toISOString(),
      tags: [text.startsWith('Caroline') ? 'caroline' : 'melanie'],
      namespace: 'conversations',
    }));
    const written = (await inject('POST', '/v1/memories/batch?wait=true', { items })).items;
    await inject('POST', '/v1/memories?wait=true', {
      text: 'The team ships on Fridays',
      namespace: 'work',
      kind: 'fact',
      tags: ['process'],
    });
    await inject('PATCH', `/v1/memories/${written[4].id}`, { tags: ['caroline', 'career'] });
    const held = written[2].id as string;
    await inject('PUT', `/v1/memories/${held}/legal-hold`, { hold: true, reason: 'request 2023-114' });
    await inject('POST', '/v1/legal-holds', { reason: 'litigation hold: case 42 (all of the division)' });

    failing = true;
    const doomed = await inject('POST', '/v1/memories', { text: 'Melanie: we should go camping in June' });
    await waitFor(
      async () =>
        (await inject('GET', '/v1/jobs/dead')).items.some(
          (j: { memoryId: string }) => j.memoryId === doomed.id,
        ),
      { what: 'a dead letter', timeoutMs: 30_000 },
    );
    failing = false;

    const page: Page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const shot = async (name: string) => {
      await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
      console.log(`wrote docs/console/${name}.png`);
    };

    await page.goto(`${base}/console/#/memories`);
    await page.locator('tbody tr').first().waitFor();
    await shot('memories');

    await page.goto(`${base}/console/#/memories/${held}`);
    await page.getByRole('cell', { name: 'legal-hold.set' }).waitFor();
    await shot('memory');

    await page.goto(`${base}/console/#/search`);
    await page.getByLabel('Query').fill('How did Caroline feel at the support group?');
    await page.getByLabel('k', { exact: true }).fill('5');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('tbody tr').first().waitFor();
    await shot('search');

    await page.goto(`${base}/console/#/audit`);
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page
      .locator('#verify-result')
      .getByText(/Chain intact|Chain broken/)
      .waitFor();
    await shot('audit');

    await page.goto(`${base}/console/#/dead-letters`);
    await page.locator('tbody tr').first().waitFor();
    await shot('dead-letters');

    await page.goto(`${base}/console/#/reembed`);
    await page.getByLabel('Model (name@version)').fill('use-lite-http@0.2.0');
    await page.getByRole('button', { name: 'Re-embed division' }).click();
    await waitFor(
      async () => {
        const runs = (await inject('GET', '/v1/reembed')).items as { done: number; total: number }[];
        return runs[0] && runs[0].done >= 2 && runs[0].done < runs[0].total;
      },
      { what: 'the re-embedding run to be under way', timeoutMs: 60_000 },
    );
    await page.getByRole('link', { name: 'Re-embedding' }).click();
    await page.reload();
    await page.locator('progress').first().waitFor();
    await shot('reembed');

    await page.goto(`${base}/console/#/legal-holds`);
    await page.locator('tbody tr').first().waitFor();
    await shot('legal-holds');
  } finally {
    await browser.close();
    await ta.close();
    await remote.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
