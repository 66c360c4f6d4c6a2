import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** The bytes of a download did not match the artifact's recorded size or SHA-256. */
export class ArtifactCorruptError extends Error {
  constructor(
    readonly artifactId: string,
    reason: string,
  ) {
    super(`artifact ${artifactId} is corrupt in the object store: ${reason}`);
    this.name = 'ArtifactCorruptError';
  }
}

/**
 * Passes a download through while hashing it, holding back its last chunk until the end: when the
 * size or SHA-256 differs from the record the stream fails instead of completing, so a client never
 * receives a whole, wrong body (with Content-Length set, the response is visibly cut short).
 */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private held: Buffer | undefined;
  private size = 0;

  constructor(
    private readonly artifactId: string,
    private readonly expected: { sha256: string; size: number },
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.expected.size) {
      done(new ArtifactCorruptError(this.artifactId, `more than the recorded ${this.expected.size} bytes`));
      return;
    }
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    done(null, previous);
  }

  override _flush(done: TransformCallback): void {
    if (this.size !== this.expected.size) {
      done(
        new ArtifactCorruptError(
          this.artifactId,
          `${this.size} bytes, not the recorded ${this.expected.size}`,
        ),
      );
      return;
    }
    const actual = this.hash.digest('hex');
    if (actual !== this.expected.sha256) {
      done(
        new ArtifactCorruptError(
          this.artifactId,
          `SHA-256 is ${actual}, not the recorded ${this.expected.sha256}`,
        ),
      );
      return;
    }
    done(null, this.held);
  }
}
