import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';

export interface HttpsOptions {
  key: Buffer;
  cert: Buffer;
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: 'TLSv1.2';
}

/** Thrown at start when a TLS file is missing or not what it should be; names the variable. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

function read(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(
      `${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
}

function certificate(variable: string, file: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TlsConfigError(`${variable}: ${file} is not a PEM certificate (${(err as Error).message})`);
  }
}

/**
 * Fastify `https` options from TLS_CERT / TLS_KEY (and TLS_CLIENT_CA), or undefined for plain HTTP.
 *
 * With TLS_CLIENT_CA the server asks every client for a certificate and refuses the connection
 * unless one signed by that CA is presented: without a certificate OpenSSL aborts the handshake
 * ("certificate required"); with one that does not verify, Node destroys the socket right after
 * the handshake, before handing it to HTTP. Either way no request, hook or handler ever sees it. The files are read and checked once, here, so a wrong path or a
 * key that does not match the certificate stops the start with the variable named.
 */
export function httpsOptions(config: Config): HttpsOptions | undefined {
  if (!config.TLS_CERT || !config.TLS_KEY) return undefined;
  const cert = read('TLS_CERT', config.TLS_CERT);
  const key = read('TLS_KEY', config.TLS_KEY);
  const leaf = certificate('TLS_CERT', config.TLS_CERT, cert);
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsConfigError(
      `TLS_KEY: ${config.TLS_KEY} is not a PEM private key (${(err as Error).message})`,
    );
  }
  if (!leaf.checkPrivateKey(privateKey))
    throw new TlsConfigError(`TLS_KEY: ${config.TLS_KEY} does not match the certificate in TLS_CERT`);
  if (!config.TLS_CLIENT_CA) {
    return { key, cert, requestCert: false, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
  }
  const ca = read('TLS_CLIENT_CA', config.TLS_CLIENT_CA);
  certificate('TLS_CLIENT_CA', config.TLS_CLIENT_CA, ca);
  return { key, cert, ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' };
}

interface PeerSocket {
  authorized?: boolean;
  getPeerCertificate?: () => { subject?: Record<string, string | string[] | undefined> } | null;
}

/**
 * The subject CN of the client certificate on a verified TLS connection; undefined on plain
 * connections, without a certificate, when verification failed, or when the subject carries
 * several CNs (ambiguous, so not an identity).
 */
export function certificateIdentity(socket: unknown): string | undefined {
  const s = socket as PeerSocket | null | undefined;
  if (s?.authorized !== true || typeof s.getPeerCertificate !== 'function') return undefined;
  const cn = s.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}
