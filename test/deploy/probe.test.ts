import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { renderChart, scenarios } from './chart.js';

/**
 * With client certificates required, the chart's probes run `node -e SCRIPT PATH` in the
 * container (the kubelet cannot present a certificate). This runs that exact command, taken
 * from the rendered Deployment, against the real HTTP server with mTLS on.
 */
const mtls = scenarios['csi secrets, mTLS, auth files, all egress destinations'];

function run(command: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command.slice(1), {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: 'ignore',
      timeout: 20_000,
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

describe('in-container probes under mTLS', () => {
  let pki: TestPki;
  let t: TestApp;
  let port: number;
  let probes: { liveness: string[]; readiness: string[] };
  let serving: { cert: string; key: string };

  beforeAll(async () => {
    const api = (await renderChart(mtls)).manifests.find(
      (m) => m.doc.kind === 'Deployment' && (m.doc.metadata as { name: string }).name === 'ml-api',
    );
    if (!api) throw new Error('no API Deployment');
    const container = (
      api.doc.spec as {
        template: {
          spec: {
            containers: {
              livenessProbe: { exec: { command: string[] } };
              readinessProbe: { exec: { command: string[] } };
            }[];
          };
        };
      }
    ).template.spec.containers[0];
    probes = {
      liveness: container.livenessProbe.exec.command,
      readiness: container.readinessProbe.exec.command,
    };

    pki = createTestPki();
    // The serving certificate, issued as the chart asks: by the client CA, for server and client auth.
    const openssl = (args: string[]) =>
      execFileSync('openssl', args, { cwd: pki.dir, stdio: 'ignore', timeout: 30_000 });
    pki.write(
      'serving.ext',
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' +
        'subjectAltName=IP:127.0.0.1,DNS:localhost\n',
    );
    openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'serving.key',
      '-out',
      'serving.csr',
      '-subj',
      '/CN=ml-api',
    ]);
    openssl([
      'x509',
      '-req',
      '-in',
      'serving.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '0x5e',
      '-days',
      '2',
      '-extfile',
      'serving.ext',
      '-out',
      'serving.crt',
    ]);
    serving = { cert: join(pki.dir, 'serving.crt'), key: join(pki.dir, 'serving.key') };

    const identities = pki.write(
      'identities.json',
      JSON.stringify({ services: { billing: { roles: ['reader'], divisions: ['default'] } } }),
    );
    t = await startTestApp('pglite', {
      worker: false,
      env: {
        TLS_CERT: serving.cert,
        TLS_KEY: serving.key,
        TLS_CLIENT_CA: pki.ca.certFile,
        IDENTITIES_FILE: identities,
        AUTH_MODE: 'enforce',
      },
    });
    await t.http.listen({ host: '127.0.0.1', port: 0 });
    port = (t.http.server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await t?.close();
    pki?.cleanup();
  });

  it('pass against a healthy server (liveness /healthz, readiness /readyz)', async () => {
    const env = { PORT: String(port), TLS_CERT: serving.cert, TLS_KEY: serving.key };
    expect(await run(probes.liveness, env)).toBe(0);
    expect(await run(probes.readiness, env)).toBe(0);
  });

  it('fail when the certificate is not one the server accepts as a client certificate', async () => {
    // pki.server is a server-auth-only certificate: the handshake is refused.
    const env = { PORT: String(port), TLS_CERT: pki.server.certFile, TLS_KEY: pki.server.keyFile };
    expect(await run(probes.liveness, env)).toBe(1);
    const rogue = {
      PORT: String(port),
      TLS_CERT: pki.rogueBilling.certFile,
      TLS_KEY: pki.rogueBilling.keyFile,
    };
    expect(await run(probes.liveness, rogue)).toBe(1);
  });

  it('fail when nothing listens', async () => {
    const env = { PORT: '1', TLS_CERT: serving.cert, TLS_KEY: serving.key };
    expect(await run(probes.liveness, env)).toBe(1);
  });
});
