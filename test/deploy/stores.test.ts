import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { type Manifest, renderChart, scenarios } from './chart.js';

// The chart's part of transport encryption to the stores and of envelope encryption: which
// settings every pod gets, and that each file setting points into a volume mounted from the named
// Secret, ConfigMap, claim or CSI class.

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface Pod {
  containers: { env?: { name: string; value?: string }[]; volumeMounts?: Mount[] }[];
  volumes?: ({ name: string } & Record<string, unknown>)[];
}

const name = (m: Manifest) => (m.doc.metadata as { name: string }).name;
const pod = (m: Manifest): Pod => {
  const s = m.doc.spec as { jobTemplate: { spec: { template: { spec: Pod } } }; template: { spec: Pod } };
  return m.doc.kind === 'CronJob' ? s.jobTemplate.spec.template.spec : s.template.spec;
};
const workloads = (ms: Manifest[]) =>
  ms.filter((m) => ['Deployment', 'Job', 'CronJob'].includes(m.doc.kind as string));
const configOf = (ms: Manifest[]) =>
  ms.find((m) => m.doc.kind === 'ConfigMap' && name(m) === 'ml-config')?.doc.data as Record<string, string>;
/** The settings a workload's container sees: the ConfigMap (envFrom) and its own env list. */
const settingsOf = (ms: Manifest[], m: Manifest) => {
  const env: Record<string, string> = m.doc.kind === 'Job' ? {} : { ...configOf(ms) };
  for (const e of pod(m).containers[0]?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
};
/** The volume a path lies in, found through the container's mounts. */
const volumeAt = (p: Pod, path: string) => {
  const mount = (p.containers[0]?.volumeMounts ?? []).find(
    (v) => path.startsWith(`${v.mountPath}/`) || path === v.mountPath,
  );
  return mount ? { mount, volume: p.volumes?.find((v) => v.name === mount.name) } : undefined;
};

const SCENARIO = 'store TLS, S3 server-side encryption, key directory on a volume';

describe('Helm chart: TLS to the stores and the key directory', () => {
  let ms: Manifest[];
  beforeAll(async () => {
    ms = (await renderChart(scenarios[SCENARIO] as Record<string, unknown>)).manifests;
  });

  it('gives every workload (API, workers, migration, backups) the same store and key settings', () => {
    const names = workloads(ms).map(name).sort();
    expect(names).toEqual(['ml-api', 'ml-backup', 'ml-migrate', 'ml-worker']);
    for (const m of workloads(ms)) {
      const env = settingsOf(ms, m);
      expect(env, name(m)).toMatchObject({
        DATABASE_SSLMODE: 'verify-full',
        DATABASE_CA_FILE: '/etc/memory-layer/postgres-ca/ca.crt',
        DATABASE_CLIENT_CERT_FILE: '/etc/memory-layer/postgres-client/tls.crt',
        DATABASE_CLIENT_KEY_FILE: '/etc/memory-layer/postgres-client/tls.key',
        S3_CA_FILE: '/etc/memory-layer/s3-ca/ca-bundle.crt',
        S3_SSE: 'aws:kms',
        S3_SSE_KMS_KEY_ID: 'alias/memory-layer',
        KEY_DIR: '/etc/memory-layer/keys',
        KEK_FILE: '/etc/memory-layer/kek/kek',
      });
      // Settings the service accepts as they are.
      expect(() => loadConfig({ ...env, DATABASE_URL: 'postgres://vault-provided@db/memory' })).not.toThrow();
    }
  });

  it('points every file setting into a volume from the named source; only the key directory is writable', () => {
    for (const m of workloads(ms)) {
      const env = settingsOf(ms, m);
      const at = (variable: string) => {
        const found = volumeAt(pod(m), env[variable] as string);
        expect(found, `${name(m)} ${variable}`).toBeDefined();
        return found as NonNullable<typeof found>;
      };
      expect(at('DATABASE_CA_FILE').volume).toMatchObject({ secret: { secretName: 'postgres-ca' } });
      expect(at('DATABASE_CLIENT_KEY_FILE').volume).toMatchObject({
        secret: { secretName: 'memory-layer-postgres-client', defaultMode: 0o440 },
      });
      expect(at('S3_CA_FILE').volume).toMatchObject({ configMap: { name: 'storage-ca-bundle' } });
      expect(at('KEK_FILE').volume).toMatchObject({
        secret: { secretName: 'memory-layer-kek', defaultMode: 0o440 },
      });
      const keys = at('KEY_DIR');
      expect(keys.volume).toMatchObject({ persistentVolumeClaim: { claimName: 'memory-layer-keys' } });
      expect(keys.mount.readOnly, 'a division gets its key, and erasure destroys it, in KEY_DIR').toBe(false);
      for (const v of ['DATABASE_CA_FILE', 'DATABASE_CLIENT_KEY_FILE', 'S3_CA_FILE', 'KEK_FILE'])
        expect(at(v).mount.readOnly, `${name(m)} ${v}`).toBe(true);
    }
  });

  it('mounts a key directory from a Secret or the Vault CSI driver read-only', async () => {
    const base = { secrets: { files: [{ env: 'KEK_FILE', key: 'KEK', file: 'kek' }] } };
    for (const [keyDir, expected] of [
      [
        { source: 'secret', secretName: 'memory-layer-keys' },
        { secret: { secretName: 'memory-layer-keys' } },
      ],
      [
        { source: 'csi', secretProviderClass: 'memory-layer-keys' },
        {
          csi: {
            driver: 'secrets-store.csi.k8s.io',
            readOnly: true,
            volumeAttributes: { secretProviderClass: 'memory-layer-keys' },
          },
        },
      ],
    ] as const) {
      const out = (await renderChart({ ...base, encryption: { keyDir } })).manifests;
      for (const m of workloads(out)) {
        const env = settingsOf(out, m);
        // The KEK from Vault (secrets.files), like the other secrets.
        expect(env.KEK_FILE).toBe('/vault/secrets/kek');
        const keys = volumeAt(pod(m), env.KEY_DIR as string);
        expect(keys?.volume, name(m)).toMatchObject(expected);
        expect(keys?.mount.readOnly, name(m)).toBe(true);
      }
    }
  });

  it('sets none of it by default', async () => {
    const out = (await renderChart({})).manifests;
    const keys = Object.keys(configOf(out));
    for (const k of ['DATABASE_SSLMODE', 'DATABASE_CA_FILE', 'S3_CA_FILE', 'S3_SSE', 'KEY_DIR', 'KEK_FILE'])
      expect(keys).not.toContain(k);
  });

  it('refuses what the service would refuse, or two ways of setting one variable, saying why', async () => {
    const s3 = {
      config: { OBJECT_STORE: 's3', S3_BUCKET: 'memory-layer', S3_ENDPOINT: 'https://s3.example' },
    };
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ stores: { postgres: { sslMode: 'prefer' } } }, /stores\.postgres\.sslMode must be one of/],
      [{ stores: { postgres: { sslMode: 'verify-ca' } } }, /verify-ca needs stores\.postgres\.ca/],
      [
        { stores: { postgres: { ca: { secretName: 'a', configMapName: 'b' } } } },
        /secretName or configMapName, not both/,
      ],
      [{ stores: { s3: { sse: 'AES256' } } }, /stores\.s3 \(ca, sse\) needs config\.OBJECT_STORE=s3/],
      [{ ...s3, stores: { s3: { sse: 'aws:kms' } } }, /sse=aws:kms needs stores\.s3\.kmsKeyId/],
      [{ ...s3, stores: { s3: { sse: 'kms' } } }, /stores\.s3\.sse must be AES256 or aws:kms/],
      [
        { encryption: { keyDir: { source: 'persistentVolumeClaim', claimName: 'k' } } },
        /needs a key-encryption key/,
      ],
      [{ encryption: { keyDir: { source: 'secret' } } }, /secret needs secretName/],
      [{ encryption: { kekSecret: { name: 'kek' } } }, /without encryption\.keyDir\.source/],
      [{ config: { KEY_DIR: '/keys' } }, /are set by stores\.\* and encryption\.\*, not in config/],
    ];
    for (const [values, message] of refused)
      await expect(renderChart(values), JSON.stringify(values)).rejects.toThrow(message);
  });
});
