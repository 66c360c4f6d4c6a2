/**
 * Writes packages/client/src/schema.ts from the service's OpenAPI document: by default from the
 * service built in-process (an in-memory database, nothing listening), or from a running one with
 * `--url http://host:port`.
 *
 *   npm run client:types [-- --url http://127.0.0.1:8080]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { schemaTypes } from './schema-types.js';

const target = fileURLToPath(new URL('../src/schema.ts', import.meta.url));

async function servedDocument(url: string): Promise<object> {
  const res = await fetch(new URL('/openapi.json', url));
  if (!res.ok) throw new Error(`GET /openapi.json answered ${res.status}`);
  return (await res.json()) as object;
}

/** The document the service serves, from a service built in this process. */
async function inProcessDocument(): Promise<object> {
  const [{ createApp }, { loadConfig }, { buildHttpServer }, { openPglite }, { migrate }] = await Promise.all(
    [
      import('../../../src/app.js'),
      import('../../../src/config.js'),
      import('../../../src/http/server.js'),
      import('../../../src/adapters/db/pglite.js'),
      import('../../../src/adapters/db/migrate.js'),
    ],
  );
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-openapi-'));
  const database = await openPglite();
  try {
    await migrate(database);
    const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    const app = await createApp(config, { worker: false, database });
    try {
      const http = await buildHttpServer(app);
      const res = await http.inject({ method: 'GET', url: '/openapi.json' });
      await http.close();
      if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}`);
      return res.json() as object;
    } finally {
      await app.close();
    }
  } finally {
    await database.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { url: { type: 'string' } } });
const document = values.url ? await servedDocument(values.url) : await inProcessDocument();
writeFileSync(target, await schemaTypes(document));
console.log(`wrote ${target}`);
