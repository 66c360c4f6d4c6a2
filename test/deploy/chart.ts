import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as renderGoTemplate } from '@evertdespiegeleer/go-template';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

/**
 * Renders the Helm chart under deploy/helm/memory-layer without Helm, with Go's own text/template
 * engine (the standard library compiled to WebAssembly, from @evertdespiegeleer/go-template).
 *
 * The chart uses only Go's built-in template functions (no Sprig, no Helm-only functions), so
 * this is the same engine and the same language Helm runs; what this file adds is what Helm
 * adds around the engine: the values (values.yaml merged with overrides, as `helm --values`
 * does), the built-in objects (.Release, .Chart, .Files), helpers in templates/_helpers.tpl
 * visible to every template, and one manifest per YAML document. Missing keys fail the render
 * (Go's missingkey=error, as `helm lint --strict` would flag them). CI also runs the real
 * `helm template` and compares its output with this one (`render.ts --compare`).
 */

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const chartDir = join(repoRoot, 'deploy/helm/memory-layer');

export type Values = Record<string, unknown>;

export interface Release {
  name: string;
  namespace: string;
  revision: number;
  isInstall: boolean;
}

export interface Manifest {
  /** Template file that produced it, e.g. `templates/deployment-api.yaml`. */
  template: string;
  doc: Record<string, unknown>;
}

export interface Rendered {
  manifests: Manifest[];
  notes: string;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's coalescing of values: maps merge key by key, anything else replaces; null deletes. */
export function mergeValues(base: Values, override: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete out[key];
    else if (isMap(value) && isMap(out[key])) out[key] = mergeValues(out[key] as Values, value);
    else out[key] = value;
  }
  return out;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)],
  );
}

export function chartMetadata() {
  return parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as {
    name: string;
    version: string;
    appVersion: string;
    kubeVersion?: string;
  };
}

export function defaultValues(): Values {
  return parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Values;
}

/** Template files Helm renders into manifests (not partials), relative to the chart. */
export function templateFiles(): string[] {
  return readdirSync(join(chartDir, 'templates'))
    .filter((f) => (f.endsWith('.yaml') || f.endsWith('.yml')) && !f.startsWith('_'))
    .sort()
    .map((f) => `templates/${f}`);
}

function helmObjects(values: Values, release: Release) {
  const chart = chartMetadata();
  // .Files: every chart file outside templates/ (Helm also leaves out Chart.yaml and values.yaml).
  const files: Record<string, string> = {};
  for (const file of listFiles(chartDir)) {
    const rel = relative(chartDir, file);
    if (rel.startsWith('templates/') || rel === 'Chart.yaml' || rel === 'values.yaml') continue;
    files[rel] = readFileSync(file, 'utf8');
  }
  // Values go through JSON as in Helm, so numbers are float64 on the Go side there and here.
  return {
    Values: JSON.parse(JSON.stringify(values)),
    Release: {
      Name: release.name,
      Namespace: release.namespace,
      Service: 'Helm',
      Revision: release.revision,
      IsInstall: release.isInstall,
      IsUpgrade: !release.isInstall,
    },
    Chart: {
      Name: chart.name,
      Version: chart.version,
      AppVersion: chart.appVersion,
      KubeVersion: chart.kubeVersion ?? '',
    },
    Files: files,
    Capabilities: { KubeVersion: { Version: 'v1.33.0', Major: '1', Minor: '33' } },
  };
}

/**
 * Helm's `fail` (the one function the chart uses beyond Go's built-ins) with a literal message:
 * `{{ fail "message" }}` becomes `{{ template "memory-layer.fail:<message, base64url>" }}`, a
 * template that is never defined, so Go's engine stops exactly where Helm's `fail` would; the
 * message is read back from the error. Go's parser rejects any other use of `fail`.
 */
