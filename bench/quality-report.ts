/** Renders the "Retrieval quality" section of BENCHMARKS.md (between its markers; the rest is kept). */
import { readFileSync, writeFileSync } from 'node:fs';
import { CATEGORIES } from './locomo.js';
import { COPY_LABELS, type Mode, type Variant } from './quality-variants.js';
import type { Summary } from './stats.js';

/** One section per database, so that a run on the PostgreSQL server keeps the PGlite one and back. */
const markers = (database: string) => ({
  start: `<!-- quality-bench ${database}: start -->`,
  end: `<!-- quality-bench ${database}: end -->`,
});
const DATABASE_NAMES: Record<string, string> = { pglite: 'PGlite', postgres: 'PostgreSQL server' };

export interface AblationRow extends Variant {
  /** Mean recall at each k. */
  recall: number[];
}

export interface QualityReport {
  date: string;
  command: string;
  database: string;
  vectorIndex: string;
  conversations: string[];
  turns: number;
  questions: number;
  withoutEvidence: number;
  ks: number[];
  modes: {
    mode: Mode;
    answers: { category: number; recall: number[]; ms: number }[];
    latency: Summary;
    server: Summary;
    embed: Summary;
  }[];
  ablation: AblationRow[];
  durationSec: number;
  cores: number;
  /** Mean 1-minute load average during the run. */
  meanLoad: number;
}

const pct = (x: number) => (100 * x).toFixed(1);
const ms = (x: number) => x.toFixed(1);

function meanRecall(answers: { recall: number[] }[], ks: number[]) {
  return ks.map((_, i) => answers.reduce((s, a) => s + a.recall[i], 0) / Math.max(1, answers.length));
}

function recallTable(r: QualityReport): string {
  const head = `| mode | questions | ${r.ks.map((k) => `recall@${k}`).join(' | ')} |`;
  const rows = [head, `|---|---|${r.ks.map(() => '---|').join('')}`];
  const groups: [string, (c: number) => boolean][] = [
    ['all (1-4)', () => true],
    ...Object.entries(CATEGORIES).map(([c, name]): [string, (x: number) => boolean] => [
      `${c} ${name}`,
      (x) => x === Number(c),
    ]),
  ];
  for (const [label, keep] of groups) {
    for (const m of r.modes) {
      const answers = m.answers.filter((a) => keep(a.category));
      const cells = meanRecall(answers, r.ks).map((x) => (m.mode === 'hybrid' ? `**${pct(x)}**` : pct(x)));
      rows.push(`| ${m.mode} · ${label} | ${answers.length} | ${cells.join(' | ')} |`);
    }
  }
  return rows.join('\n');
}

function ablationTable(r: QualityReport): string {
  if (r.ablation.length === 0) return '_Ablation not run (`--no-ablation`)._';
  const rows = [
    `| technique | mode | settings | ${r.ks.map((k) => `recall@${k}`).join(' | ')} | Δ recall@10 |`,
    `|---|---|---|${r.ks.map(() => '---|').join('')}---|`,
  ];
  let previous: AblationRow | undefined;
  for (const a of r.ablation) {
    const env = Object.entries(a.env ?? {}).map(([k, v]) => `\`${k}=${v}\``);
    const settings = [
      ...(env.length > 0 ? env : ['defaults']),
      ...(a.copy && a.copy !== 'full' ? [COPY_LABELS[a.copy]] : []),
    ].join(', ');
    // The change is measured against the row above when it is a step of the same retriever.
    const delta =
      previous && a.step
        ? `${a.recall[1] >= previous.recall[1] ? '+' : ''}${pct(a.recall[1] - previous.recall[1])}`
        : '';
    rows.push(`| ${a.technique} | ${a.mode} | ${settings} | ${a.recall.map(pct).join(' | ')} | ${delta} |`);
    previous = a;
  }
  return rows.join('\n');
}

function latencyTable(r: QualityReport): string {
  const note: Record<Mode, string> = {
    hybrid: 'asked first: the query is embedded inside each search',
    vector: 'query vector cached by the hybrid search before it',
    keyword: 'no embedding',
  };
  return [
    '| mode | searches | p50 | p95 | p99 | max | in the service p50 / p95 | embedding the query p50 / p95 | |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.modes.map(
      (m) =>
        `| ${m.mode} | ${m.latency.n} | ${ms(m.latency.p50)} ms | ${ms(m.latency.p95)} ms | ${ms(m.latency.p99)} ms | ${ms(m.latency.max)} ms | ${ms(m.server.p50)} / ${ms(m.server.p95)} ms | ${ms(m.embed.p50)} / ${ms(m.embed.p95)} ms | ${note[m.mode]} |`,
    ),
  ].join('\n');
}

export function renderQualitySection(r: QualityReport): string {
  return `${markers(r.database).start}
## Retrieval quality (conversational memory), ${DATABASE_NAMES[r.database] ?? r.database}

Measured by \`${r.command}\` (bench/quality.ts) on ${r.date}, with the LoCoMo development split
(conversations ${r.conversations.join(', ')}; the data is not in this repository): each turn is one
memory written through \`POST /v1/memories/batch\` (text \`"<speaker>: <text>"\`, \`sessionId\` = the
session, \`sequence\` = the turn's place, \`occurredAt\` = the session's date), one division per
conversation, ${r.turns.toLocaleString('en-US')} memories in all; then each of the ${r.questions} questions of
categories 1-4 (${r.withoutEvidence} without a usable evidence id left out) is asked through
\`POST /v1/search\` with k 20. Recall@k: the share of a question's evidence turns among its first k
hits, averaged over questions. Service in this process over HTTP on 127.0.0.1, ${r.database},
${r.vectorIndex} vector index, built-in model (use-lite, 512 dimensions). The run took
${Math.round(r.durationSec)} s. Targets: hybrid recall@10 >= 68 %, text-query p95 <= 60 ms.

### Recall by mode and question category (%)

${recallTable(r)}

### What each technique adds (ablation)

Each row is the service started with the settings shown (the vector index rebuilt when its
vectors change), asked every question in the mode shown, about the conversations as written above
or about a copy written without sessions or dates (same texts, same model's vectors, in divisions of
their own): that is how the keyword side's neighbour context and date words are left out. Δ:
against the row above, for rows that add one technique to it.

${ablationTable(r)}

### Search latency, end to end

From sending \`POST /v1/search\` (k 20) to having its JSON parsed, one request at a time, every
question once per mode, in the order hybrid, vector, keyword; "in the service" is the answer's own
\`timings.totalMs\`. The machine's mean load average during the run was ${r.meanLoad.toFixed(1)} on
${r.cores} cores: above ${r.cores}, other processes were competing for the CPU and every figure here is
inflated by it.

${latencyTable(r)}
${markers(r.database).end}`;
}

export function writeQualitySection(file: string, database: string, section: string): void {
  const { start: startMarker, end: endMarker } = markers(database);
  let text = readFileSync(file, 'utf8');
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker);
  text =
    start >= 0 && end > start
      ? `${text.slice(0, start)}${section}${text.slice(end + endMarker.length)}`
      : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, text);
}
