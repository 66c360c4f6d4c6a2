import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { loadConfig } from '../../src/config.js';
import { systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { localEmbedder } from '../helpers/app.js';
import { cliDatabase, runCli } from '../helpers/cli.js';
import { backends, type TestDatabase } from '../helpers/db.js';

/** Rotating the audit signing key with the CLI, as the key-compromise runbook does. */
describe.each(backends)('audit signing key rotation on %s', (backend) => {
  let dir: string;
  let t: TestDatabase | undefined;
  let env: Record<string, string>;

  const cli = (...args: string[]) => runCli(env, args, 60_000);
  /** A proof bundle of `default`, exported by the application with the configured key. */
  const exportBundle = async () => {
    const app = await createApp(loadConfig(env), {
      worker: false,
      logger: createLogger('silent'),
      embedder: await localEmbedder(),
    });
    app.start();
    try {
      return (await app.audit.exportBundle('default', { includePii: true })).bundle;
    } finally {
      await app.close();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ml-keys-'));
    env = { DATA_DIR: dir, LOG_LEVEL: 'error' };
    const database = await cliDatabase(backend);
    t = database.t;
    env = { ...env, ...database.env };
    // An installation whose audit trail has events, signed with the key generated at first start.
    const app = await createApp(loadConfig(env), {
      worker: false,
      logger: createLogger('silent'),
      embedder: await localEmbedder(),
    });
    app.start();
    await app.memories.create(systemAccess('test'), 'default', { text: 'The vault code changed on Monday' });
    await app.audit.signChangedHeads();
    await app.close();
  });
  afterAll(async () => {
    await t?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a new key without touching the old one, re-signs the heads with it, and bundles verify against it only', {
    timeout: 180_000,
  }, async () => {
    const before = await cli('keys', 'show');
    expect(before.code, before.stderr).toBe(0);
    const oldKid = before.stdout.match(/^key id \(kid\): (\S+)$/m)?.[1];
    expect(oldKid).toBeDefined();
    const oldKeyFile = join(dir, 'keys', 'audit-signing-key.pem');
    const oldPem = readFileSync(oldKeyFile, 'utf8');
    const oldJwk = await cli('keys', 'show', '--jwk');
    writeFileSync(join(dir, 'old.jwk'), oldJwk.stdout);

    const newKeyFile = join(dir, 'rotated', 'audit-signing-key-2.pem');
    const rotated = await cli('keys', 'rotate', '--out', newKeyFile);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newKid = rotated.stdout.match(/^key id \(kid\): (\S+)$/m)?.[1];
    expect(newKid).toBeDefined();
    expect(newKid).not.toBe(oldKid);
    expect(rotated.stdout).toContain(`replaces key ${oldKid}`);
    expect(statSync(newKeyFile).mode & 0o777).toBe(0o600);
    const publicJwk = JSON.parse(
      readFileSync(join(dir, 'rotated', 'audit-signing-key-2.public.jwk'), 'utf8'),
    );
    expect(publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: newKid });
    expect(publicJwk).not.toHaveProperty('d');
    // The old key is untouched, and nothing is ever overwritten.
    expect(readFileSync(oldKeyFile, 'utf8')).toBe(oldPem);
    const again = await cli('keys', 'rotate', '--out', newKeyFile);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('never overwrites');
    // Until the setting changes, the processes keep the old key.
    expect((await cli('keys', 'show')).stdout).toContain(oldKid);

    env.AUDIT_SIGNING_KEY_FILE = newKeyFile;
    expect((await cli('keys', 'show')).stdout).toContain(`key id (kid): ${newKid}`);
    const signed = await cli('audit', 'sign');
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toMatch(/^default: head seq \d+ signed at /m);
    expect(signed.stdout).toContain(`1 heads newly signed; all 1 division heads are signed by key ${newKid}`);
    const twice = await cli('audit', 'sign');
    expect(twice.stdout).toContain('0 heads newly signed');

    const bundle = await exportBundle();
    expect(bundle.signedHead.keyId).toBe(newKid);
    // The switch of keys is in the chain the new key signs, with the keys that signed before.
    const keyUses = bundle.auditEvents.filter((e) => e.action === 'audit.key.use');
    expect(keyUses).toHaveLength(1);
    expect(keyUses[0]).toMatchObject({
      resourceId: newKid,
      detail: { keyId: newKid, previousKeyIds: [oldKid] },
    });
    expect(signed.stdout).toContain(`recorded key ${newKid} in the audit trail of 1 division(s)`);
    const bundleFile = join(dir, 'bundle.json');
    writeFileSync(bundleFile, JSON.stringify(bundle));
    const pinnedNew = await cli(
      'audit',
      'verify',
      bundleFile,
      '--key',
      join(dir, 'rotated', 'audit-signing-key-2.public.jwk'),
    );
    expect(pinnedNew.code, pinnedNew.stderr).toBe(0);
    expect(pinnedNew.stdout).toContain('verified');
    const pinnedOld = await cli('audit', 'verify', bundleFile, '--key', join(dir, 'old.jwk'));
    expect(pinnedOld.code).not.toBe(0);
    expect((await verifyBundle(bundle, { trustedKeys: [publicJwk] })).ok).toBe(true);
  });

  it('refuses to show a key that does not exist rather than generate one', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ml-keys-empty-'));
    try {
      const res = await cli('keys', 'show');
      expect(res.code).toBe(0);
      const saved = env;
      env = { ...env, DATA_DIR: empty, AUDIT_SIGNING_KEY_FILE: '' };
      const none = await cli('keys', 'show');
      env = saved;
      expect(none.code).not.toBe(0);
      expect(none.stderr).toContain('no audit signing key');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
