import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { kekFingerprint, parseKek } from '../../src/adapters/keys/directory.js';
import { type App, createApp } from '../../src/app.js';
import { BUNDLE_FORMAT } from '../../src/audit/bundle.js';
import { createAuditSigner, GENERATED_KEY_FILE } from '../../src/audit/signer.js';
import { loadConfig } from '../../src/config.js';
import { systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { createMetrics } from '../../src/platform/metrics.js';
import { startServer, startWorker } from '../../src/start/server.js';
import { repoRoot } from '../deploy/chart.js';
import { localEmbedder } from '../helpers/app.js';
import { freePort } from '../helpers/cli.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import {
  alertNamesIn,
  alertRules,
  checkHelm,
  checkKubectl,
  checkVault,
  fakeBinary,
  metricNamesIn,
  parseRunbook,
  type RunbookCommand,
  runbookDir,
  runbookFiles,
} from '../helpers/runbooks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * "Every command in the runbooks is exercised by a test": each command line of every ```sh block
 * in docs/runbooks/*.md is run here, in page order, by bash, against one prepared installation
 * (dead jobs to retry, a memory to hold, an agent, an audit trail and a signing key to rotate):
 *
 * - `memory-layer …` runs the real CLI (bin/memory-layer.js) in a child process;
 * - `curl … "$API/…"` and `"$WORKER/…"` reach a real listening API (`startServer`) or worker
 *   (`startWorker`) over HTTP; with the embedded database the test stops them before each CLI
 *   command, as the runbooks tell operators to (PGlite is single-process);
 * - `kubectl`, `vault` and `helm` run as fakes that record their arguments, which are checked
 *   against the chart (the objects, containers and ports exist; the Vault path and keys are the
 *   ones the chart reads). The fake kubectl carries out `exec … -- CMD` here, so the README's
 *   in-cluster `memory-layer` function really runs the CLI. Settings an operator changes by hand
 *   between two commands (a new key in Vault, then a restart) are applied by those fakes' hooks.
 *
 * Each command must exit 0 and print what the page promises (KNOWN below). A command that
 * matches no KNOWN entry fails the test. Blocks marked ```sh pending are listed as skipped.
 */

interface Ctx {
  file: string;
  /** The command being run, as written. */
  lastLine: string;
  workdir: string;
  env: Record<string, string>;
  /** Placeholder values (<NAME> in the runbooks). */
  values: Record<string, string>;
  /** Dead jobs, oldest first, as the prepared installation and the commands so far left them. */
  deadJobs: number[];
  /** The key id of the signing key the installation is configured with now. */
  kid(): Promise<string>;
  /** Applies a settings change as a restart would: running servers are restarted. */
  restart(): Promise<void>;
  /** Makes the installation an empty one sharing the object store and signing key (restore). */
  emptyInstallation(): Promise<void>;
}

interface Known {
  pattern: RegExp;
  /** What the output must show (stdout; for curl, the answer). */
  expect: RegExp | ((out: string, ctx: Ctx) => void | Promise<void>);
  after?: (out: string, ctx: Ctx) => void | Promise<void>;
  before?: (ctx: Ctx) => void | Promise<void>;
  /** Run this instead of the line itself (the line is a definition). */
  run?: (text: string) => string;
}

const json = (out: string) => JSON.parse(out) as Record<string, unknown>;
const kidIn = (out: string) => out.match(/^key id \(kid\): (\S+)$/m)?.[1];

