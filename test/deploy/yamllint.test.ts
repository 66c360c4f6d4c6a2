import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chartDir, renderChartText, repoRoot, scenarios } from './chart.js';

/**
 * yamllint (Debian package `yamllint`; not an npm package) over the chart's YAML sources, the
 * rendered manifests of every test scenario and the CI workflow, with deploy/yamllint.yaml.
 * Skipped, saying so, where yamllint is not installed.
 */
const yamllint = spawnSync('yamllint', ['--version'], { encoding: 'utf8' });
const available = yamllint.status === 0;
if (!available) {
  process.stderr.write(
    'yamllint is not installed: skipping the yamllint checks (apt-get install yamllint to run them)\n',
  );
}

const config = join(repoRoot, 'deploy/yamllint.yaml');
const dir = mkdtempSync(join(tmpdir(), 'memory-layer-yamllint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function lint(args: string[]): string {
  try {
    execFileSync('yamllint', ['--strict', '--format', 'parsable', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return '';
  } catch (err) {
    return (err as { stdout?: string }).stdout || String(err);
  }
}

describe.skipIf(!available)('yamllint', () => {
  it('finds nothing in the chart sources, this config and the workflow', () => {
    const files = [
      join(chartDir, 'Chart.yaml'),
      join(chartDir, 'values.yaml'),
      join(chartDir, 'files/alerts.yaml'),
      config,
      join(repoRoot, '.github/workflows/ci.yml'),
    ];
    expect(lint(['-c', config, ...files])).toBe('');
  });

  it('finds nothing in the rendered manifests of every scenario', async () => {
    const files: string[] = [];
    for (const [i, values] of Object.values(scenarios).entries()) {
      const file = join(dir, `scenario-${i}.yaml`);
      writeFileSync(file, await renderChartText(values));
      files.push(file);
    }
    // Rendered output holds single long strings (the dashboard JSON, probe scripts).
    const rendered = `{extends: ${JSON.stringify(config)}, rules: {line-length: disable}}`;
    expect(lint(['-d', rendered, ...files])).toBe('');
  });

  it('is not vacuous: it reports a broken file', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'a: 1\na: 2\nb:   [1,2]   \n');
    expect(lint(['-c', config, file])).toMatch(/key-duplicates/);
  });
});
