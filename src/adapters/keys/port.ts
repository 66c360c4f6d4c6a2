/**
 * The key-store port: one data-encryption key (DEK) per division, kept wrapped by a
 * key-encryption key (KEK) that never leaves the store. Envelope encryption (src/encryption)
 * asks for a division's current DEK to write and for a given version to read; erasure destroys
 * every version of a division's DEK, after which nothing it encrypted can be read anywhere.
 *
 * Adapters: `directory` (one key file per division, the KEK from a file or the environment).
 * Another (Vault Transit, a cloud KMS) implements these methods; wrapping and unwrapping
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
  /**
   * Data-key rotation: adds the next version of the division's data key and makes it current
   * (new writes use it); older versions stay readable. KeyDestroyedError once erased.
   */
  rotate(divisionId: string): Promise<DataKey>;
  /**
   * Removes one non-current version of the division's data key (after nothing refers to it any
   * more): what it encrypted becomes unreadable. KeyMissingError when unknown.
   */
  retire(divisionId: string, version: number): Promise<void>;
  /**
   * KEK rotation: re-wraps every live key file still wrapped by the previous KEK with the current
   * one (one file at a time, atomically), then checks that every file unwraps with the current
   * KEK alone. Idempotent: files already wrapped by the current KEK are left as they are; a
   * tombstone (erased division) holds no key and stays as it is. Nothing encrypted is rewritten.
   */
  rewrap(): Promise<RewrapResult>;
}

export interface RewrapResult {
  kekId: string;
  /** Divisions whose key file was re-wrapped now. */
  rewrapped: string[];
  /** Divisions whose key file was already wrapped by the current KEK. */
  alreadyCurrent: string[];
  /** Erased divisions (tombstones, no key to re-wrap). */
  tombstones: string[];
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

export type KeyStoreErrorCode =
  | 'key_destroyed'
  | 'key_missing'
  | 'kek_mismatch'
  | 'key_store_invalid'
  | 'key_version_current';

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
