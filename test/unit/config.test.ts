import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('config', () => {
  it('has working defaults for the embedded start', () => {
    const c = loadConfig({});
    expect(c.PORT).toBe(8080);
    expect(c.HOST).toBe('127.0.0.1');
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.EMBEDDER).toBe('local');
    expect(c.VECTOR_INDEX).toBe('auto');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('names every bad variable instead of guessing', () => {
    try {
      loadConfig({ PORT: 'eighty', VECTOR_INDEX: 'faiss', DATABASE_URL: 'mysql://x' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toContain('PORT');
      expect(msg).toContain('VECTOR_INDEX');
      expect(msg).toContain('DATABASE_URL');
    }
  });

  it('requires the endpoint settings for the OpenAI-compatible embedder', () => {
    expect(() => loadConfig({ EMBEDDER: 'openai' })).toThrow(/EMBEDDER_URL/);
    const c = loadConfig({
      EMBEDDER: 'openai',
      EMBEDDER_URL: 'http://127.0.0.1:11434/v1',
      EMBEDDER_MODEL: 'nomic-embed-text',
      EMBEDDER_DIMENSIONS: '768',
    });
    expect(c.EMBEDDER_DIMENSIONS).toBe(768);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).PORT).toBe(8080);
  });
});
