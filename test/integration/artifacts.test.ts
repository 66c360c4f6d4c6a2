import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore } from '../../src/adapters/objects/index.js';
import type { ObjectStore } from '../../src/adapters/objects/port.js';
import { type ArtifactService, createArtifactService } from '../../src/artifacts/artifacts.js';
import { ArtifactCorruptError } from '../../src/artifacts/verifying-stream.js';
import { appendAudit } from '../../src/audit/audit-log.js';
import {
  artifactCreateChange,
  bundleArtifacts,
  checkBundleArtifacts,
} from '../../src/audit/bundle-artifacts.js';
import { digestOf } from '../../src/audit/chain.js';
import type { AuditEvent } from '../../src/audit/types.js';
import { type Caller, SCOPES, type Scope } from '../../src/auth/caller.js';
import { installAuth } from '../../src/http/auth.js';
import { sendProblem, toProblem } from '../../src/http/problem.js';
import { artifactRoutes } from '../../src/http/routes/artifacts.js';
import { type Access, systemAccess } from '../../src/memories/access.js';
import { AppError } from '../../src/platform/errors.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { appError } from '../helpers/errors.js';

const MIB = 1024 * 1024;
const LIMIT = 2 * MIB;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

const access = (divisions: string[] | '*', extra: Partial<Access> = {}): Access => ({
  divisions,
  actor: 'service:test',
  piiRead: false,
  ...extra,
});

