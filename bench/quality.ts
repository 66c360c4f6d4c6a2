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
import { createLocalEmbedder } from '../src/adapters/embedders/local.js';
import { log } from './harness.js';
import { type Conversation, loadLocomo } from './locomo.js';
import { type AblationRow, renderQualitySection, writeQualitySection } from './quality-report.js';
import { openBenchDatabase, type Service, startService } from './quality-service.js';
import { ABLATION, MODES, type Mode } from './quality-variants.js';
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
  ms: number;
}

const divisionOf = (c: Conversation) => `locomo-${c.id.toLowerCase().replace(/[^a-z0-9_-]/g, '-')}`;

/** Memory id -> LoCoMo turn id, per division. */
const turnOf = new Map<string, string>();

async function ingest(service: Service, conversations: Conversation[]) {
  for (const c of conversations) {
    const divisionId = divisionOf(c);
    const made = await service.post('/v1/divisions', { id: divisionId });
    if (made.status !== 201)
      throw new Error(`creating ${divisionId}: ${made.status} ${JSON.stringify(made.body)}`);
    for (let from = 0; from < c.turns.length; from += 500) {
      const turns = c.turns.slice(from, from + 500);
      const res = await service.post<{ items: { id: string }[] }>('/v1/memories/batch', {
        divisionId,
        items: turns.map((t) => ({
          text: t.text,
          sessionId: t.sessionId,
          sequence: t.sequence,
          ...(t.occurredAt ? { occurredAt: t.occurredAt } : {}),
        })),
      });
      if (res.status !== 201) throw new Error(`ingesting ${c.id}: ${res.status} ${JSON.stringify(res.body)}`);
      for (const [i, m] of res.body.items.entries()) turnOf.set(m.id, turns[i].diaId);
    }
  }
}

async function ask(service: Service, conversations: Conversation[], mode: Mode): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const c of conversations) {
    for (const q of c.questions) {
      const res = await service.post<{ hits: { id: string }[] }>('/v1/search', {
        divisionId: divisionOf(c),
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
      answers.push({ conversation: c.id, category: q.category, recall, ms: res.ms });
    }
  }
  return answers;
}

const started = performance.now();
const conversations = loadLocomo(file).slice(0, limit);
const questions = conversations.reduce((n, c) => n + c.questions.length, 0);
const turns = conversations.reduce((n, c) => n + c.turns.length, 0);
log(`${conversations.length} conversations, ${turns} turns, ${questions} questions (categories 1-4)`);

const database = await openBenchDatabase(databaseUrl);
const embedder = await createLocalEmbedder();
const results = new Map<Mode, Answer[]>();
const ablation: AblationRow[] = [];
let vectorIndex = '';
try {
  let service = await startService(database, embedder, {});
  vectorIndex = service.vectorIndex;
  try {
    const t0 = performance.now();
    await ingest(service, conversations);
    await service.idle();
    log(`ingested and indexed in ${((performance.now() - t0) / 1000).toFixed(1)} s (${vectorIndex})`);
    // Hybrid first: its query embeddings are then computed inside the measured searches.
    for (const mode of MODES) {
      results.set(mode, await ask(service, conversations, mode));
      log(`${mode}: recall@10 ${(100 * meanAt(results.get(mode) ?? [], 1)).toFixed(1)} %`);
    }
  } finally {
    await service.close();
  }
  if (!flag('no-ablation')) {
    for (const v of ABLATION) {
      let answers = v.env === undefined ? results.get(v.mode) : undefined;
      if (!answers) {
        service = await startService(database, embedder, v.env ?? {}, { rebuild: true });
        try {
          await service.idle();
          answers = await ask(service, conversations, v.mode);
        } finally {
          await service.close();
        }
      }
      ablation.push({ ...v, recall: KS.map((_, i) => meanAt(answers, i)) });
      log(`ablation: ${v.technique}: recall@10 ${(100 * meanAt(answers, 1)).toFixed(1)} %`);
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
    return { mode, answers, latency: summarise(answers.map((a) => a.ms)) };
  }),
  ablation,
  durationSec: (performance.now() - started) / 1000,
};
const json = arg('json');
if (json) writeFileSync(json, JSON.stringify(report, null, 2));
writeQualitySection(out, renderQualitySection(report));
log(`wrote the retrieval quality section of ${out} (${report.durationSec.toFixed(0)} s)`);
process.exit(0);
