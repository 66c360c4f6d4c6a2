/**
 * `npm run bench:quality -- --locomo FILE [--conversations N] [--database-url URL] [--no-ablation]`:
 * retrieval quality on conversational memory. Each LoCoMo conversation goes into a division of its
 * own through the public API (one memory per turn, with its session, place and date), every
 * question of categories 1-4 is asked through `POST /v1/search` (k 20) in hybrid, keyword and
 * vector mode, and evidence recall@5/10/20 is computed per mode and category. Then each technique
 * is switched off in turn (an ablation: a service started with other settings over the same
 * memories). Writes the "Retrieval quality" section of BENCHMARKS.md.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createLocalEmbedder } from '../src/adapters/embedders/local.js';
import { normaliseText } from '../src/memories/text.js';
import { log } from './harness.js';
import { type Conversation, loadLocomo } from './locomo.js';
import { type AblationRow, renderQualitySection, writeQualitySection } from './quality-report.js';
import { openBenchDatabase, type Service, startService } from './quality-service.js';
import { ABLATION, type Copy, MODES, type Mode } from './quality-variants.js';
import { summarise } from './stats.js';

const KS = [5, 10, 20] as const;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const file = arg('locomo');
if (!file) {
  process.stderr.write(
    'usage: npm run bench:quality -- --locomo FILE [--conversations N] [--database-url URL] [--no-ablation] [--out FILE] [--json FILE]\n',
  );
  process.exit(2);
}
const limit = arg('conversations') === undefined ? Infinity : Number(arg('conversations'));
const databaseUrl = arg('database-url');
const out = arg('out') ?? 'BENCHMARKS.md';

/** Recall of one question at each of KS. */
export interface Answer {
  conversation: string;
  category: number;
  recall: number[];
  /** End to end, as this client saw it. */
  ms: number;
  /** The service's own account (`timings`): the whole search, and embedding the query. */
  serverMs: number;
  embedMs: number;
}

const divisionOf = (c: Conversation, copy: Copy = 'full') =>
  `locomo-${c.id.toLowerCase().replace(/[^a-z0-9_-]/g, '-')}${copy === 'full' ? '' : `-${copy}`}`;

/** Memory id -> LoCoMo turn id, per division. */
const turnOf = new Map<string, string>();

/**
 * Writes one copy of the conversations, a division per conversation. `vectors` (by turn text):
 * precomputed with the same model, for the ablation's copies, so that the service does not embed
 * every turn three times.
 */
async function ingest(
  service: Service,
  conversations: Conversation[],
  copy: Copy,
  vectors?: Map<string, number[]>,
) {
  const model = `${embedderModel.name}@${embedderModel.version}`;
  for (const c of conversations) {
    const divisionId = divisionOf(c, copy);
    const made = await service.post('/v1/divisions', { id: divisionId }, { 'idempotency-key': divisionId });
    if (made.status !== 201)
      throw new Error(`creating ${divisionId}: ${made.status} ${JSON.stringify(made.body)}`);
    for (let from = 0; from < c.turns.length; from += 500) {
      const turns = c.turns.slice(from, from + 500);
      const res = await service.post<{ items: { id: string }[] }>(
        '/v1/memories/batch',
        {
          divisionId,
          items: turns.map((t) => ({
            text: t.text,
            ...(copy !== 'plain' ? { sessionId: t.sessionId, sequence: t.sequence } : {}),
            ...(copy === 'full' && t.occurredAt ? { occurredAt: t.occurredAt } : {}),
            ...(vectors ? { vector: vectors.get(t.text), model } : {}),
          })),
        },
        { 'idempotency-key': `${divisionId}-${from}` },
      );
      if (res.status !== 201) throw new Error(`ingesting ${c.id}: ${res.status} ${JSON.stringify(res.body)}`);
      for (const [i, m] of res.body.items.entries()) turnOf.set(m.id, turns[i].diaId);
    }
  }
}

async function ask(
  service: Service,
  conversations: Conversation[],
  mode: Mode,
  copy: Copy = 'full',
): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const c of conversations) {
    for (const q of c.questions) {
      const res = await service.post<{
        hits: { id: string }[];
        timings: { totalMs: number; embedMs: number };
      }>('/v1/search', {
        divisionId: divisionOf(c, copy),
        query: q.question,
        k: 20,
        mode,
      });
      if (res.status !== 200) throw new Error(`search: ${res.status} ${JSON.stringify(res.body)}`);
      const found = res.body.hits.map((h) => turnOf.get(h.id));
      const recall = KS.map((k) => {
        const top = new Set(found.slice(0, k));
        return q.evidence.filter((e) => top.has(e)).length / q.evidence.length;
      });
      const { totalMs, embedMs } = res.body.timings;
      answers.push({
        conversation: c.id,
        category: q.category,
        recall,
        ms: res.ms,
        serverMs: totalMs,
        embedMs,
      });
    }
  }
  return answers;
}

/** Every turn's vector, computed here with the service's model (the ablation's copies carry them). */
async function embedTurns(conversations: Conversation[]): Promise<Map<string, number[]>> {
  const texts = [...new Set(conversations.flatMap((c) => c.turns.map((t) => t.text)))];
  const out = new Map<string, number[]>();
  for (let from = 0; from < texts.length; from += 64) {
    const batch = texts.slice(from, from + 64);
    const vectors = await embedder.embed(batch.map(normaliseText));
    for (const [i, text] of batch.entries()) out.set(text, Array.from(vectors[i]));
  }
  return out;
}

