import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../../config.js';

export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** The settings TLS to PostgreSQL reads (the same names as in src/config.ts). */
export interface PostgresTlsSettings {
  DATABASE_URL: string;
  DATABASE_SSLMODE?: SslMode;
  DATABASE_CA_FILE?: string;
  DATABASE_CLIENT_CERT_FILE?: string;
  DATABASE_CLIENT_KEY_FILE?: string;
}

export interface PostgresConnection {
  /** The URL without its TLS parameters (node-postgres would otherwise apply its own reading of them). */
  url: string;
  mode?: SslMode;
  /** For node-postgres' `ssl`: false (plain), TLS options, or undefined (nothing configured: plain). */
  ssl?: false | ConnectionOptions;
}

/** The libpq parameters of a connection string that this module reads, and the settings they stand for. */
const URL_PARAMS = {
  sslmode: 'DATABASE_SSLMODE',
  sslrootcert: 'DATABASE_CA_FILE',
  sslcert: 'DATABASE_CLIENT_CERT_FILE',
  sslkey: 'DATABASE_CLIENT_KEY_FILE',
} as const;

function read(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError([
      `${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`,
    ]);
  }
}

/**
 * TLS to PostgreSQL with libpq's meaning of `sslmode`, from DATABASE_SSLMODE / DATABASE_CA_FILE /
 * DATABASE_CLIENT_CERT_FILE / DATABASE_CLIENT_KEY_FILE or the same parameters in DATABASE_URL
 * (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`; a value given both ways must agree).
 *
 * node-postgres reads `sslmode` in a connection string its own way (`require` and `verify-ca`
 * verify the host name like `verify-full`, unless `uselibpqcompat=true`), so these parameters are
 * taken out of the URL and the TLS options are built here:
 * - `disable`: no TLS; a server that only accepts TLS (hostssl) refuses the connection.
 * - `require`: encrypted, the server's certificate not checked (libpq: with a CA file, checked
 *   like `verify-ca`).
 * - `verify-ca`: the certificate must chain to DATABASE_CA_FILE (required); any host name.
 * - `verify-full`: chain and host name (the system's trusted CAs without DATABASE_CA_FILE).
 * `prefer` and `allow` fall back to plain text when TLS fails, so they are refused. A CA or client
 * certificate without a mode means `verify-full`. Files are read and checked here, once, at start:
 * a bad mode or an unreadable file is a ConfigError naming the setting.
 */
export function postgresConnection(s: PostgresTlsSettings): PostgresConnection {
  const url = new URL(s.DATABASE_URL);
  const fromUrl: Partial<Record<(typeof URL_PARAMS)[keyof typeof URL_PARAMS], string>> = {};
  const problems: string[] = [];
  for (const [param, variable] of Object.entries(URL_PARAMS) as [
    keyof typeof URL_PARAMS,
    (typeof URL_PARAMS)[keyof typeof URL_PARAMS],
  ][]) {
    const value = url.searchParams.get(param);
    url.searchParams.delete(param);
    if (value === null) continue;
    fromUrl[variable] = value;
    const setting = s[variable];
    if (setting !== undefined && setting !== value)
      problems.push(`${variable}: ${setting} disagrees with ${param}=${value} in DATABASE_URL`);
  }
  // Our reading of sslmode is libpq's, with or without this flag.
  url.searchParams.delete('uselibpqcompat');
  const rawMode = s.DATABASE_SSLMODE ?? fromUrl.DATABASE_SSLMODE;
  if (rawMode !== undefined && !(SSL_MODES as readonly string[]).includes(rawMode)) {
    problems.push(
      `DATABASE_SSLMODE: ${rawMode} is not supported (one of ${SSL_MODES.join(', ')}; prefer and allow may fall back to plain text)`,
    );
  }
  const caFile = s.DATABASE_CA_FILE ?? fromUrl.DATABASE_CA_FILE;
  const certFile = s.DATABASE_CLIENT_CERT_FILE ?? fromUrl.DATABASE_CLIENT_CERT_FILE;
  const keyFile = s.DATABASE_CLIENT_KEY_FILE ?? fromUrl.DATABASE_CLIENT_KEY_FILE;
  if ((certFile === undefined) !== (keyFile === undefined))
    problems.push(
      'DATABASE_CLIENT_CERT_FILE: DATABASE_CLIENT_CERT_FILE and DATABASE_CLIENT_KEY_FILE go together',
    );
  const mode = (rawMode ?? (caFile || certFile ? 'verify-full' : undefined)) as SslMode | undefined;
  if (mode === 'verify-ca' && !caFile)
    problems.push(
      'DATABASE_CA_FILE: required with DATABASE_SSLMODE=verify-ca (any certificate of a public CA would pass)',
    );
  if (mode === 'disable' && (caFile || certFile))
    problems.push('DATABASE_SSLMODE: disable leaves DATABASE_CA_FILE and the client certificate unused');
  if (problems.length > 0) throw new ConfigError(problems);

  // The URL as given when it had no TLS parameters (URL serialisation may differ in details).
  const plain = url.search === new URL(s.DATABASE_URL).search ? s.DATABASE_URL : url.toString();
  if (mode === undefined) return { url: plain };
  if (mode === 'disable') return { url: plain, mode, ssl: false };

  const ssl: ConnectionOptions = { minVersion: 'TLSv1.2' };
  if (caFile) {
    ssl.ca = read('DATABASE_CA_FILE', caFile);
    try {
      new X509Certificate(ssl.ca);
    } catch (err) {
      throw new ConfigError([
        `DATABASE_CA_FILE: ${caFile} is not a PEM certificate (${(err as Error).message})`,
      ]);
    }
  }
  if (certFile && keyFile) {
    ssl.cert = read('DATABASE_CLIENT_CERT_FILE', certFile);
    ssl.key = read('DATABASE_CLIENT_KEY_FILE', keyFile);
  }
  if (mode === 'require' && !caFile) {
    ssl.rejectUnauthorized = false;
  } else {
    ssl.rejectUnauthorized = true;
    // verify-ca (and require with a CA, as in libpq): the chain is checked, the host name is not.
    if (mode !== 'verify-full') ssl.checkServerIdentity = () => undefined;
  }
  return { url: plain, mode, ssl };
}
