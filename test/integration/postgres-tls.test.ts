import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/adapters/db/index.js';
import type { Database } from '../../src/adapters/db/port.js';
import { ConfigError } from '../../src/config.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { postgresBinaries, startTlsPostgres, type TlsPostgres } from '../helpers/postgres-tls.js';

// A server of its own (TLS only, its certificate named `localhost` and nothing else), whatever
// DATABASE_URL says: the shared test server does not speak TLS.
const bin = postgresBinaries();
if (!bin)
  console.warn(
    'postgres-tls: skipped, no initdb/pg_ctl found (install the PostgreSQL server, or set PG_BIN to their directory)',
  );

/** A server certificate for DNS:localhost only (no IP), signed by the test CA. */
function localhostOnlyCertificate(pki: TestPki) {
  const name = 'pg-server';
  writeFileSync(
    join(pki.dir, `${name}.ext`),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n',
  );
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: 'pipe' });
  openssl(
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      '/CN=localhost',
    ]),
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '0x7067',
    ].concat(['-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`]),
  );
  return { certFile: join(pki.dir, `${name}.crt`), keyFile: join(pki.dir, `${name}.key`) };
}

describe.skipIf(!bin)('TLS to PostgreSQL (a TLS-only server of its own)', () => {
  let pki: TestPki;
  let server: TlsPostgres;
  const opened: Database[] = [];

  const open = async (host: string, tls: Parameters<typeof openDatabase>[0]['tls'], query = '') => {
    const db = await openDatabase({
      databaseUrl: `postgres://postgres@${host}:${server.port}/postgres${query}`,
      tls,
    });
    opened.push(db);
    return db;
  };
  const sslInUse = async (db: Database) =>
    (
      await db.query<{ ssl: boolean; version: string }>(
        'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      )
    ).rows[0];

  beforeAll(async () => {
    pki = createTestPki();
    server = await startTlsPostgres(bin as string, localhostOnlyCertificate(pki));
  }, 120_000);

  afterAll(async () => {
    for (const db of opened) await db.close().catch(() => undefined);
    server?.stop();
    pki?.cleanup();
  });

  it('verify-full with the right CA connects, and the server reports the session encrypted', async () => {
    const db = await open('localhost', {
      DATABASE_SSLMODE: 'verify-full',
      DATABASE_CA_FILE: pki.ca.certFile,
    });
    const row = await sslInUse(db);
    expect(row?.ssl).toBe(true);
    expect(row?.version).toMatch(/^TLSv1\.[23]$/);
  });

  it('reads sslmode and sslrootcert from DATABASE_URL with the same meaning', async () => {
    const db = await open(
      'localhost',
      {},
      `?sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.ca.certFile)}`,
    );
    expect((await sslInUse(db))?.ssl).toBe(true);
  });

  it('verify-full refuses a certificate of another CA, saying so', async () => {
    await expect(
      open('localhost', { DATABASE_SSLMODE: 'verify-full', DATABASE_CA_FILE: pki.otherCa.certFile }),
    ).rejects.toThrow(/sslmode=verify-full.*(self[- ]signed|unable to verify|unable to get)/i);
  });

  it('verify-full refuses a certificate for another host name; verify-ca accepts it (chain only)', async () => {
    await expect(
      open('127.0.0.1', { DATABASE_SSLMODE: 'verify-full', DATABASE_CA_FILE: pki.ca.certFile }),
    ).rejects.toThrow(/sslmode=verify-full.*(IP: 127\.0\.0\.1 is not in the cert's list|does not match)/i);
    const db = await open('127.0.0.1', { DATABASE_SSLMODE: 'verify-ca', DATABASE_CA_FILE: pki.ca.certFile });
    expect((await sslInUse(db))?.ssl).toBe(true);
  });

  it('require encrypts without checking the certificate', async () => {
    const db = await open('127.0.0.1', { DATABASE_SSLMODE: 'require' });
    expect((await sslInUse(db))?.ssl).toBe(true);
  });

  it('disable against a TLS-only server is refused by the server', async () => {
    await expect(open('localhost', { DATABASE_SSLMODE: 'disable' })).rejects.toThrow(
      /no pg_hba\.conf entry.*no encryption/,
    );
  });

  it('a CA file that cannot be read stops the start, naming the setting, before connecting', async () => {
    const err = await open('localhost', {
      DATABASE_SSLMODE: 'verify-full',
      DATABASE_CA_FILE: join(pki.dir, 'missing.crt'),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/DATABASE_CA_FILE: cannot read .*missing\.crt \(ENOENT\)/);
  });
});
