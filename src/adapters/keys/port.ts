/**
 * The key-store port: one data-encryption key (DEK) per division, kept wrapped by a
 * key-encryption key (KEK) that never leaves the store. Envelope encryption (src/encryption)
 * asks for a division's current DEK to write and for a given version to read; erasure destroys
 * every version of a division's DEK, after which nothing it encrypted can be read anywhere.
 *
 * Adapters: `directory` (one key file per division, the KEK from a file or the environment).
 * Another (Vault Transit, a cloud KMS) implements these five methods; wrapping and unwrapping
 * happen inside it, so the KEK may stay in the KMS.
 */
export interface KeyStore {
  readonly kind: 'directory';
  /** A fingerprint of the KEK (not the KEK): which key-encryption key wraps the data keys. */
  readonly kekId: string;
  /** The division's current data key, created (version 1) when it has none. KeyDestroyedError once erased. */
  current(divisionId: string): Promise<DataKey>;
  /** A given version of the division's data key. KeyDestroyedError once erased, KeyMissingError when unknown. */
  get(divisionId: string, version: number): Promise<DataKey>;
  /**
   * Destroys every version of the division's data key, leaving a tombstone (when, which versions)
   * so that later reads report the division as erased rather than the key as lost. Idempotent.
   */
  destroy(divisionId: string): Promise<DestroyedKey>;
  /** Every division the store knows, its key versions and whether they were destroyed. */
  list(): Promise<KeyInfo[]>;
  /** Start-up check: every key file is readable and unwraps with this KEK; throws KeyStoreError otherwise. */
  check(): Promise<void>;
}

export interface DataKey {
  divisionId: string;
  version: number;
  /** 32 bytes (AES-256). Never logged, never written unwrapped. */
  key: Buffer;
}

export interface KeyInfo {
  divisionId: string;
  versions: number[];
  createdAt: string;
  destroyedAt?: string;
}

export interface DestroyedKey {
  divisionId: string;
  versions: number[];
  destroyedAt: string;
  /** false when the key had already been destroyed (or never existed). */
  destroyed: boolean;
}

export type KeyStoreErrorCode = 'key_destroyed' | 'key_missing' | 'kek_mismatch' | 'key_store_invalid';

export class KeyStoreError extends Error {
  constructor(
    readonly code: KeyStoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeyStoreError';
  }
}

/** The division was erased: its data key was destroyed and what it encrypted is unreadable. */
export class KeyDestroyedError extends KeyStoreError {
  constructor(
    readonly divisionId: string,
    readonly destroyedAt: string,
  ) {
    super('key_destroyed', `the data key of division ${divisionId} was destroyed at ${destroyedAt} (erased)`);
    this.name = 'KeyDestroyedError';
  }
}

export class KeyMissingError extends KeyStoreError {
  constructor(
    readonly divisionId: string,
    version?: number,
  ) {
    super(
      'key_missing',
      `the key store has no data key${version === undefined ? '' : ` version ${version}`} for division ${divisionId}`,
    );
    this.name = 'KeyMissingError';
  }
}
