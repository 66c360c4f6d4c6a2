import { describe, expect, it } from 'vitest';
import { withoutAddresses } from '../../src/platform/addresses.js';

describe('withoutAddresses (public /readyz and confined dead-letter views)', () => {
  it('replaces URLs and IPv4 addresses, keeping the reason', () => {
    expect(withoutAddresses('embedder http://10.0.0.7:8080/v1/embeddings answered 500')).toBe(
      'embedder <address> answered 500',
    );
    expect(withoutAddresses('connect ECONNREFUSED 10.1.2.3:5432')).toBe('connect ECONNREFUSED <address>');
    expect(withoutAddresses('postgres://app:secret@db.internal:5432/memory timed out')).toBe(
      '<address> timed out',
    );
  });

  it('leaves messages without addresses alone', () => {
    expect(withoutAddresses('backlog 5 at limit 5')).toBe('backlog 5 at limit 5');
    expect(withoutAddresses('degraded: status 500 (at 2026-01-01T00:00:00.000Z)')).toBe(
      'degraded: status 500 (at 2026-01-01T00:00:00.000Z)',
    );
  });
});
