import { endianness } from 'node:os';

/*
 * How a memory's vector is stored: little-endian float32 bytes in `memory_nodes.embedding` (and
 * `reembed_vectors.embedding`), as text.ts says how its text is normalised and checksummed. This is
 * the domain's own format, the source every vector index is derived from; no index adapter uses it.
 */

const LITTLE_ENDIAN = endianness() === 'LE';

/** A vector as the bytes `memory_nodes.embedding` stores. */
export function vectorToBytes(v: Float32Array): Buffer {
  // A typed array holds the host's byte order: copied whole where that is little-endian (x86, ARM).
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  const out = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i], i * 4);
  return out;
}

/**
 * A vector selected as `encode(embedding, 'base64')`. Reading vectors as text is ~10× faster than
 * as bytea through PGlite's protocol layer (BENCHMARKS.md), and no slower on a server.
 */
export const base64ToVector = (base64: string): Float32Array => bytesToVector(Buffer.from(base64, 'base64'));

export function bytesToVector(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0)
    throw new Error(`vector bytes length ${bytes.byteLength} is not a multiple of 4`);
  if (LITTLE_ENDIAN)
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Cosine distance (1 - cosine similarity); 1 when either vector is zero. */
export function cosineDistance(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 || nb === 0) return 1;
  return 1 - dot / Math.sqrt(na * nb);
}
