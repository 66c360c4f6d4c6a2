/**
 * The chart without Helm, from the command line (`npm run deploy:render -- …`):
 *
 *   tsx test/deploy/render.ts [-f values.yaml]… [--name ml] [--namespace ns]
 *       print the manifests, as `helm template` would
 *   tsx test/deploy/render.ts --validate FILE
 *       validate every manifest in FILE (e.g. `helm template` output) against the schemas
 *   tsx test/deploy/render.ts --compare FILE [-f values.yaml]… [--name ml] [--namespace ns]
 *       render with the same values and check FILE (from `helm template`) has the same
 *       manifests: proves this renderer and Helm agree
 *
 * Exit status 1 when validation or comparison fails.
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { defaultRelease, mergeValues, renderChart, renderChartText, type Values } from './chart.js';
import { schemaSource, validateManifest } from './validate.js';

interface Options {
  valueFiles: string[];
  name: string;
  namespace: string;
  validate?: string;
  compare?: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { valueFiles: [], name: defaultRelease.name, namespace: defaultRelease.namespace };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '-f' || arg === '--values') opts.valueFiles.push(next());
    else if (arg === '--name') opts.name = next();
    else if (arg === '--namespace' || arg === '-n') opts.namespace = next();
    else if (arg === '--validate') opts.validate = next();
    else if (arg === '--compare') opts.compare = next();
    else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

function readManifests(file: string): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS();
    return value && typeof value === 'object' ? [value as Record<string, unknown>] : [];
  });
}

const id = (doc: Record<string, unknown>) =>
  `${doc.kind}/${(doc.metadata as { name?: string } | undefined)?.name ?? '?'}`;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const overrides = opts.valueFiles.reduce<Values>(
    (acc, file) => mergeValues(acc, (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Values),
    {},
  );
  const release = { ...defaultRelease, name: opts.name, namespace: opts.namespace };

  if (opts.validate) {
    let failed = 0;
    const docs = readManifests(opts.validate);
    for (const doc of docs) {
      const problems = validateManifest(doc);
      for (const p of problems) process.stderr.write(`${id(doc)} ${p.path}: ${p.message}\n`);
      if (problems.length > 0) failed++;
    }
    process.stdout.write(`${docs.length - failed} valid, ${failed} invalid (${schemaSource})\n`);
    return failed === 0;
  }

  if (opts.compare) {
    const theirs = new Map(readManifests(opts.compare).map((d) => [id(d), d]));
    const ours = new Map((await renderChart(overrides, release)).manifests.map((m) => [id(m.doc), m.doc]));
    let differences = 0;
    for (const key of new Set([...theirs.keys(), ...ours.keys()])) {
      const a = theirs.get(key);
      const b = ours.get(key);
      if (!a || !b) {
        process.stderr.write(`${key}: only in ${a ? opts.compare : 'this renderer'}\n`);
        differences++;
      } else if (!isDeepStrictEqual(a, b)) {
        process.stderr.write(`${key}: differs\n  helm: ${JSON.stringify(a)}\n  here: ${JSON.stringify(b)}\n`);
        differences++;
      }
    }
    process.stdout.write(`${ours.size} manifests compared, ${differences} differences\n`);
    return differences === 0;
  }

  process.stdout.write(await renderChartText(overrides, release));
  return true;
}

main().then(
  // The Go runtime in WebAssembly keeps no handle open, but exit explicitly all the same.
  (ok) => process.exit(ok ? 0 : 1),
  (err: unknown) => {
    process.stderr.write(`render: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
