import { describe, expect, it } from 'vitest';
import { postgresConnection } from '../../src/adapters/db/tls.js';
import { ConfigError, loadConfig } from '../../src/config.js';

const URL_ = 'postgres://app@db.example:5432/memory';

const problems = (fn: () => unknown): string[] => {
  try {
    fn();
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
};

describe('TLS settings for PostgreSQL', () => {
  it('nothing configured: the URL as given, no TLS options (plain, as before)', () => {
    expect(postgresConnection({ DATABASE_URL: URL_ })).toEqual({ url: URL_ });
  });

  it('takes the libpq parameters out of the URL so node-postgres does not apply its own reading', () => {
    const c = postgresConnection({
      DATABASE_URL: `${URL_}?sslmode=require&application_name=ml&uselibpqcompat=true`,
    });
    expect(c.url).toBe(`${URL_}?application_name=ml`);
    expect(c.mode).toBe('require');
    expect(c.ssl).toMatchObject({ rejectUnauthorized: false });
  });

  it('disable is plain text, explicitly', () => {
    expect(postgresConnection({ DATABASE_URL: URL_, DATABASE_SSLMODE: 'disable' }).ssl).toBe(false);
  });

  it('refuses modes that may fall back to plain text, and unknown ones', () => {
    expect(problems(() => postgresConnection({ DATABASE_URL: `${URL_}?sslmode=prefer` }))).toEqual([
      'DATABASE_SSLMODE: prefer is not supported (one of disable, require, verify-ca, verify-full; prefer and allow may fall back to plain text)',
    ]);
    expect(problems(() => loadConfig({ DATABASE_URL: URL_, DATABASE_SSLMODE: 'verify_full' }))).toEqual([
      'DATABASE_SSLMODE: must be one of disable, require, verify-ca, verify-full',
    ]);
  });

  it('verify-ca needs a CA file; a setting and a URL parameter that disagree are refused', () => {
    expect(problems(() => postgresConnection({ DATABASE_URL: URL_, DATABASE_SSLMODE: 'verify-ca' }))).toEqual(
      [
        'DATABASE_CA_FILE: required with DATABASE_SSLMODE=verify-ca (any certificate of a public CA would pass)',
      ],
    );
    expect(
      problems(() =>
        postgresConnection({ DATABASE_URL: `${URL_}?sslmode=require`, DATABASE_SSLMODE: 'verify-full' }),
      ),
    ).toEqual(['DATABASE_SSLMODE: verify-full disagrees with sslmode=require in DATABASE_URL']);
  });

  it('client certificate and key go together; TLS settings need DATABASE_URL', () => {
    expect(problems(() => loadConfig({ DATABASE_URL: URL_, DATABASE_CLIENT_CERT_FILE: '/c.pem' }))).toEqual([
      'DATABASE_CLIENT_CERT_FILE: DATABASE_CLIENT_CERT_FILE and DATABASE_CLIENT_KEY_FILE go together',
    ]);
    expect(problems(() => loadConfig({ DATABASE_SSLMODE: 'require' }))).toEqual([
      'DATABASE_SSLMODE: needs DATABASE_URL (PGlite has no connection)',
    ]);
  });

  it('verify-full without a CA file trusts the system CAs and checks the host name', () => {
    const { ssl } = postgresConnection({ DATABASE_URL: URL_, DATABASE_SSLMODE: 'verify-full' });
    expect(ssl).toEqual({ minVersion: 'TLSv1.2', rejectUnauthorized: true });
  });
});