const KNOWN: Known[] = [
  // README: the in-cluster wrapper, defined then used (through the fake kubectl's exec).
  {
    pattern: /^memory-layer\(\) \{ kubectl .* memory-layer "\$@"; \}$/,
    run: (text) => `${text}\nmemory-layer migrate`,
    expect: /^migrations are up to date$/m,
  },
  { pattern: /^kubectl -n /, expect: () => undefined, after: (_, ctx) => restartOnRollout(ctx) },
  {
    pattern: /^vault kv patch /,
    expect: () => undefined,
    after: (_, ctx) => {
      // What Vault then delivers: the new key file where AUDIT_SIGNING_KEY_FILE points.
      const file = ctx.lastLine.match(/AUDIT_SIGNING_KEY_PEM=@(\S+)/)?.[1];
      if (file) ctx.env.AUDIT_SIGNING_KEY_FILE = join(ctx.workdir, file);
    },
  },
  { pattern: /^helm upgrade /, expect: () => undefined },

  // Health and metrics.
  { pattern: /^curl -s "\$(API|WORKER)\/readyz"$/, expect: /"status":"(ready|degraded)".*"database":"ok"/ },
  { pattern: /^curl -s "\$API\/metrics" \| grep /, expect: /^(# TYPE )?memory_layer_\w+/m },
  { pattern: /^curl -s "\$WORKER\/metrics" \| grep /, expect: /^memory_layer_memories_indexed_total \d+$/m },

  // Vector index.
  {
    pattern: /^memory-layer search "<QUERY>" --division <DIVISION> --mode (vector|keyword) -k 5$/,
    expect: (out, ctx) => {
      expect(out.split('\n')[0]).toContain(ctx.values.QUERY);
      expect(out).toMatch(/^[1-5] hits, 0 pending, [\d.]+ ms$/m);
    },
  },
  {
    pattern: /^memory-layer index rebuild$/,
    expect: /^rebuilt the (pgvector|usearch) index: [1-9]\d* vectors$/m,
  },

  // Dead-letter queue.
  {
    pattern: /^memory-layer jobs dead$/,
    expect: (out, ctx) => {
      if (ctx.deadJobs.length === 0) return void expect(out).toBe('no dead jobs\n');
      expect(out).toMatch(new RegExp(`^${ctx.deadJobs[0]}\tindex\tmemory=\\S+\tattempts=1\tembed: `, 'm'));
      expect(out.trim().split('\n')).toHaveLength(ctx.deadJobs.length);
    },
  },
  {
    pattern: /^memory-layer jobs retry <JOB_ID>$/,
    expect: (out, ctx) => expect(out).toBe(`job ${ctx.deadJobs[0]} queued again\n`),
    after: (_, ctx) => void ctx.deadJobs.shift(),
  },
  {
    pattern: /^curl -s "\$API\/v1\/jobs\/dead\?limit=100"$/,
    expect: (out, ctx) =>
      expect((json(out).items as { id: number }[]).map((j) => j.id)).toEqual(ctx.deadJobs),
  },
  {
    pattern: /^curl -s -X POST "\$API\/v1\/jobs\/dead\/<JOB_ID>\/retry"$/,
    expect: (out, ctx) => expect(json(out)).toEqual({ id: ctx.deadJobs[0], status: 'queued' }),
    after: (_, ctx) => void ctx.deadJobs.shift(),
  },
  {
    pattern: /^memory-layer jobs dead \| cut -f1 \| xargs -n1 memory-layer jobs retry$/,
    expect: (out, ctx) => expect(out).toBe(ctx.deadJobs.map((id) => `job ${id} queued again\n`).join('')),
    after: (_, ctx) => {
      ctx.deadJobs = [];
    },
  },

  // Memories, holds, audit.
  {
    pattern: /^curl -s "\$API\/v1\/memories\/<MEMORY_ID>\?divisionId=<DIVISION>"$/,
    expect: (out, ctx) => {
      expect(json(out)).toMatchObject({ id: ctx.values.MEMORY_ID, divisionId: ctx.values.DIVISION });
      // After the dead-letter retries the memory is indexed; in a dispute it is not held yet.
      if (ctx.file === 'dead-letter-queue.md') expect(json(out).status).toBe('indexed');
      if (ctx.file === 'legal-hold-ttl.md') expect(json(out).legalHold).toBe(false);
    },
  },
  {
    pattern: /^curl -s "\$API\/v1\/audit\?divisionId=<DIVISION>&limit=1000" \| grep -o /,
    expect: (out, ctx) => {
      const events = out.trim().split('\n').map(json);
      expect(events.every((e) => e.resourceId === ctx.values.MEMORY_ID)).toBe(true);
      expect(events.map((e) => e.action)).toContain('memory.create');
    },
  },
  { pattern: /^curl -s "\$API\/v1\/legal-holds\?divisionId=<DIVISION>"$/, expect: /^\{"items":\[/ },
  {
    pattern:
      /^curl -s -X PUT "\$API\/v1\/memories\/<MEMORY_ID>\/legal-hold\?divisionId=<DIVISION>" .*"hold": (true|false)/,
    expect: (out, ctx) =>
      expect(json(out)).toMatchObject({
        id: ctx.values.MEMORY_ID,
        legalHold: ctx.lastLine.includes('"hold": true'),
      }),
  },
  {
    pattern: /^curl -s -X POST "\$API\/v1\/legal-holds" /,
    expect: (out, ctx) =>
      expect(json(out)).toMatchObject({ divisionId: ctx.values.DIVISION, agentId: ctx.values.AGENT_ID }),
    after: (out, ctx) => {
      ctx.values.HOLD_ID = String(json(out).id);
    },
  },
  {
    pattern: /^curl -s -X PATCH "\$API\/v1\/memories\/<MEMORY_ID>\?divisionId=<DIVISION>" .*"expiresAt": /,
    expect: (out) => expect(json(out).expiresAt).toBe('2030-01-01T00:00:00.000Z'),
  },
  {
    pattern: /^curl -s -X DELETE "\$API\/v1\/legal-holds\/<HOLD_ID>\?divisionId=<DIVISION>"$/,
    expect: (out, ctx) => {
      expect(json(out)).toMatchObject({ id: Number(ctx.values.HOLD_ID), releasedBy: 'dev' });
      expect(json(out).releasedAt).toEqual(expect.any(String));
    },
  },
  {
    pattern: /^curl -s -X POST "\$API\/v1\/exports" .* -o bundle\.json$/,
    expect: async (_, ctx) => {
      const bundle = json(readFileSync(join(ctx.workdir, 'bundle.json'), 'utf8'));
      expect(bundle).toMatchObject({ format: BUNDLE_FORMAT, divisionId: ctx.values.DIVISION });
      expect((bundle.signedHead as { keyId: string }).keyId).toBe(await ctx.kid());
    },
  },
  {
    pattern: /^curl -s "\$API\/v1\/audit\/head\?divisionId=<DIVISION>"$/,
    expect: async (out, ctx) => expect(json(out).signedHead).toMatchObject({ keyId: await ctx.kid() }),
  },
  { pattern: /^memory-layer audit verify bundle\.json( --key \S+)?$/, expect: /^bundle\.json: verified$/m },
  { pattern: /^memory-layer migrate$/, expect: /^migrations are up to date$/m },

  // The audit signing key.
  {
    pattern: /^memory-layer keys show$/,
    expect: async (out, ctx) => expect(kidIn(out)).toBe(await ctx.kid()),
  },
  {
    pattern: /^memory-layer keys show --jwk > trusted\.jwk$/,
    expect: async (_, ctx) =>
      expect(json(readFileSync(join(ctx.workdir, 'trusted.jwk'), 'utf8'))).toMatchObject({
        kty: 'OKP',
        crv: 'Ed25519',
        kid: await ctx.kid(),
      }),
  },
  {
    pattern: /^memory-layer keys rotate --out audit-signing-key-new\.pem$/,
    expect: async (out, ctx) => {
      const kid = kidIn(out);
      expect(kid).toBeDefined();
      expect(kid).not.toBe(await ctx.kid());
      expect(statSync(join(ctx.workdir, 'audit-signing-key-new.pem')).mode & 0o777).toBe(0o600);
      const pub = json(readFileSync(join(ctx.workdir, 'audit-signing-key-new.public.jwk'), 'utf8'));
      expect(pub).toMatchObject({ kid });
      expect(pub).not.toHaveProperty('d');
    },
  },
  {
    pattern: /^memory-layer audit sign$/,
    expect: async (out, ctx) =>
      expect(out).toMatch(new RegExp(`division heads are signed by key ${await ctx.kid()}$`, 'm')),
  },
  {
    pattern: /^memory-layer audit archive$/,
    expect: /: seq \d+-\d+ \(\d+ events\) sha256 |^nothing new to archive$/m,
  },

  // Encryption keys (key-compromise.md).
  {
    pattern: /^memory-layer keys list$/,
    // The fingerprint of the KEK the installation is configured with now.
    expect: (out, ctx) =>
      expect(out).toMatch(
        new RegExp(
          `^key-encryption key: ${kekFingerprint(parseKek(readFileSync(ctx.env.KEK_FILE), 'KEK_FILE'))}$`,
          'm',
        ),
      ),
  },
  {
    pattern: /^memory-layer keys new-kek --out kek-new$/,
    expect: (out, ctx) => {
      const file = join(ctx.workdir, 'kek-new');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(out).toContain(`fingerprint: ${kekFingerprint(parseKek(readFileSync(file), 'kek-new'))}`);
    },
  },
  {
    pattern: /^KEK_PREVIOUS_FILE="\$KEK_FILE" KEK_FILE="\$PWD\/kek-new" memory-layer keys rewrap$/,
    expect: /^re-wrapped [1-9]\d* key file\(s\) with kek-[0-9a-f]+; 0 already wrapped by it; /m,
    // Then the processes are restarted with the new KEK alone (step 5).
    after: (_, ctx) => {
      ctx.env.KEK_FILE = join(ctx.workdir, 'kek-new');
    },
  },
  {
    pattern: /^memory-layer keys rotate-data --division <DIVISION>$/,
    expect: /^\S+: data key version \d+ -> \d+ \(new writes use v\d+\)$/m,
    after: (out, ctx) => {
      ctx.values.OLD_VERSION = out.match(/data key version (\d+) ->/)?.[1] ?? '';
    },
  },
  {
    pattern: /^memory-layer keys reencrypt --division <DIVISION>$/,
    expect: (out, ctx) =>
      expect(out).toMatch(
        new RegExp(`^${ctx.values.DIVISION}: run \\S+ to v\\d+ completed ([1-9]\\d*)/\\1$`, 'm'),
      ),
  },
  {
    pattern: /^memory-layer keys reencrypt --status$/,
    expect: (out, ctx) =>
      expect(out).toMatch(new RegExp(`^${ctx.values.DIVISION}: run \\S+ to v\\d+ completed`, 'm')),
  },
  {
    pattern: /^memory-layer keys retire-data --division <DIVISION> --version <OLD_VERSION>$/,
    expect: (out, ctx) =>
      expect(out).toContain(`${ctx.values.DIVISION}: data key version ${ctx.values.OLD_VERSION} retired`),
  },

  // Backup, restore, index load from a snapshot, re-embedding (postgresql-failover-restore.md).
  {
    pattern: /^memory-layer backup$/,
    expect: /^snapshot \S+ written$/m,
    after: (out, ctx) => {
      ctx.values.SNAPSHOT_ID = out.match(/^snapshot (\S+) written$/m)?.[1] ?? '';
    },
  },
  {
    pattern: /^memory-layer backup --list$/,
    expect: (out, ctx) => expect(out).toContain(ctx.values.SNAPSHOT_ID),
  },
  {
    pattern: /^memory-layer restore <SNAPSHOT_ID> --key trusted\.jwk$/,
    // A restore fills an empty installation: from here on the installation is the restored one.
    before: (ctx) => ctx.emptyInstallation(),
    expect: /^restored snapshot \S+: checksums and audit chains verified$/m,
  },
  {
    pattern: /^memory-layer index rebuild --from-snapshot <SNAPSHOT_ID>$/,
    expect: /^loaded the (pgvector|usearch) index from snapshot \S+: \d+ vectors$/m,
  },
  {
    // With the built-in model as the target every division already uses it; a real move needs a
    // second model in EMBEDDING_MODELS_FILE (an OpenAI-compatible endpoint the test would serve).
    pattern: /^memory-layer reembed --to <MODEL>@<VERSION>$/,
    expect: (out, ctx) =>
      expect(out).toMatch(
        new RegExp(`^default: (already|now) uses ${ctx.values.MODEL}@${ctx.values.VERSION}`, 'm'),
      ),
  },
];

const known = (text: string) => KNOWN.find((k) => k.pattern.test(text));

/** After `kubectl rollout restart`, running processes pick up changed settings, as pods would. */
async function restartOnRollout(ctx: Ctx) {
  if (/ rollout restart /.test(ctx.lastLine)) await ctx.restart();
}

function exported(): Set<string> {
  const names = new Set<string>();
  for (const m of createMetrics().registry.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

const allCommands = () => runbookFiles().flatMap((f) => parseRunbook(f));

describe('runbooks (docs/runbooks)', () => {
  it('name only metrics the service exports and alerts the chart ships; every alert links a runbook that handles it', () => {
    const metrics = exported();
    const alerts = alertRules();
    for (const file of runbookFiles()) {
      const text = readFileSync(join(runbookDir, file), 'utf8');
      for (const name of metricNamesIn(text)) {
        // A name ending in `_` is a prefix inside a grep pattern: some metric must start with it.
        if (name.endsWith('_'))
          expect(
            [...metrics].some((m) => m.startsWith(name)),
            `${file}: ${name}`,
          ).toBe(true);
        else expect(metrics.has(name), `${file}: ${name}`).toBe(true);
      }
      for (const alert of alertNamesIn(text)) {
        expect(
          alerts.map((a) => a.alert),
          `${file}: ${alert}`,
        ).toContain(alert);
      }
    }
    for (const a of alerts) {
      const file = join(repoRoot, a.annotations.runbook);
      expect(existsSync(file), `${a.alert}: ${a.annotations.runbook}`).toBe(true);
      expect(readFileSync(file, 'utf8'), `${a.alert} in ${a.annotations.runbook}`).toContain(a.alert);
    }
    const index = readFileSync(join(runbookDir, 'README.md'), 'utf8');
    for (const file of runbookFiles().filter((f) => f !== 'README.md')) expect(index).toContain(`](${file})`);
  });

  it('hold only commands this test knows how to run', () => {
    const unknown = allCommands()
      .filter((c) => !known(c.text))
      .map((c) => `${c.file}:${c.line}: ${c.text}`);
    expect(
      unknown,
      'add each to KNOWN in test/integration/runbooks.test.ts, with what it must print',
    ).toEqual([]);
  });

  it('has a parser that is not vacuous: it finds the commands, joins continuations, refuses other shells', () => {
    const commands = allCommands();
    expect(commands.filter((c) => !c.pending).length).toBeGreaterThan(40);
    expect(
      commands.some((c) => c.text.startsWith('memory-layer() { kubectl') && c.text.endsWith('; }')),
    ).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'ml-runbook-parse-'));
    try {
      writeFileSync(join(dir, 'x.md'), '```bash\nmemory-layer jobs dead\n```\n');
      expect(() => parseRunbook('x.md', dir)).toThrow(/```sh blocks/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The built-in model, failing every text that contains "poison" (a broken embedder, for a while). */
function flakyEmbedder(real: Embedder): Embedder {
  return {
    model: real.model,
    embed: (texts, signal) =>
      texts.some((t) => t.includes('poison'))
        ? Promise.reject(new Error('embedder unavailable (HTTP 503)'))
        : real.embed(texts, signal),
    close: async () => undefined,
  };
}

/** A command line as an operator's shell runs it. */
function bash(script: string, opts: { env: Record<string, string>; cwd: string }) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('bash', ['-c', script], { ...opts, timeout: 180_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe.each(backends)('every runbook command, run against an installation on %s', (backend) => {
  let root: string;
  let t: TestDatabase | undefined;
  let extra: TestDatabase | undefined;
  let ctx: Ctx;
  let shimDir: string;
  let fakeLog: string;
  let fakeVault: string;
  const ports = { api: 0, worker: 0 };
  const running: { api?: { app: App; stop(): Promise<void> }; worker?: { app: App; stop(): Promise<void> } } =
    {};
  const exclusive = backend === 'pglite';

  const stop = async (kind: 'api' | 'worker') => {
    await running[kind]?.stop();
    running[kind] = undefined;
  };
  /** The API or a worker listening, or (with PGlite) neither, so that the CLI can open the database. */
  async function ensure(need: 'cli' | 'api' | 'worker' | 'none') {
    if (need === 'none') return;
    if (need === 'cli') {
      if (exclusive) await Promise.all([stop('api'), stop('worker')]);
      return;
    }
    if (!running[need]) {
      if (exclusive) await stop(need === 'api' ? 'worker' : 'api');
      const config = loadConfig({
        ...ctx.env,
        LOG_LEVEL: 'silent',
        WORKER_POLL_MS: '50',
        PORT: String(ports.api),
        WORKER_HTTP_PORT: String(ports.worker),
      });
      running[need] =
        need === 'api' ? await startServer(config, { worker: true }) : await startWorker(config);
    }
    // Let retried jobs be indexed before the next command looks ("then watch them drain").
    const { app } = running[need] as { app: App };
    await waitFor(
      async () => {
        const { rows } = await app.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM jobs WHERE status IN ('queued', 'running')",
        );
        return rows[0].n === 0;
      },
      { what: 'the queue to drain', timeoutMs: 60_000, intervalMs: 100 },
    );
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ml-runbooks-'));
    const dataDir = join(root, 'data');
    const workdir = join(root, 'work');
    shimDir = join(root, 'bin');
    fakeVault = join(root, 'vault-secrets');
    fakeLog = join(root, 'fake.log');
    for (const d of [dataDir, workdir, shimDir, fakeVault, join(root, 'curl-home')]) mkdirSync(d);
    ports.api = await freePort();
    ports.worker = await freePort();

    let env: Record<string, string> = { DATA_DIR: dataDir, HOST: '127.0.0.1', LOG_LEVEL: 'error' };
    if (backend === 'postgres') {
      t = await openTestDatabase('postgres');
      env = { ...env, DATABASE_URL: process.env.DATABASE_URL as string, DATABASE_SCHEMA: t.schema as string };
    } else {
      env = { ...env, DATABASE_URL: '' };
    }
    // What Vault delivers to a pod: the fake kubectl's `exec` reads it from here.
    writeFileSync(join(fakeVault, 'DATABASE_URL'), env.DATABASE_URL);

    // The installation: memories (one agentless, to hold), an agent, and four memories whose
    // embedding failed until their jobs were dead-lettered (one attempt each).
    const real = await localEmbedder();
    const app = await createApp(loadConfig({ ...env, JOB_MAX_ATTEMPTS: '1', LOG_LEVEL: 'silent' }), {
      worker: false,
      embedder: flakyEmbedder(real),
      logger: createLogger('silent'),
    });
    app.start();
    const access = systemAccess('runbook-test');
    await app.divisions.createAgent({ actor: 'dev' }, 'default', { id: 'scribe' });
    const query = 'The quarterly planning meeting moved to Thursday afternoon';
    const held = await app.memories.create(access, 'default', {
      text: 'Customer 4411 asked us to keep the renewal notes until the audit closes',
    });
    await app.memories.create(access, 'default', { text: query, tags: ['planning'] });
    await app.memories.create(access, 'default', { text: 'Scribe noted the Lisbon move', agentId: 'scribe' });
    await app.worker.drain();
    const poisoned = [];
    for (const n of [1, 2, 3, 4]) {
      poisoned.push(
        await app.memories.create(access, 'default', { text: `poison pill number ${n} for the embedder` }),
      );
    }
    await app.worker.drain();
    const dead = await app.jobs.listDead(systemAccess('test'), { limit: 10 });
    await app.audit.signChangedHeads();
    await app.close();
    expect(dead).toHaveLength(4);

    for (const tool of ['kubectl', 'vault', 'helm']) {
      writeFileSync(join(shimDir, tool), fakeBinary(tool));
      chmodSync(join(shimDir, tool), 0o755);
    }
    writeFileSync(
      join(shimDir, 'memory-layer'),
      `#!/bin/sh\nexec "${process.execPath}" "${join(repoRoot, 'bin/memory-layer.js')}" "$@"\n`,
    );
    chmodSync(join(shimDir, 'memory-layer'), 0o755);

    baseValues = {
      DIVISION: 'default',
      AGENT_ID: 'scribe',
      QUERY: query,
      MEMORY_ID: held.memory.id,
      // For `reembed --to <MODEL>@<VERSION>` (pending): the built-in model.
      MODEL: 'use-lite',
      VERSION: '0.2.0',
    };
    // Per page, the memory it is about: the dead-letter page retries a poisoned one.
    pageValues['dead-letter-queue.md'] = { MEMORY_ID: poisoned[0].memory.id };
    ctx = {
      file: '',
      lastLine: '',
      workdir,
      env,
      values: { ...baseValues },
      deadJobs: dead.map((j) => j.id),
      async kid() {
        const file = ctx.env.AUDIT_SIGNING_KEY_FILE ?? join(ctx.env.DATA_DIR, GENERATED_KEY_FILE);
        return (await createAuditSigner({ keyFile: file, dataDir: ctx.env.DATA_DIR })).keyId;
      },
      async restart() {
        const was = Object.entries(running)
          .filter(([, r]) => r)
          .map(([k]) => k as 'api' | 'worker');
        for (const k of was) await stop(k);
        for (const k of was) await ensure(k);
      },
      async emptyInstallation() {
        await ensure('cli');
        const fresh = join(root, `restored-${Date.now()}`);
        mkdirSync(fresh);
        // The same object store (local: DATA_DIR/objects) and the same signing key.
        if (existsSync(join(ctx.env.DATA_DIR, 'objects')))
          symlinkSync(join(ctx.env.DATA_DIR, 'objects'), join(fresh, 'objects'));
        if (existsSync(join(ctx.env.DATA_DIR, 'keys')))
          cpSync(join(ctx.env.DATA_DIR, 'keys'), join(fresh, 'keys'), { recursive: true });
        ctx.env = { ...ctx.env, DATA_DIR: fresh };
        if (backend === 'postgres') {
          extra = await openTestDatabase('postgres', { migrate: false });
          ctx.env.DATABASE_SCHEMA = extra.schema as string;
        }
      },
    };
  });

  afterAll(async () => {
    await Promise.all([stop('api'), stop('worker')]);
    await t?.drop();
    await extra?.drop();
    rmSync(root, { recursive: true, force: true });
  });

  /**
   * For the key-compromise page: encryption on (a key directory and a KEK), and an artifact of the
   * page's division encrypted with its data key, for the rotation to move.
   */
  async function withEncryption() {
    await ensure('cli');
    const kek = join(root, 'kek-current');
    writeFileSync(kek, randomBytes(32).toString('hex'), { mode: 0o600 });
    ctx.env = { ...ctx.env, KEY_DIR: join(root, 'key-dir'), KEK_FILE: kek };
    const app = await createApp(loadConfig({ ...ctx.env, LOG_LEVEL: 'silent' }), {
      worker: false,
      embedder: await localEmbedder(),
      logger: createLogger('silent'),
    });
    try {
      await app.artifacts.upload(
        systemAccess('runbook-test'),
        ctx.values.DIVISION,
        Readable.from([Buffer.from('the renewal contract, scanned '.repeat(5000))]),
      );
    } finally {
      await app.close();
    }
  }

  let baseValues: Record<string, string> = {};
  const pageValues: Record<string, Record<string, string>> = {};

  /** Runs one command as the page says, checks its exit code, output and recorded fakes. */
  async function runCommand(c: RunbookCommand) {
    const entry = known(c.text);
    if (!entry) throw new Error(`${c.file}:${c.line}: no KNOWN entry for: ${c.text}`);
    ctx.lastLine = c.text;
    await entry.before?.(ctx);
    const text = c.text.replace(/<([A-Z_]+)>/g, (whole, name: string) => {
      // The oldest dead job left: each retry takes one.
      const v = name === 'JOB_ID' && ctx.deadJobs.length > 0 ? String(ctx.deadJobs[0]) : ctx.values[name];
      if (v === undefined) throw new Error(`${c.file}:${c.line}: no value for ${whole}`);
      return v;
    });
    // A CLI command, possibly with settings for it alone (`KEK_FILE=… memory-layer …`).
    const need = /^([A-Z_]+="[^"]*" )*memory-layer/.test(text)
      ? 'cli'
      : text.includes('$WORKER')
        ? 'worker'
        : text.includes('$API')
          ? 'api'
          : 'none';
    await ensure(need);
    writeFileSync(fakeLog, '');
    const res = await bash(entry.run ? entry.run(text) : text, {
      cwd: ctx.workdir,
      env: {
        ...(process.env as Record<string, string>),
        ...ctx.env,
        PATH: `${shimDir}:${process.env.PATH}`,
        API: `http://127.0.0.1:${ports.api}`,
        WORKER: `http://127.0.0.1:${ports.worker}`,
        // No ~/.curlrc of the machine's (the runbooks put credentials there; dev mode needs none).
        CURL_HOME: join(root, 'curl-home'),
        FAKE_LOG: fakeLog,
        FAKE_VAULT_DIR: fakeVault,
        REPO_ROOT: repoRoot,
      },
    });
    const where = `${c.file}:${c.line}: ${text}`;
    expect(res.code, `${where}\n${res.stderr}${res.stdout}`).toBe(0);
    if (entry.expect instanceof RegExp) expect(res.stdout, where).toMatch(entry.expect);
    else await entry.expect(res.stdout, ctx);
    for (const line of readFileSync(fakeLog, 'utf8').split('\n').filter(Boolean)) {
      const { tool, argv } = JSON.parse(line) as { tool: string; argv: string[] };
      const problems =
        tool === 'kubectl' ? await checkKubectl(argv) : tool === 'vault' ? checkVault(argv) : checkHelm(argv);
      expect(problems, `${where}: ${tool} ${argv.join(' ')}`).toEqual([]);
    }
    await entry.after?.(res.stdout, ctx);
  }

  for (const file of runbookFiles()) {
    const commands = parseRunbook(file);
    it(`${file}: every command runs and prints what the page says`, { timeout: 600_000 }, async () => {
      ctx.file = file;
      ctx.values = { ...baseValues, ...pageValues[file] };
      if (file === 'key-compromise.md') await withEncryption();
      try {
        for (const c of commands.filter((x) => !x.pending)) await runCommand(c);
      } finally {
        // The other pages run on the installation as it was: encryption off.
        delete ctx.env.KEY_DIR;
        delete ctx.env.KEK_FILE;
      }
    });
    for (const c of commands.filter((x) => x.pending)) {
      // Flip the block to ```sh when the command exists: it then runs like the others.
      it.skip(`${file}:${c.line} pending: ${c.text}`, () => undefined);
    }
  }
});
