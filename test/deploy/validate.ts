import {
  PodMonitor,
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Ajv } from 'ajv';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';

/**
 * Validates manifests against the Kubernetes OpenAPI schemas, as shipped by kubernetes-models
 * 4.5.1 (Kubernetes 1.33) and @kubernetes-models/prometheus-operator (the Prometheus Operator's
 * CRDs), plus a schema for the Secrets Store CSI driver's SecretProviderClass written from its
 * CRD (secrets-store.csi.x-k8s.io/v1). Unknown kinds are errors.
 *
 * The Kubernetes schemas allow properties they do not define (the API server would drop them or,
 * with strict field validation, refuse them), so a misspelt field would pass unnoticed. This also
 * rejects unknown fields, like `kubeconform -strict`: the generated validators read every
 * property their schema defines (and every entry of free-form maps), so a field the validator
 * never read is one the schema does not know.
 */

type Validator = (data: unknown) => void;

/** Model classes by apiVersion/kind; each class's `validate` runs the generated schema check. */
const models: Record<string, { prototype: { validate(): void } }> = {
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1/CronJob': CronJob,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
};

const objectMeta = {
  type: 'object',
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 },
    namespace: { type: 'string' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
  required: ['name'],
  additionalProperties: false,
};

/** SecretProviderClass (secrets-store.csi.x-k8s.io/v1), from the driver's CRD. */
const secretProviderClassSchema = {
  type: 'object',
  properties: {
    apiVersion: { const: 'secrets-store.csi.x-k8s.io/v1' },
    kind: { const: 'SecretProviderClass' },
    metadata: objectMeta,
    spec: {
      type: 'object',
      properties: {
        provider: { type: 'string' },
        parameters: { type: 'object', additionalProperties: { type: 'string' } },
        secretObjects: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              secretName: { type: 'string' },
              type: { type: 'string' },
              labels: { type: 'object', additionalProperties: { type: 'string' } },
              annotations: { type: 'object', additionalProperties: { type: 'string' } },
              data: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { key: { type: 'string' }, objectName: { type: 'string' } },
                  additionalProperties: false,
                },
              },
            },
            additionalProperties: false,
          },
        },
      },
      additionalProperties: false,
    },
  },
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
};

const ajv = new Ajv({ allErrors: true, strict: true });
const validateSecretProviderClass = ajv.compile(secretProviderClassSchema);

/** Runs `validate` on a proxy of `data` and returns the paths of properties it never read. */
function unreadProperties(data: unknown, validate: Validator): string[] {
  const read = new Set<string>();
  const wrap = (value: unknown, path: string): unknown => {
    if (value === null || typeof value !== 'object') return value;
    return new Proxy(value as object, {
      get(target, key, receiver) {
        const child = Reflect.get(target, key, receiver);
        if (typeof key !== 'string') return child;
        read.add(`${path}/${key}`);
        return wrap(child, `${path}/${key}`);
      },
    });
  };
  validate(wrap(data, ''));
  const unread: string[] = [];
  const walk = (value: unknown, path: string) => {
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      const at = `${path}/${key}`;
      if (!Array.isArray(value) && !read.has(at)) unread.push(at);
      else walk(child, at);
    }
  };
  walk(data, '');
  return unread;
}

export interface ValidationProblem {
  path: string;
  message: string;
}

/** Problems with one manifest: schema violations and unknown fields; empty when valid. */
export function validateManifest(doc: Record<string, unknown>): ValidationProblem[] {
  const key = `${doc.apiVersion}/${doc.kind}`;
  if (key === 'secrets-store.csi.x-k8s.io/v1/SecretProviderClass') {
    if (validateSecretProviderClass(doc)) return [];
    return (validateSecretProviderClass.errors ?? []).map((e) => ({
      path: e.instancePath || '/',
      message: `${e.message}${e.params && 'additionalProperty' in e.params ? `: ${e.params.additionalProperty}` : ''}`,
    }));
  }
  const model = models[key];
  if (!model) return [{ path: '/', message: `no schema for ${key}` }];
  const problems: ValidationProblem[] = [];
  const validate: Validator = (data) => {
    try {
      model.prototype.validate.call(data);
    } catch (err) {
      const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors;
      if (!errors) throw err;
      for (const e of errors) problems.push({ path: e.instancePath || '/', message: e.message ?? 'invalid' });
    }
  };
  const unknown = unreadProperties(doc, validate);
  // Unknown fields only mean something once the known ones are valid (a failing subtree may
  // stop the validator before it reads its siblings).
  if (problems.length === 0) {
    for (const path of unknown) problems.push({ path, message: 'unknown field' });
  }
  return problems;
}

export const schemaSource =
  'kubernetes-models 4.5.1 (Kubernetes 1.33 OpenAPI), @kubernetes-models/prometheus-operator 4.4.4, SecretProviderClass v1 CRD';
