import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { createEmbedderRegistry, loadModelSpecs } from '../../src/adapters/embedders/registry.js';
import { ConfigError } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'ml-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
const fileWith = (content: string) => {
  const file = join(dir, `models-${++files}.json`);
  writeFileSync(file, content);
  return file;
};
const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
};

const remote = {
  name: 'nomic-embed-text',
  version: 'v1.5',
  dimensions: 768,
  url: 'http://127.0.0.1:11434/v1',
};
const configured: Embedder = {
  model: { name: 'use-lite', version: '0.2.0', dimensions: 512 },
  embed: async () => [],
  close: async () => {},
};

describe('EMBEDDING_MODELS_FILE', () => {
  it('reads a list of OpenAI-compatible models', () => {
    const specs = loadModelSpecs(fileWith(JSON.stringify([{ ...remote, apiKeyEnv: 'NOMIC_KEY' }])), {
      NOMIC_KEY: 'secret',
    });
    expect(specs).toEqual([{ ...remote, apiKeyEnv: 'NOMIC_KEY' }]);
  });

  it('names the file and the place of every problem', () => {
    expect(problems(() => loadModelSpecs(fileWith('{not json'), {}))[0]).toMatch(
      /^EMBEDDING_MODELS_FILE \(.+\): /,
    );
    const bad = problems(() =>
      loadModelSpecs(
        fileWith(JSON.stringify([{ ...remote, url: 'nowhere', dimensions: 0, name: 'a@b', extra: true }])),
        {},
      ),
    );
    expect(bad.some((p) => p.includes('[0].url'))).toBe(true);
    expect(bad.some((p) => p.includes('[0].dimensions'))).toBe(true);
    expect(bad.some((p) => p.includes('[0].name: must not contain "@"'))).toBe(true);
    expect(bad.some((p) => p.includes('extra'))).toBe(true);
    expect(problems(() => loadModelSpecs(fileWith(JSON.stringify([remote, remote])), {}))).toEqual([
      expect.stringContaining('[1]: nomic-embed-text@v1.5 is listed twice'),
    ]);
    expect(
      problems(() => loadModelSpecs(fileWith(JSON.stringify([{ ...remote, apiKeyEnv: 'MISSING_KEY' }])), {})),
    ).toEqual([expect.stringContaining('[0].apiKeyEnv: MISSING_KEY is not set')]);
  });

  it('knows the configured model, the built-in one and the listed ones, and nothing else', async () => {
    const registry = createEmbedderRegistry({
      default: configured,
      specs: [remote],
      timeoutMs: 1000,
      batchSize: 8,
    });
    expect(registry.list().map((m) => `${m.name}@${m.version}`)).toEqual([
      'use-lite@0.2.0',
      'nomic-embed-text@v1.5',
    ]);
    expect(registry.find('nomic-embed-text@v1.5')?.dimensions).toBe(768);
    expect(registry.find('ghost@1')).toBeUndefined();
    expect(await registry.get(configured.model)).toBe(configured);
    const created = await registry.get(remote);
    expect(created.model).toEqual({ name: remote.name, version: remote.version, dimensions: 768 });
    expect(await registry.get(remote)).toBe(created); // cached
    await expect(registry.get({ name: 'ghost', version: '1' })).rejects.toThrow('no embedding model ghost@1');
    expect(() =>
      createEmbedderRegistry({
        default: configured,
        specs: [{ ...remote, name: 'use-lite', version: '0.2.0' }],
        timeoutMs: 1000,
        batchSize: 8,
      }),
    ).toThrow(ConfigError);
    await registry.close();
  });
});
