import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { repoRoot } from './chart.js';

/**
 * The Dockerfile, parsed and linted by dockerfile-ast/dockerfile-utils (the parser and linter of
 * the VS Code Docker language server). There is no Docker engine here; CI builds the image and
 * smoke-tests it (.github/workflows/ci.yml, job `image`).
 */
const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const stages = dockerfile.getFROMs().map((from) => ({
  image: from.getImageName(),
  tag: from.getImageTag(),
  name: from.getBuildStage(),
}));
// Each instruction's text after its keyword, flags included (`--from=deps …`).
const instructions = dockerfile.getInstructions().map((i) => ({
  keyword: i.getKeyword(),
  args: i
    .getTextContent()
    .slice(i.getInstruction().length)
    .replace(/\\\n\s*/g, ' ')
    .trim(),
}));
/** Instructions of the last (runtime) stage. */
const runtime = instructions.slice(instructions.map((i) => i.keyword).lastIndexOf('FROM'));
const args = (keyword: string) => runtime.filter((i) => i.keyword === keyword).map((i) => i.args);

describe('Dockerfile', () => {
  it('lints clean', () => {
    expect(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('builds in two stages and runs on node:20-bookworm-slim', () => {
    expect(stages.map((s) => s.name)).toEqual(['deps', 'runtime']);
    expect(stages[1]).toMatchObject({ image: 'node', tag: '20-bookworm-slim' });
    expect(instructions.find((i) => i.keyword === 'ARG')?.args).toBe('NODE_IMAGE=node:20-bookworm');
  });

  it('installs production dependencies only, from the lock file, and copies no sources of tests or docs', () => {
    const deps = instructions.slice(0, instructions.map((i) => i.keyword).lastIndexOf('FROM'));
    expect(deps.find((i) => i.keyword === 'RUN')?.args).toMatch(/^npm ci --omit=dev\b/);
    expect(args('RUN').join('\n')).not.toMatch(/npm (ci|install)/);
    expect(args('COPY')).toEqual([
      '--from=deps /app/node_modules ./node_modules',
      'package.json package-lock.json ./',
      'bin ./bin',
      'src ./src',
      'migrations ./migrations',
    ]);
    // tsx runs the TypeScript at run time, so it must be a production dependency.
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(pkg.dependencies.tsx).toBeDefined();
    expect(readFileSync(join(repoRoot, 'bin/memory-layer.js'), 'utf8')).toContain("from 'tsx/esm/api'");
  });

  it('runs as uid 10001, listens on 0.0.0.0:8080 (workers also on 9464), keeps data in /data and starts `serve`', () => {
    expect(args('RUN').join('\n')).toMatch(/useradd [^\n]*--uid 10001/);
    expect(args('USER')).toEqual(['10001:10001']);
    const env = args('ENV').join(' ');
    expect(env).toMatch(/\bHOST=0\.0\.0\.0\b/);
    expect(env).toMatch(/\bPORT=8080\b/);
    expect(env).toMatch(/\bDATA_DIR=\/data\b/);
    // The API's port and the worker's health and metrics port, as the service defaults them.
    expect(args('EXPOSE')).toEqual(['8080', '9464']);
    const defaults = loadConfig({});
    expect(args('EXPOSE').map(Number)).toEqual([defaults.PORT, defaults.WORKER_HTTP_PORT]);
    expect(args('VOLUME')).toEqual(['["/data"]']);
    expect(args('ENTRYPOINT')).toEqual(['["node", "bin/memory-layer.js"]']);
    expect(args('CMD')).toEqual(['["serve"]']);
    // USER comes after every RUN, so nothing runs as root at run time.
    const keywords = runtime.map((i) => i.keyword);
    expect(keywords.lastIndexOf('RUN')).toBeLessThan(keywords.indexOf('USER'));
  });

  it('has a .dockerignore that admits only what the image copies', () => {
    const ignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    expect(ignore[0]).toBe('**');
    const admitted = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/(\*\*)?$/, ''));
    expect([...new Set(admitted)].sort()).toEqual([
      'bin',
      'migrations',
      'package-lock.json',
      'package.json',
      'src',
    ]);
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/.env', '**/*.pem']));
  });
});
