import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { chartDir, defaultValues, type Manifest, renderChart, repoRoot } from '../deploy/chart.js';

export const runbookDir = join(repoRoot, 'docs/runbooks');

export interface RunbookCommand {
  file: string;
  /** 1-based line of the command's first line in the file. */
  line: number;
  /** The command as written, continuation lines joined. */
  text: string;
  /** In a ```sh pending block: a command that does not exist yet. */
  pending: boolean;
}

/** README first (its conventions define what the others use), then the runbooks by name. */
export function runbookFiles(): string[] {
  const files = readdirSync(runbookDir).filter((f) => f.endsWith('.md'));
  return files.sort((a, b) => (a === 'README.md' ? -1 : b === 'README.md' ? 1 : a.localeCompare(b)));
}

/**
 * The commands of a runbook: every line of its ```sh blocks (and ```sh pending blocks), comments
 * and blank lines dropped, `\` continuations joined. Shell code in blocks of another language is
 * refused, so that no command escapes the test by its fence.
 */
export function parseRunbook(file: string, dir = runbookDir): RunbookCommand[] {
  const lines = readFileSync(join(dir, file), 'utf8').split('\n');
  const out: RunbookCommand[] = [];
  let block: 'sh' | 'pending' | 'other' | undefined;
  let pendingText = '';
  let start = 0;
  for (const [i, raw] of lines.entries()) {
    const fence = raw.match(/^\s*```\s*(.*)$/);
    if (fence) {
      if (block !== undefined) {
        block = undefined;
        continue;
      }
      const info = fence[1].trim();
      if (['bash', 'shell', 'console', 'zsh', 'shell-session'].includes(info.split(/\s+/)[0])) {
        throw new Error(`${file}:${i + 1}: commands go in \`\`\`sh blocks (found \`\`\`${info})`);
      }
      if (info === 'sh') block = 'sh';
      else if (info === 'sh pending') block = 'pending';
      else if (info.startsWith('sh')) throw new Error(`${file}:${i + 1}: unknown block \`\`\`${info}`);
      else block = 'other';
      continue;
    }
    if (block !== 'sh' && block !== 'pending') continue;
    const text = raw.trim();
    if (pendingText === '' && (text === '' || text.startsWith('#'))) continue;
    if (pendingText === '') start = i + 1;
    if (text.endsWith('\\')) {
      pendingText += `${text.slice(0, -1).trimEnd()} `;
      continue;
    }
    out.push({ file, line: start, text: pendingText + text, pending: block === 'pending' });
    pendingText = '';
  }
  if (block !== undefined) throw new Error(`${file}: unclosed code block`);
  return out;
}

/** Every `memory_layer_…` name in the runbooks' text (prefixes inside grep patterns end in `_`). */
export function metricNamesIn(text: string): string[] {
  return [...new Set(text.match(/memory_layer_[a-z0-9_]+/g) ?? [])];
}

export function alertNamesIn(text: string): string[] {
  return [...new Set(text.match(/\bMemoryLayer[A-Z][A-Za-z]+/g) ?? [])];
}

export interface AlertRule {
  alert: string;
  annotations: { runbook: string };
}

export function alertRules(): AlertRule[] {
  const file = parseYaml(readFileSync(join(chartDir, 'files/alerts.yaml'), 'utf8')) as {
    spec: { groups: { rules: AlertRule[] }[] };
  };
  return file.spec.groups.flatMap((g) => g.rules);
}

// ---- Commands for systems a test cannot reach (Kubernetes, Helm, Vault): they run through fake
// binaries that record their arguments, and the arguments are checked against the chart.

export const RELEASE = 'memory-layer';
export const NAMESPACE = 'memory-layer';

let rendered: Promise<Manifest[]> | undefined;
/** The chart with its default values, as release `memory-layer` in namespace `memory-layer`. */
export const chartManifests = () => {
  rendered ??= renderChart({}, { name: RELEASE, namespace: NAMESPACE, revision: 1, isInstall: true }).then(
    (r) => r.manifests,
  );
  return rendered;
};

