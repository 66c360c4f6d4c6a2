import { readFileSync } from 'node:fs';
import type { Config } from '../../config.js';
import { createDirectoryKeyStore, parseKek } from './directory.js';
import { type KeyStore, KeyStoreError } from './port.js';

/**
 * The configured key store, checked: undefined when encryption is off (no KEY_DIR). A KEK that is
 * missing, malformed or not the one that wrapped the keys in KEY_DIR stops the start with a
 * KeyStoreError naming the variable; nothing is written before the check passes.
 */
export async function createKeyStore(
  config: Pick<Config, 'KEY_DIR' | 'KEK_FILE' | 'KEK_PREVIOUS_FILE' | 'env'>,
): Promise<KeyStore | undefined> {
  if (!config.KEY_DIR) return undefined;
  let kek: Buffer;
  if (config.KEK_FILE) {
    kek = readKekFile(config.KEK_FILE, 'KEK_FILE');
  } else if (config.env.KEK) {
    kek = parseKek(config.env.KEK, 'KEK');
  } else {
    throw new KeyStoreError('key_store_invalid', 'KEY_DIR needs a key-encryption key: set KEK_FILE (or KEK)');
  }
  const previousKek = config.KEK_PREVIOUS_FILE
    ? readKekFile(config.KEK_PREVIOUS_FILE, 'KEK_PREVIOUS_FILE')
    : undefined;
  const store = createDirectoryKeyStore({ dir: config.KEY_DIR, kek, previousKek });
  try {
    await store.check();
  } catch (err) {
    if (err instanceof KeyStoreError) {
      throw new KeyStoreError(err.code, `KEY_DIR ${config.KEY_DIR}: ${err.message}`);
    }
    throw err;
  }
  return store;
}

/** A KEK from a file, or a KeyStoreError naming the variable that points at it. */
export function readKekFile(file: string, variable: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new KeyStoreError(
      'key_store_invalid',
      `${variable}: cannot read the key-encryption key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  return parseKek(raw, variable);
}
