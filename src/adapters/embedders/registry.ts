import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../config.js';
import { createLocalEmbedder } from './local.js';
import { createOpenAIEmbedder } from './openai.js';
import { type Embedder, type EmbeddingModel, modelKey } from './port.js';

/** The built-in model (src/adapters/embedders/local.ts): always available, loaded on first use. */
const BUILT_IN: EmbeddingModel = Object.freeze({ name: 'use-lite', version: '0.2.0', dimensions: 512 });

/** `name@version`; neither part may hold `@` or whitespace. */
export const MODEL_REF = /^([^@\s]+)@([^@\s]+)$/;

const part = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^@\s]+$/, 'must not contain "@" or whitespace');

const modelSpec = z
  .object({
    name: part,
    version: part,
    dimensions: z.number().int().min(1).max(8192),
    /** Base URL of an OpenAI-compatible API, ending in /v1. */
    url: z.url(),
    /** The environment variable holding the bearer token (secrets stay out of the file). */
    apiKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    batchSize: z.number().int().min(1).max(2048).optional(),
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
  })
  .strict();

export type ModelSpec = z.infer<typeof modelSpec>;

/**
 * Reads EMBEDDING_MODELS_FILE: a JSON array of the extra models (OpenAI-compatible endpoints)
 * divisions may be re-embedded with. Every problem is reported with its place in the file.
 */
export function loadModelSpecs(file: string, env: Record<string, string | undefined>): ModelSpec[] {
  const where = `EMBEDDING_MODELS_FILE (${file})`;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`${where}: ${(err as Error).message}`]);
  }
  const parsed = z.array(modelSpec).safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${where}: ${formatPath(i.path)}: ${i.message}`));
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [i, spec] of parsed.data.entries()) {
    const key = modelKey(spec);
    if (seen.has(key)) problems.push(`${where}: [${i}]: ${key} is listed twice`);
    seen.add(key);
    if (spec.apiKeyEnv && !env[spec.apiKeyEnv])
      problems.push(`${where}: [${i}].apiKeyEnv: ${spec.apiKeyEnv} is not set`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed.data;
}

const formatPath = (path: PropertyKey[]) =>
  path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '') || '(file)';

export interface EmbedderRegistryOptions {
  /** The configured embedder (EMBEDDER…): the model of divisions that name none. */
  default: Embedder;
  specs?: ModelSpec[];
  env?: Record<string, string | undefined>;
  /** Defaults for extra models that do not set their own. */
  timeoutMs: number;
  batchSize: number;
  /** Wraps every embedder the registry creates (e.g. tracing). */
  wrap?: (embedder: Embedder) => Embedder;
}

/**
 * Every model this service can embed with: the configured default, the built-in model, and the
 * models of EMBEDDING_MODELS_FILE. Embedders are created on first use and cached, so a model no
 * division uses costs nothing (the built-in weights load only when asked for).
 */
export function createEmbedderRegistry(opts: EmbedderRegistryOptions) {
  const models = new Map<string, EmbeddingModel>();
  const specs = new Map<string, ModelSpec>();
  const defaultKey = modelKey(opts.default.model);
  models.set(defaultKey, opts.default.model);
  if (!models.has(modelKey(BUILT_IN))) models.set(modelKey(BUILT_IN), BUILT_IN);
  for (const spec of opts.specs ?? []) {
    const key = modelKey(spec);
    if (key === defaultKey) {
      throw new ConfigError([`EMBEDDING_MODELS_FILE: ${key} is the configured EMBEDDER model; list it once`]);
    }
    models.set(key, Object.freeze({ name: spec.name, version: spec.version, dimensions: spec.dimensions }));
    specs.set(key, spec);
  }
  const created = new Map<string, Promise<Embedder>>([[defaultKey, Promise.resolve(opts.default)]]);

  async function create(key: string): Promise<Embedder> {
    const wrap = opts.wrap ?? ((e: Embedder) => e);
    const spec = specs.get(key);
    if (!spec) return wrap(await createLocalEmbedder());
    return wrap(
      createOpenAIEmbedder({
        url: spec.url,
        model: spec.name,
        version: spec.version,
        dimensions: spec.dimensions,
        apiKey: spec.apiKeyEnv ? opts.env?.[spec.apiKeyEnv] : undefined,
        timeoutMs: spec.timeoutMs ?? opts.timeoutMs,
        batchSize: spec.batchSize ?? opts.batchSize,
      }),
    );
  }

  return {
    default: opts.default,
    /** Every model, the default first. */
    list(): EmbeddingModel[] {
      return [...models.values()];
    },
    /** The model a `name@version` key names, or undefined when this service has no such model. */
    find(key: string): EmbeddingModel | undefined {
      return models.get(key);
    },
    /** The embedder of a known model (created once). Throws for a model this service does not have. */
    get(model: Pick<EmbeddingModel, 'name' | 'version'>): Promise<Embedder> {
      const key = modelKey(model);
      if (!models.has(key)) return Promise.reject(new Error(`no embedding model ${key} is configured`));
      let p = created.get(key);
      if (!p) {
        p = create(key).catch((err: unknown) => {
          created.delete(key); // let a later call try again
          throw err;
        });
        created.set(key, p);
      }
      return p;
    },
    /** Closes the embedders this registry created (not the default, which its owner closes). */
    async close() {
      for (const [key, p] of created) {
        if (key === defaultKey) continue;
        await p.then((e) => e.close()).catch(() => undefined);
      }
      created.clear();
    },
  };
}

export type EmbedderRegistry = ReturnType<typeof createEmbedderRegistry>;