/** The HTTP layer as buildHttpServer sets it up (auth hook, problem+json errors), with only these routes. */
async function artifactServer(artifacts: ArtifactService): Promise<FastifyInstance> {
  const caller = (scopes: Scope[], divisions: string[] | '*' = '*'): Caller => ({
    kind: 'service',
    id: scopes.join('+'),
    divisions,
    scopes: new Set(scopes),
  });
  const callers: Record<string, Caller> = {
    all: caller([...SCOPES]),
    reader: caller(['memory:read']),
    other: caller(['memory:read', 'memory:write'], ['other']),
  };
  const server = Fastify({ logger: false });
  installAuth(server, async (req) => {
    const token = /^Bearer (\w+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? 'all';
    const found = callers[token];
    if (!found) throw new AppError('unauthenticated', 'unknown test token');
    return found;
  });
  server.setErrorHandler((err, req, reply) => sendProblem(reply, toProblem(err as Error, req)));
  await server.register(artifactRoutes({ artifacts }));
  await server.ready();
  return server;
}

describe.each(backends)('artifacts on %s', (backend) => {
  let ta: TestApp;
  let store: ObjectStore;
  let artifacts: ArtifactService;
  let http: FastifyInstance;
  const objectsDir = () => join(ta.dataDir, 'objects');
  const objectKeys = async (division = 'default') =>
    (await store.list(`artifacts/${division}/`)).map((o) => o.key);
  const events = async (resourceId: string) =>
    (
      await ta.app.db.query<{ action: string; digest: string; seq: string }>(
        'SELECT action, digest, seq FROM audit_events WHERE resource_id = $1 ORDER BY seq',
        [resourceId],
      )
    ).rows;

  beforeAll(async () => {
    ta = await startTestApp(backend, { worker: false });
    store = createObjectStore({ OBJECT_STORE: 'local', DATA_DIR: ta.dataDir });
    artifacts = createArtifactService({ db: ta.app.db, store, appendAudit, maxBytes: LIMIT });
    await ta.app.db.query("INSERT INTO divisions (id, name) VALUES ('other', 'Other')");
    http = await artifactServer(artifacts);
  });
  afterAll(async () => {
    await http?.close();
    await ta?.close();
  });

  describe('service', () => {
    it('streams an upload to the store, records it with its audit event, and streams it back', async () => {
      const bytes = Buffer.from('%PDF-1.7 not really a pdf\n'.repeat(5000));
      const a = await artifacts.upload(access('*'), 'default', Readable.from([bytes]), {
        contentType: 'application/pdf',
        sha256: sha(bytes),
      });
      expect(a).toMatchObject({
        divisionId: 'default',
        sha256: sha(bytes),
        size: bytes.length,
        contentType: 'application/pdf',
        createdBy: 'service:test',
        objectKey: `artifacts/default/${a.id}`,
        agentId: null,
      });
      expect(await store.head(a.objectKey)).toMatchObject({ size: bytes.length, sha256: sha(bytes) });
      const [event] = await events(a.id);
      expect(event.action).toBe('artifact.create');
      expect(event.digest).toBe(digestOf(artifactCreateChange(a)));

      const { artifact, body } = await artifacts.open(access('*'), a.id);
      expect(artifact.id).toBe(a.id);
      expect((await readAll(body)).equals(bytes)).toBe(true);
    });

    it('accepts the expected checksum in base64 too', async () => {
      const bytes = Buffer.from('base64 checksum');
      const b64 = createHash('sha256').update(bytes).digest('base64');
      const a = await artifacts.upload(access('*'), 'default', Readable.from([bytes]), { sha256: b64 });
      expect(a.sha256).toBe(sha(bytes));
      expect(a.contentType).toBe('application/octet-stream');
    });

    it('never overwrites: a second upload is a new artifact and the first stays intact', async () => {
      const first = await artifacts.upload(access('*'), 'default', Readable.from([Buffer.from('v1')]));
      const second = await artifacts.upload(access('*'), 'default', Readable.from([Buffer.from('v2')]));
      expect(second.id).not.toBe(first.id);
      expect(second.objectKey).not.toBe(first.objectKey);
      expect((await readAll((await artifacts.open(access('*'), first.id)).body)).toString()).toBe('v1');
      expect((await readAll((await artifacts.open(access('*'), second.id)).body)).toString()).toBe('v2');
    });

    it('refuses an upload past the limit with 413 and stores nothing', async () => {
      const before = await objectKeys();
      const count = async () =>
        Number((await ta.app.db.query<{ n: string }>('SELECT count(*) AS n FROM artifacts')).rows[0].n);
      const rows = await count();
      const err = await appError(
        artifacts.upload(access('*'), 'default', Readable.from([Buffer.alloc(LIMIT), Buffer.alloc(1)])),
      );
      expect(err).toMatchObject({ status: 413, code: 'payload_too_large' });
      // Refused on the declared length alone, before reading.
      const early = await appError(
        artifacts.upload(access('*'), 'default', Readable.from([Buffer.alloc(1)]), {
          contentLength: LIMIT + 1,
        }),
      );
      expect(early.status).toBe(413);
      expect(await objectKeys()).toEqual(before);
      expect(await count()).toBe(rows);
      expect(readdirSync(join(objectsDir(), 'tmp')).filter((f) => f.endsWith('.part'))).toEqual([]);
    });

    it('refuses a body whose checksum is not the expected one (400), storing nothing', async () => {
      const before = await objectKeys();
      const err = await appError(
        artifacts.upload(access('*'), 'default', Readable.from([Buffer.from('actual')]), {
          sha256: sha(Buffer.from('expected')),
        }),
      );
      expect(err).toMatchObject({ status: 400, code: 'validation_failed' });
      expect(err.errors[0].field).toBe('X-Checksum-SHA256');
      expect(await objectKeys()).toEqual(before);
      const bad = await appError(
        artifacts.upload(access('*'), 'default', Readable.from([Buffer.from('x')]), { sha256: 'nothex' }),
      );
      expect(bad.status).toBe(400);
      const type = await appError(
        artifacts.upload(access('*'), 'default', Readable.from([Buffer.from('x')]), {
          contentType: 'not a type',
        }),
      );
      expect(type.errors[0].field).toBe('Content-Type');
    });

    it('removes the stored object when the database write fails', async () => {
      const failing = createArtifactService({
        db: ta.app.db,
        store,
        maxBytes: LIMIT,
        appendAudit: async () => {
          throw new Error('audit down');
        },
      });
      const before = await objectKeys();
      await expect(
        failing.upload(access('*'), 'default', Readable.from([Buffer.from('orphan?')])),
      ).rejects.toThrow('audit down');
      expect(await objectKeys()).toEqual(before);
    });

    it('confines artifacts to divisions and agents', async () => {
      const a = await artifacts.upload(access(['default']), 'default', Readable.from([Buffer.from('mine')]));
      expect((await appError(artifacts.get(access(['other']), a.id))).status).toBe(404);
      expect((await appError(artifacts.open(access(['other']), a.id))).status).toBe(404);
      expect(
        (await appError(artifacts.upload(access(['other']), 'default', Readable.from([Buffer.from('x')]))))
          .status,
      ).toBe(403);
      expect(
        (await appError(artifacts.upload(access('*'), 'nowhere', Readable.from([Buffer.from('x')])))).code,
      ).toBe('division_not_found');

      const agentA = access(['default'], { agentId: 'agent-a', actor: 'agent:agent-a' });
      const agentB = access(['default'], { agentId: 'agent-b', actor: 'agent:agent-b' });
      const own = await artifacts.upload(agentA, 'default', Readable.from([Buffer.from('agent a')]));
      expect(own.agentId).toBe('agent-a');
      expect((await artifacts.get(agentA, own.id)).id).toBe(own.id);
      expect((await appError(artifacts.get(agentB, own.id))).status).toBe(404);
      expect((await appError(artifacts.get(agentA, a.id))).status).toBe(404);
      expect((await artifacts.get(access('*'), own.id)).id).toBe(own.id);
    });

    it('fails a download whose stored bytes changed, before its last byte', async () => {
      const bytes = Buffer.alloc(300_000, 'a');
      const a = await artifacts.upload(access('*'), 'default', Readable.from([bytes]));
      const file = join(objectsDir(), 'data', ...a.objectKey.split('/'));
      chmodSync(file, 0o644);
      const tampered = Buffer.from(bytes);
      tampered[tampered.length - 10] = 'b'.charCodeAt(0);
      writeFileSync(file, tampered);

      const { body } = await artifacts.open(access('*'), a.id);
      let received = 0;
      await expect(
        (async () => {
          for await (const c of body) received += (c as Buffer).length;
        })(),
      ).rejects.toBeInstanceOf(ArtifactCorruptError);
      expect(received).toBeLessThan(bytes.length);

      writeFileSync(file, bytes.subarray(0, 1000)); // and a truncated one is refused at once
      await expect(artifacts.open(access('*'), a.id)).rejects.toBeInstanceOf(ArtifactCorruptError);
    });

    it('links artifacts to memories (audited once), lists and unlinks them', async () => {
      const { memory } = await ta.app.memories.create(systemAccess('test'), 'default', {
        text: 'see attachment',
      });
      const a = await artifacts.upload(access('*'), 'default', Readable.from([Buffer.from('attachment')]));
      expect(await artifacts.link(access('*'), memory.id, a.id)).toEqual({ linked: true });
      expect(await artifacts.link(access('*'), memory.id, a.id)).toEqual({ linked: false });
      expect((await events(memory.id)).filter((e) => e.action === 'memory.artifact.link')).toHaveLength(1);
      expect((await artifacts.listForMemory(access('*'), memory.id)).map((x) => x.id)).toEqual([a.id]);

      const elsewhere = await artifacts.upload(access('*'), 'other', Readable.from([Buffer.from('other')]));
      expect((await appError(artifacts.link(access('*'), memory.id, elsewhere.id))).status).toBe(404);
      expect((await appError(artifacts.link(access('*'), randomUUID(), a.id))).code).toBe('memory_not_found');
      expect((await appError(artifacts.listForMemory(access(['other']), memory.id))).status).toBe(404);

      await ta.app.db.query('UPDATE memory_nodes SET legal_hold = true WHERE id = $1', [memory.id]);
      expect((await appError(artifacts.unlink(access('*'), memory.id, a.id))).code).toBe('legal_hold');
      await ta.app.db.query('UPDATE memory_nodes SET legal_hold = false WHERE id = $1', [memory.id]);
      expect(await artifacts.unlink(access('*'), memory.id, a.id)).toEqual({ unlinked: true });
      expect(await artifacts.listForMemory(access('*'), memory.id)).toEqual([]);
    });

    it("lists a division's artifacts for its proof bundle, bound to the audit chain", async () => {
      const { memory } = await ta.app.memories.create(systemAccess('test'), 'other', { text: 'bundle me' });
      const a = await artifacts.upload(access('*'), 'other', Readable.from([Buffer.from('in the bundle')]), {
        contentType: 'text/plain',
      });
      await artifacts.link(access('*'), memory.id, a.id);
      const exported = await bundleArtifacts(ta.app.db, 'other');
      const entry = exported.find((x) => x.id === a.id);
      expect(entry).toMatchObject({
        checksum: a.sha256,
        size: a.size,
        contentType: 'text/plain',
        objectKey: a.objectKey,
        memoryIds: [memory.id],
      });
      const { bundle } = await ta.app.audit.exportBundle('other', { includePii: false });
      const chain: AuditEvent[] = bundle.auditEvents;
      expect(checkBundleArtifacts(exported, chain).broken).toEqual([]);

      const forged = exported.map((x) =>
        x.id === a.id ? { ...x, checksum: sha(Buffer.from('forged')) } : x,
      );
      const { broken } = checkBundleArtifacts(forged, chain);
      expect(broken).toHaveLength(1);
      expect(broken[0].what).toBe(`artifact ${a.id}`);
      expect(checkBundleArtifacts([{ ...entry, id: randomUUID() }], chain).broken[0].reason).toMatch(
        /no artifact.create/,
      );
    });
  });

  describe('HTTP', () => {
    it('POST streams the body in, GET streams it out with ETag, Digest and type; HEAD and 304', async () => {
      const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
      const posted = await http.inject({
        method: 'POST',
        url: '/v1/artifacts',
        payload: bytes,
        headers: { 'content-type': 'image/png', 'x-checksum-sha256': sha(bytes) },
      });
      expect(posted.statusCode).toBe(201);
      const created = posted.json();
      expect(created).toMatchObject({ sha256: sha(bytes), size: bytes.length, contentType: 'image/png' });
      expect(created.objectKey).toBeUndefined();
      expect(posted.headers.location).toBe(`/v1/artifacts/${created.id}`);

      const got = await http.inject({ method: 'GET', url: `/v1/artifacts/${created.id}` });
      expect(got.statusCode).toBe(200);
      expect(got.rawPayload.equals(bytes)).toBe(true);
      expect(got.headers).toMatchObject({
        'content-type': 'image/png',
        'content-length': String(bytes.length),
        etag: `"${sha(bytes)}"`,
        digest: `sha-256=${Buffer.from(sha(bytes), 'hex').toString('base64')}`,
        'x-content-type-options': 'nosniff',
      });

      const head = await http.inject({ method: 'HEAD', url: `/v1/artifacts/${created.id}` });
      expect(head.statusCode).toBe(200);
      expect(head.headers.etag).toBe(`"${sha(bytes)}"`);
      expect(head.rawPayload.length).toBe(0);

      const cached = await http.inject({
        method: 'GET',
        url: `/v1/artifacts/${created.id}`,
        headers: { 'if-none-match': `"${sha(bytes)}"` },
      });
      expect(cached.statusCode).toBe(304);
    });

    it('stores JSON and text bodies as they are (never parsed)', async () => {
      for (const [type, body] of [
        ['application/json', '{"not": "parsed"'],
        ['text/plain; charset=utf-8', 'plain\u0000text'],
      ]) {
        const res = await http.inject({
          method: 'POST',
          url: '/v1/artifacts',
          payload: body,
          headers: { 'content-type': type },
        });
        expect(res.statusCode).toBe(201);
        const got = await http.inject({ method: 'GET', url: `/v1/artifacts/${res.json().id}` });
        expect(got.body).toBe(body);
        expect(got.headers['content-type']).toBe(type);
      }
    });

    it('answers refused uploads with problem+json', async () => {
      const tooLarge = await http.inject({
        method: 'POST',
        url: '/v1/artifacts',
        payload: Buffer.alloc(LIMIT + 1),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(tooLarge.statusCode).toBe(413);
      expect(tooLarge.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(tooLarge.json().code).toBe('payload_too_large');

      const mismatch = await http.inject({
        method: 'POST',
        url: '/v1/artifacts',
        payload: 'abc',
        headers: { 'content-type': 'text/plain', 'x-checksum-sha256': 'f'.repeat(64) },
      });
      expect(mismatch.statusCode).toBe(400);
      expect(mismatch.json().errors[0].field).toBe('X-Checksum-SHA256');

      const missing = await http.inject({ method: 'GET', url: `/v1/artifacts/${randomUUID()}` });
      expect(missing.statusCode).toBe(404);
      expect((await http.inject({ method: 'GET', url: '/v1/artifacts/not-a-uuid' })).statusCode).toBe(400);
    });

    it('checks scopes and divisions', async () => {
      const asReader = await http.inject({
        method: 'POST',
        url: '/v1/artifacts',
        payload: 'x',
        headers: { authorization: 'Bearer reader', 'content-type': 'text/plain' },
      });
      expect(asReader.statusCode).toBe(403);
      const created = (
        await http.inject({ method: 'POST', url: '/v1/artifacts?divisionId=default', payload: 'secret' })
      ).json();
      const fromOther = await http.inject({
        method: 'GET',
        url: `/v1/artifacts/${created.id}`,
        headers: { authorization: 'Bearer other' },
      });
      expect(fromOther.statusCode).toBe(404);
      const intoDefault = await http.inject({
        method: 'POST',
        url: '/v1/artifacts?divisionId=default',
        payload: 'x',
        headers: { authorization: 'Bearer other' },
      });
      expect(intoDefault.statusCode).toBe(403);
    });

    it('links a file to a memory and lists the memory’s files', async () => {
      const { memory } = await ta.app.memories.create(systemAccess('test'), 'default', {
        text: 'with a file',
      });
      const created = (await http.inject({ method: 'POST', url: '/v1/artifacts', payload: 'file' })).json();
      const link = await http.inject({
        method: 'PUT',
        url: `/v1/memories/${memory.id}/artifacts/${created.id}`,
      });
      expect(link.statusCode).toBe(204);
      const list = await http.inject({ method: 'GET', url: `/v1/memories/${memory.id}/artifacts` });
      expect(list.json().items.map((a: { id: string }) => a.id)).toEqual([created.id]);
      const unlink = await http.inject({
        method: 'DELETE',
        url: `/v1/memories/${memory.id}/artifacts/${created.id}`,
      });
      expect(unlink.statusCode).toBe(204);
      const again = await http.inject({
        method: 'DELETE',
        url: `/v1/memories/${memory.id}/artifacts/${created.id}`,
      });
      expect(again.statusCode).toBe(404);
    });

    it('over a real socket: streams a large upload and download, and answers 413 to an oversized one', {
      timeout: 60_000,
    }, async () => {
      const server = await artifactServer(
        createArtifactService({ db: ta.app.db, store, appendAudit, maxBytes: 16 * MIB }),
      );
      await server.listen({ host: '127.0.0.1', port: 0 });
      const { port } = server.server.address() as AddressInfo;
      const send = (size: number) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port,
              method: 'POST',
              path: '/v1/artifacts',
              headers: { 'content-type': 'application/octet-stream' },
            },
            (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c) => {
                body += c;
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on('error', reject);
          // Chunked, with no Content-Length: the limit is enforced while streaming.
          let sent = 0;
          const chunk = Buffer.alloc(256 * 1024, 7);
          const write = () => {
            while (sent < size) {
              sent += chunk.length;
              if (!req.write(chunk)) {
                req.once('drain', write);
                return;
              }
            }
            req.end();
          };
          req.on('response', () => {
            sent = size; // the server answered early: stop sending
          });
          write();
        });
      try {
        const ok = await send(12 * MIB);
        expect(ok.status).toBe(201);
        const created = JSON.parse(ok.body);
        expect(created.size).toBe(12 * MIB);
        expect(created.sha256).toBe(sha(Buffer.alloc(12 * MIB, 7)));

        const downloaded = await fetch(`http://127.0.0.1:${port}/v1/artifacts/${created.id}`);
        expect(downloaded.status).toBe(200);
        expect(sha(Buffer.from(await downloaded.arrayBuffer()))).toBe(created.sha256);

        const refused = await send(40 * MIB);
        expect(refused.status).toBe(413);
        expect(JSON.parse(refused.body).code).toBe('payload_too_large');
      } finally {
        await server.close();
      }
    });
  });
});
