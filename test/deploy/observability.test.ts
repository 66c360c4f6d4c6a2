import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parser } from '@prometheus-io/lezer-promql';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/platform/metrics.js';
import { chartDir, renderChart } from './chart.js';

/**
 * Alert rules and the dashboard may only name metrics that exist. Memory Layer's own metrics are
 * read from the service itself: createMetrics() builds the registry /metrics serves, and its
 * names (plus _bucket/_sum/_count for histograms) are the exported set. Metrics from other
 * exporters are listed here with their source.
 */
const fromOtherExporters: Record<string, string> = {
  pg_replication_lag_seconds: 'postgres_exporter, replication collector',
  pg_database_size_bytes: 'postgres_exporter, database collector',
};

/**
 * Named by the alert rules before the service exports them, each with who exports it. A name
 * here that is exported already is fine; delete it from this list then.
 */
const pending: Record<string, string> = {
  memory_layer_object_store_errors_total: 'the object-store adapter (issue 4, object storage)',
};

function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const m of createMetrics().registry.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

/** Metric names in a PromQL expression, from the PromQL grammar Prometheus' own UI uses. */
function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  const errors: number[] = [];
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
      if (node.name === 'VectorSelector') {
        const id = node.node.getChild('Identifier');
        if (id) names.push(expr.slice(id.from, id.to));
      }
      if (node.name === 'LabelMatcher' && expr.slice(node.from, node.to).startsWith('__name__')) {
        throw new Error(`${expr}: select metrics by name, not by __name__`);
      }
    },
  });
  if (errors.length > 0) throw new Error(`PromQL syntax error at ${errors[0]} in: ${expr}`);
  return names;
}

/** Grafana replaces its interval variables before the query reaches Prometheus. */
const grafanaToPromql = (expr: string) => expr.replace(/\$__(rate_interval|interval|range)/g, '5m');

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: Record<string, string>;
}
const alertsFile = parseYaml(readFileSync(join(chartDir, 'files/alerts.yaml'), 'utf8')) as {
  spec: { groups: { name: string; rules: Rule[] }[] };
};
const rules = alertsFile.spec.groups.flatMap((g) => g.rules);

interface Panel {
  id: number;
  title: string;
  type: string;
  datasource: { uid: string };
  targets: { expr: string; refId: string }[];
}
const dashboard = JSON.parse(readFileSync(join(chartDir, 'files/dashboard.json'), 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: unknown }[] };
};

describe('alert rules (files/alerts.yaml)', () => {
  it('are a valid PrometheusRule spec', () => {
    const rule = new PrometheusRule({ metadata: { name: 'memory-layer' }, spec: alertsFile.spec });
    expect(() => rule.validate()).not.toThrow();
  });

  it('cover queue backlog, worker failures, replication lag, vector index health and object-store errors', () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'MemoryLayerQueueBacklog',
        'MemoryLayerDeadLetteredJobs',
        'MemoryLayerWorkerFailureRate',
        'MemoryLayerPostgresReplicationLag',
        'MemoryLayerVectorIndexExactFallbacks',
        'MemoryLayerObjectStoreErrors',
      ]),
    );
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('each have a duration, a severity, a summary, a description and a runbook', () => {
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(Object.keys(r.annotations).sort(), r.alert).toEqual(['description', 'runbook', 'summary']);
      expect(r.annotations.runbook, r.alert).toMatch(/^docs\/runbooks/);
    }
  });

  it('name only metrics the service exports (or other exporters, listed with their source)', () => {
    const exported = exportedMetrics();
    for (const r of rules) {
      const names = metricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const name of names) {
        const known = exported.has(name) || name in fromOtherExporters || name in pending;
        expect(known, `${r.alert}: ${name} is not exported`).toBe(true);
      }
    }
  });

  it('ship with the chart as a PrometheusRule carrying the file unchanged', async () => {
    const { manifests } = await renderChart();
    const shipped = manifests.find((m) => m.doc.kind === 'PrometheusRule');
    expect(shipped?.doc.spec).toEqual(alertsFile.spec);
  });
});

describe('Grafana dashboard (files/dashboard.json)', () => {
  it('has panels for ingestion, vector write latency, search p95, queue depth, worker errors and storage', () => {
    expect(dashboard.panels.map((p) => p.title)).toEqual(
      expect.arrayContaining([
        'Ingestion rate',
        'Vector write latency',
        'Search latency p95',
        'Queue depth',
        'Worker errors',
        'Storage use',
      ]),
    );
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of dashboard.panels) {
      // Grafana's variable syntax, not a template literal.
      expect(p.datasource.uid, p.title).toBe(['$', '{datasource}'].join(''));
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'database']);
  });

  it('queries only metrics the service exports (or other exporters, listed with their source)', () => {
    const exported = exportedMetrics();
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list
        .filter((v) => typeof v.query === 'object')
        .map((v) => ({
          where: `variable ${v.name}`,
          // label_values(metric, label) is Grafana's: the metric is its first argument.
          expr: (v.query as { query: string }).query.replace(/^label_values\(([^,]+),.*$/, '$1'),
        })),
    ];
    for (const { where, expr } of queries) {
      for (const name of metricNames(grafanaToPromql(expr))) {
        const known = exported.has(name) || name in fromOtherExporters;
        expect(known, `${where}: ${name} is not exported`).toBe(true);
      }
    }
  });

  it('ships with the chart in a ConfigMap labelled for the Grafana sidecar', async () => {
    const { manifests } = await renderChart();
    const cm = manifests.find(
      (m) => m.doc.kind === 'ConfigMap' && (m.doc.metadata as { name: string }).name === 'ml-dashboard',
    );
    if (!cm) throw new Error('no dashboard ConfigMap');
    expect((cm.doc.metadata as { labels: Record<string, string> }).labels.grafana_dashboard).toBe('1');
    const data = cm.doc.data as Record<string, string>;
    expect(JSON.parse(data['memory-layer.json'])).toEqual(dashboard);
  });
});

describe('metric name extraction', () => {
  it('finds selectors, ignores functions, labels and keywords, and rejects bad PromQL', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, mode) (rate(a_bucket{mode=~"vector|hybrid"}[5m]))) / on() group_left b > 0',
      ),
    ).toEqual(['a_bucket', 'b']);
    expect(() => metricNames('sum(rate(a[5m])')).toThrow(/syntax error/);
  });
});
