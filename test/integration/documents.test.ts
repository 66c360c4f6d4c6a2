import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { systemAccess } from '../../src/memories/access.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';

/**
 * Documents through the whole service (HTTP, PostgreSQL, object store, split and index workers).
 * The embedder is a letter counter, not the built-in model: these tests find chunks by keyword
 * search, and the model would only make them slow.
 */
const letters: Embedder = {
  model: { name: 'doc-letters', version: '1', dimensions: 26 },
  async embed(texts) {
    return texts.map((text) => {
      const v = new Float32Array(26).fill(0.01);
      for (const ch of text.toLowerCase()) {
        const i = ch.charCodeAt(0) - 97;
        if (i >= 0 && i < 26) v[i] += 1;
      }
      return v;
    });
  },
  async close() {},
};

const MAX_DOCUMENT_BYTES = 20_000;
const CHUNK_CHARS = 300;
const OVERLAP = 40;

const para = (word: string, n: number) =>
  Array.from({ length: n }, (_, i) => `The ${word} sentence number ${i} says something plain.`).join(' ');

const MARKDOWN = `# Field guide

Intro paragraph about the guide.

## Installing

${para('installing', 12)}

### On Linux

Use the package manager. The keyword is quetzalcoatl.

\`\`\`sh
# not a heading: inside a fence
apt-get install thing
\`\`\`

## Running

${para('running', 3)}
`;

interface Doc {
  id: string;
  status: string;
  version: number;
  sessionId: string;
  artifactId: string | null;
  chunkCount: number;
  chunksIndexed: number;
  chunks?: { position: number; memoryId: string; status: string }[];
}

