import { existsSync } from 'node:fs';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exportPKCS8, generateKeyPair } from 'jose';
import type { Database } from '../adapters/db/port.js';
import { appendAudit } from '../audit/audit-log.js';
import { createAuditSigner, GENERATED_KEY_FILE } from '../audit/signer.js';
import type { Config } from '../config.js';
import { withParts } from './with-parts.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

/** Where the processes of this installation read their audit signing key from. */
const configuredKeyFile = (config: Config) =>
  config.AUDIT_SIGNING_KEY_FILE ?? join(config.DATA_DIR, GENERATED_KEY_FILE);

/** `KEY.pem` → `KEY.public.jwk`: the public half, next to the private one, for verifiers to pin. */
export const publicKeyFileOf = (keyFile: string) => `${keyFile.replace(/\.pem$/, '')}.public.jwk`;

/**
 * `memory-layer keys rotate [--out FILE]`: writes a new Ed25519 audit signing key (PKCS#8 PEM,
 * mode 0600) and its public JWK next to it, and prints the new key id. It never overwrites a
 * file (the old key stays where it is, so old signatures can still be examined) and changes no
 * setting: the operator points AUDIT_SIGNING_KEY_FILE at the new file (or puts it in the secret
 * store), restarts the processes, then runs `memory-layer audit sign`.
 */
export async function runKeysRotate(opts: { out?: string }) {
  await withParts(async (parts) => {
    const { config } = parts;
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const file = opts.out ?? join(config.DATA_DIR, 'keys', `audit-signing-key-${stamp}.pem`);
    const publicFile = publicKeyFileOf(file);
    for (const f of [file, publicFile]) {
      if (existsSync(f)) throw new Error(`${f} exists; keys rotate never overwrites a key (choose --out)`);
    }
    const current = configuredKeyFile(config);
    // The configured key, as the processes load it (never generated here).
    const previous = existsSync(current) ? await parts.signer() : undefined;

    const { privateKey } = await generateKeyPair('EdDSA', { extractable: true });
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    // `wx`: fails rather than replace a file that appeared meanwhile.
    await writeFile(file, await exportPKCS8(privateKey), { mode: 0o600, flag: 'wx' });
    // Read back through the loader the processes use: what it accepts is what they will accept.
    const signer = await createAuditSigner({ keyFile: file, dataDir: config.DATA_DIR });
    try {
      await writeFile(publicFile, `${JSON.stringify({ ...signer.publicJwk, kid: signer.keyId })}\n`, {
        mode: 0o644,
        flag: 'wx',
      });
    } catch (err) {
      await unlink(file);
      throw err;
    }

    out(`new audit signing key: ${file}`);
    out(`key id (kid): ${signer.keyId}`);
    out(`public key (pin it: audit verify --key): ${publicFile}`);
    out(JSON.stringify(signer.publicJwk));
    out(
      previous
        ? `replaces key ${previous.keyId} (${current}), still in use until AUDIT_SIGNING_KEY_FILE names the new file`
        : `no key configured yet at ${current}`,
    );
    out(
      'next: set AUDIT_SIGNING_KEY_FILE to the new file, restart every process, run `memory-layer audit sign`',
    );
  });
}

/**
 * `memory-layer keys show [--jwk]`: the audit signing key the processes of this installation use
 * (AUDIT_SIGNING_KEY_FILE, or the one generated under DATA_DIR): its id and public JWK. With
 * `--jwk` only the JWK, to hand to verifiers (`keys show --jwk > trusted.jwk`).
 */
export async function runKeysShow(opts: { jwk?: boolean }) {
  await withParts(async (parts) => {
    const file = configuredKeyFile(parts.config);
    // Never generate one here: showing a key that no process has used would mislead.
    if (!existsSync(file))
      throw new Error(`no audit signing key at ${file} (a server generates it on first start)`);
    const signer = await parts.signer();
    const jwk = JSON.stringify({ ...signer.publicJwk, kid: signer.keyId });
    if (opts.jwk) {
      out(jwk);
      return;
    }
    out(`audit signing key: ${file}`);
    out(`key id (kid): ${signer.keyId}`);
    out(`public key: ${jwk}`);
  });
}

/**
 * `memory-layer audit sign`: signs every division's current audit head with the configured key
 * now, where it has not signed it yet. After a rotation this re-signs all heads with the new key
 * at once (the processes would within AUDIT_SIGN_INTERVAL_MS of a change, but an idle division's
 * head would wait for its next event). Needs only the database and the key.
 */
/**
 * A key operation is part of the trail it signs: in every division this key has not signed yet,
 * an `audit.key.use` event (the new key id and the ids of the keys that signed the division
 * before, kept readable) is appended, so the head the new key then signs covers the switch.
 * Returns how many divisions got one.
 */
async function recordKeyUse(db: Database, keyId: string): Promise<number> {
  const res = await db.query<{ division_id: string; previous: string[] }>(
    `SELECT h.division_id,
       coalesce((SELECT array_agg(DISTINCT s.key_id ORDER BY s.key_id) FROM audit_signatures s
                 WHERE s.division_id = h.division_id), '{}') AS previous
     FROM audit_heads h
     WHERE h.seq > 0 AND NOT EXISTS (
       SELECT 1 FROM audit_signatures s WHERE s.division_id = h.division_id AND s.key_id = $1)
     ORDER BY h.division_id`,
    [keyId],
  );
  if (res.rows.length === 0) return 0;
  await db.transaction((tx) =>
    appendAudit(
      tx,
      res.rows.map((r) => ({
        divisionId: r.division_id,
        actor: 'system:cli',
        action: 'audit.key.use',
        resourceType: 'key',
        resourceId: keyId,
        change: { keyId, previousKeyIds: r.previous },
        keepChange: true,
      })),
    ),
  );
  return res.rows.length;
}

export async function runAuditSign() {
  await withParts(async (parts) => {
    const signer = await parts.signer();
    const db = await parts.db();
    const used = await recordKeyUse(db, signer.keyId);
    if (used > 0) out(`recorded key ${signer.keyId} in the audit trail of ${used} division(s)`);
    const signed = await (await parts.audit()).signChangedHeads();
    for (const s of signed) out(`${s.divisionId}: head seq ${s.seq} signed at ${s.signedAt}`);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit_heads WHERE seq > 0',
    );
    out(
      `${signed.length} heads newly signed; all ${rows[0].n} division heads are signed by key ${signer.keyId}`,
    );
  });
}
