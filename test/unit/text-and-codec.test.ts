import { describe, expect, it } from 'vitest';
import { normaliseText, textChecksum } from '../../src/memories/text.js';
import {
  base64ToVector,
  bytesToVector,
  cosineDistance,
  vectorToBytes,
} from '../../src/memories/vector-codec.js';

describe('text checksum', () => {
  it('is the same for texts that differ only in whitespace or Unicode composition', () => {
    expect(textChecksum('  Café   au lait\n')).toBe(textChecksum('Cafe\u0301 au lait'));
    expect(normaliseText(' a \t b ')).toBe('a b');
  });
  it('differs when the words differ', () => {
    expect(textChecksum('cat')).not.toBe(textChecksum('cats'));
    expect(textChecksum('x')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('vector codec', () => {
  it('round-trips float32 vectors through bytes, including from an offset buffer', () => {
    const v = Float32Array.from([0.5, -1.25, 3.4028234663852886e38, 0]);
    const bytes = vectorToBytes(v);
    expect(bytes.length).toBe(16);
    const shifted = Buffer.concat([Buffer.from([1, 2, 3]), bytes]).subarray(3);
    expect(Array.from(bytesToVector(shifted))).toEqual(Array.from(v));
    expect(() => bytesToVector(new Uint8Array(5))).toThrow(/multiple of 4/);
  });
  it('computes cosine distance', () => {
    expect(cosineDistance(Float32Array.from([1, 0]), Float32Array.from([2, 0]))).toBeCloseTo(0);
    expect(cosineDistance(Float32Array.from([1, 0]), Float32Array.from([0, 3]))).toBeCloseTo(1);
    expect(cosineDistance(Float32Array.from([1, 0]), Float32Array.from([-1, 0]))).toBeCloseTo(2);
    expect(cosineDistance(Float32Array.from([0, 0]), Float32Array.from([1, 0]))).toBe(1);
  });
});

describe('vectors read as base64', () => {
  it("decodes PostgreSQL's encode(…, 'base64'), line breaks included, to the same floats", () => {
    const v = Float32Array.from({ length: 512 }, (_, i) => Math.sin(i) / (i + 1));
    const b64 = vectorToBytes(v).toString('base64');
    // What encode(embedding, 'base64') returns: lines of 76 characters.
    const wrapped = b64.match(/.{1,76}/g)?.join('\n') ?? '';
    expect(wrapped).toContain('\n');
    expect(base64ToVector(wrapped)).toEqual(v);
    expect(bytesToVector(Buffer.from(b64, 'base64'))).toEqual(v);
  });
});
