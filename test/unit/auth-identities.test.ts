import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILT_IN_ROLES, loadIdentities, parseIdentities } from '../../src/auth/identities.js';

const dir = mkdtempSync(join(tmpdir(), 'ml-identities-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('identities', () => {
  it('maps certificate CNs to scopes through roles, built-in and declared', () => {
    const file = join(dir, 'ok.json');
    writeFileSync(
      file,
      JSON.stringify({
        roles: { archivist: ['memory:read', 'audit:read'] },
        services: {
          billing: { roles: ['writer'], divisions: ['default', 'sales'], manifestSignatureId: 'm-billing' },
          ops: { roles: ['archivist', 'deleter'], divisions: '*' },
        },
      }),
    );
    const ids = loadIdentities(file);
    const billing = ids.services.get('billing')!;
    expect([...billing.scopes].sort()).toEqual(['memory:read', 'memory:write']);
    expect(billing.divisions).toEqual(['default', 'sales']);
    expect(billing.manifestSignatureId).toBe('m-billing');
    const ops = ids.services.get('ops')!;
    expect([...ops.scopes].sort()).toEqual(['audit:read', 'memory:delete', 'memory:read']);
    expect(ops.divisions).toBe('*');
    expect(ids.services.get('intruder')).toBeUndefined();
  });

  it('has built-in roles when the file declares none', () => {
    const ids = parseIdentities({ services: { a: { roles: ['admin'], divisions: ['x'] } } });
    expect(Object.keys(BUILT_IN_ROLES)).toEqual(
      expect.arrayContaining(['reader', 'writer', 'deleter', 'auditor', 'legal', 'admin']),
    );
    expect([...ids.services.get('a')!.scopes]).toEqual(['admin']);
    expect([...ids.roles.get('legal')!]).toContain('legal-hold:write');
  });

  it('names the bad entry: unknown scope, unknown role, bad shape', () => {
    expect(() =>
      parseIdentities({ roles: { oops: ['memory:read', 'memory:everything'] }, services: {} }, 'ids.json'),
    ).toThrow(/ids\.json[\s\S]*roles\.oops: unknown scope "memory:everything"/);
    expect(() => parseIdentities({ services: { billing: { roles: ['writter'], divisions: '*' } } })).toThrow(
      /services\.billing\.roles: unknown role "writter"/,
    );
    expect(() => parseIdentities({ services: { billing: { roles: [], divisions: '*' } } })).toThrow(
      /services\.billing\.roles/,
    );
    expect(() => parseIdentities({ services: { billing: { roles: ['reader'], divisions: 'all' } } })).toThrow(
      /services\.billing\.divisions/,
    );
    expect(() =>
      parseIdentities({ services: { billing: { roles: ['reader'], divisions: '*', division: 'x' } } }),
    ).toThrow(/services\.billing/);
    expect(() => parseIdentities({})).toThrow(/services/);
  });

  it('says which file cannot be read or parsed', () => {
    expect(() => loadIdentities(join(dir, 'missing.json'))).toThrow(/missing\.json[\s\S]*ENOENT/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(() => loadIdentities(bad)).toThrow(/bad\.json[\s\S]*not valid JSON/);
  });
});