describe.each(backends)('documents on %s', (backend) => {
  let ta: TestApp;

  const call = (method: string, url: string, payload?: string | Buffer, contentType?: string) =>
    ta.http.inject({
      method: method as 'GET',
      url,
      payload,
      headers: contentType ? { 'content-type': contentType } : {},
    });

  const upload = async (text: string, query = '', type = 'text/markdown') => {
    const r = await call('POST', `/v1/documents${query}`, text, type);
    expect(r.statusCode, r.body).toBe(202);
    return r.json() as Doc;
  };

  /** Polls until the document is indexed (the split and index workers run in the app). */
  async function indexed(id: string): Promise<Doc> {
    const until = Date.now() + 20_000;
    for (;;) {
      const doc = (await call('GET', `/v1/documents/${id}`)).json() as Doc;
      if (doc.status === 'indexed') return doc;
      if (doc.status === 'failed' || Date.now() > until)
        throw new Error(`document ${id}: ${JSON.stringify(doc)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const counts = async () => {
    const one = async (sql: string) => Number((await ta.t.db.query<{ n: number }>(sql)).rows[0].n);
    const dir = join(ta.dataDir, 'objects', 'artifacts', 'default');
    let objects = 0;
    try {
      objects = readdirSync(dir).length;
    } catch {}
    return {
      memories: await one('SELECT count(*)::int AS n FROM memory_nodes'),
      artifacts: await one('SELECT count(*)::int AS n FROM artifacts'),
      documents: await one('SELECT count(*)::int AS n FROM documents'),
      jobs: await one('SELECT count(*)::int AS n FROM jobs'),
      audit: await one('SELECT count(*)::int AS n FROM audit_events'),
      objects,
    };
  };

  const memory = async (id: string) => call('GET', `/v1/memories/${id}`);
  const actions = async (id: string) => {
    const r = await call('GET', `/v1/audit?resourceType=document&resourceId=${id}`);
    expect(r.statusCode, r.body).toBe(200);
    return (r.json().events as { action: string; actor: string }[]).map((e) => e.action);
  };
  const keyword = async (query: string) => {
    const r = await call(
      'POST',
      '/v1/search',
      JSON.stringify({ query, mode: 'keyword', k: 10 }),
      'application/json',
    );
    expect(r.statusCode, r.body).toBe(200);
    return r.json().hits as { id: string; text: string }[];
  };

  beforeAll(async () => {
    ta = await startTestApp(backend, {
      embedder: letters,
      env: {
        MAX_DOCUMENT_BYTES: String(MAX_DOCUMENT_BYTES),
        DOCUMENT_CHUNK_CHARS: String(CHUNK_CHARS),
        DOCUMENT_CHUNK_OVERLAP: String(OVERLAP),
        ACCESS_AUDIT: 'off',
      },
    });
    await ta.app.divisions.createDivision(systemAccess('test'), { id: 'other' });
  }, 120_000);
  afterAll(() => ta?.close());

  it('splits Markdown by headings into ordered chunks of one session, found by search', async () => {
    const created = await upload(
      MARKDOWN,
      '?title=Handbook&tags=guide&metadata=%7B%22source%22%3A%22wiki%22%7D',
    );
    expect(created.status).toBe('pending');
    expect(created.version).toBe(1);
    expect(created.sessionId).toBe(created.id);

    const doc = await indexed(created.id);
    expect(doc.chunkCount).toBeGreaterThan(3);
    expect(doc.chunksIndexed).toBe(doc.chunkCount);
    expect(doc.chunks?.map((c) => c.position)).toEqual([...Array(doc.chunkCount).keys()]);

    const chunks = [];
    for (const c of doc.chunks ?? []) chunks.push((await memory(c.memoryId)).json());
    for (const [i, m] of chunks.entries()) {
      expect(m.sessionId).toBe(created.id);
      expect(m.sequence).toBe(i);
      expect(m.kind).toBe('document');
      expect(m.tags).toEqual(['guide']);
      expect(m.metadata).toMatchObject({
        source: 'wiki',
        document: { id: created.id, version: 1, chunk: i, chunks: doc.chunkCount },
      });
      expect(m.text.length).toBeLessThanOrEqual(CHUNK_CHARS);
    }
    // Heading paths, in document order; the fenced "# not a heading" opened no section.
    expect(chunks[0].text).toBe('Handbook › Field guide\n\nIntro paragraph about the guide.');
    const installing = chunks.filter((m) => m.text.startsWith('Handbook › Field guide › Installing\n\n'));
    expect(installing.length).toBeGreaterThan(1);
    // Overlap: a continuation starts with the end of the chunk before it.
    const body = (t: string) => t.split('\n\n').slice(1).join('\n\n');
    const tail = body(installing[0].text).slice(-20);
    expect(body(installing[1].text).slice(0, OVERLAP + 1)).toContain(tail.slice(-10));
    const linux = chunks.find((m) => m.text.includes('quetzalcoatl'));
    expect(linux.text.startsWith('Handbook › Field guide › Installing › On Linux\n\n')).toBe(true);
    expect(linux.text).toContain('# not a heading: inside a fence');
    expect(chunks.at(-1).text.startsWith('Handbook › Field guide › Running\n\n')).toBe(true);

    const hits = await keyword('quetzalcoatl');
    expect(hits[0].id).toBe(linux.id);

    // The original is the artifact, linked to every chunk.
    const original = await call('GET', `/v1/artifacts/${doc.artifactId}`);
    expect(original.statusCode).toBe(200);
    expect(original.body).toBe(MARKDOWN);
    expect(original.headers['content-type']).toBe('text/markdown; charset=utf-8');
    const links = await call('GET', `/v1/memories/${linux.id}/artifacts`);
    expect(links.json().items.map((a: { id: string }) => a.id)).toEqual([doc.artifactId]);

    // Listed; and audited.
    const listed = (await call('GET', '/v1/documents?limit=500')).json();
    expect(listed.items.map((d: Doc) => d.id)).toContain(created.id);
    expect(await actions(created.id)).toEqual(['document.create', 'document.split']);
  });

  it('splits plain text by paragraphs, with the given session and occurredAt', async () => {
    const text = `${para('alpha', 2)}\n\n${para('beta', 2)}\n\nLast words: xylophonist.`;
    const created = await upload(
      text,
      '?sessionId=notes-7&occurredAt=2024-05-01T10:00:00Z',
      'text/plain; charset=utf-8',
    );
    const doc = await indexed(created.id);
    expect(doc.sessionId).toBe('notes-7');
    const last = (await memory(doc.chunks?.at(-1)?.memoryId as string)).json();
    expect(last.sessionId).toBe('notes-7');
    expect(last.occurredAt).toBe('2024-05-01T10:00:00.000Z');
    expect(last.text).toContain('xylophonist');
    expect(last.text.startsWith('The')).toBe(true);
  });

  it('runs a split job twice without writing its chunks twice', async () => {
    const created = await upload('# Once\n\nOnly once, please.');
    const doc = await indexed(created.id);
    expect(await ta.app.documents.splitJob(created.id, 1)).toBeNull();
    const again = (await call('GET', `/v1/documents/${created.id}`)).json() as Doc;
    expect(again.chunks).toEqual(doc.chunks);
    const rows = await ta.t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM memory_nodes WHERE session_id = $1`,
      [created.id],
    );
    expect(rows.rows[0].n).toBe(doc.chunkCount);
  });

  it('resumes a split that stopped half-way from the chunks already written', async () => {
    const created = await upload(`# Resume\n\n${para('resumed', 20)}`);
    const doc = await indexed(created.id);
    const chunks = doc.chunks ?? [];
    expect(chunks.length).toBeGreaterThan(2);
    // As a worker that died after its first transaction would leave it.
    const kept = 1;
    await ta.t.db.query('DELETE FROM document_chunks WHERE document_id = $1 AND position >= $2', [
      created.id,
      kept,
    ]);
    await ta.t.db.query(`UPDATE documents SET status = 'splitting' WHERE id = $1`, [created.id]);
    expect(await ta.app.documents.splitJob(created.id, 1)).toEqual({ chunks: chunks.length });
    const resumed = await indexed(created.id);
    expect(resumed.chunks?.map((c) => c.position)).toEqual(chunks.map((c) => c.position));
    expect(resumed.chunks?.slice(0, kept)).toEqual(chunks.slice(0, kept));
    expect(resumed.chunks?.[kept].memoryId).not.toBe(chunks[kept].memoryId);
    const texts = async (list: typeof chunks) =>
      Promise.all(list.map(async (c) => (await memory(c.memoryId)).json().text));
    expect(await texts(resumed.chunks ?? [])).toEqual(await texts(chunks));
  });

  it('refuses bad input with problem+json naming the fault and stores nothing', async () => {
    const before = await counts();
    const cases: [string, string | Buffer | undefined, string | undefined, number, string, string][] = [
      ['too large', 'x'.repeat(MAX_DOCUMENT_BYTES + 1), 'text/plain', 413, 'payload_too_large', '(body)'],
      ['JSON', '{"text": "hi"}', 'application/json', 415, 'unsupported_media_type', 'Content-Type'],
      ['Latin-1', 'caf\xe9', 'text/plain; charset=iso-8859-1', 415, 'unsupported_media_type', 'Content-Type'],
      ['no type', undefined, undefined, 415, 'unsupported_media_type', 'Content-Type'],
      ['empty', '', 'text/plain', 400, 'validation_failed', '(body)'],
      ['blank', ' \n\n \t', 'text/markdown', 400, 'validation_failed', '(body)'],
      ['not UTF-8', Buffer.from([0x48, 0x69, 0xc3, 0x28]), 'text/plain', 400, 'validation_failed', '(body)'],
    ];
    for (const [name, payload, type, status, code, field] of cases) {
      const r = await call('POST', '/v1/documents', payload, type);
      expect(r.statusCode, `${name}: ${r.body}`).toBe(status);
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.json().code, name).toBe(code);
      expect(r.json().errors?.[0]?.field, name).toBe(field);
    }
    const labels: [string, number, string, string][] = [
      ['?metadata=not-json', 400, 'validation_failed', 'metadata'],
      ['?metadata=%5B1%5D', 400, 'validation_failed', 'metadata'],
      ['?title=mail%20jane%40example.com', 400, 'pii_in_labels', 'title'],
      ['?agentId=nobody', 404, 'agent_not_found', 'agentId'],
      ['?sessionId=Not%20A%20Slug', 400, 'validation_failed', 'sessionId'],
    ];
    for (const [query, status, code, field] of labels) {
      const r = await call('POST', `/v1/documents${query}`, 'fine text', 'text/plain');
      expect(r.statusCode, `${query}: ${r.body}`).toBe(status);
      expect(r.json().code, query).toBe(code);
      expect(r.json().errors?.[0]?.field, query).toBe(field);
    }
    expect(await counts()).toEqual(before);
  });

  it('answers a retried upload with the same Idempotency-Key from its first answer, storing nothing twice', async () => {
    const send = (key: string, text: string, query = '?title=Ferry%20notes') =>
      ta.http.inject({
        method: 'POST',
        url: `/v1/documents${query}`,
        payload: text,
        headers: { 'content-type': 'text/markdown', 'idempotency-key': key },
      });
    const text = '# Ferries\n\nThe morning ferry to Skye leaves at seven.';
    const first = await send('doc-retry-1', text);
    expect(first.statusCode, first.body).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    await indexed(first.json().id); // the split's own writes are done before counting
    const before = await counts();
    const again = await send('doc-retry-1', text);
    expect(again.statusCode, again.body).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    expect(await counts()).toEqual(before);
    // The same key for another document, or other labels: refused, nothing stored.
    expectProblem(
      await send('doc-retry-1', `${text} Changed.`),
      422,
      'idempotency_key_reused',
      'Idempotency-Key',
    );
    expectProblem(
      await send('doc-retry-1', text, '?title=Other'),
      422,
      'idempotency_key_reused',
      'Idempotency-Key',
    );
    expect(await counts()).toEqual(before);
    // Another key is another document.
    const other = await send('doc-retry-2', text);
    expect(other.statusCode).toBe(202);
    expect(other.json().id).not.toBe(first.json().id);
  });

  it('replaces a document: old chunks deleted, new ones written and found, audited', async () => {
    const created = await upload('# Version one\n\nThe old word is brontosaurus.');
    const v1 = await indexed(created.id);
    const oldChunk = v1.chunks?.[0].memoryId as string;
    const oldArtifact = v1.artifactId;

    const r = await call(
      'PUT',
      `/v1/documents/${created.id}?title=Second`,
      '# Version two\n\nThe new word is pterodactyl.',
      'text/markdown',
    );
    expect(r.statusCode, r.body).toBe(202);
    expect(r.json().version).toBe(2);
    const v2 = await indexed(created.id);
    expect(v2.version).toBe(2);
    expect(v2.artifactId).not.toBe(oldArtifact);
    expect((await memory(oldChunk)).statusCode).toBe(404);
    expect((await call('GET', `/v1/artifacts/${oldArtifact}`)).statusCode).toBe(404);
    expect((await keyword('brontosaurus')).filter((h) => h.text.includes('brontosaurus'))).toEqual([]);
    const hits = await keyword('pterodactyl');
    expect(hits[0].id).toBe(v2.chunks?.[0].memoryId);
    expect(hits[0].text.startsWith('Second › Version two')).toBe(true);
    expect(await actions(created.id)).toEqual([
      'document.create',
      'document.split',
      'document.replace',
      'document.split',
    ]);
  });

  it('refuses to replace or delete a document under legal hold, changing nothing', async () => {
    const created = await upload('# Held\n\nEvidence: the ledger.\n\nMore evidence.');
    const doc = await indexed(created.id);
    const held = doc.chunks?.[0].memoryId as string;
    const hold = await call(
      'PUT',
      `/v1/memories/${held}/legal-hold`,
      JSON.stringify({ hold: true, reason: 'case 12' }),
      'application/json',
    );
    expect(hold.statusCode, hold.body).toBeLessThan(300);
    const before = await counts();

    for (const [method, url, body, type] of [
      ['DELETE', `/v1/documents/${created.id}`, undefined, undefined],
      ['DELETE', `/v1/documents/${created.id}?purge=true`, undefined, undefined],
      ['PUT', `/v1/documents/${created.id}`, 'replacement', 'text/plain'],
    ] as const) {
      const r = await call(method, url, body, type);
      expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(409);
      expect(r.json().code).toBe('legal_hold');
    }
    expect(await counts()).toEqual(before);
    const after = (await call('GET', `/v1/documents/${created.id}`)).json() as Doc;
    expect(after.version).toBe(1);
    expect(after.chunks).toEqual(doc.chunks);
    for (const c of doc.chunks ?? []) expect((await memory(c.memoryId)).statusCode).toBe(200);

    // A hold on the whole division blocks too.
    await call('PUT', `/v1/memories/${held}/legal-hold`, JSON.stringify({ hold: false }), 'application/json');
    const divisionHold = await call(
      'POST',
      '/v1/legal-holds',
      JSON.stringify({ divisionId: 'default', reason: 'audit' }),
      'application/json',
    );
    expect(divisionHold.statusCode, divisionHold.body).toBe(201);
    expect((await call('DELETE', `/v1/documents/${created.id}`)).statusCode).toBe(409);
    const released = await call('DELETE', `/v1/legal-holds/${divisionHold.json().id}`);
    expect(released.statusCode, released.body).toBeLessThan(300);
  });

  it('deletes a document with its chunks and original; purge erases them', async () => {
    const created = await upload('# Gone\n\nSoon forgotten: wolpertinger.');
    const doc = await indexed(created.id);
    const del = await call('DELETE', `/v1/documents/${created.id}`);
    expect(del.statusCode, del.body).toBe(204);
    expect((await call('GET', `/v1/documents/${created.id}`)).statusCode).toBe(404);
    for (const c of doc.chunks ?? []) expect((await memory(c.memoryId)).statusCode).toBe(404);
    expect((await call('GET', `/v1/artifacts/${doc.artifactId}`)).statusCode).toBe(404);
    expect((await keyword('wolpertinger')).filter((h) => h.text.includes('wolpertinger'))).toEqual([]);
    expect(await actions(created.id)).toEqual(['document.create', 'document.split', 'document.delete']);

    const purged = await call('DELETE', `/v1/documents/${created.id}?purge=true`);
    expect(purged.statusCode, purged.body).toBe(204);
    const rows = await ta.t.db.query<{ text: string; purged: boolean }>(
      'SELECT text, purged_at IS NOT NULL AS purged FROM memory_nodes WHERE id = ANY($1::uuid[])',
      [doc.chunks?.map((c) => c.memoryId)],
    );
    expect(rows.rows.every((r) => r.purged && r.text === '')).toBe(true);
    expect((await actions(created.id)).at(-1)).toBe('document.purge');
  });

  it('answers 404 for a document looked up in another division, and 403 for uploads there it may not use', async () => {
    const created = await upload('# Mine\n\nIn the default division.');
    const r = await call('GET', `/v1/documents/${created.id}?divisionId=other`);
    expect(r.statusCode).toBe(404);
    expect(r.json().code).toBe('not_found');
    expect((await call('DELETE', `/v1/documents/${created.id}?divisionId=other`)).statusCode).toBe(404);
    const missing = await call('POST', '/v1/documents?divisionId=nowhere', 'text', 'text/plain');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('division_not_found');
  });
});
