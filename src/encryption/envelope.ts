import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { DataKey } from '../adapters/keys/port.js';

/**
 * The envelope format (version 1), AES-256-GCM in segments so that objects stream both ways and
 * no plaintext is released before the segment holding it is authenticated:
 *
 *   header  = "MLENC" ‖ format (1 byte = 1) ‖ key version (uint32 BE) ‖ key id length (1) ‖
 *             key id (utf8) ‖ nonce prefix (8 random bytes)
 *   segment = AES-256-GCM(data key, nonce = prefix ‖ index (uint32 BE),
 *                         aad = header ‖ binding ‖ index ‖ last flag)(≤ 64 KiB) ‖ tag (16)
 *
 * `binding` names the object (`<purpose>:<division>:<object id>`): a ciphertext moved to another
 * object or division, truncated, reordered or changed fails authentication. Every segment but the
 * last holds exactly SEGMENT bytes; the last one (flagged) holds the rest, possibly nothing.
 */
export const MAGIC = Buffer.from('MLENC', 'ascii');
export const ENVELOPE_FORMAT = 1;
export const SEGMENT = 64 * 1024;
const TAG = 16;
const PREFIX = 8;

export interface EnvelopeHeader {
  format: number;
  keyId: string;
  keyVersion: number;
}

export type EncryptionErrorCode = 'ciphertext_invalid' | 'ciphertext_tampered';

/** A ciphertext that is not an envelope, or whose authentication failed: refused, never returned. */
export class EncryptionError extends Error {
  constructor(
    readonly code: EncryptionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EncryptionError';
  }
}

function header(key: DataKey, prefix: Buffer): Buffer {
  const id = Buffer.from(key.divisionId, 'utf8');
  const fixed = Buffer.alloc(MAGIC.length + 1 + 4 + 1);
  MAGIC.copy(fixed, 0);
  fixed.writeUInt8(ENVELOPE_FORMAT, MAGIC.length);
  fixed.writeUInt32BE(key.version, MAGIC.length + 1);
  fixed.writeUInt8(id.length, MAGIC.length + 5);
  return Buffer.concat([fixed, id, prefix]);
}

/** Reads a header from the start of `buf`; undefined while more bytes are needed. */
export function parseHeader(
  buf: Buffer,
): { header: EnvelopeHeader; length: number; prefix: Buffer } | undefined {
  const fixed = MAGIC.length + 6;
  if (buf.length < fixed) {
    if (!MAGIC.subarray(0, Math.min(buf.length, MAGIC.length)).equals(buf.subarray(0, MAGIC.length))) {
      throw new EncryptionError('ciphertext_invalid', 'not an encrypted object (no envelope header)');
    }
    return undefined;
  }
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new EncryptionError('ciphertext_invalid', 'not an encrypted object (no envelope header)');
  }
  const format = buf.readUInt8(MAGIC.length);
  if (format !== ENVELOPE_FORMAT) {
    throw new EncryptionError('ciphertext_invalid', `unknown envelope format ${format}`);
  }
  const idLength = buf.readUInt8(MAGIC.length + 5);
  const length = fixed + idLength + PREFIX;
  if (buf.length < length) return undefined;
  return {
    header: {
      format,
      keyVersion: buf.readUInt32BE(MAGIC.length + 1),
      keyId: buf.subarray(fixed, fixed + idLength).toString('utf8'),
    },
    length,
    prefix: Buffer.from(buf.subarray(fixed + idLength, length)),
  };
}

const nonceOf = (prefix: Buffer, index: number) => {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(index, PREFIX);
  return n;
};

const aadOf = (head: Buffer, binding: Buffer, index: number, last: boolean) => {
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail.writeUInt8(last ? 1 : 0, 4);
  return Buffer.concat([head, binding, tail]);
};

/** The associated data of an object: what it is, whose, and which. */
export const bindingOf = (purpose: string, divisionId: string, objectId: string) =>
  `memory-layer/${purpose}\0${divisionId}\0${objectId}`;

/** Encrypts a stream with a division's data key; the output is an envelope. */
export class EncryptStream extends Transform {
  private readonly head: Buffer;
  private readonly prefix = randomBytes(PREFIX);
  private readonly binding: Buffer;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private index = 0;
  private started = false;

  constructor(
    private readonly key: DataKey,
    binding: string,
  ) {
    super();
    this.head = header(key, this.prefix);
    this.binding = Buffer.from(binding, 'utf8');
  }

  private seal(plain: Buffer, last: boolean): Buffer {
    if (this.index > 0xffffffff)
      throw new EncryptionError('ciphertext_invalid', 'object too large to encrypt');
    const cipher = createCipheriv('aes-256-gcm', this.key.key, nonceOf(this.prefix, this.index));
    cipher.setAAD(aadOf(this.head, this.binding, this.index, last));
    this.index += 1;
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(this.head);
    }
    // What is pending is under a segment, so joining it to the chunk copies at most one segment
    // more than the chunk; full segments are then sealed from views, without further copies.
    const all = this.pendingLength === 0 ? chunk : Buffer.concat([...this.pending, chunk]);
    let offset = 0;
    // Strictly more than a segment: the last segment is only known at the end.
    while (all.length - offset > SEGMENT) {
      this.push(this.seal(all.subarray(offset, offset + SEGMENT), false));
      offset += SEGMENT;
    }
    const rest = all.subarray(offset);
    this.pending = rest.length > 0 ? [Buffer.from(rest)] : [];
    this.pendingLength = rest.length;
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.started) this.push(this.head);
    done(null, this.seal(Buffer.concat(this.pending), true));
  }
}

