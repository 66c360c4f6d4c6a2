/** Starts the service in a child process and talks to it over real HTTP (fetch, keep-alive). */
import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export const log = (msg: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

export interface ServerOptions {
  label: string;
  vectorIndex: 'auto' | 'pgvector' | 'usearch';
  /** A PostgreSQL server instead of PGlite (a fresh schema is made and dropped). */
  databaseUrl?: string;
  /** With databaseUrl: share this existing schema (another server's) instead; not dropped. */
  schema?: string;
  /** Run the indexing worker in the server process (default true). */
  worker?: boolean;
  logLevel: string;
  env?: Record<string, string>;
  /** Extra node flags for the server process (e.g. --cpu-prof while investigating). */
  nodeArgs?: string[];
}

export interface Server {
  url: string;
  pid: number;
  /** The PostgreSQL schema it uses (undefined on PGlite). */
  schema?: string;
  dataDir: string;
  logFile: string;
  startMs: number;
  vectorIndex: string;
  database: string;
  /** Peak resident set (VmHWM) of the server process so far, bytes. */
  peakRss(): number;
  rss(): number;
  post<T>(
    path: string,
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T }>;
  get<T>(path: string): Promise<{ status: number; body: T }>;
  metrics(): Promise<Map<string, number>>;
  /** The last error lines of the server's log (to show when a scenario fails). */
  errors(): string;
  /**
   * Stops the server and starts it again on the same data; the new start's time in ms. `between`
   * runs while it is down.
   */
  restart(between?: () => Promise<void>): Promise<number>;
  stop(): Promise<void>;
}

function procStatus(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

export async function startServer(o: ServerOptions): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-bench-'));
  const logFile = join(dataDir, 'server.log');
  let schema: string | undefined = o.schema;
  if (o.databaseUrl && !schema) {
    schema = `bench_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
    const c = new pg.Client({ connectionString: o.databaseUrl });
    await c.connect();
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.end();
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    DATA_DIR: dataDir,
    VECTOR_INDEX: o.vectorIndex,
    // Loopback without credentials is dev mode anyway; said explicitly so that no token is needed.
    AUTH_MODE: 'dev',
    LOG_LEVEL: o.logLevel,
    ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl, DATABASE_SCHEMA: schema as string } : {}),
    BENCH_WORKER: o.worker === false ? 'off' : 'on',
    ...o.env,
  };
  if (!o.databaseUrl) delete env.DATABASE_URL;
  const tail = () => readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  /** Forks the server on this data directory (and schema) and waits until it listens. */
  const launch = async () => {
    const logFd = openSync(logFile, 'a');
    const child: ChildProcess = fork(join(here, 'server.ts'), [], {
      execArgv: ['--import', tsxLoader, ...(o.nodeArgs ?? [])],
      env,
      stdio: ['ignore', logFd, logFd, 'ipc'],
    });
    closeSync(logFd);
    const ready = await new Promise<{ port: number; startMs: number; vectorIndex: string }>(
      (resolve, reject) => {
        child.once('message', (m) => resolve(m as { port: number; startMs: number; vectorIndex: string }));
        child.once('exit', (code) =>
          reject(new Error(`server exited with ${code} before listening:\n${tail()}`)),
        );
      },
    );
    const state = { child, ready, exited: false };
    child.once('exit', () => {
      state.exited = true;
    });
    return state;
  };
  let proc = await launch();
  const { ready } = proc;
  let url = `http://127.0.0.1:${proc.ready.port}`;
  log(
    `${o.label}: server pid ${proc.child.pid} up in ${(ready.startMs / 1000).toFixed(1)} s (${ready.vectorIndex})`,
  );

  const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(url + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body:
        body === undefined
          ? undefined
          : typeof body === 'string' || body instanceof Uint8Array
            ? (body as BodyInit)
            : JSON.stringify(body),
    });
  const call = async <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    let res: Response;
    try {
      res = await send(method, path, body, headers);
    } catch (err) {
      // A kept-alive connection the server closed while this process was busy (Fastify closes
      // idle ones after 72 s): reads are safe to send again, and so are writes with an
      // Idempotency-Key (the service answers a retry with the first answer).
      if (method !== 'GET' && path !== '/v1/search' && !headers?.['idempotency-key']) throw err;
      res = await send(method, path, body, headers);
    }
    const text = await res.text();
    const parsed = text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
    return { status: res.status, body: parsed as T };
  };

  /** Stops the server process and waits for it to exit (data kept). */
  const halt = async () => {
    if (proc.exited) return;
    const gone = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
    proc.child.send({ type: 'stop' });
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 60_000);
    await gone;
    clearTimeout(timer);
  };
  const server: Server = {
    url,
    schema,
    pid: proc.child.pid as number,
    dataDir,
    logFile,
    startMs: ready.startMs,
    vectorIndex: ready.vectorIndex,
    database: o.databaseUrl ? 'postgres' : 'pglite',
    peakRss: () => procStatus(server.pid, 'VmHWM'),
    rss: () => procStatus(server.pid, 'VmRSS'),
    post: (path, body, headers) => call('POST', path, body, headers),
    get: (path) => call('GET', path),
    async metrics() {
      const res = await call<string>('GET', '/metrics');
      const out = new Map<string, number>();
      for (const line of String(res.body).split('\n')) {
        if (line.startsWith('#') || !line.trim()) continue;
        const at = line.lastIndexOf(' ');
        out.set(line.slice(0, at), Number(line.slice(at + 1)));
      }
      return out;
    },
    errors() {
      const lines = readFileSync(logFile, 'utf8').split('\n');
      return lines
        .filter((l) => /"level":(50|60)/.test(l) || (l.trim() !== '' && !l.startsWith('{')))
        .slice(-10)
        .join('\n');
    },
    async restart(between) {
      await halt();
      await between?.();
      proc = await launch();
      url = `http://127.0.0.1:${proc.ready.port}`;
      server.url = url;
      server.pid = proc.child.pid as number;
      log(
        `${o.label}: server restarted, pid ${server.pid} up in ${(proc.ready.startMs / 1000).toFixed(1)} s`,
      );
      return proc.ready.startMs;
    },
    async stop() {
      await halt();
      rmSync(dataDir, { recursive: true, force: true });
      if (o.databaseUrl && schema && !o.schema) {
        const c = new pg.Client({ connectionString: o.databaseUrl });
        await c.connect();
        await c.query(`DROP SCHEMA ${schema} CASCADE`);
        await c.end();
      }
    },
  };
  return server;
}

/**
 * Polls `GET /v1/memories?status=pending&limit=1` until nothing is pending; then checks that
 * nothing failed. Returns the time (performance.now()) at which the empty answer was seen.
 */
export async function waitIndexed(s: Server, opts: { pollMs?: number; timeoutMs?: number } = {}) {
  const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  const pollMs = opts.pollMs ?? 100;
  for (;;) {
    const res = await s.get<{ items: unknown[] }>('/v1/memories?status=pending&limit=1');
    if (res.status !== 200) throw new Error(`pending poll answered ${res.status}`);
    if (res.body.items.length === 0) break;
    if (Date.now() > deadline) throw new Error('timed out waiting for memories to be indexed');
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const at = performance.now();
  const failed = await s.get<{ items: unknown[] }>('/v1/memories?status=failed&limit=1');
  if (failed.body.items.length > 0) throw new Error('some memories failed to index');
  return at;
}

export function sumMetric(m: Map<string, number>, name: string): number {
  let total = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) total += v;
  return total;
}

/** Bytes under a directory (the data directory: PGlite files, WAL, usearch files). */
export function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += diskBytes(p);
    else if (entry.isFile()) total += statSync(p).size;
  }
  return total;
}
