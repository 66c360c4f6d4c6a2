import type { Transform } from 'node:stream';
import { KeyDestroyedError, type KeyStore, KeyStoreError } from '../adapters/keys/port.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import {
  bindingOf,
  DecryptStream,
  decryptBuffer,
  EncryptionError,
  EncryptStream,
  type EnvelopeHeader,
  encryptBuffer,
} from './envelope.js';

/** The key of rows and objects that belong to no division (or to an erased one's remaining trail). */
export const INSTALLATION_KEY = '_installation';

/** What an object is, for its associated data: the same bytes under another name do not decrypt. */
export type ObjectPurpose = 'artifact' | 'snapshot-part' | 'audit-archive';

/**
 * Envelope encryption bound to the key store: each division's objects under its own data key.
 * Off (every method passing bytes through, `enabled` false) when no key store is configured.
 */
export interface Encryption {
  readonly enabled: boolean;
  /** A stream that encrypts for the division and the version of its key it uses; undefined when off. */
  encryptor(
    purpose: ObjectPurpose,
    divisionId: string,
    objectId: string,
  ): Promise<{ stream: Transform; keyVersion: number } | undefined>;
  /** A stream that decrypts an object of the division (its key is named in the header). */
  decryptor(purpose: ObjectPurpose, divisionId: string, objectId: string): DecryptStream;
  seal(
    purpose: ObjectPurpose,
    divisionId: string,
    objectId: string,
    plain: Buffer,
  ): Promise<{ bytes: Buffer; keyVersion: number } | undefined>;
  open(purpose: ObjectPurpose, divisionId: string, objectId: string, bytes: Buffer): Promise<Buffer>;
  /** Whether the division's key was destroyed (erased); false when off or never created. */
  erased(divisionId: string): Promise<boolean>;
}

/** Turns key-store and envelope failures into the service's stable codes. */
export function encryptionProblem(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof KeyDestroyedError) {
    return new AppError(ErrorCode.divisionErased, err.message);
  }
  if (err instanceof KeyStoreError) return new AppError(ErrorCode.keyUnavailable, err.message);
  if (err instanceof EncryptionError) return new AppError(ErrorCode.ciphertextTampered, err.message);
  return err;
}

export function createEncryption(keys: KeyStore | undefined): Encryption {
  const resolver = (divisionId: string) => async (h: EnvelopeHeader) => {
    if (!keys)
      throw new AppError(ErrorCode.keyUnavailable, 'the object is encrypted and no KEY_DIR is configured');
    try {
      return await keys.get(divisionId, h.keyVersion);
    } catch (err) {
      throw encryptionProblem(err);
    }
  };
  const current = async (divisionId: string) => {
    try {
      return await (keys as KeyStore).current(divisionId);
    } catch (err) {
      throw encryptionProblem(err);
    }
  };
  return {
    enabled: keys !== undefined,
    async encryptor(purpose, divisionId, objectId) {
      if (!keys) return undefined;
      const key = await current(divisionId);
      return {
        stream: new EncryptStream(key, bindingOf(purpose, divisionId, objectId)),
        keyVersion: key.version,
      };
    },
    decryptor(purpose, divisionId, objectId) {
      const stream = new DecryptStream(
        resolver(divisionId),
        bindingOf(purpose, divisionId, objectId),
        divisionId,
      );
      return mapErrors(stream);
    },
    async seal(purpose, divisionId, objectId, plain) {
      if (!keys) return undefined;
      const key = await current(divisionId);
      return {
        bytes: await encryptBuffer(key, bindingOf(purpose, divisionId, objectId), plain),
        keyVersion: key.version,
      };
    },
    async open(purpose, divisionId, objectId, bytes) {
      try {
        return await decryptBuffer(
          resolver(divisionId),
          bindingOf(purpose, divisionId, objectId),
          bytes,
          divisionId,
        );
      } catch (err) {
        throw encryptionProblem(err);
      }
    },
    async erased(divisionId) {
      if (!keys) return false;
      try {
        await keys.get(divisionId, 1);
        return false;
      } catch (err) {
        if (err instanceof KeyDestroyedError) return true;
        if (err instanceof KeyStoreError && err.code === 'key_missing') return false;
        throw err;
      }
    },
  };
}

/** Re-emits a stream's errors as AppErrors with stable codes. */
function mapErrors<T extends Transform>(stream: T): T {
  const destroy = stream.destroy.bind(stream);
  stream.destroy = (err?: Error) => {
    destroy(err ? (encryptionProblem(err) as Error) : err);
    return stream;
  };
  return stream;
}