/**
 * The ablation's answers, one entry per row. Rows with the same settings share one service; the
 * rows that keep the default vector blend run first, so that the vector index is rebuilt only
 * when the blend changes.
 */
async function runAblation(): Promise<Answer[][]> {
  const answers: Answer[][] = [];
  const groups = new Map<string, number[]>();
  for (const [i, v] of ABLATION.entries()) {
    if (v.env === undefined && (v.copy ?? 'full') === 'full') {
      answers[i] = results.get(v.mode) ?? [];
      continue;
    }
    const key = JSON.stringify(v.env ?? {});
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  const weightOf = (key: string) =>
    (JSON.parse(key) as Record<string, string>).VECTOR_CONTEXT_WEIGHT ?? 'default';
  let indexed = 'default';
  for (const key of [...groups.keys()].sort(
    (a, b) => Number(weightOf(a) !== 'default') - Number(weightOf(b) !== 'default'),
  )) {
    const service = await startService(database, embedder, JSON.parse(key), {
      rebuild: weightOf(key) !== indexed,
    });
    indexed = weightOf(key);
    try {
      await service.idle();
      for (const i of groups.get(key) ?? []) {
        const v = ABLATION[i];
        answers[i] = await ask(service, conversations, v.mode, v.copy);
        log(`ablation: ${v.technique}: recall@10 ${(100 * meanAt(answers[i], 1)).toFixed(1)} %`);
      }
    } finally {
      await service.close();
    }
  }
  return answers;
}

const started = performance.now();
// The machine may be shared: its load during the run goes into the report with the latencies.
const loads: number[] = [];
const sampler = setInterval(() => loads.push(loadavg()[0]), 5_000);
sampler.unref();
const conversations = loadLocomo(file).slice(0, limit);
const questions = conversations.reduce((n, c) => n + c.questions.length, 0);
const turns = conversations.reduce((n, c) => n + c.turns.length, 0);
log(`${conversations.length} conversations, ${turns} turns, ${questions} questions (categories 1-4)`);

const database = await openBenchDatabase(databaseUrl);
const embedder = await createLocalEmbedder();
const embedderModel = embedder.model;
const results = new Map<Mode, Answer[]>();
const ablation: AblationRow[] = [];
let vectorIndex = '';
try {
  const service = await startService(database, embedder, {});
  vectorIndex = service.vectorIndex;
  try {
    const t0 = performance.now();
    await ingest(service, conversations, 'full');
    await service.idle();
    log(`ingested and indexed in ${((performance.now() - t0) / 1000).toFixed(1)} s (${vectorIndex})`);
    // Hybrid first: its query embeddings are then computed inside the measured searches.
    for (const mode of MODES) {
      results.set(mode, await ask(service, conversations, mode));
      log(`${mode}: recall@10 ${(100 * meanAt(results.get(mode) ?? [], 1)).toFixed(1)} %`);
    }
    if (!flag('no-ablation')) {
      const vectors = await embedTurns(conversations);
      for (const copy of ['sessions', 'plain'] as const) await ingest(service, conversations, copy, vectors);
      await service.idle();
      log('ingested the ablation copies');
    }
  } finally {
    await service.close();
  }
  if (!flag('no-ablation')) {
    for (const [i, answers] of (await runAblation()).entries()) {
      ablation.push({ ...ABLATION[i], recall: KS.map((_, k) => meanAt(answers, k)) });
    }
  }
} finally {
  await embedder.close();
  await database.drop();
}

function meanAt(answers: Answer[], i: number) {
  return answers.reduce((s, a) => s + a.recall[i], 0) / Math.max(1, answers.length);
}

const report = {
  date: new Date().toISOString().slice(0, 10),
  command: `npm run bench:quality -- --locomo FILE${Number.isFinite(limit) ? ` --conversations ${limit}` : ''}${databaseUrl ? ' --database-url URL' : ''}`,
  database: database.engine,
  vectorIndex,
  conversations: conversations.map((c) => c.id),
  turns,
  questions,
  withoutEvidence: conversations.reduce((n, c) => n + c.withoutEvidence, 0),
  ks: [...KS],
  modes: MODES.map((mode) => {
    const answers = results.get(mode) ?? [];
    return {
      mode,
      answers,
      latency: summarise(answers.map((a) => a.ms)),
      server: summarise(answers.map((a) => a.serverMs)),
      embed: summarise(answers.map((a) => a.embedMs)),
    };
  }),
  ablation,
  durationSec: (performance.now() - started) / 1000,
  cores: cpus().length,
  meanLoad: loads.length ? loads.reduce((a, b) => a + b, 0) / loads.length : loadavg()[0],
};
const json = arg('json');
if (json) writeFileSync(json, JSON.stringify(report, null, 2));
writeQualitySection(out, report.database, renderQualitySection(report));
log(`wrote the retrieval quality section of ${out} (${report.durationSec.toFixed(0)} s)`);
process.exit(0);
