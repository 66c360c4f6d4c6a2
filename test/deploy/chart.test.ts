import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createEmbedder } from '../../src/adapters/embedders/index.js';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { createEmbedderRegistry, loadModelSpecs } from '../../src/adapters/embedders/registry.js';
import { loadConfig } from '../../src/config.js';
import { INDEX_QUEUE } from '../../src/indexing/queue.js';
import { createMetrics } from '../../src/platform/metrics.js';
import {
  chartMetadata,
  defaultValues,
  type Manifest,
  renderChart,
  repoRoot,
  scenarios,
  scenarioValues,
} from './chart.js';
import { validateManifest } from './validate.js';

// Shapes of the parts of manifests the assertions read.
interface Meta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Probe {
  httpGet?: { path: string; port: string | number; scheme?: string };
  exec?: { command: string[] };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: unknown }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  restartPolicy?: string;
  securityContext?: Record<string, unknown>;
  containers: Container[];
  initContainers?: Container[];
  volumes?: ({ name: string } & Record<string, unknown>)[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}
interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values: string[] }[];
}
interface Peer {
  ipBlock?: { cidr: string };
  podSelector?: Selector;
  namespaceSelector?: Selector;
}
interface NetworkPolicySpec {
  podSelector: Selector;
  policyTypes: string[];
  ingress?: { from?: Peer[]; ports?: { port: string | number; protocol: string }[] }[];
  egress?: { to?: Peer[]; ports?: { port: string | number; protocol: string }[] }[];
}

const meta = (m: Manifest) => m.doc.metadata as Meta;
const spec = <T>(m: Manifest) => m.doc.spec as T;
const find = (ms: Manifest[], kind: string, name: string) => {
  const m = ms.find((x) => x.doc.kind === kind && meta(x).name === name);
  if (!m) throw new Error(`no ${kind}/${name}`);
  return m;
};
const ofKind = (ms: Manifest[], kind: string) => ms.filter((m) => m.doc.kind === kind);
/** The pod template of a Deployment or Job, or of the Jobs a CronJob creates. */
const podTemplate = (m: Manifest) =>
  m.doc.kind === 'CronJob'
    ? spec<{ jobTemplate: { spec: { template: PodTemplate } } }>(m).jobTemplate.spec.template
    : spec<{ template: PodTemplate }>(m).template;
const workloads = (ms: Manifest[]) =>
  ms.filter((m) => m.doc.kind === 'Deployment' || m.doc.kind === 'Job' || m.doc.kind === 'CronJob');
/** Scenario values as the templates saw them. */
interface ChartValues {
  serviceAccount: { create: boolean; name: string };
  secrets: { provider: string; env: string[]; files: { env: string; key: string; file: string }[] };
  config: Record<string, string>;
  backup: { enabled: boolean; schedule: string; timeZone: string };
  embeddingModels: Record<string, unknown>[];
}
const valuesOf = (scenario: string) => scenarioValues(scenario) as unknown as ChartValues;
interface StoreValues {
  stores: {
    postgres: {
      sslMode: string;
      ca: { secretName: string; configMapName: string };
      clientCertSecret: string;
    };
    s3: { ca: { secretName: string; configMapName: string } };
  };
  encryption: { keyDir: { secretName: string }; kekSecret: { name: string } };
}
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

/** Whether a label selector selects a set of labels (matchLabels and the In/Exists operators). */
function selects(selector: Selector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    if (e.operator === 'In' && !e.values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !(e.key in labels)) return false;
    if (e.operator !== 'In' && e.operator !== 'Exists') throw new Error(`operator ${e.operator} not handled`);
  }
  return true;
}

