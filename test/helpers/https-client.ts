import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import type { PemPair, TestPki } from './pki.js';

/**
 * Talking to a real HTTPS server that requires client certificates (mTLS): client certificates
 * for any CN signed by the test CA, and requests made as a certificate, a bearer token (relayed
 * over some certificate, as the platform's sidecar does), or both.
 */

/** An answer: status, headers, the raw text and its JSON when it is JSON. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON of any shape
  body: any;
}

/** Who calls: a client certificate (real TLS), a bearer token, extra headers. */
export interface Who {
  client?: PemPair;
  token?: string;
  headers?: Record<string, string>;
}

const CLIENT_EXT =
  'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';

/** A client certificate for `cn` (P-256, valid two days), signed by the test CA (openssl CLI). */
export function clientCert(pki: TestPki, cn: string): PemPair {
  const run = (args: string[]) =>
    execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  const ext = pki.write(`${cn}.ext`, CLIENT_EXT);
  run([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${cn}.key`,
    '-out',
    `${cn}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  run([
    'x509',
    '-req',
    '-in',
    `${cn}.csr`,
    '-CA',
    pki.ca.certFile,
    '-CAkey',
    pki.ca.keyFile,
    '-set_serial',
    `0x${Buffer.from(cn).toString('hex')}02`,
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    `${cn}.crt`,
  ]);
  const keyFile = join(pki.dir, `${cn}.key`);
  const certFile = join(pki.dir, `${cn}.crt`);
  return { keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) };
}

/** JSON when the text is JSON, else undefined. */
export const parseJson = (text: string) => {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
};

export type OverTls = (
  method: string,
  path: string,
  who: Who,
  body?: unknown,
  extra?: Record<string, string>,
) => Promise<Reply>;

/**
 * A request function for the server on 127.0.0.1:`port` whose certificate the test CA signed.
 * A Buffer body is sent as is (`application/octet-stream` unless a header says otherwise); any
 * other defined body as JSON. Every request opens a connection of its own (no keep-alive), so
 * each one shows its own certificate.
 */
export function tlsClient(opts: { port: number; ca: Buffer; timeoutMs?: number }): OverTls {
  return (method, path, who, body, extra = {}) => {
    const raw = Buffer.isBuffer(body);
    const payload = body === undefined ? undefined : raw ? (body as Buffer) : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: opts.port,
          path,
          method,
          ca: opts.ca,
          ...(who.client ? { cert: who.client.cert, key: who.client.key } : {}),
          headers: {
            ...(payload !== undefined
              ? {
                  'content-type': raw ? 'application/octet-stream' : 'application/json',
                  'content-length': Buffer.byteLength(payload),
                }
              : {}),
            ...(who.token !== undefined ? { authorization: `Bearer ${who.token}` } : {}),
            ...who.headers,
            ...extra,
          },
          agent: false,
          timeout: opts.timeoutMs ?? 20_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parseJson(text) });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(payload);
    });
  };
}
