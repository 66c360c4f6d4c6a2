import { readFile } from 'node:fs/promises';
import type { JWK } from 'jose';
import { createKeyStore } from '../adapters/keys/index.js';
import { archiveDecryptor } from '../audit/archive/verify.js';
import { describeBroken } from '../audit/offline-checks.js';
import { verifyBundle } from '../audit/verify.js';
import { loadConfig } from '../config.js';
import { createEncryption } from '../encryption/encryption.js';
import { detectAuditFile, runArchiveVerify } from './audit-archive.js';

/** A trusted key file: one public JWK, or a JWK set (`{"keys": [...]}`). */
async function readTrustedKeys(file: string): Promise<JWK[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a JSON file (${(err as Error).message})`);
  }
  const keys = (parsed as { keys?: unknown }).keys ?? [parsed];
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'object' || k === null)) {
    throw new Error(`${file}: expected a public JWK or a JWK set`);
  }
  if (keys.some((k) => 'd' in (k as JWK)))
    throw new Error(`${file}: holds a private key; pass the public key`);
  return keys as JWK[];
}

/**
 * `memory-layer audit verify BUNDLE [--key trusted.jwk.json]`: checks a proof bundle offline, prints
 * each check, and throws naming the first broken link when one fails.
 */
export async function runAuditVerify(
  file: string,
  opts: { key?: string; manifest?: string; previous?: string },
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<void> {
  const kind = detectAuditFile(await readFile(file));
  if (kind === 'archive' || kind === 'archive-manifest') {
    const trustedKeys = opts.key ? await readTrustedKeys(opts.key) : undefined;
    // An encrypted archive opens with the installation's keys, when KEY_DIR and KEK_FILE are set.
    const config = loadConfig();
    const keys = await createKeyStore(config);
    const decrypt = keys ? archiveDecryptor(createEncryption(keys)) : undefined;
    return runArchiveVerify(
      file,
      { manifest: opts.manifest, previous: opts.previous, trustedKeys, decrypt },
      out,
    );
  }
  let bundle: unknown;
  try {
    bundle = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a JSON file (${(err as Error).message})`);
  }
  const trustedKeys = opts.key ? await readTrustedKeys(opts.key) : undefined;
  const result = await verifyBundle(bundle, { trustedKeys });
  for (const line of result.checks) out(line);
  if (!result.ok && result.firstBroken) {
    throw new Error(`verification failed: ${describeBroken(result.firstBroken)}`);
  }
  out(`${file}: verified`);
}