interface Container {
  name: string;
  ports?: { containerPort: number }[];
}
const nameOf = (m: Manifest) => (m.doc.metadata as { name: string }).name;
const containersOf = (m: Manifest) =>
  (m.doc.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers;

/** The rendered object a kubectl `kind/name` argument names, or a reason it names none. */
async function object(ref: string): Promise<Manifest | string> {
  const [kind, name] = ref.split('/');
  const kinds: Record<string, string> = { deployment: 'Deployment', service: 'Service', job: 'Job' };
  if (!kinds[kind] || !name) return `${ref}: not a deployment/, service/ or job/ reference`;
  const m = (await chartManifests()).find((x) => x.doc.kind === kinds[kind] && nameOf(x) === name);
  return m ?? `${ref}: the chart renders no ${kinds[kind]} named ${name}`;
}

/** Problems with one recorded kubectl invocation (empty: it names what the chart deploys). */
export async function checkKubectl(argv: string[]): Promise<string[]> {
  const problems: string[] = [];
  if (argv[0] !== '-n' || argv[1] !== NAMESPACE)
    return [`kubectl ${argv.join(' ')}: start with -n ${NAMESPACE}`];
  const [verb, ...all] = argv.slice(2);
  // What follows `--` is the command run in the container, not kubectl's.
  const rest = all.includes('--') ? all.slice(0, all.indexOf('--')) : all;
  const refs = rest.filter((a) => /^[a-z]+\/[a-z0-9-]+$/.test(a));
  const container = rest.includes('-c') ? rest[rest.indexOf('-c') + 1] : undefined;
  const check = async (ref: string, opts: { container?: string; port?: number } = {}) => {
    const m = await object(ref);
    if (typeof m === 'string') return problems.push(m);
    if (
      opts.container &&
      m.doc.kind === 'Deployment' &&
      !containersOf(m).some((c) => c.name === opts.container)
    )
      problems.push(`${ref} has no container ${opts.container}`);
    if (opts.port !== undefined) {
      const ports =
        m.doc.kind === 'Service'
          ? (m.doc.spec as { ports: { port: number }[] }).ports.map((p) => p.port)
          : containersOf(m).flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
      if (!ports.includes(opts.port)) problems.push(`${ref} has no port ${opts.port} (${ports.join(', ')})`);
    }
  };
  switch (verb) {
    case 'exec':
    case 'logs':
      if (rest.includes('-c') && !container) problems.push(`${verb}: -c without a container`);
      await check(refs[0] ?? '(none)', { container });
      break;
    case 'port-forward':
      await check(refs[0] ?? '(none)', { port: Number(rest.at(-1)?.split(':')[1]) });
      break;
    case 'rollout':
      if (!['restart', 'status'].includes(rest[0]))
        problems.push(`rollout ${rest[0]}: not restart or status`);
      if (refs.length === 0) problems.push('rollout: no deployment');
      for (const ref of refs) await check(ref);
      break;
    case 'scale':
      if (!rest.some((a) => /^--replicas=\d+$/.test(a))) problems.push('scale: no --replicas=N');
      await check(refs[0] ?? '(none)');
      break;
    case 'get':
      await check(refs[0] ?? '(none)');
      break;
    case 'delete': {
      // Only the TLS Secret, which cert-manager re-issues; the chart never renders Secrets.
      const tls = (defaultValues().tls as { secretName: string }).secretName;
      if (rest.join(' ') !== `secret/${tls}`) problems.push(`delete ${rest.join(' ')}: only secret/${tls}`);
      break;
    }
    default:
      problems.push(`kubectl ${verb}: a verb this test does not check`);
  }
  return problems;
}

/** Problems with a recorded `vault kv patch PATH KEY=@FILE…`: the chart's secret path and keys. */
export function checkVault(argv: string[]): string[] {
  const secrets = defaultValues().secrets as {
    vault: { path: string };
    env: string[];
    files: { key: string }[];
  };
  // KV version 2: the chart reads `<mount>/data/<path>`, the CLI writes `<mount>/<path>`.
  const cliPath = secrets.vault.path.replace('/data/', '/');
  const keys = [...secrets.env, 'EMBEDDER_API_KEY', ...secrets.files.map((f) => f.key)];
  if (argv[0] !== 'kv' || argv[1] !== 'patch') return [`vault ${argv.join(' ')}: only \`vault kv patch\``];
  const problems =
    argv[2] === cliPath ? [] : [`vault path ${argv[2]}: the chart reads ${secrets.vault.path}`];
  for (const kv of argv.slice(3)) {
    const [key, value] = kv.split('=');
    if (!keys.includes(key)) problems.push(`vault key ${key}: the chart reads ${keys.join(', ')}`);
    // Secrets from files (`@file`), never on the command line, where shell history keeps them.
    if (!value?.startsWith('@')) problems.push(`vault ${key}: give the value as @file`);
  }
  return problems;
}

/** Problems with a recorded `helm upgrade RELEASE CHART …`: this chart, its values' keys. */
export function checkHelm(argv: string[]): string[] {
  if (argv[0] !== 'upgrade') return [`helm ${argv[0]}: only \`helm upgrade\``];
  const problems: string[] = [];
  if (argv[1] !== RELEASE) problems.push(`helm release ${argv[1]}: the runbooks use ${RELEASE}`);
  if (!existsSync(join(repoRoot, argv[2] ?? '', 'Chart.yaml'))) problems.push(`${argv[2]}: not the chart`);
  if (argv[argv.indexOf('--namespace') + 1] !== NAMESPACE) problems.push(`--namespace ${NAMESPACE} missing`);
  const values = defaultValues();
  for (const [i, a] of argv.entries()) {
    if (a !== '--set' && a !== '--set-file') continue;
    const key = argv[i + 1]?.split('=')[0] ?? '';
    let v: unknown = values;
    for (const part of key.split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
    if (v === undefined) problems.push(`${a} ${key}: values.yaml has no such key`);
  }
  return problems;
}

/**
 * A fake `kubectl`, `vault` or `helm`: appends its arguments to $FAKE_LOG as one JSON line. The
 * fake kubectl also carries out `exec … -- CMD`: it runs CMD here, with the image's paths mapped
 * to this machine (/app, the image's working directory: the repository; /vault/secrets:
 * $FAKE_VAULT_DIR) — as the pod would.
 */
export const fakeBinary = (tool: string) => `#!/usr/bin/env node
const { appendFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const argv = process.argv.slice(2);
appendFileSync(process.env.FAKE_LOG, JSON.stringify({ tool: ${JSON.stringify(tool)}, argv }) + '\\n');
const dash = argv.indexOf('--');
if (${JSON.stringify(tool)} === 'kubectl' && argv[2] === 'exec' && dash > 0) {
  const [cmd, ...args] = argv
    .slice(dash + 1)
    .map((a) => a.replaceAll('/vault/secrets', process.env.FAKE_VAULT_DIR).replaceAll('/app/', process.env.REPO_ROOT + '/'));
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: process.env.REPO_ROOT });
  process.exit(r.status ?? 1);
}
`;
