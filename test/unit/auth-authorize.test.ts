import { describe, expect, it } from 'vitest';
import { agentScope, mayAccessDivision, requireScopes, resolveDivision } from '../../src/auth/authorize.js';
import type { Caller, Scope } from '../../src/auth/caller.js';
import { httpStatusOf } from '../../src/http/problem.js';
import { AppError } from '../../src/platform/errors.js';

const agent: Caller = {
  kind: 'agent',
  id: 'support-bot',
  agentId: 'support-bot',
  divisions: ['sales'],
  scopes: new Set<Scope>(['memory:read']),
};
const service = (divisions: Caller['divisions'], scopes: Scope[] = ['memory:read']): Caller => ({
  kind: 'service',
  id: 'billing',
  divisions,
  scopes: new Set(scopes),
});
const dev: Caller = { kind: 'dev', id: 'dev', divisions: '*', scopes: new Set<Scope>(['admin']) };

function forbidden(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect(httpStatusOf(err as AppError)).toBe(403);
    expect((err as AppError).code).toBe('forbidden');
    return err as AppError;
  }
  throw new Error('expected a 403');
}

describe('requireScopes', () => {
  it('passes with the scopes, names the missing one otherwise', () => {
    expect(() => requireScopes(agent, ['memory:read'])).not.toThrow();
    expect(() => requireScopes(agent, [])).not.toThrow();
    expect(forbidden(() => requireScopes(agent, ['memory:read', 'memory:delete'])).message).toContain(
      'memory:delete',
    );
  });

  it('treats admin as every scope', () => {
    expect(() => requireScopes(service('*', ['admin']), ['pii:read', 'audit:read', 'admin'])).not.toThrow();
    expect(() => requireScopes(dev, ['legal-hold:write'])).not.toThrow();
  });
});

describe('resolveDivision', () => {
  it("confines agents to their token's division, without looking the other one up", () => {
    expect(resolveDivision(agent, undefined)).toBe('sales');
    expect(resolveDivision(agent, 'sales')).toBe('sales');
    const a = forbidden(() => resolveDivision(agent, 'finance'));
    const b = forbidden(() => resolveDivision(agent, 'no-such-division'));
    // The same answer whether the division exists or not.
    expect(a.message).toBe(b.message);
    expect(a.message).not.toContain('finance');
  });

  it('lets services use their listed divisions only', () => {
    const two = service(['default', 'sales']);
    expect(resolveDivision(two, undefined)).toBe('default');
    expect(resolveDivision(two, 'sales')).toBe('sales');
    forbidden(() => resolveDivision(two, 'finance'));

    const one = service(['sales']);
    expect(resolveDivision(one, undefined)).toBe('sales');
    forbidden(() => resolveDivision(one, 'default'));

    const notDefault = service(['sales', 'support']);
    forbidden(() => resolveDivision(notDefault, undefined));

    const all = service('*');
    expect(resolveDivision(all, undefined)).toBe('default');
    expect(resolveDivision(all, 'anything')).toBe('anything');
  });

  it('lets dev use any division, default first', () => {
    expect(resolveDivision(dev, undefined)).toBe('default');
    expect(resolveDivision(dev, 'sales')).toBe('sales');
  });

  it('mayAccessDivision agrees', () => {
    expect(mayAccessDivision(agent, 'sales')).toBe(true);
    expect(mayAccessDivision(agent, 'default')).toBe(false);
    expect(mayAccessDivision(service(['a']), 'a')).toBe(true);
    expect(mayAccessDivision(service(['a']), 'b')).toBe(false);
    expect(mayAccessDivision(service('*'), 'b')).toBe(true);
    expect(mayAccessDivision(dev, 'b')).toBe(true);
  });
});

describe('agentScope', () => {
  it('confines agent tokens to their agent, and nobody else', () => {
    expect(agentScope(agent)).toBe('support-bot');
    expect(agentScope({ ...agent, agentId: undefined })).toBe('support-bot');
    expect(agentScope(service('*'))).toBeUndefined();
    expect(agentScope(dev)).toBeUndefined();
  });
});