/**
 * Decrypts an envelope, authenticating each segment before releasing it. `resolveKey` gets the
 * header (key id and version) and returns the data key, or throws (a destroyed key: erased).
 * Fails with EncryptionError `ciphertext_tampered` on any change, truncation or extension.
 */
export class DecryptStream extends Transform {
  private buffered: Buffer = Buffer.alloc(0);
  private head: Buffer | undefined;
  private prefix: Buffer | undefined;
  private key: DataKey | undefined;
  private readonly binding: Buffer;
  private index = 0;
  header: EnvelopeHeader | undefined;
  /**
   * Settles when the first segment is authenticated (or fails): a caller can refuse a download
   * with a clear error before answering, rather than cut a response short.
   */
  readonly authenticated: Promise<void>;
  private settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor(
    private readonly resolveKey: (h: EnvelopeHeader) => Promise<DataKey>,
    binding: string,
    private readonly expectKeyId?: string,
  ) {
    super();
    this.binding = Buffer.from(binding, 'utf8');
    this.authenticated = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.authenticated.catch(() => {});
    this.on('error', (err) => this.settle?.reject(err));
  }

  private open(cipherText: Buffer, last: boolean): Buffer {
    if (!this.key || !this.head || !this.prefix) {
      throw new EncryptionError('ciphertext_invalid', 'not an encrypted object (no envelope header)');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key.key, nonceOf(this.prefix, this.index));
    decipher.setAAD(aadOf(this.head, this.binding, this.index, last));
    decipher.setAuthTag(cipherText.subarray(cipherText.length - TAG));
    try {
      const plain = Buffer.concat([
        decipher.update(cipherText.subarray(0, cipherText.length - TAG)),
        decipher.final(),
      ]);
      this.index += 1;
      this.settle?.resolve();
      return plain;
    } catch {
      throw new EncryptionError(
        'ciphertext_tampered',
        `encrypted object failed authentication at segment ${this.index} (changed, truncated, or not this object's)`,
      );
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.drain(false).then(
      () => done(),
      (err: unknown) => done(err as Error),
    );
  }

  private async drain(final: boolean): Promise<void> {
    if (!this.head) {
      const parsed = parseHeader(this.buffered);
      if (!parsed) {
        if (final)
          throw new EncryptionError('ciphertext_invalid', 'encrypted object cut short in its header');
        return;
      }
      if (this.expectKeyId !== undefined && parsed.header.keyId !== this.expectKeyId) {
        throw new EncryptionError(
          'ciphertext_tampered',
          `encrypted object names key ${parsed.header.keyId}, not ${this.expectKeyId}`,
        );
      }
      this.head = Buffer.from(this.buffered.subarray(0, parsed.length));
      this.prefix = parsed.prefix;
      this.header = parsed.header;
      this.key = await this.resolveKey(parsed.header);
      this.buffered = this.buffered.subarray(parsed.length);
    }
    while (this.buffered.length > SEGMENT + TAG) {
      this.push(this.open(this.buffered.subarray(0, SEGMENT + TAG), false));
      this.buffered = this.buffered.subarray(SEGMENT + TAG);
    }
    if (final) {
      if (this.buffered.length < TAG) {
        throw new EncryptionError('ciphertext_tampered', 'encrypted object cut short (no final segment)');
      }
      this.push(this.open(this.buffered, true));
      this.buffered = Buffer.alloc(0);
    }
  }

  override _flush(done: TransformCallback): void {
    this.drain(true).then(
      () => done(),
      (err: unknown) => done(err as Error),
    );
  }
}

/** Whole-buffer helpers (manifest-sized payloads), same format. */
export async function encryptBuffer(key: DataKey, binding: string, plain: Buffer): Promise<Buffer> {
  return collect(Readable.from([plain]).pipe(new EncryptStream(key, binding)));
}

export async function decryptBuffer(
  resolveKey: (h: EnvelopeHeader) => Promise<DataKey>,
  binding: string,
  cipherText: Buffer,
  expectKeyId?: string,
): Promise<Buffer> {
  const d = new DecryptStream(resolveKey, binding, expectKeyId);
  const source = Readable.from([cipherText]);
  source.pipe(d);
  return collect(d);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The envelope's size for `plainSize` bytes with key id `keyId`. */
export const envelopeSize = (keyId: string, plainSize: number) =>
  MAGIC.length +
  6 +
  Buffer.byteLength(keyId) +
  PREFIX +
  plainSize +
  TAG * Math.max(1, Math.ceil(plainSize / SEGMENT));