const FAIL_CALL = /\{\{(-?)\s*fail\s+("(?:[^"\\\n]|\\.)*")\s*(-?)\}\}/g;
const FAIL_MARK = /template "memory-layer\.fail:([A-Za-z0-9_-]*)" not defined/;

function withFail(source: string): string {
  return source.replace(FAIL_CALL, (_call, left: string, literal: string, right: string) => {
    const message = Buffer.from(JSON.parse(literal) as string, 'utf8').toString('base64url');
    return `{{${left} template "memory-layer.fail:${message}" ${right}}}`;
  });
}

async function renderTemplate(file: string, data: ReturnType<typeof helmObjects>): Promise<string> {
  const helpers = readFileSync(join(chartDir, 'templates/_helpers.tpl'), 'utf8');
  const body = readFileSync(join(chartDir, file), 'utf8');
  let out: string;
  try {
    // Helm parses all templates into one set, so every file sees _helpers.tpl's definitions;
    // a file of only {{ define }} blocks renders to whitespace, which is dropped.
    out = await renderGoTemplate(withFail(`${helpers}${body}`), {
      ...data,
      Template: { Name: `${data.Chart.Name}/${file}`, BasePath: `${data.Chart.Name}/templates` },
    });
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    const failed = FAIL_MARK.exec(message);
    if (failed) throw new Error(`${file}: ${Buffer.from(failed[1], 'base64url').toString('utf8')}`);
    if (/function "fail" not defined/.test(message)) {
      throw new Error(`${file}: ${message} (this renderer supports \`{{ fail "a literal message" }}\` only)`);
    }
    throw new Error(`${file}: ${message}`);
  }
  if (out.includes('<no value>')) throw new Error(`${file}: rendered "<no value>" (a missing value)`);
  return out;
}

export const defaultRelease: Release = {
  name: 'ml',
  namespace: 'memory-layer',
  revision: 1,
  isInstall: true,
};

/** Renders every template with values.yaml merged with `overrides`. */
export async function renderChart(
  overrides: Values = {},
  release: Release = defaultRelease,
): Promise<Rendered> {
  const data = helmObjects(mergeValues(defaultValues(), overrides), release);
  const manifests: Manifest[] = [];
  for (const template of templateFiles()) {
    const text = await renderTemplate(template, data);
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) {
        throw new Error(`${template}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
      }
      const value = doc.toJS();
      if (value === null || value === undefined) continue;
      if (!isMap(value)) throw new Error(`${template}: a document is not a mapping`);
      manifests.push({ template, doc: value });
    }
  }
  const notes = await renderTemplate('templates/NOTES.txt', data);
  return { manifests, notes };
}

/** The rendered chart as `helm template` prints it: one document per manifest with its source. */
export async function renderChartText(
  overrides: Values = {},
  release: Release = defaultRelease,
): Promise<string> {
  const data = helmObjects(mergeValues(defaultValues(), overrides), release);
  const parts: string[] = [];
  for (const template of templateFiles()) {
    for (const doc of (await renderTemplate(template, data)).split(/^---[ \t]*$/m)) {
      const body = doc.replace(/^\s*\n/, '').trimEnd();
      // Documents with nothing but comments are left out, as Helm does.
      if (body.split('\n').every((l) => l.trim() === '' || l.trim().startsWith('#'))) continue;
      parts.push(`---\n# Source: ${chartMetadata().name}/${template}\n${body}\n`);
    }
  }
  return parts.join('');
}

/** Value sets the tests render: the defaults and every branch the templates have. */
export const scenarios: Record<string, Values> = {
  defaults: {},
  'usearch in every API pod, following the change feed': {
    config: { VECTOR_INDEX: 'usearch' },
    volumes: { dataSizeLimit: '4Gi' },
    api: { replicas: 3, resources: { limits: { cpu: '2', memory: '3Gi' } } },
  },
  'csi secrets, mTLS, auth files, all egress destinations': {
    secrets: {
      provider: 'csi',
      env: ['DATABASE_URL', 'EMBEDDER_API_KEY'],
    },
    tls: { enabled: true, clientCA: true },
    auth: {
      identitiesJson: '{"services": {"agents-gateway": {"roles": ["writer"], "divisions": ["default"]}}}',
      jwksJson: '{"keys": []}',
      jwtIssuer: 'https://kernel.example',
      jwtAudience: 'memory-layer',
    },
    config: {
      EMBEDDER: 'openai',
      EMBEDDER_URL: 'https://embeddings.example/v1',
      EMBEDDER_MODEL: 'text-embedding-3-small',
      EMBEDDER_DIMENSIONS: '1536',
      AUDIT_SINK: 'nats',
      NATS_URL: 'nats://nats.messaging.svc:4222',
      OBJECT_STORE: 's3',
      S3_REGION: 'eu-central-1',
      S3_BUCKET: 'memory-layer',
    },
    networkPolicy: {
      egress: {
        postgres: { cidrs: ['10.20.0.0/16'], namespaceLabels: { 'kubernetes.io/metadata.name': 'db' } },
        objectStore: { cidrs: ['203.0.113.0/24'] },
        embedder: { namespaceLabels: { 'kubernetes.io/metadata.name': 'ml' }, podLabels: { app: 'tei' } },
        // For text-embedding-3-large; bge-m3 runs on the embedder's pods (`embedder` above).
        embeddingModels: [{ ports: [443], cidrs: ['198.51.100.0/24'], namespaceLabels: {}, podLabels: {} }],
        nats: { namespaceLabels: { 'kubernetes.io/metadata.name': 'messaging' } },
        otlp: { namespaceLabels: { 'kubernetes.io/metadata.name': 'observability' } },
      },
    },
    metrics: { serviceMonitor: { clientCertSecret: 'prometheus-client-tls' } },
    tracing: { endpoint: 'http://otel-collector.observability.svc:4318' },
    backup: { enabled: true },
    embeddingModels: [
      {
        name: 'text-embedding-3-large',
        version: '2024-01',
        dimensions: 3072,
        url: 'https://embeddings.example/v1',
        apiKeyEnv: 'EMBEDDER_API_KEY',
      },
      { name: 'bge-m3', version: '1', dimensions: 1024, url: 'http://tei.ml.svc/v1', batchSize: 32 },
    ],
  },
  'TLS without client certificates, fixed replicas, monitoring off': {
    tls: { enabled: true, clientCA: false },
    api: { autoscaling: { enabled: false } },
    worker: { autoscaling: { enabled: false } },
    migration: { enabled: false },
    serviceAccount: { create: false, name: 'existing-sa' },
    metrics: {
      serviceMonitor: { enabled: false },
      prometheusRule: { enabled: false },
      grafanaDashboard: { enabled: false },
    },
  },
  'backups and embedding models, Vault Agent, existing service account': {
    serviceAccount: { create: false, name: 'existing-sa' },
    secrets: { env: ['DATABASE_URL', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'EMBEDDINGS_V2_API_KEY'] },
    config: {
      OBJECT_STORE: 's3',
      S3_ENDPOINT: 'http://minio.storage.svc:9000',
      S3_BUCKET: 'memory-layer',
      S3_FORCE_PATH_STYLE: 'true',
    },
    backup: { enabled: true, schedule: '30 2 * * *', timeZone: 'Europe/Berlin' },
    embeddingModels: [
      {
        name: 'text-embedding-3-large',
        version: '2024-01',
        dimensions: 3072,
        url: 'https://api.openai.com/v1',
        apiKeyEnv: 'EMBEDDINGS_V2_API_KEY',
        batchSize: 64,
        timeoutMs: 30000,
      },
    ],
    networkPolicy: {
      egress: {
        objectStore: {
          ports: [9000],
          namespaceLabels: { 'kubernetes.io/metadata.name': 'storage' },
          podLabels: { app: 'minio' },
        },
        embeddingModels: [{ ports: [443], cidrs: ['198.51.100.20/32'], namespaceLabels: {}, podLabels: {} }],
      },
    },
  },
  'network policies off': { networkPolicy: { enabled: false } },
  'store TLS, S3 server-side encryption, key directory on a volume': {
    config: { OBJECT_STORE: 's3', S3_ENDPOINT: 'https://minio.storage.svc:9000', S3_BUCKET: 'memory-layer' },
    stores: {
      postgres: {
        sslMode: 'verify-full',
        ca: { secretName: 'postgres-ca' },
        clientCertSecret: 'memory-layer-postgres-client',
      },
      s3: {
        ca: { configMapName: 'storage-ca-bundle', key: 'ca-bundle.crt' },
        sse: 'aws:kms',
        kmsKeyId: 'alias/memory-layer',
      },
    },
    encryption: {
      keyDir: { source: 'persistentVolumeClaim', claimName: 'memory-layer-keys' },
      kekSecret: { name: 'memory-layer-kek' },
    },
    backup: { enabled: true },
    networkPolicy: {
      egress: {
        objectStore: { ports: [9000], namespaceLabels: { 'kubernetes.io/metadata.name': 'storage' } },
      },
    },
  },
};

/** A scenario's values as the templates see them (values.yaml merged with the scenario's). */
export const scenarioValues = (name: string) => mergeValues(defaultValues(), scenarios[name] ?? {});
