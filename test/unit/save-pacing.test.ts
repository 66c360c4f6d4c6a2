import { describe, expect, it } from 'vitest';
import { createSavePacer } from '../../src/indexing/save-pacing.js';

describe('createSavePacer', () => {
  it('runs a cheap save every interval, and waits nine times as long as a slow one took', async () => {
    const pacer = createSavePacer(1_000);
    expect(pacer.due()).toBe(true);
    await pacer.run(async () => undefined);
    const cheapEnd = Date.now();
    expect(pacer.due(cheapEnd + 500)).toBe(false);
    expect(pacer.due(cheapEnd + 1_000)).toBe(true);

    // A save taking at least 200 ms: the next one waits at least 1.8 s after it (a tenth of the time).
    await pacer.run(() => new Promise((resolve) => setTimeout(resolve, 200)));
    const slowEnd = Date.now();
    const took = pacer.lastTookMs();
    expect(took).toBeGreaterThanOrEqual(190);
    expect(pacer.due(slowEnd + 1_000)).toBe(false);
    expect(pacer.due(slowEnd + took * 9 - 100)).toBe(false);
    expect(pacer.due(slowEnd + took * 9 + 1)).toBe(true);
  });

  it('times a save that fails too, and passes its error on', async () => {
    const pacer = createSavePacer(0);
    await expect(
      pacer.run(async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(pacer.lastTookMs()).toBeGreaterThanOrEqual(90);
    expect(pacer.due()).toBe(false);
  });
});