const scratch = mkdtempSync(join(tmpdir(), 'memory-layer-chart-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const rendered: Record<string, Manifest[]> = {};
beforeAll(async () => {
  for (const [name, values] of Object.entries(scenarios))
    rendered[name] = (await renderChart(values)).manifests;
});
const all = () => Object.entries(rendered);
const defaults = () => rendered.defaults;
const full = () => rendered['csi secrets, mTLS, auth files, all egress destinations'];

describe('Helm chart deploy/helm/memory-layer', () => {
  it('is a Helm v2 (Helm 3) chart whose version and appVersion match the package', () => {
    const chart = chartMetadata() as ReturnType<typeof chartMetadata> & { apiVersion: string; type: string };
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(chart.apiVersion).toBe('v2');
    expect(chart.type).toBe('application');
    expect(chart.appVersion).toBe(pkg.version);
    expect(defaultValues().image).toMatchObject({ tag: pkg.version });
  });

  it('renders every manifest valid against the Kubernetes schemas, with no unknown field, in every scenario', () => {
    for (const [scenario, manifests] of all()) {
      expect(manifests.length, scenario).toBeGreaterThan(5);
      for (const m of manifests) {
        expect({
          scenario,
          template: m.template,
          object: `${m.doc.kind}/${meta(m).name}`,
          problems: validateManifest(m.doc),
        }).toMatchObject({ problems: [] });
      }
      const ids = manifests.map((m) => `${m.doc.kind}/${meta(m).name}`);
      expect(new Set(ids).size, `${scenario}: duplicate objects`).toBe(ids.length);
    }
  });

  it('has a validator that is not vacuous: wrong types and unknown fields are reported', () => {
    const api = structuredClone(find(defaults(), 'Deployment', 'ml-api').doc) as {
      spec: { replicas?: unknown; template: { spec: { containers: Record<string, unknown>[] } } };
    };
    api.spec.replicas = 'two';
    api.spec.template.spec.containers[0].livenessProbee = {};
    expect(validateManifest(api).map((p) => p.path)).toEqual(['/spec/replicas']);
    api.spec.replicas = 2;
    expect(validateManifest(api)).toEqual([
      { path: '/spec/template/spec/containers/0/livenessProbee', message: 'unknown field' },
    ]);
    expect(
      validateManifest({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } })[0].message,
    ).toMatch(/no schema/);
  });

  it('fails to render when a template reads a value that values.yaml does not define', async () => {
    await expect(renderChart({ api: { probes: null } })).rejects.toThrow(/probes|no entry/);
  });

  it('keeps the values file CI renders with real Helm equal to its test scenario', () => {
    const file = join(import.meta.dirname, 'fixtures/values-backup-models.yaml');
    const name = 'backups and embedding models, Vault Agent, existing service account';
    expect(parseYaml(readFileSync(file, 'utf8'))).toEqual(scenarios[name]);
  });

  it('ships the objects an operator needs', () => {
    const ids = defaults().map((m) => `${m.doc.kind}/${meta(m).name}`);
    expect(ids).toEqual(
      expect.arrayContaining([
        'Deployment/ml-api',
        'Deployment/ml-worker',
        'Service/ml-api',
        'ConfigMap/ml-config',
        'ServiceAccount/ml',
        'HorizontalPodAutoscaler/ml-api',
        'HorizontalPodAutoscaler/ml-worker',
        'PodDisruptionBudget/ml-api',
        'PodDisruptionBudget/ml-worker',
        'NetworkPolicy/ml-default-deny',
        'Job/ml-migrate',
        'PrometheusRule/ml-alerts',
        'ServiceMonitor/ml-api',
        'PodMonitor/ml-worker',
        'ConfigMap/ml-dashboard',
      ]),
    );
    expect(full().map((m) => `${m.doc.kind}/${meta(m).name}`)).toContain('SecretProviderClass/ml-vault');
    // Backups and further embedding models only when asked for.
    for (const [scenario, ms] of all()) {
      const { backup, embeddingModels } = valuesOf(scenario);
      expect(
        ofKind(ms, 'CronJob').map((m) => meta(m).name),
        scenario,
      ).toEqual(backup.enabled ? ['ml-backup'] : []);
      expect(
        ofKind(ms, 'ConfigMap').some((m) => meta(m).name === 'ml-embedding-models'),
        scenario,
      ).toBe(embeddingModels.length > 0);
    }
    expect(defaultValues()).toMatchObject({ backup: { enabled: false }, embeddingModels: [] });
  });

  it('runs the API as `serve --no-worker`, the workers as `worker`, the Job as `migrate` and backups as `backup`, commands the CLI has', () => {
    const cli = readFileSync(join(repoRoot, 'src/cli/main.ts'), 'utf8');
    for (const command of [
      "command('serve')",
      "'--no-worker'",
      "command('worker')",
      "command('migrate')",
      "command('backup')",
    ]) {
      expect(cli).toContain(command);
    }
    for (const [scenario, ms] of all()) {
      const args = Object.fromEntries(
        workloads(ms).map((m) => [meta(m).name, podTemplate(m).spec.containers[0].args]),
      );
      expect(args['ml-api'], scenario).toEqual(['serve', '--no-worker']);
      expect(args['ml-worker'], scenario).toEqual(['worker']);
      if (args['ml-migrate']) expect(args['ml-migrate'], scenario).toEqual(['migrate']);
      expect(args['ml-backup'], scenario).toEqual(valuesOf(scenario).backup.enabled ? ['backup'] : undefined);
    }
  });

  it('runs usearch in several API pods only with the change feed followed (VECTOR_INDEX_FOLLOW), which the service accepts', () => {
    for (const [scenario, ms] of all()) {
      const config = find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>;
      expect(config.VECTOR_INDEX_FOLLOW, scenario).toBe('on');
      expect(loadConfig({ ...config, DATABASE_URL: 'postgres://db/memory' }).VECTOR_INDEX_FOLLOW).toBe(true);
    }
    const ms = all().find(([name]) => name.startsWith('usearch'))?.[1] as Manifest[];
    const config = find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>;
    expect(config.VECTOR_INDEX).toBe('usearch');
    // Each API pod keeps its index under DATA_DIR, on a volume sized for it.
    const api = podTemplate(find(ms, 'Deployment', 'ml-api'));
    const data = api.spec.volumes?.find((v) => v.name === 'data') as { emptyDir?: { sizeLimit?: string } };
    expect(data.emptyDir?.sizeLimit).toBe('4Gi');
    expect(api.spec.containers[0].volumeMounts).toContainEqual(
      expect.objectContaining({ mountPath: '/data' }),
    );
  });

  it('gives every pod and container a restricted security context, resources and writable scratch only', () => {
    for (const [scenario, ms] of all()) {
      for (const m of workloads(ms)) {
        const where = `${scenario}: ${m.doc.kind}/${meta(m).name}`;
        const pod = podTemplate(m).spec;
        expect(pod.securityContext, where).toMatchObject({
          runAsNonRoot: true,
          runAsUser: 10001,
          runAsGroup: 10001,
          fsGroup: 10001,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
        for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
          expect(c.securityContext, `${where} ${c.name}`).toEqual({
            allowPrivilegeEscalation: false,
            privileged: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          });
          for (const kind of ['requests', 'limits'] as const) {
            expect(Object.keys(c.resources?.[kind] ?? {}).sort(), `${where} ${c.name} ${kind}`).toEqual([
              'cpu',
              'memory',
            ]);
          }
          expect(c.image, where).toMatch(/^"?[^:]+:[^:]+$/);
          expect(c.image, where).not.toMatch(/:latest$/);
          const mounts = new Map((c.volumeMounts ?? []).map((v) => [v.mountPath, v]));
          // The root filesystem is read-only: /tmp (tsx's compile cache) and DATA_DIR are volumes.
          expect(volumes.get(mounts.get('/tmp')?.name ?? '')?.emptyDir, `${where} /tmp`).toBeDefined();
          expect(volumes.get(mounts.get('/data')?.name ?? '')?.emptyDir, `${where} /data`).toBeDefined();
          for (const mount of c.volumeMounts ?? [])
            expect(volumes.has(mount.name), `${where} ${mount.name}`).toBe(true);
          for (const mount of c.volumeMounts ?? []) {
            // And a key directory on a claim: divisions get their keys there, erasure destroys them.
            const keyClaim = mount.name === 'keys' && 'persistentVolumeClaim' in (volumes.get('keys') ?? {});
            if (!['/tmp', '/data'].includes(mount.mountPath) && !keyClaim)
              expect(mount.readOnly, `${where} ${mount.mountPath}`).toBe(true);
          }
        }
      }
    }
  });

  it('probes the API at /healthz (startup, liveness) and /readyz (readiness), routes the service has', () => {
    const health = readFileSync(join(repoRoot, 'src/http/routes/health.ts'), 'utf8');
    expect(health).toContain("server.get('/healthz'");
    expect(health).toContain("server.get('/readyz'");
    for (const [scenario, ms] of all()) {
      const api = podTemplate(find(ms, 'Deployment', 'ml-api')).spec.containers[0];
      const paths = (p?: Probe) => p?.httpGet?.path ?? p?.exec?.command.at(-1);
      expect(
        [paths(api.startupProbe), paths(api.livenessProbe), paths(api.readinessProbe)],
        scenario,
      ).toEqual(['/healthz', '/healthz', '/readyz']);
      for (const probe of [api.startupProbe, api.livenessProbe, api.readinessProbe]) {
        if (probe?.httpGet)
          expect(
            api.ports?.map((p) => p.name),
            scenario,
          ).toContain(probe.httpGet.port);
      }
    }
    // Plain HTTP by default; HTTPS with TLS; with client certificates required, in-container
    // checks that present the serving certificate (the kubelet has no client certificate).
    const scheme = (ms: Manifest[]) =>
      podTemplate(find(ms, 'Deployment', 'ml-api')).spec.containers[0].livenessProbe;
    expect(scheme(defaults())?.httpGet?.scheme).toBe('HTTP');
    expect(
      scheme(rendered['TLS without client certificates, fixed replicas, monitoring off'])?.httpGet?.scheme,
    ).toBe('HTTPS');
    const exec = scheme(full())?.exec?.command ?? [];
    expect(exec.slice(0, 2)).toEqual(['node', '-e']);
    expect(exec[2]).toContain('e.TLS_CERT');
    expect(exec[2]).toContain('e.TLS_KEY');
  });

  it('probes the workers at /healthz and /readyz on the port their process opens (WORKER_HTTP_PORT)', async () => {
    const worker = readFileSync(join(repoRoot, 'src/start/server.ts'), 'utf8');
    expect(worker).toContain('config.WORKER_HTTP_PORT');
    for (const [scenario, ms] of all()) {
      const c = podTemplate(find(ms, 'Deployment', 'ml-worker')).spec.containers[0];
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
      const port = c.ports?.find((p) => p.name === 'metrics');
      expect(port, scenario).toEqual({ name: 'metrics', containerPort: 9464, protocol: 'TCP' });
      // The variable the worker reads, validated as the service validates it.
      expect(loadConfig({ WORKER_HTTP_PORT: env.WORKER_HTTP_PORT }).WORKER_HTTP_PORT, scenario).toBe(
        port?.containerPort,
      );
      // Plain HTTP in every scenario, mTLS included: the worker port is not the API's, and the
      // kubelet's httpGet needs no client certificate for it.
      const probes = [c.startupProbe, c.livenessProbe, c.readinessProbe].map((p) => p?.httpGet);
      expect(probes, scenario).toEqual([
        { path: '/healthz', port: 'metrics', scheme: 'HTTP' },
        { path: '/healthz', port: 'metrics', scheme: 'HTTP' },
        { path: '/readyz', port: 'metrics', scheme: 'HTTP' },
      ]);
    }
    // A different port, set in values, reaches both the container port and the variable.
    const { manifests } = await renderChart({ worker: { port: 9100 } });
    const c = podTemplate(find(manifests, 'Deployment', 'ml-worker')).spec.containers[0];
    expect(c.ports?.[0].containerPort).toBe(9100);
    expect(c.env).toContainEqual({ name: 'WORKER_HTTP_PORT', value: '9100' });
  });

  it('listens where the probes, the Service and the ConfigMap say', () => {
    for (const [scenario, ms] of all()) {
      const api = podTemplate(find(ms, 'Deployment', 'ml-api')).spec.containers[0];
      const config = find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>;
      expect(config.HOST, scenario).toBe('0.0.0.0');
      expect(api.ports?.[0], scenario).toEqual({
        name: 'http',
        containerPort: Number(config.PORT),
        protocol: 'TCP',
      });
      expect(config.DATA_DIR, scenario).toBe('/data');
      const service = spec<{ selector: Record<string, string>; ports: { targetPort: string }[] }>(
        find(ms, 'Service', 'ml-api'),
      );
      expect(service.ports[0].targetPort).toBe('http');
      for (const m of ofKind(ms, 'Deployment')) {
        const isApi = meta(m).name === 'ml-api';
        expect(selects({ matchLabels: service.selector }, podTemplate(m).metadata.labels), scenario).toBe(
          isApi,
        );
      }
    }
  });

  it('gives the service settings it accepts: rendered env passes the service config validation', () => {
    const known = [
      ...readFileSync(join(repoRoot, 'src/config.ts'), 'utf8').matchAll(/^ {4}([A-Z][A-Z0-9_]+):/gm),
    ].map((m) => m[1]);
    expect(known).toContain('DATABASE_URL');
    for (const [scenario, ms] of all()) {
      const config = find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>;
      for (const key of Object.keys(config)) expect(known, `${scenario}: ${key}`).toContain(key);
      for (const m of [...ofKind(ms, 'Deployment'), ...ofKind(ms, 'CronJob')]) {
        const c = podTemplate(m).spec.containers[0];
        const env: Record<string, string> = {
          ...config,
          DATABASE_URL: 'postgres://vault-provided@db/memory',
        };
        for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
        for (const key of Object.keys(env)) expect(known, `${scenario}: ${key}`).toContain(key);
        expect(() => loadConfig(env), `${scenario} ${meta(m).name}`).not.toThrow();
      }
    }
  });

  it('references only objects it renders (labels, selectors, config, service accounts, secret provider classes)', () => {
    for (const [scenario, ms] of all()) {
      const names = (kind: string) => ofKind(ms, kind).map((m) => meta(m).name);
      for (const m of ms) {
        expect(meta(m).labels, `${scenario} ${m.doc.kind}/${meta(m).name}`).toMatchObject({
          'app.kubernetes.io/name': 'memory-layer',
          'app.kubernetes.io/instance': 'ml',
          'app.kubernetes.io/managed-by': 'Helm',
        });
      }
      for (const m of ofKind(ms, 'Deployment')) {
        const s = spec<{ selector: Selector; template: PodTemplate }>(m);
        expect(selects(s.selector, s.template.metadata.labels), scenario).toBe(true);
        for (const other of ofKind(ms, 'Deployment')) {
          if (other !== m)
            expect(selects(s.selector, podTemplate(other).metadata.labels), scenario).toBe(false);
        }
      }
      for (const m of workloads(ms)) {
        const pod = podTemplate(m).spec;
        const sa = pod.serviceAccountName ?? 'default';
        // The migration hook brings its own; the others use the release's, or the one named.
        const { serviceAccount } = valuesOf(scenario);
        if (m.doc.kind === 'Job' || serviceAccount.create) {
          expect(names('ServiceAccount'), `${scenario} ${meta(m).name}`).toContain(sa);
        } else {
          expect(sa, `${scenario} ${meta(m).name}`).toBe(serviceAccount.name);
        }
        for (const c of pod.containers) {
          for (const from of c.envFrom ?? []) {
            expect(from.secretRef, 'no Kubernetes Secret as env').toBeUndefined();
            expect(names('ConfigMap')).toContain(from.configMapRef?.name);
          }
        }
        for (const v of pod.volumes ?? []) {
          const csi = v.csi as { volumeAttributes: { secretProviderClass: string } } | undefined;
          if (csi)
            expect(names('SecretProviderClass'), scenario).toContain(
              csi.volumeAttributes.secretProviderClass,
            );
          const cm = v.configMap as { name: string } | undefined;
          // CA bundles are the one ConfigMap the chart mounts without rendering it (values name it).
          const { stores } = scenarioValues(scenario) as unknown as StoreValues;
          const external = [stores.postgres.ca.configMapName, stores.s3.ca.configMapName].filter(Boolean);
          if (cm) expect([...names('ConfigMap'), ...external], scenario).toContain(cm.name);
        }
      }
      for (const m of ofKind(ms, 'PodDisruptionBudget')) {
        const target = find(ms, 'Deployment', meta(m).name);
        expect(selects(spec<{ selector: Selector }>(m).selector, podTemplate(target).metadata.labels)).toBe(
          true,
        );
      }
      for (const m of ofKind(ms, 'HorizontalPodAutoscaler')) {
        const ref = spec<{ scaleTargetRef: { kind: string; name: string } }>(m).scaleTargetRef;
        expect(names(ref.kind)).toContain(ref.name);
        // With an autoscaler, the Deployment leaves replicas to it.
        expect(spec<{ replicas?: number }>(find(ms, ref.kind, ref.name)).replicas).toBeUndefined();
      }
      for (const m of ofKind(ms, 'ServiceMonitor')) {
        const s = spec<{ selector: Selector; endpoints: { port: string; path: string }[] }>(m);
        expect(selects(s.selector, meta(find(ms, 'Service', 'ml-api')).labels ?? {})).toBe(true);
        expect(s.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
      }
      // Workers have no Service: a PodMonitor scrapes their pods, wherever the API is scraped.
      expect(ofKind(ms, 'PodMonitor').length, scenario).toBe(ofKind(ms, 'ServiceMonitor').length);
      for (const m of ofKind(ms, 'PodMonitor')) {
        const s = spec<{ selector: Selector; podMetricsEndpoints: { port: string; path: string }[] }>(m);
        for (const d of ofKind(ms, 'Deployment')) {
          expect(selects(s.selector, podTemplate(d).metadata.labels), `${scenario} ${meta(d).name}`).toBe(
            meta(d).name === 'ml-worker',
          );
        }
        const ports = podTemplate(find(ms, 'Deployment', 'ml-worker')).spec.containers[0].ports;
        expect(ports?.map((p) => p.name)).toContain(s.podMetricsEndpoints[0].port);
        expect(s.podMetricsEndpoints[0]).toMatchObject({ path: '/metrics', scheme: 'http' });
      }
    }
  });

  it('scales the API on CPU and the workers on the exported queue-depth gauge', () => {
    const ms = defaults();
    const api = spec<{ metrics: { type: string; resource?: { name: string } }[] }>(
      find(ms, 'HorizontalPodAutoscaler', 'ml-api'),
    );
    expect(api.metrics).toEqual([
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
      },
    ]);
    const worker = spec<{
      metrics: {
        type: string;
        external: { metric: { name: string; selector: Selector }; target: unknown };
      }[];
    }>(find(ms, 'HorizontalPodAutoscaler', 'ml-worker'));
    expect(worker.metrics[0].type).toBe('External');
    const { metric, target } = worker.metrics[0].external;
    const gauge = createMetrics().registry.getSingleMetric(metric.name) as unknown as
      | { labelNames: string[] }
      | undefined;
    expect(gauge, `${metric.name} is exported`).toBeDefined();
    expect(gauge?.labelNames.sort()).toEqual(Object.keys(metric.selector.matchLabels ?? {}).sort());
    // The label values are the queue's: the indexing queue, jobs waiting to be claimed.
    expect(metric.selector.matchLabels?.queue).toBe(INDEX_QUEUE);
    expect(readFileSync(join(repoRoot, 'migrations/001_core.sql'), 'utf8')).toContain(
      `status = '${metric.selector.matchLabels?.status}'`,
    );
    expect(target).toEqual({ type: 'AverageValue', averageValue: '500' });
  });

  it('denies all traffic to and from the release, then opens only the listed paths', () => {
    for (const [scenario, ms] of all()) {
      const policies = ofKind(ms, 'NetworkPolicy');
      if (scenario === 'network policies off') {
        expect(policies).toEqual([]);
        continue;
      }
      const deny = spec<NetworkPolicySpec>(find(ms, 'NetworkPolicy', 'ml-default-deny'));
      expect(deny).toEqual({
        podSelector: {
          matchLabels: { 'app.kubernetes.io/name': 'memory-layer', 'app.kubernetes.io/instance': 'ml' },
        },
        policyTypes: ['Ingress', 'Egress'],
      });
      for (const m of workloads(ms))
        expect(selects(deny.podSelector, podTemplate(m).metadata.labels)).toBe(true);

      const pods = Object.fromEntries(
        workloads(ms).map((m) => [meta(m).name, podTemplate(m).metadata.labels]),
      );
      const allowed = (pod: string, direction: 'ingress' | 'egress') =>
        policies
          .map((p) => spec<NetworkPolicySpec>(p))
          .filter((p) => p !== deny && pods[pod] && selects(p.podSelector, pods[pod]))
          .flatMap((p) => p[direction] ?? []);
      for (const p of policies.map((x) => spec<NetworkPolicySpec>(x))) {
        // No rule may allow every peer: each lists its peers.
        for (const rule of p.egress ?? []) expect(rule.to?.length, scenario).toBeGreaterThan(0);
        for (const rule of p.ingress ?? []) expect(rule.from?.length, scenario).toBeGreaterThan(0);
      }
      // Only the API port and the workers' metrics port take connections, and only from the
      // configured peers: metrics scrapers alone reach the workers.
      expect(allowed('ml-migrate', 'ingress')).toEqual([]);
      expect(allowed('ml-backup', 'ingress')).toEqual([]);
      const workerIngress = allowed('ml-worker', 'ingress');
      expect(workerIngress.flatMap((r) => r.ports)).toEqual([{ protocol: 'TCP', port: 'metrics' }]);
      expect(workerIngress.flatMap((r) => r.from).map((p) => p?.namespaceSelector?.matchLabels)).toEqual([
        { 'kubernetes.io/metadata.name': 'monitoring' },
      ]);
      const ingress = allowed('ml-api', 'ingress');
      expect(ingress.flatMap((r) => r.ports)).toEqual([{ protocol: 'TCP', port: 'http' }]);
      expect(ingress.flatMap((r) => r.from).map((p) => p?.namespaceSelector?.matchLabels)).toEqual([
        { 'kubernetes.io/metadata.name': 'agents' },
        { 'kubernetes.io/metadata.name': 'monitoring' },
      ]);
      const ports = (pod: string) =>
        allowed(pod, 'egress').flatMap((r) => (r.ports ?? []).map((p) => p.port));
      for (const pod of ['ml-api', 'ml-worker', 'ml-migrate', 'ml-backup']) {
        if (!pods[pod]) continue;
        expect(ports(pod), `${scenario} ${pod}: DNS and PostgreSQL`).toEqual(
          expect.arrayContaining([53, 5432]),
        );
      }
      // Backups reach PostgreSQL and the object store (besides DNS, and Vault for the injector's
      // init container): no embedder, NATS or collector.
      if (pods['ml-backup']) {
        const backupPolicies = policies
          .filter((p) => selects(spec<NetworkPolicySpec>(p).podSelector, pods['ml-backup']))
          .map((p) => meta(p).name);
        const vault = valuesOf(scenario).secrets.provider === 'vault-agent' ? ['ml-allow-vault'] : [];
        expect(backupPolicies.sort(), scenario).toEqual(
          ['ml-default-deny', 'ml-allow-dns', 'ml-allow-postgres', 'ml-allow-object-store', ...vault].sort(),
        );
      }
      const embedding = () => spec<NetworkPolicySpec>(find(ms, 'NetworkPolicy', 'ml-allow-embedder'));
      if (scenario === 'csi secrets, mTLS, auth files, all egress destinations') {
        expect(ports('ml-api')).toEqual(expect.arrayContaining([443, 9000]));
        expect(ports('ml-worker')).toEqual(expect.arrayContaining([443, 9000, 4222, 4318]));
        expect(ports('ml-api')).toContain(4318);
        expect(ports('ml-api')).not.toContain(4222);
        // Nothing reaches Vault from the pods with the CSI driver (the driver runs on the node).
        expect(ports('ml-api')).not.toContain(8200);
        // The embedder's peers, then the further models' destinations (one rule each).
        expect(embedding().egress?.map((r) => r.to)).toEqual([
          [
            {
              podSelector: { matchLabels: { app: 'tei' } },
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ml' } },
            },
          ],
          [{ ipBlock: { cidr: '198.51.100.0/24' } }],
        ]);
        const postgres = spec<NetworkPolicySpec>(find(ms, 'NetworkPolicy', 'ml-allow-postgres')).egress?.[0]
          .to;
        expect(postgres).toEqual([
          { ipBlock: { cidr: '10.20.0.0/16' } },
          {
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'postgresql' } },
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'db' } },
          },
        ]);
      } else if (scenario === 'backups and embedding models, Vault Agent, existing service account') {
        // The further model's endpoint alone (no embedder configured), for the API and workers.
        expect(embedding()).toEqual({
          podSelector: expect.anything(),
          policyTypes: ['Egress'],
          egress: [
            { to: [{ ipBlock: { cidr: '198.51.100.20/32' } }], ports: [{ protocol: 'TCP', port: 443 }] },
          ],
        });
        for (const pod of ['ml-api', 'ml-worker']) {
          expect(ports(pod), pod).toEqual(expect.arrayContaining([443, 9000, 8200]));
          expect(ports(pod), pod).not.toContain(4222);
        }
        expect(ports('ml-backup')).not.toContain(443);
      } else {
        // Destinations left unconfigured get no rule at all, never an open one.
        expect(ports('ml-api')).not.toContain(443);
        expect(ports('ml-worker')).not.toContain(4222);
        expect(ports('ml-worker')).not.toContain(4318);
        expect(ports('ml-api'), 'Vault Agent init container').toContain(8200);
      }
    }
  });

  it('sends traces to tracing.endpoint when one is set, and is silent otherwise', () => {
    for (const [scenario, ms] of all()) {
      const config = find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>;
      const endpoint = scenario === 'csi secrets, mTLS, auth files, all egress destinations';
      expect(config.OTEL_EXPORTER_OTLP_ENDPOINT, scenario).toBe(
        endpoint ? 'http://otel-collector.observability.svc:4318' : undefined,
      );
      expect(
        Object.keys(config).filter((k) => k.startsWith('OTEL_') && k !== 'OTEL_EXPORTER_OTLP_ENDPOINT'),
      ).toEqual([]);
    }
  });

  it('holds no secret: no Secret objects, no secret in config or env, everything secret comes from Vault', () => {
    const secretName = /PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE|CREDENTIAL|DATABASE_URL|_PEM$/;
    for (const [scenario, ms] of all()) {
      expect(
        ms.filter((m) => m.doc.kind === 'Secret'),
        scenario,
      ).toEqual([]);
      for (const m of ms) {
        expect(m.doc, 'only ConfigMaps carry data').not.toHaveProperty('stringData');
        if (m.doc.kind !== 'ConfigMap') expect(m.doc).not.toHaveProperty('data');
      }
      for (const m of ofKind(ms, 'ConfigMap')) {
        for (const key of Object.keys((m.doc.data ?? {}) as object))
          expect(key, scenario).not.toMatch(secretName);
      }
      for (const m of workloads(ms)) {
        const pod = podTemplate(m);
        for (const c of pod.spec.containers) {
          for (const e of c.env ?? []) {
            expect(e.valueFrom, `${scenario} ${e.name}: no secretKeyRef`).toBeUndefined();
            expect(e.name, scenario).not.toMatch(secretName);
            expect(e.value ?? '', scenario).not.toMatch(/:\/\/[^/\s]*:[^@/\s]*@|BEGIN [A-Z ]*PRIVATE KEY/);
          }
        }
        // The Kubernetes Secrets a pod touches are volumes of Secrets that values name and the
        // chart never creates: the TLS certificate (cert-manager's), the stores' CA and client
        // certificates, a pre-provisioned key directory and the KEK (encryption.kekSecret).
        const { stores, encryption } = scenarioValues(scenario) as unknown as StoreValues;
        const named: Record<string, string> = {
          tls: 'memory-layer-tls',
          'postgres-ca': stores.postgres.ca.secretName,
          'postgres-client-cert': stores.postgres.clientCertSecret,
          's3-ca': stores.s3.ca.secretName,
          keys: encryption.keyDir.secretName,
          kek: encryption.kekSecret.name,
        };
        for (const v of (pod.spec.volumes ?? []).filter((v) => 'secret' in v)) {
          expect(named[v.name], `${scenario}: secret volume ${v.name}`).toBeTruthy();
          expect((v.secret as { secretName: string }).secretName).toBe(named[v.name]);
        }

        const command = pod.spec.containers[0].command ?? [];
        const { provider, env: envSecrets } = valuesOf(scenario).secrets;
        expect(provider).toBe(scenario.startsWith('csi') ? 'csi' : 'vault-agent');
        expect(envSecrets).toContain('DATABASE_URL');
        for (const name of envSecrets) {
          expect(command[2], `${scenario} ${meta(m).name}`).toContain(
            `${name}="$(cat /vault/secrets/${name})"; export ${name}`,
          );
        }
        expect(command[2]).toMatch(/^set -eu\n/);
        expect(command[2]).toMatch(/\nexec node bin\/memory-layer\.js "\$@"\n$/);
        const annotations = pod.metadata.annotations ?? {};
        if (provider === 'vault-agent') {
          expect(annotations).toMatchObject({
            'vault.hashicorp.com/agent-inject': 'true',
            'vault.hashicorp.com/agent-pre-populate-only': 'true',
            'vault.hashicorp.com/role': 'memory-layer',
          });
          for (const file of [...envSecrets, 'audit-signing-key.pem']) {
            expect(annotations[`vault.hashicorp.com/agent-inject-secret-${file}`]).toBe(
              'secret/data/memory-layer',
            );
          }
          expect(annotations['vault.hashicorp.com/agent-inject-template-DATABASE_URL']).toBe(
            '{{- with secret "secret/data/memory-layer" -}}{{ index .Data.data "DATABASE_URL" }}{{- end -}}',
          );
          expect(pod.spec.automountServiceAccountToken).toBe(true);
        } else {
          expect(Object.keys(annotations).filter((a) => a.startsWith('vault.hashicorp.com'))).toEqual([]);
          expect(pod.spec.automountServiceAccountToken).toBe(false);
        }
      }
      for (const m of ofKind(ms, 'SecretProviderClass')) {
        const s = spec<{ provider: string; parameters: { objects: string }; secretObjects?: unknown }>(m);
        expect(s.provider).toBe('vault');
        expect(s.secretObjects, 'never synced into a Kubernetes Secret').toBeUndefined();
        const objects = (parseYaml(s.parameters.objects) as { objectName: string; secretKey: string }[]).map(
          (o) => `${o.objectName}<-${o.secretKey}`,
        );
        expect(objects).toEqual([
          'DATABASE_URL<-DATABASE_URL',
          'EMBEDDER_API_KEY<-EMBEDDER_API_KEY',
          'audit-signing-key.pem<-AUDIT_SIGNING_KEY_PEM',
        ]);
      }
    }
    // values.yaml names secrets, never holds them.
    const values = readFileSync(join(repoRoot, 'deploy/helm/memory-layer/values.yaml'), 'utf8');
    expect(values).not.toMatch(/postgres(ql)?:\/\/\S*:\S*@|BEGIN [A-Z ]*PRIVATE KEY|password:\s*\S/i);
  });

  it('runs the migration Job as a pre-install/pre-upgrade hook with the API settings', () => {
    for (const [scenario, ms] of all()) {
      const jobs = ofKind(ms, 'Job');
      if (scenario === 'TLS without client certificates, fixed replicas, monitoring off') {
        expect(jobs).toEqual([]);
        continue;
      }
      const job = find(ms, 'Job', 'ml-migrate');
      expect(meta(job).annotations).toEqual({
        'helm.sh/hook': 'pre-install,pre-upgrade',
        'helm.sh/hook-weight': '0',
        'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
      });
      // What the Job needs before the release's objects exist is a hook of lower weight.
      const pod = podTemplate(job).spec;
      const needed = [
        find(ms, 'ServiceAccount', pod.serviceAccountName ?? ''),
        ...(pod.volumes ?? [])
          .filter((v) => 'csi' in v)
          .map((v) =>
            find(
              ms,
              'SecretProviderClass',
              (v.csi as { volumeAttributes: { secretProviderClass: string } }).volumeAttributes
                .secretProviderClass,
            ),
          ),
      ];
      for (const n of needed) {
        expect(meta(n).annotations?.['helm.sh/hook'], scenario).toBe('pre-install,pre-upgrade');
        expect(Number(meta(n).annotations?.['helm.sh/hook-weight'])).toBeLessThan(0);
      }
      expect(pod.restartPolicy).toBe('Never');
      expect(spec<{ backoffLimit: number; activeDeadlineSeconds: number }>(job)).toMatchObject({
        backoffLimit: 3,
        activeDeadlineSeconds: 600,
      });
      // The Job's inline settings are the ConfigMap's (which does not exist yet at pre-install).
      const config = find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>;
      const env = Object.fromEntries((pod.containers[0].env ?? []).map((e) => [e.name, e.value]));
      expect(env, scenario).toEqual(config);
      expect(pod.containers[0].envFrom).toBeUndefined();
    }
  });

  it('mounts the TLS certificate, key and client CA from a Secret volume when TLS is on', () => {
    const api = podTemplate(find(full(), 'Deployment', 'ml-api')).spec;
    const env = Object.fromEntries((api.containers[0].env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      TLS_CERT: '/etc/memory-layer/tls/tls.crt',
      TLS_KEY: '/etc/memory-layer/tls/tls.key',
      TLS_CLIENT_CA: '/etc/memory-layer/tls/ca.crt',
      IDENTITIES_FILE: '/etc/memory-layer/auth/identities.json',
    });
    expect(api.volumes?.find((v) => v.name === 'tls')).toEqual({
      name: 'tls',
      secret: { secretName: 'memory-layer-tls', defaultMode: 0o440 },
    });
    expect(api.containers[0].volumeMounts).toContainEqual({
      name: 'tls',
      mountPath: '/etc/memory-layer/tls',
      readOnly: true,
    });
    const noClientCa = podTemplate(
      find(
        rendered['TLS without client certificates, fixed replicas, monitoring off'],
        'Deployment',
        'ml-api',
      ),
    ).spec.containers[0].env?.map((e) => e.name);
    expect(noClientCa).toEqual(['TLS_CERT', 'TLS_KEY']);
    // Workers serve plain HTTP on their health and metrics port only: no certificate.
    expect(
      podTemplate(find(full(), 'Deployment', 'ml-worker')).spec.volumes?.map((v) => v.name),
    ).not.toContain('tls');
  });
  it("runs `memory-layer backup` on a schedule, with the workers' image, settings, secrets and service account", () => {
    const backups = all().filter(([scenario]) => valuesOf(scenario).backup.enabled);
    expect(backups.map(([scenario]) => scenario)).toEqual([
      'csi secrets, mTLS, auth files, all egress destinations',
      'backups and embedding models, Vault Agent, existing service account',
      'store TLS, S3 server-side encryption, key directory on a volume',
    ]);
    for (const [scenario, ms] of backups) {
      const values = valuesOf(scenario);
      const cron = find(ms, 'CronJob', 'ml-backup');
      const s = spec<{
        schedule: string;
        timeZone?: string;
        concurrencyPolicy: string;
        successfulJobsHistoryLimit: number;
        failedJobsHistoryLimit: number;
        jobTemplate: { spec: { backoffLimit: number; activeDeadlineSeconds: number } };
      }>(cron);
      expect(s, scenario).toMatchObject({
        schedule: values.backup.schedule,
        concurrencyPolicy: 'Forbid',
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: { spec: { backoffLimit: 2, activeDeadlineSeconds: 3600 } },
      });
      expect(s.timeZone, scenario).toBe(values.backup.timeZone || undefined);
      // Not a hook: nothing of the migration's, and the CronJob stays between releases.
      expect(meta(cron).annotations, scenario).toBeUndefined();

      const pod = podTemplate(cron);
      const c = pod.spec.containers[0];
      expect(pod.spec.restartPolicy).toBe('Never');
      expect(pod.metadata.labels['app.kubernetes.io/component']).toBe('backup');
      expect(c.args).toEqual(['backup']);
      // A run ends by itself: no probes, no ports.
      expect([c.startupProbe, c.livenessProbe, c.readinessProbe, c.ports]).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
      // The workers' image, command wrapper, settings and service account.
      const worker = podTemplate(find(ms, 'Deployment', 'ml-worker')).spec;
      expect(c.image).toBe(worker.containers[0].image);
      expect(c.command).toEqual(worker.containers[0].command);
      expect(c.envFrom).toEqual([{ configMapRef: { name: 'ml-config' } }]);
      expect(c.env).toBeUndefined();
      expect(pod.spec.serviceAccountName, scenario).toBe(
        values.serviceAccount.create ? 'ml' : values.serviceAccount.name,
      );
      expect(pod.spec.serviceAccountName).toBe(worker.serviceAccountName);
      expect(pod.spec.securityContext).toEqual(worker.securityContext);
      expect(c.securityContext).toEqual(worker.containers[0].securityContext);
      expect(c.resources).toEqual({
        requests: { cpu: '250m', memory: '512Mi' },
        limits: { cpu: '1', memory: '1Gi' },
      });
      // Vault: the same injector annotations, or the same CSI volume, as the workers.
      const vault = (a?: Record<string, string>) =>
        Object.fromEntries(Object.entries(a ?? {}).filter(([k]) => k.startsWith('vault.hashicorp.com/')));
      const workerPod = podTemplate(find(ms, 'Deployment', 'ml-worker'));
      expect(vault(pod.metadata.annotations)).toEqual(vault(workerPod.metadata.annotations));
      const csi = (p: PodSpec) => p.volumes?.find((v) => v.name === 'vault-secrets');
      expect(csi(pod.spec)).toEqual(csi(worker));
      if (values.secrets.provider === 'csi') {
        expect(csi(pod.spec)).toMatchObject({
          csi: { volumeAttributes: { secretProviderClass: 'ml-vault' } },
        });
        expect(c.volumeMounts).toContainEqual({
          name: 'vault-secrets',
          mountPath: '/vault/secrets',
          readOnly: true,
        });
      } else {
        expect(Object.keys(vault(pod.metadata.annotations))).toContain('vault.hashicorp.com/agent-inject');
      }
      // The snapshots go to S3, whose settings the service accepts.
      const config = find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>;
      expect(config.OBJECT_STORE).toBe('s3');
      expect(loadConfig({ ...config, DATABASE_URL: 'postgres://vault-provided@db/memory' }).S3_BUCKET).toBe(
        'memory-layer',
      );
    }
  });

  it('refuses to schedule backups to a local object store, saying why', async () => {
    const message = /backup\.enabled needs config\.OBJECT_STORE=s3 .*inside the backup pod/;
    await expect(renderChart({ backup: { enabled: true } })).rejects.toThrow(message);
    await expect(
      renderChart({ backup: { enabled: true }, config: { OBJECT_STORE: 'local' } }),
    ).rejects.toThrow(message);
    const { manifests } = await renderChart({
      backup: { enabled: true },
      config: { OBJECT_STORE: 's3', S3_BUCKET: 'b' },
    });
    expect(ofKind(manifests, 'CronJob')).toHaveLength(1);
    // No CronJob, no check: the API and workers may keep a local store (one pod, or a volume).
    await expect(renderChart({ config: { OBJECT_STORE: 'local' } })).resolves.toBeDefined();
  });

  it('mounts embeddingModels as EMBEDDING_MODELS_FILE in API and worker pods, in a form the service accepts', async () => {
    const withModels = all().filter(([scenario]) => valuesOf(scenario).embeddingModels.length > 0);
    expect(withModels).toHaveLength(2);
    for (const [scenario, ms] of all()) {
      const values = valuesOf(scenario);
      const file = '/etc/memory-layer/embedding-models/models.json';
      for (const m of workloads(ms)) {
        const pod = podTemplate(m).spec;
        const c = pod.containers[0];
        // API (searches) and workers (embedding) only; migrate and backup open no model.
        const uses = values.embeddingModels.length > 0 && m.doc.kind === 'Deployment';
        expect(envOf(c).EMBEDDING_MODELS_FILE, `${scenario} ${meta(m).name}`).toBe(uses ? file : undefined);
        const volume = pod.volumes?.find((v) => v.name === 'embedding-models');
        const mount = c.volumeMounts?.find((v) => v.name === 'embedding-models');
        if (!uses) {
          expect([volume, mount], `${scenario} ${meta(m).name}`).toEqual([undefined, undefined]);
          continue;
        }
        expect(volume).toEqual({ name: 'embedding-models', configMap: { name: 'ml-embedding-models' } });
        expect(mount).toEqual({
          name: 'embedding-models',
          mountPath: '/etc/memory-layer/embedding-models',
          readOnly: true,
        });
      }
      if (values.embeddingModels.length === 0) continue;

      // The file as the pods see it, read by the service's own loader.
      const data = find(ms, 'ConfigMap', 'ml-embedding-models').doc.data as Record<string, string>;
      expect(Object.keys(data)).toEqual(['models.json']);
      const path = join(scratch, `${Object.keys(scenarios).indexOf(scenario)}-models.json`);
      writeFileSync(path, data['models.json']);
      // Keys come from Vault through the wrapper: every secrets.env variable is set in the pod.
      const secretEnv = Object.fromEntries(values.secrets.env.map((name) => [name, 'from-vault']));
      const specs = loadModelSpecs(path, secretEnv);
      expect(specs, scenario).toEqual(values.embeddingModels);
      for (const s of specs) if (s.apiKeyEnv) expect(values.secrets.env).toContain(s.apiKeyEnv);
      // Without the keys the service would refuse to start: the check above is not vacuous.
      if (specs.some((s) => s.apiKeyEnv)) expect(() => loadModelSpecs(path, {})).toThrow(/is not set/);

      // And the registry the API and workers build takes them beside the configured model.
      const config = loadConfig({
        ...(find(ms, 'ConfigMap', 'ml-config').doc.data as Record<string, string>),
        ...envOf(podTemplate(find(ms, 'Deployment', 'ml-api')).spec.containers[0]),
        DATABASE_URL: 'postgres://vault-provided@db/memory',
      });
      expect(config.EMBEDDING_MODELS_FILE).toBe(file);
      const configured: Embedder =
        config.EMBEDDER === 'openai'
          ? await createEmbedder(config)
          : {
              model: { name: 'use-lite', version: '0.2.0', dimensions: 512 },
              embed: async () => [],
              close: async () => {},
            };
      const registry = createEmbedderRegistry({ default: configured, specs, timeoutMs: 1000, batchSize: 8 });
      for (const s of specs) expect(registry.find(`${s.name}@${s.version}`)?.dimensions).toBe(s.dimensions);
    }
  });

  it('refuses embedding models it cannot hand to the service, saying why', async () => {
    const model = { name: 'm', version: '1', dimensions: 8, url: 'https://embeddings.example/v1' };
    await expect(renderChart({ embeddingModels: [{ ...model, apiKeyEnv: 'NOT_IN_VAULT' }] })).rejects.toThrow(
      /apiKeyEnv must be listed in secrets\.env/,
    );
    await expect(renderChart({ embeddingModels: [{ ...model, batchsize: 8 }] })).rejects.toThrow(
      /a key other than name, version, dimensions, url, apiKeyEnv, batchSize and timeoutMs/,
    );
    await expect(
      renderChart({ embeddingModels: [{ name: 'm', version: '1', dimensions: 8 }] }),
    ).rejects.toThrow(/every entry needs name, version, dimensions and url/);
    // A key that is listed in secrets.env is fine, and so is a model without a key.
    const { manifests } = await renderChart({
      secrets: { env: ['DATABASE_URL', 'M_KEY'] },
      embeddingModels: [
        { ...model, apiKeyEnv: 'M_KEY' },
        { ...model, version: '2' },
      ],
    });
    const json = (find(manifests, 'ConfigMap', 'ml-embedding-models').doc.data as Record<string, string>)[
      'models.json'
    ];
    expect(JSON.parse(json)).toEqual([
      { ...model, apiKeyEnv: 'M_KEY' },
      { ...model, version: '2' },
    ]);
  });

  it("opens the embedding models' endpoints only when there are embedding models", async () => {
    const destination = { ports: [443], cidrs: ['198.51.100.0/24'], namespaceLabels: {}, podLabels: {} };
    const without = await renderChart({ networkPolicy: { egress: { embeddingModels: [destination] } } });
    expect(ofKind(without.manifests, 'NetworkPolicy').map((m) => meta(m).name)).not.toContain(
      'ml-allow-embedder',
    );
    const withModels = await renderChart({
      embeddingModels: [{ name: 'm', version: '1', dimensions: 8, url: 'https://embeddings.example/v1' }],
      networkPolicy: { egress: { embeddingModels: [destination, { ...destination, cidrs: [] }] } },
    });
    const policy = spec<NetworkPolicySpec>(find(withModels.manifests, 'NetworkPolicy', 'ml-allow-embedder'));
    // One rule per destination with peers; one without peers gets none (never "anywhere").
    expect(policy.egress).toEqual([
      { to: [{ ipBlock: { cidr: '198.51.100.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] },
    ]);
    for (const m of workloads(withModels.manifests)) {
      expect(selects(policy.podSelector, podTemplate(m).metadata.labels), meta(m).name).toBe(
        m.doc.kind === 'Deployment',
      );
    }
  });
});
