/**
 * Benchmark options: `--name value` / `--name=value` on the command line, or `BENCH_NAME` in the
 * environment (the command line wins). Flags without a value are booleans.
 */
export interface BenchOptions {
  sizes: number[];
  /** Measured searches per mode and size (after the warm-up). */
  queries: number;
  warmup: number;
  filteredQueries: number;
  /** Distinct query texts for hybrid/keyword search (cycled through, so their embeddings get cached). */
  hybridTexts: number;
  keywordQueries: number;
  /** Distinct sentences for the built-in model's throughput (raw vs through the API). */
  embedTexts: number;
  /** Items per POST /v1/memories/batch (the API allows 1,000). */
  batch: number;
  /** Import requests in flight at once. */
  concurrency: number;
  /** pgvector (PGlite) runs only for sizes up to this: its HNSW inserts are ~100 rows/s. */
  pgvectorMax: number;
  clusters: number;
  noise: number;
  k: number;
  logLevel: string;
  databaseUrl?: string;
  /** Where sizes run: pglite, postgres or both (default: PGlite, and the server too when --database-url is given). */
  databases: string;
  skipEmbed: boolean;
  skipSearch: boolean;
  /** USEARCH_QUANTIZATION of the servers (f16, the service's default, or f32). */
  usearchQuantization: string;
  out: string;
  seed: number;
}

const DEFAULTS: BenchOptions = {
  sizes: [10_000, 100_000],
  queries: 500,
  warmup: 100,
  filteredQueries: 200,
  hybridTexts: 100,
  keywordQueries: 200,
  embedTexts: 2000,
  batch: 1000,
  concurrency: 2,
  pgvectorMax: 10_000,
  clusters: 200,
  noise: 0.03,
  k: 10,
  logLevel: 'info',
  databases: '',
  skipEmbed: false,
  skipSearch: false,
  usearchQuantization: 'f16',
  out: 'BENCHMARKS.md',
  seed: 1,
};

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (s: string) => `BENCH_${kebab(s).replaceAll('-', '_').toUpperCase()}`;

export function parseOptions(
  argv = process.argv.slice(2),
  env: Record<string, string | undefined> = process.env,
): { options: BenchOptions; given: string[] } {
  const raw = new Map<string, string>();
  for (const key of Object.keys(DEFAULTS)) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') raw.set(kebab(key), v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    if (eq > 0) raw.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) raw.set(arg.slice(2), argv[++i]);
    else raw.set(arg.slice(2), 'true');
  }
  const keys = new Map(Object.keys(DEFAULTS).map((k) => [kebab(k), k]));
  keys.set('database-url', 'databaseUrl');
  const options: Record<string, unknown> = { ...DEFAULTS };
  const given: string[] = [];
  for (const [name, value] of raw) {
    const key = keys.get(name);
    if (!key) throw new Error(`unknown option --${name}`);
    given.push(`--${name} ${value}`);
    const def = (DEFAULTS as unknown as Record<string, unknown>)[key];
    if (Array.isArray(def)) options[key] = value.split(',').map((s) => parseCount(s, name));
    else if (typeof def === 'number') options[key] = Number(value);
    else if (typeof def === 'boolean') options[key] = value !== 'false' && value !== '0';
    else options[key] = value;
    if (typeof def === 'number' && !Number.isFinite(options[key] as number))
      throw new Error(`--${name} must be a number`);
  }
  if (env.BENCH_DATABASE_URL && !raw.has('database-url')) options.databaseUrl = env.BENCH_DATABASE_URL;
  const databases = String(options.databases || (options.databaseUrl ? 'pglite,postgres' : 'pglite')).split(
    ',',
  );
  for (const d of databases) {
    if (d !== 'pglite' && d !== 'postgres') throw new Error(`--databases: unknown database ${d}`);
    if (d === 'postgres' && !options.databaseUrl)
      throw new Error('--databases postgres needs --database-url');
  }
  options.databases = databases.join(',');
  if (!['f32', 'f16'].includes(String(options.usearchQuantization)))
    throw new Error('--usearch-quantization: f32 or f16');
  return { options: options as unknown as BenchOptions, given };
}

/** 10000, 10k, 100_000. */
function parseCount(s: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(k?)$/i.exec(s.trim().replaceAll('_', ''));
  if (!m) throw new Error(`--${name}: cannot read "${s}" as a count`);
  return Math.round(Number(m[1]) * (m[2] ? 1000 : 1));
}
