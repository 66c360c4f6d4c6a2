import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './wait.js';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  close(): Promise<void>;
}

/**
 * A real S3-protocol server (s3rver, in a child process) on 127.0.0.1 and a free port, storing
 * under a temporary directory, with one bucket. Its built-in account is S3RVER / S3RVER; requests
 * are signed (SigV4) and checked. It has no object lock, versioning or conditional writes.
 */
export async function startS3(bucket = 'memory-layer-test'): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'ml-s3-'));
  const child = fork(join(import.meta.dirname, 's3rver-process.mjs'), [directory, bucket], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`s3rver exited with code ${code}`);
    }),
  ])) as [{ port: number }];
  return {
    endpoint: `http://127.0.0.1:${message.port}`,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async close() {
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.disconnect();
        await Promise.race([exited, sleep(5_000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
