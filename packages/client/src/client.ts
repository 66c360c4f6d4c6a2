import {
  type AuditEvent,
  type AuditHead,
  type ChainCheck,
  verifyChain,
  verifySignedHead,
} from './audit-chain.js';
import { MemoryLayerError, WaitTimeoutError } from './errors.js';
import type { paths } from './schema.js';
import { createTransport, type RawRequest, type TransportOptions } from './transport.js';
import type {
  BodyOf,
  CallOptions,
  HttpMethod,
  PathsWith,
  QueryOf,
  RequestInit,
  ResponseOf,
  WithRequired,
} from './typed.js';

type NonNull<T> = Exclude<T, undefined | null>;
type Item<T> = T extends readonly (infer I)[] ? I : never;

/** A memory as the service shows it (every field always present). */
export type Memory = Required<NonNull<ResponseOf<'/v1/memories/{id}', 'get'>>>;
export type CreateMemoryInput = BodyOf<'/v1/memories', 'post'>;
export type NewMemory = Item<BodyOf<'/v1/memories/batch', 'post'>['items']>;
export type MemoryPatch = BodyOf<'/v1/memories/{id}', 'patch'>;
export type ListMemoriesQuery = NonNull<QueryOf<'/v1/memories', 'get'>>;
export interface MemoryPage {
  items: Memory[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}
export type SearchQuery = BodyOf<'/v1/search', 'post'>;
type RawSearchResult = NonNull<ResponseOf<'/v1/search', 'post'>>;
type RawHit = Item<NonNull<RawSearchResult['hits']>>;
/** A search hit: `vectorScore`/`keywordScore` when that retriever found it, `context` with `expand`. */
export type SearchHit = WithRequired<
  RawHit,
  | 'id'
  | 'score'
  | 'text'
  | 'piiFlags'
  | 'agentId'
  | 'namespace'
  | 'kind'
  | 'tags'
  | 'metadata'
  | 'createdAt'
  | 'sessionId'
  | 'sequence'
  | 'occurredAt'
  | 'supersededBy'
>;
export interface SearchResult {
  hits: SearchHit[];
  mode: 'hybrid' | 'vector' | 'keyword';
  /** Matching memories not yet searchable by meaning. */
  pending: number;
  timings: { embedMs: number; totalMs: number };
}
export type Division = NonNull<ResponseOf<'/v1/divisions/{id}', 'get'>>;
export type CreateDivisionInput = BodyOf<'/v1/divisions', 'post'>;
export type Agent = NonNull<ResponseOf<'/v1/divisions/{id}/agents', 'post'>>;
export type CreateAgentInput = BodyOf<'/v1/divisions/{id}/agents', 'post'>;
export type LegalHold = NonNull<ResponseOf<'/v1/legal-holds', 'post'>>;
export type CreateLegalHoldInput = BodyOf<'/v1/legal-holds', 'post'>;
export type DeadLetter = Item<NonNull<NonNull<ResponseOf<'/v1/jobs/dead', 'get'>>['items']>>;
export type AuditQuery = NonNull<QueryOf<'/v1/audit', 'get'>>;
export interface AuditPage {
  events: AuditEvent[];
  /** Pass as `afterSeq` for the next page; null on the last page. */
  nextAfterSeq: number | null;
}
export type ReembedRun = NonNull<ResponseOf<'/v1/reembed/{id}', 'get'>>;
/** What an import wrote, replayed (an earlier attempt with the same key had written it) and refused. */
export type ImportReport = NonNull<ResponseOf<'/v1/memories/import', 'post'>>;
export type ImportOptions = Write & Scope & { atomic?: boolean };
/** A document as the service shows it (every field always present). */
export type Document = Required<NonNull<ResponseOf<'/v1/documents/{id}', 'get'>>>;
export type DocumentType = 'text/plain' | 'text/markdown';
/** Labels of an upload: given to every chunk (`tags`, `metadata`, …), the session, the title. */
export type DocumentUpload = Omit<NonNull<QueryOf<'/v1/documents', 'post'>>, 'divisionId' | 'metadata'> & {
  metadata?: Record<string, unknown>;
};
export interface DocumentPage {
  items: Document[];
  nextCursor: string | null;
}
export type StartReembedInput = BodyOf<'/v1/reembed', 'post'>;

export interface ClientOptions extends TransportOptions {
  /** Division used when a call names none (the service's default otherwise: the token's division). */
  divisionId?: string;
}

export interface WaitOptions {
  /** Give up after this long (default 30 s) with a WaitTimeoutError naming the memories still pending. */
  timeoutMs?: number;
  /** First pause between two looks (default 100 ms), growing to 1 s. */
  intervalMs?: number;
  divisionId?: string;
  signal?: AbortSignal;
}

type Scope = { divisionId?: string };
type Call = Pick<CallOptions, 'signal' | 'headers'>;
type Write = Call & Pick<CallOptions, 'idempotencyKey'>;

const ifMatch = (version: number | undefined): Record<string, string> =>
  version === undefined ? {} : { 'if-match': `"${version}"` };

/**
 * A client of the Memory Layer API. Every POST carries an Idempotency-Key (a random UUID reused by
 * its own retries); GETs and idempotent writes are retried on network errors, 429 and 503 with
 * exponential backoff, honouring Retry-After; an answer that is not a success throws a
 * MemoryLayerError with the problem's `status`, `code`, field `errors` and `requestId`.
 */
export function createClient(options: ClientOptions) {
  const send = createTransport(options);
  const defaultDivision = options.divisionId;
  const division = (given?: string) => given ?? defaultDivision;

  /**
   * Any operation of the API, typed from its OpenAPI document: the path names it, `path`, `query`
   * and `body` are checked, and the answer is the JSON its success response declares.
   */
  async function request<M extends HttpMethod, P extends PathsWith<M>>(
    method: M,
    path: P,
    ...[init]: object extends RequestInit<P, M> ? [init?: RequestInit<P, M>] : [init: RequestInit<P, M>]
  ): Promise<ResponseOf<P, M>> {
    const {
      path: params,
      query,
      body,
      ...call
    } = (init ?? {}) as RequestInit<P, M> & {
      path?: Record<string, string | number>;
      query?: Record<string, unknown>;
      body?: unknown;
    };
    const filled = (path as string).replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = params?.[name];
      if (value === undefined) throw new TypeError(`${path} needs path parameter ${name}`);
      return encodeURIComponent(String(value));
    });
    const raw: RawRequest = { method, path: filled, query, body, ...call };
    return (await send(raw)).data as ResponseOf<P, M>;
  }

  /** A request whose body is not JSON (NDJSON, text, Markdown), answered with JSON. */
  async function sendRaw<T>(
    method: HttpMethod,
    path: string,
    rawBody: RawRequest['rawBody'],
    query: Record<string, unknown>,
    call: Write,
  ): Promise<T> {
    return (await send({ method, path, query, rawBody, ...call })).data as T;
  }

  const memories = {
    /** Writes one memory (status `pending` until indexed; `wait: true` answers once indexed). */
    async create(input: CreateMemoryInput, opts: Write & { wait?: boolean } = {}): Promise<Memory> {
      const { wait, ...call } = opts;
      const body = { ...input, divisionId: division(input.divisionId) };
      return (await request('post', '/v1/memories', { body, query: { wait }, ...call })) as Memory;
    },
    /** Writes up to 1,000 memories, all or nothing (a bad item names itself, e.g. `items[3].text`). */
    async createBatch(items: NewMemory[], opts: Write & Scope & { wait?: boolean } = {}): Promise<Memory[]> {
      const { wait, divisionId, ...call } = opts;
      const res = await request('post', '/v1/memories/batch', {
        body: { items, divisionId: division(divisionId) },
        query: { wait },
        ...call,
      });
      return (res?.items ?? []) as Memory[];
    },
    async get(id: string, opts: Call & Scope = {}): Promise<Memory> {
      const { divisionId, ...call } = opts;
      return (await request('get', '/v1/memories/{id}', {
        path: { id },
        query: { divisionId: division(divisionId) },
        ...call,
      })) as Memory;
    },
    /**
     * Changes the given fields. Pass the `version` you read: if the memory changed since, the
     * service refuses with 412 `precondition_failed` and nothing is written.
     */
    async update(
      id: string,
      patch: MemoryPatch,
      opts: Call & Scope & { version?: number } = {},
    ): Promise<Memory> {
      const { divisionId, version, headers, ...call } = opts;
      return (await request('patch', '/v1/memories/{id}', {
        path: { id },
        query: { divisionId: division(divisionId) },
        body: patch,
        headers: { ...headers, ...ifMatch(version) },
        ...call,
      })) as Memory;
    },
    /** Soft delete (gone from reads and search at once); `purge: true` erases now (admin). */
    async delete(id: string, opts: Call & Scope & { version?: number; purge?: boolean } = {}): Promise<void> {
      const { divisionId, version, purge, headers, ...call } = opts;
      await request('delete', '/v1/memories/{id}', {
        path: { id },
        query: { divisionId: division(divisionId), purge },
        headers: { ...headers, ...ifMatch(version) },
        ...call,
      });
    },
    /** One page, newest first. */
    async list(query: ListMemoriesQuery = {}, opts: Call = {}): Promise<MemoryPage> {
      const res = await request('get', '/v1/memories', {
        query: { ...query, divisionId: division(query.divisionId) },
        ...opts,
      });
      return { items: (res?.items ?? []) as Memory[], nextCursor: res?.nextCursor ?? null };
    },
    /** Every memory matching the query, page after page (`for await (const m of …)`). */
    async *iterate(query: ListMemoriesQuery = {}, opts: Call = {}): AsyncGenerator<Memory> {
      let cursor = query.cursor;
      do {
        const page = await memories.list({ ...query, cursor }, opts);
        yield* page.items;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    },
    /**
     * Bulk import: the items travel as NDJSON and are written with COPY. Bad items are reported by
     * line (`errors`) and the good ones written, or with `atomic: true` nothing is written and the
     * call throws 422 naming `lines[N].field`. A retry after a broken connection reuses the
     * Idempotency-Key, so chunks that committed are skipped (`replayed`) and the rest written once.
     * Items with a `vector` and no `sessionId` are searchable by meaning when this resolves.
     * The division must be named (here or as the client's `divisionId`).
     */
    async import(items: Iterable<NewMemory>, opts: ImportOptions = {}): Promise<ImportReport> {
      const { divisionId, atomic, ...call } = opts;
      // A bulk write names its division: the service does not fall back to the token's here.
      const into = division(divisionId);
      if (into === undefined)
        throw new TypeError('memories.import needs a divisionId (in its options or the client options)');
      let data = '';
      for (const item of items) data += `${JSON.stringify(item)}\n`;
      return sendRaw<ImportReport>(
        'post',
        '/v1/memories/import',
        { type: 'application/x-ndjson', data },
        { divisionId: into, atomic },
        call,
      );
    },
    /** Places (`hold: true`) or releases a legal hold on one memory. */
    async setLegalHold(
      id: string,
      hold: { hold: boolean; reason?: string },
      opts: Call & Scope = {},
    ): Promise<Memory> {
      const { divisionId, ...call } = opts;
      return (await request('put', '/v1/memories/{id}/legal-hold', {
        path: { id },
        query: { divisionId: division(divisionId) },
        body: hold,
        ...call,
      })) as Memory;
    },
  };

  /** Resolves with the memories once none is `pending` (indexed, or `failed`), in the order of `ids`. */
  async function waitUntilIndexed(ids: string[], opts: WaitOptions = {}): Promise<Memory[]> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    const found = new Map<string, Memory>();
    let pending = [...new Set(ids)];
    let pause = opts.intervalMs ?? 100;
    for (;;) {
      const stillPending: string[] = [];
      // A few at a time: a long list must not open hundreds of connections.
      for (let i = 0; i < pending.length; i += 8) {
        const slice = pending.slice(i, i + 8);
        const read = await Promise.all(
          slice.map((id) => memories.get(id, { divisionId: opts.divisionId, signal: opts.signal })),
        );
        for (const m of read) {
          found.set(m.id, m);
          if (m.status === 'pending') stillPending.push(m.id);
        }
      }
      pending = stillPending;
      if (pending.length === 0) return ids.map((id) => found.get(id) as Memory);
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(pending, timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      if (opts.signal?.aborted) throw opts.signal.reason;
      pause = Math.min(1_000, pause * 1.5);
    }
  }

  async function search(query: SearchQuery, opts: Call = {}): Promise<SearchResult> {
    // A search writes nothing (bar the read's audit record): safe to try again.
    return (await request('post', '/v1/search', {
      body: { ...query, divisionId: division(query.divisionId) },
      idempotencyKey: false,
      retry: true,
      ...opts,
    })) as SearchResult;
  }

  const agents = {
    create: (divisionId: string, input: CreateAgentInput, opts: Write = {}): Promise<Agent> =>
      request('post', '/v1/divisions/{id}/agents', {
        path: { id: divisionId },
        body: input,
        ...opts,
      }) as Promise<Agent>,
    list: async (divisionId: string, opts: Call = {}): Promise<Agent[]> =>
      ((await request('get', '/v1/divisions/{id}/agents', { path: { id: divisionId }, ...opts }))?.items ??
        []) as Agent[],
  };

  const divisions = {
    create: (input: CreateDivisionInput, opts: Write = {}): Promise<Division> =>
      request('post', '/v1/divisions', { body: input, ...opts }) as Promise<Division>,
    get: (id: string, opts: Call = {}): Promise<Division> =>
      request('get', '/v1/divisions/{id}', { path: { id }, ...opts }) as Promise<Division>,
    list: async (opts: Call = {}): Promise<Division[]> =>
      ((await request('get', '/v1/divisions', { ...opts }))?.items ?? []) as Division[],
    agents,
  };

  const audit = {
    /** The division's latest event hash, signed with the service's Ed25519 key. */
    head: async (opts: Call & Scope = {}): Promise<AuditHead> => {
      const { divisionId, ...call } = opts;
      return (await request('get', '/v1/audit/head', {
        query: { divisionId: division(divisionId) },
        ...call,
      })) as AuditHead;
    },
    /** One page of events, oldest first. */
    list: async (query: AuditQuery = {}, opts: Call = {}): Promise<AuditPage> =>
      (await request('get', '/v1/audit', {
        query: { ...query, divisionId: division(query.divisionId) },
        ...opts,
      })) as AuditPage,
    /** Every event matching the query, page after page. */
    async *events(query: AuditQuery = {}, opts: Call = {}): AsyncGenerator<AuditEvent> {
      let afterSeq = query.afterSeq;
      for (;;) {
        const page = await audit.list({ limit: 1000, ...query, afterSeq }, opts);
        yield* page.events;
        if (page.nextAfterSeq === null) return;
        afterSeq = page.nextAfterSeq;
      }
    },
    /**
     * Reads the whole chain and the signed head and checks them here: links, hashes, the head and
     * its Ed25519 signature (against `trustedKeyId` when given: the key id you hold from elsewhere).
     */
    async verify(opts: Call & Scope & { trustedKeyId?: string } = {}): Promise<ChainCheck> {
      const { trustedKeyId, ...rest } = opts;
      // The head first: events appended meanwhile lie beyond it and are left out of the check.
      const head = await audit.head(rest);
      const events: AuditEvent[] = [];
      for await (const e of audit.events({ divisionId: rest.divisionId }, rest)) {
        if (e.seq > head.seq) break;
        events.push(e);
      }
      const chain = await verifyChain(events, head);
      if (!chain.ok) return chain;
      const signature = await verifySignedHead(head, trustedKeyId);
      if (!signature.ok) {
        return {
          ok: false,
          events: events.length,
          seq: head.seq,
          keyId: signature.keyId,
          reason: signature.reason,
        };
      }
      return { ok: true, events: events.length, keyId: signature.keyId };
    },
    /** A proof bundle of the division (canonical JSON, checked offline with `memory-layer audit verify`). */
    export: async (opts: Write & Scope = {}): Promise<unknown> => {
      const { divisionId, ...call } = opts;
      return request('post', '/v1/exports', { body: { divisionId: division(divisionId) }, ...call });
    },
  };

  const legalHolds = {
    /** Holds a whole division, or one agent's memories (`agentId`): nothing held can be deleted. */
    create: (input: CreateLegalHoldInput, opts: Write = {}): Promise<LegalHold> =>
      request('post', '/v1/legal-holds', {
        body: { ...input, divisionId: division(input.divisionId) },
        ...opts,
      }) as Promise<LegalHold>,
    list: async (opts: Call & Scope = {}): Promise<LegalHold[]> => {
      const { divisionId, ...call } = opts;
      const res = await request('get', '/v1/legal-holds', {
        query: { divisionId: division(divisionId) },
        ...call,
      });
      return (res?.items ?? []) as LegalHold[];
    },
    release: (id: number, opts: Call & Scope = {}): Promise<LegalHold> => {
      const { divisionId, ...call } = opts;
      return request('delete', '/v1/legal-holds/{id}', {
        path: { id },
        query: { divisionId: division(divisionId) },
        ...call,
      }) as Promise<LegalHold>;
    },
  };

  const deadLetters = {
    /** Jobs that failed every attempt (admin). Page with `after` (the last id seen). */
    list: async (
      query: NonNull<QueryOf<'/v1/jobs/dead', 'get'>> = {},
      opts: Call = {},
    ): Promise<DeadLetter[]> =>
      ((await request('get', '/v1/jobs/dead', { query, ...opts }))?.items ?? []) as DeadLetter[],
    /** Puts a dead job back in the queue with fresh attempts. */
    retry: async (id: number, opts: Write = {}): Promise<{ id: number; status: string }> =>
      (await request('post', '/v1/jobs/dead/{id}/retry', { path: { id }, ...opts })) as {
        id: number;
        status: string;
      },
  };

  const reembed = {
    /** Starts re-embedding a division's memories with another model (admin). */
    start: (input: StartReembedInput, opts: Write = {}): Promise<ReembedRun> =>
      request('post', '/v1/reembed', {
        body: { ...input, divisionId: division(input.divisionId) },
        ...opts,
      }) as Promise<ReembedRun>,
    get: (id: string, opts: Call = {}): Promise<ReembedRun> =>
      request('get', '/v1/reembed/{id}', { path: { id }, ...opts }) as Promise<ReembedRun>,
    cancel: (id: string, opts: Write = {}): Promise<ReembedRun> =>
      request('post', '/v1/reembed/{id}/cancel', { path: { id }, ...opts }) as Promise<ReembedRun>,
  };

  const documents = {
    /**
     * Uploads a text or Markdown document (202): the worker splits it into memories of one session
     * by headings and paragraphs; `status` says how far it got (`get` to follow it).
     */
    create: (
      text: string,
      upload: DocumentUpload & { type?: DocumentType } = {},
      opts: Write & Scope = {},
    ): Promise<Document> => {
      const { type, metadata, ...labels } = upload;
      const { divisionId, ...call } = opts;
      return sendRaw<Document>(
        'post',
        '/v1/documents',
        { type: `${type ?? 'text/markdown'}; charset=utf-8`, data: text },
        {
          ...labels,
          metadata: metadata === undefined ? undefined : JSON.stringify(metadata),
          divisionId: division(divisionId),
        },
        call,
      );
    },
    /** The document with its progress and its chunks in order. */
    get: (id: string, opts: Call & Scope = {}): Promise<Document> => {
      const { divisionId, ...call } = opts;
      return request('get', '/v1/documents/{id}', {
        path: { id },
        query: { divisionId: division(divisionId) },
        ...call,
      }) as Promise<Document>;
    },
    list: async (
      query: { limit?: number; cursor?: string } = {},
      opts: Call & Scope = {},
    ): Promise<DocumentPage> => {
      const { divisionId, ...call } = opts;
      const res = await request('get', '/v1/documents', {
        query: { ...query, divisionId: division(divisionId) },
        ...call,
      });
      return { items: (res?.items ?? []) as Document[], nextCursor: res?.nextCursor ?? null };
    },
    /** A new version: its chunks replace the old ones once split (refused under a legal hold). */
    replace: (
      id: string,
      text: string,
      upload: { type?: DocumentType; title?: string } = {},
      opts: Call & Scope = {},
    ): Promise<Document> => {
      const { divisionId, ...call } = opts;
      return sendRaw<Document>(
        'put',
        `/v1/documents/${encodeURIComponent(id)}`,
        { type: `${upload.type ?? 'text/markdown'}; charset=utf-8`, data: text },
        { title: upload.title, divisionId: division(divisionId) },
        call,
      );
    },
    /** Deletes the document and its chunks; `purge: true` erases them now (admin). */
    delete: async (id: string, opts: Call & Scope & { purge?: boolean } = {}): Promise<void> => {
      const { divisionId, purge, ...call } = opts;
      await request('delete', '/v1/documents/{id}', {
        path: { id },
        query: { divisionId: division(divisionId), purge },
        ...call,
      });
    },
  };

  return {
    request,
    memories,
    documents,
    search,
    waitUntilIndexed,
    divisions,
    agents,
    audit,
    legalHolds,
    deadLetters,
    reembed,
  };
}

export type MemoryLayerClient = ReturnType<typeof createClient>;
export type { paths };
export { MemoryLayerError, WaitTimeoutError };
