import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore, type ObjectStore } from '../../src/adapters/objects/index.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

const MIB = 1024 * 1024;

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * An HTTPS front for s3rver (which speaks plain HTTP here): terminates TLS with the test server
 * certificate, records every request's method, URL and headers as the server received them, and
 * passes the request on unchanged (the Host header too, so the SigV4 signature still verifies).
 */
async function httpsFront(pki: TestPki, target: URL): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer({ key: pki.server.key, cert: pki.server.cert }, (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } });
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

describe('S3 over TLS with a private CA, and server-side encryption headers', () => {
  let pki: TestPki;
  let s3: TestS3;
  let front: Awaited<ReturnType<typeof httpsFront>>;

  const store = (env: Record<string, string>): ObjectStore => {
    const config = loadConfig({
      OBJECT_STORE: 's3',
      S3_ENDPOINT: front.url,
      S3_BUCKET: s3.bucket,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      ...env,
    });
    return createObjectStore(config);
  };
  const writes = (key: string) =>
    front.seen.filter(
      (r) =>
        r.url.includes(key) && (r.method === 'PUT' || (r.method === 'POST' && r.url.includes('uploads'))),
    );

  beforeAll(async () => {
    pki = createTestPki();
    s3 = await startS3();
    front = await httpsFront(pki, new URL(s3.endpoint));
  }, 60_000);

  afterAll(async () => {
    front?.server.close();
    await s3?.close();
    pki?.cleanup();
  });

  it('trusts S3_CA_FILE for an https endpoint, and round-trips an object through it', async () => {
    const s = store({ S3_CA_FILE: pki.ca.certFile });
    await s.check();
    const body = randomBytes(4096);
    await s.put('tls/plain', Readable.from([body]));
    const got = await s.get('tls/plain');
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    // Without S3_SSE nothing asks for server-side encryption.
    expect(writes('tls/plain').every((r) => r.headers['x-amz-server-side-encryption'] === undefined)).toBe(
      true,
    );
  });

  it('refuses the endpoint when S3_CA_FILE is another CA, saying why', async () => {
    const s = store({ S3_CA_FILE: pki.otherCa.certFile });
    await expect(s.check()).rejects.toThrow(
      /unreachable: .*(self[- ]signed|unable to verify|unable to get)/i,
    );
  });

  it('refuses the endpoint without S3_CA_FILE (the system CAs do not know the test CA)', async () => {
    await expect(store({}).check()).rejects.toThrow(/unreachable/);
  });

  it('S3_SSE=aws:kms sends the KMS headers on a single PutObject', async () => {
    const s = store({
      S3_CA_FILE: pki.ca.certFile,
      S3_SSE: 'aws:kms',
      S3_SSE_KMS_KEY_ID: 'alias/memory-layer',
    });
    await s.put('sse/kms-small', Readable.from([randomBytes(1024)]));
    const sent = writes('sse/kms-small');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(sent[0]?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/memory-layer');
  });

  it('S3_SSE=AES256 asks for it when a multipart upload is created (the parts inherit it)', async () => {
    const s = store({ S3_CA_FILE: pki.ca.certFile, S3_SSE: 'AES256' });
    await s.put('sse/aes-large', Readable.from([randomBytes(9 * MIB)]));
    const created = front.seen.filter((r) => r.method === 'POST' && r.url.includes('sse/aes-large?uploads'));
    expect(created).toHaveLength(1);
    expect(created[0]?.headers['x-amz-server-side-encryption']).toBe('AES256');
    expect(created[0]?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
    expect(writes('sse/aes-large').filter((r) => r.method === 'PUT').length).toBe(2);
  });

  it('bad settings stop the start, naming the setting', () => {
    const base = { OBJECT_STORE: 's3', S3_BUCKET: 'memory-layer', S3_ENDPOINT: 'https://s3.example' };
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ ...base, S3_SSE: 'aws:kms' })).toEqual([
      'S3_SSE_KMS_KEY_ID: required with S3_SSE=aws:kms',
    ]);
    expect(problems({ ...base, S3_SSE: 'aes256' })).toEqual(['S3_SSE: must be AES256 or aws:kms']);
    expect(problems({ ...base, S3_SSE: 'AES256', S3_SSE_KMS_KEY_ID: 'k' })).toEqual([
      'S3_SSE_KMS_KEY_ID: only with S3_SSE=aws:kms',
    ]);
    expect(problems({ ...base, S3_ENDPOINT: 'http://s3.example', S3_CA_FILE: '/ca.pem' })).toEqual([
      'S3_CA_FILE: needs an https:// S3_ENDPOINT',
    ]);
    expect(problems({ S3_SSE: 'AES256' })).toEqual(['S3_SSE: only with OBJECT_STORE=s3']);
    const unreadable = loadConfig({ ...base, S3_CA_FILE: join(pki.dir, 'missing.pem') });
    expect(() => createObjectStore(unreadable)).toThrow(ConfigError);
    expect(() => createObjectStore(unreadable)).toThrow(/S3_CA_FILE: cannot read .*missing\.pem \(ENOENT\)/);
  });
});
