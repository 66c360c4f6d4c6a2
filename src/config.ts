import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Every setting the service reads, from environment variables. Parsed once at start and frozen;
 * an invalid value stops the process with a message naming the variable.
 */
const schema = z
  .object({
    PORT: int(0, 65535).default(8080),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    DATABASE_SCHEMA: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier')
      .optional(),
    /**
     * TLS to PostgreSQL, with libpq's meaning (src/adapters/db/tls.ts); also readable from
     * DATABASE_URL's `sslmode`, `sslrootcert`, `sslcert`, `sslkey`. `prefer`/`allow` are refused.
     */
    DATABASE_SSLMODE: z
      .enum(['disable', 'require', 'verify-ca', 'verify-full'], {
        error: 'must be one of disable, require, verify-ca, verify-full',
      })
      .optional(),
    DATABASE_CA_FILE: z.string().min(1).optional(),
    DATABASE_CLIENT_CERT_FILE: z.string().min(1).optional(),
    DATABASE_CLIENT_KEY_FILE: z.string().min(1).optional(),
    /** Unset: `info` for the service, `warn` for one-shot CLI commands (only warnings on stderr). */
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),

    EMBEDDER: z.enum(['local', 'openai']).default('local'),
    EMBEDDER_URL: z.url().optional(),
    EMBEDDER_MODEL: z.string().min(1).optional(),
    EMBEDDER_MODEL_VERSION: z.string().min(1).optional(),
    EMBEDDER_DIMENSIONS: int(1, 8192).optional(),
    EMBEDDER_API_KEY: z.string().min(1).optional(),
    EMBEDDER_BATCH_SIZE: int(1, 2048).default(32),
    /**
     * Index jobs a worker claims at once. Texts among them are embedded EMBEDDER_BATCH_SIZE at a
     * time; memories that came with vectors (imports) are indexed all together, which is what
     * makes an import's indexing keep up with COPY.
     */
    INDEX_BATCH_SIZE: int(1, 5_000).default(256),
    /**
     * Batches one worker works on at once: with 2, one batch is embedded while the previous one is
     * written, so the model is not idle during writes.
     */
    INDEX_LANES: int(1, 8).default(2),
    EMBEDDER_TIMEOUT_MS: int(100, 600_000).default(30_000),
    /** JSON list of extra models (OpenAI-compatible endpoints) divisions can be re-embedded with. */
    EMBEDDING_MODELS_FILE: z.string().min(1).optional(),
    /** Re-embedding throttle: texts per batch, and a pause between batches. */
    REEMBED_BATCH_SIZE: int(1, 2048).default(32),
    REEMBED_PAUSE_MS: int(0, 600_000).default(100),

    VECTOR_INDEX: z.enum(['auto', 'pgvector', 'usearch']).default('auto'),
    /**
     * How usearch stores vectors: f32 (as given) or f16 (half the memory, builds faster, recall@10
     * 0.9985 against 1.000). Each kind has its own directory under DATA_DIR, so a change rebuilds
     * the index from PostgreSQL at the next start.
     */
    USEARCH_QUANTIZATION: z.enum(['f32', 'f16']).default('f16'),
    /**
     * `on`: this process keeps its in-process vector index (usearch) equal to PostgreSQL by following
     * the change feed (src/indexing/vector-follower.ts), so several API replicas and separate
     * workers can share one database; a worker-only process then keeps no index. No effect with
     * pgvector, which every process already shares.
     */
    VECTOR_INDEX_FOLLOW: z
      .enum(['on', 'off'])
      .default('off')
      .transform((v) => v === 'on'),
    /** How often a following replica reads the change feed (one small statement when nothing changed). */
    VECTOR_FOLLOW_POLL_MS: int(10, 60_000).default(200),
    /** /readyz fails when the replica's index is older than this (its lag, memory_layer_replica_lag_seconds). */
    VECTOR_FOLLOW_MAX_LAG_MS: int(1_000, 3_600_000).default(30_000),
    /**
     * Weight of each session neighbour in a memory's indexed vector (v + w·(v_prev + v_next));
     * 0: own vectors only. A change applies to memories indexed afterwards: `index rebuild` applies
     * it to all.
     */
    VECTOR_CONTEXT_WEIGHT: z.coerce.number().min(0).max(4).default(0.5),
    /**
     * Hybrid search: fusion of standard scores (`score`), of min-max normalised scores (`minmax`)
     * or of weighted reciprocal ranks (`rrf`); src/search/fusion.ts says why `score`.
     */
    SEARCH_FUSION: z.enum(['score', 'minmax', 'rrf']).default('score'),
    /** Share of the keyword retriever in score fusion; the vector retriever gets the rest. */
    SEARCH_KEYWORD_WEIGHT: z.coerce.number().min(0).max(1).default(0.65),
    /** Pseudo-relevance feedback: expand keyword queries with words of their best hits (src/search/feedback.ts). */
    SEARCH_FEEDBACK: z
      .enum(['on', 'off'])
      .default('off')
      .transform((v) => v === 'on'),

    AUTH_MODE: z.enum(['dev', 'enforce']).optional(),
    TLS_CERT: z.string().min(1).optional(),
    TLS_KEY: z.string().min(1).optional(),
    TLS_CLIENT_CA: z.string().min(1).optional(),
    IDENTITIES_FILE: z.string().min(1).optional(),
    JWT_PUBLIC_KEYS_FILE: z.string().min(1).optional(),
    JWKS_FILE: z.string().min(1).optional(),
    JWT_ISSUER: z.string().min(1).optional(),
    JWT_AUDIENCE: z.string().min(1).optional(),
    JWT_MAX_TTL_SECONDS: int(1, 86_400).default(3_600),

    AUDIT_SIGNING_KEY_FILE: z.string().min(1).optional(),
    AUDIT_SIGN_INTERVAL_MS: int(1_000, 86_400_000).default(60_000),
    AUDIT_SINK: z.enum(['none', 'nats']).default('none'),
    NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
    AUDIT_SUBJECT: z.string().min(1).default('memory-layer.audit'),
    /** Reads recorded in the audit trail: every read of memory content, only reads of personal data, or none. */
    ACCESS_AUDIT: z.enum(['all', 'pii', 'off']).default('all'),
    /** How often recorded reads are chained into the audit trail (also when a batch fills, and at shutdown). */
    ACCESS_AUDIT_FLUSH_MS: int(50, 600_000).default(1_000),
    /** Recorded reads that start a flush at once; also the most chained in one transaction. */
    ACCESS_AUDIT_BATCH: int(1, 10_000).default(500),

    DEFAULT_TTL_DAYS: int(0, 36_500).default(365),
    PURGE_GRACE_DAYS: z.coerce.number().min(0).max(3_650).default(30),
    SWEEP_INTERVAL_MS: int(1_000, 86_400_000).default(60_000),

    MAX_TEXT_BYTES: int(1, 10 * 1024 * 1024).default(32 * 1024),
    BODY_LIMIT_BYTES: int(1024, 512 * 1024 * 1024).default(16 * 1024 * 1024),
    /** Bulk imports (POST /v1/memories/import, `ingest`): the whole body, and lines per transaction. */
    MAX_IMPORT_BYTES: int(1024, 64 * 1024 * 1024 * 1024).default(4 * 1024 * 1024 * 1024),
    IMPORT_CHUNK_LINES: int(1, 20_000).default(2_000),
    WAIT_TIMEOUT_MS: int(0, 600_000).default(10_000),

    OBJECT_STORE: z.enum(['local', 's3']).default('local'),
    S3_ENDPOINT: z.url().optional(),
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_BUCKET: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name')
      .optional(),
    S3_FORCE_PATH_STYLE: z
      .enum(['true', 'false'])
      .transform((v) => v === 'true')
      .default(false),
    S3_ACCESS_KEY_ID: z.string().min(1).optional(),
    S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    /** CA bundle (PEM) trusted for an https S3_ENDPOINT, instead of the system's. */
    S3_CA_FILE: z.string().min(1).optional(),
    /** Server-side encryption asked of S3 on every write: S3-managed keys, or a KMS key. */
    S3_SSE: z.enum(['AES256', 'aws:kms'], { error: 'must be AES256 or aws:kms' }).optional(),
    S3_SSE_KMS_KEY_ID: z.string().min(1).optional(),
    ARTIFACT_MAX_BYTES: int(1, 5 * 1024 * 1024 * 1024).default(50 * 1024 * 1024),
    /** Largest document (`POST /v1/documents`); larger ones get 413 and nothing is stored. */
    MAX_DOCUMENT_BYTES: int(1, 256 * 1024 * 1024).default(10 * 1024 * 1024),
    /** Longest chunk a document is split into (characters, heading context included). */
    DOCUMENT_CHUNK_CHARS: int(200, 8_000).default(1_500),
    /** Characters a chunk repeats from the end of the previous chunk of the same section. */
    DOCUMENT_CHUNK_OVERLAP: int(0, 2_000).default(150),
    AUDIT_ARCHIVE_RETENTION_DAYS: int(0, 36_500).default(2_555),
    /**
     * Envelope encryption of what is written outside PostgreSQL (artifacts, snapshot parts, audit
     * archives): the key directory, one wrapped data key per division. Unset: encryption is off.
     */
    KEY_DIR: z.string().min(1).optional(),
    /** The key-encryption key (32 bytes raw, hex or base64) that wraps the data keys; or KEK itself. */
    KEK_FILE: z.string().min(1).optional(),
    /**
     * During a KEK rotation only: the old key-encryption key, which still opens the key files not
     * re-wrapped yet (`memory-layer keys rewrap`). Removed once the rotation is done.
     */
    KEK_PREVIOUS_FILE: z.string().min(1).optional(),

    WORKER_POLL_MS: int(10, 60_000).default(500),
    /** `worker` processes serve /healthz, /readyz and /metrics here, on HOST (0: no HTTP at all). */
    WORKER_HTTP_PORT: int(0, 65535).default(9464),
    JOB_MAX_ATTEMPTS: int(1, 100).default(5),
    JOB_BACKOFF_MS: int(0, 3_600_000).default(1_000),
    JOB_LEASE_MS: int(1_000, 3_600_000).default(30_000),
    /** Index jobs waiting or running past which writes are refused with 503 (0: no limit). */
    MAX_QUEUE_BACKLOG: int(0, 1_000_000_000).default(100_000),
    QUEUE_RETRY_AFTER_SECONDS: int(1, 3_600).default(5),

    // OpenTelemetry tracing, by the standard variables (src/platform/tracing.ts says when it is on).
    // The SDK reads the rest itself (sampler, batching, OTLP headers, timeout, compression).
    OTEL_SDK_DISABLED: z
      .string()
      .optional()
      .transform((v) => v?.toLowerCase() === 'true'),
    OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).optional(),
    OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
    OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json']).optional(),
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(['http/protobuf', 'http/json']).optional(),
    OTEL_SERVICE_NAME: z.string().min(1).optional(),
    OTEL_RESOURCE_ATTRIBUTES: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.DOCUMENT_CHUNK_OVERLAP * 2 > c.DOCUMENT_CHUNK_CHARS) {
      ctx.addIssue({
        code: 'custom',
        path: ['DOCUMENT_CHUNK_OVERLAP'],
        message: 'must be at most half of DOCUMENT_CHUNK_CHARS',
      });
    }
    const tls = [c.TLS_CERT, c.TLS_KEY].filter((v) => v !== undefined).length;
    if (tls === 1)
      ctx.addIssue({ code: 'custom', path: ['TLS_CERT'], message: 'TLS_CERT and TLS_KEY go together' });
    if (c.TLS_CLIENT_CA !== undefined && tls !== 2) {
      ctx.addIssue({ code: 'custom', path: ['TLS_CLIENT_CA'], message: 'needs TLS_CERT and TLS_KEY' });
    }
    if (c.TLS_CLIENT_CA !== undefined && c.IDENTITIES_FILE === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['IDENTITIES_FILE'],
        message: 'required with TLS_CLIENT_CA (maps certificate CNs to roles)',
      });
    }
    if ((c.JWT_PUBLIC_KEYS_FILE || c.JWKS_FILE) && (!c.JWT_ISSUER || !c.JWT_AUDIENCE)) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_AUDIENCE'],
        message: 'JWT_ISSUER and JWT_AUDIENCE are required with token keys',
      });
    }
    if (c.OBJECT_STORE === 's3' && c.S3_BUCKET === undefined) {
      ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'required when OBJECT_STORE=s3' });
    }
    if ((c.S3_ACCESS_KEY_ID === undefined) !== (c.S3_SECRET_ACCESS_KEY === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['S3_ACCESS_KEY_ID'],
        message: 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together',
      });
    }
    if (c.DATABASE_URL === undefined) {
      for (const key of ['DATABASE_SSLMODE', 'DATABASE_CA_FILE', 'DATABASE_CLIENT_CERT_FILE'] as const) {
        if (c[key] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: 'needs DATABASE_URL (PGlite has no connection)',
          });
      }
    }
    if ((c.DATABASE_CLIENT_CERT_FILE === undefined) !== (c.DATABASE_CLIENT_KEY_FILE === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['DATABASE_CLIENT_CERT_FILE'],
        message: 'DATABASE_CLIENT_CERT_FILE and DATABASE_CLIENT_KEY_FILE go together',
      });
    }
    if (c.OBJECT_STORE !== 's3') {
      for (const key of ['S3_CA_FILE', 'S3_SSE', 'S3_SSE_KMS_KEY_ID'] as const) {
        if (c[key] !== undefined)
          ctx.addIssue({ code: 'custom', path: [key], message: 'only with OBJECT_STORE=s3' });
      }
    }
    if (c.S3_CA_FILE !== undefined && !c.S3_ENDPOINT?.startsWith('https://')) {
      ctx.addIssue({ code: 'custom', path: ['S3_CA_FILE'], message: 'needs an https:// S3_ENDPOINT' });
    }
    if (c.S3_SSE === 'aws:kms' && c.S3_SSE_KMS_KEY_ID === undefined) {
      ctx.addIssue({ code: 'custom', path: ['S3_SSE_KMS_KEY_ID'], message: 'required with S3_SSE=aws:kms' });
    }
    if (c.S3_SSE_KMS_KEY_ID !== undefined && c.S3_SSE !== 'aws:kms') {
      ctx.addIssue({ code: 'custom', path: ['S3_SSE_KMS_KEY_ID'], message: 'only with S3_SSE=aws:kms' });
    }
    if (c.KEK_FILE !== undefined && c.KEY_DIR === undefined) {
      ctx.addIssue({ code: 'custom', path: ['KEY_DIR'], message: 'required with KEK_FILE' });
    }
    if (c.KEK_PREVIOUS_FILE !== undefined && c.KEY_DIR === undefined) {
      ctx.addIssue({ code: 'custom', path: ['KEY_DIR'], message: 'required with KEK_PREVIOUS_FILE' });
    }
    if (c.EMBEDDER === 'openai') {
      for (const key of ['EMBEDDER_URL', 'EMBEDDER_MODEL', 'EMBEDDER_DIMENSIONS'] as const) {
        if (c[key] === undefined)
          ctx.addIssue({ code: 'custom', path: [key], message: 'required when EMBEDDER=openai' });
      }
    }
  });

export type Config = Readonly<z.infer<typeof schema>> & {
  /**
   * Every variable as read (empty ones dropped), for settings that name another variable: the
   * `apiKeyEnv` of EMBEDDING_MODELS_FILE's models. Not enumerable, so that a config that is
   * logged or copied does not carry secrets it does not name.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
};

/** Whether callers can authenticate at all (client certificates or token keys configured). */
export const hasCredentials = (c: Config) =>
  Boolean(c.TLS_CLIENT_CA || c.JWT_PUBLIC_KEYS_FILE || c.JWKS_FILE);

/**
 * AUTH_MODE when not given: `dev` only when no credentials are configured and the server listens
 * on loopback (the two-command quick start); `enforce` otherwise.
 */
export function authMode(c: Config): 'dev' | 'enforce' {
  if (c.AUTH_MODE) return c.AUTH_MODE;
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(c.HOST);
  return !hasCredentials(c) && loopback ? 'dev' : 'enforce';
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment (or any record of strings, for tests). Empty strings count as unset. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`));
  }
  const config = parsed.data as z.infer<typeof schema> & Pick<Config, 'env'>;
  Object.defineProperty(config, 'env', { value: Object.freeze({ ...present }), enumerable: false });
  return Object.freeze(config);
}
