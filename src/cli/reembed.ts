import cliProgress from 'cli-progress';
import { modelKey } from '../adapters/embedders/port.js';
import { systemAccess } from '../memories/access.js';
import { refOf } from '../models/active-model.js';
import type { ReembedRun } from '../models/reembed.js';
import type { Parts } from '../parts.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import { withParts } from './with-parts.js';

const POLL_MS = 250;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

export interface ReembedOptions {
  to?: string;
  division?: string;
  status?: boolean;
  json?: boolean;
}

/**
 * `memory-layer reembed --to MODEL@VERSION [--division D]`: queues a run per division (or resumes
 * the one under way), runs them in this process with a progress bar, and returns when every
 * division switched. Interrupted (Ctrl-C), the runs are released and the same command continues
 * them; on a PostgreSQL server a worker may also pick them up meanwhile.
 */
export async function runReembed(opts: ReembedOptions) {
  if (!opts.status && !opts.to) throw new Error('give --to MODEL@VERSION (or --status)');
  await withParts(async (parts) => {
    await parts.ready();
    if (opts.status) await printStatus(parts, opts.json === true);
    else await reembed(parts, opts.to as string, opts.division);
  });
}

async function reembed(parts: Parts, to: string, only?: string) {
  const service = await parts.reembed();
  const divisions = only ? [only] : (await (await parts.divisions()).listDivisions()).map((d) => d.id);
  const runs: ReembedRun[] = [];
  for (const divisionId of divisions) {
    const active = await service.activeRun(divisionId);
    if (active) {
      if (active.model !== to) {
        throw new Error(`division ${divisionId} is being re-embedded to ${active.model} (run ${active.id})`);
      }
      process.stdout.write(`${divisionId}: resuming run ${active.id}\n`);
      runs.push(active);
      continue;
    }
    try {
      runs.push(await service.request(systemAccess('cli'), { divisionId, model: to }));
    } catch (err) {
      if (err instanceof AppError && err.code === ErrorCode.modelAlreadyActive) {
        process.stdout.write(`${divisionId}: already uses ${to}\n`);
        continue;
      }
      if (err instanceof AppError) {
        const fields = err.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
        throw new Error(fields ? `${err.message} (${fields})` : err.message);
      }
      throw err;
    }
  }
  if (runs.length === 0) return;

  let interrupted = false;
  const interrupt = () => {
    interrupted = true;
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const bars = new cliProgress.MultiBar(
    { format: '{division} [{bar}] {value}/{total} memories | {status}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const barOf = new Map(
    runs.map((r) => [
      r.id,
      bars.create(Math.max(r.total, 1), r.done, { division: r.divisionId, status: r.status }),
    ]),
  );
  // This process runs the runs itself (no worker here wakes on the request).
  const runner = await parts.reembedRunner();
  runner.start();
  let latest = runs;
  try {
    while (!interrupted) {
      latest = await Promise.all(runs.map((r) => service.get(r.id)));
      for (const r of latest) {
        const bar = barOf.get(r.id);
        bar?.setTotal(Math.max(r.total, 1));
        bar?.update(r.done, { status: r.status, division: r.divisionId });
      }
      if (latest.every((r) => FINISHED.has(r.status))) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    bars.stop();
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await runner.stop(); // releases an unfinished run at once
  }
  if (interrupted) {
    process.stdout.write('stopped; run the same command again to continue where it stopped\n');
    process.exitCode = 130;
    return;
  }
  for (const r of latest) {
    if (r.status === 'completed') {
      process.stdout.write(
        `${r.divisionId}: now uses ${r.model} (${r.done} memories; ${r.embedded} texts embedded)\n`,
      );
    } else process.stdout.write(`${r.divisionId}: ${r.status}${r.error ? `: ${r.error}` : ''}\n`);
  }
  const failed = latest.filter((r) => r.status !== 'completed');
  if (failed.length > 0)
    throw new Error(`${failed.length} of ${latest.length} re-embeddings did not complete`);
}

async function printStatus(parts: Parts, json: boolean) {
  const service = await parts.reembed();
  const defaultModel = (await parts.embedder()).model;
  const res = await (await parts.db()).query<{
    id: string;
    embedding_model: string | null;
    embedding_model_version: string | null;
  }>('SELECT id, embedding_model, embedding_model_version FROM divisions ORDER BY id LIMIT 1000');
  const rows = [];
  for (const d of res.rows) {
    const ref = refOf(d.embedding_model, d.embedding_model_version);
    const [latest] = await service.list({ divisionId: d.id, limit: 1 });
    rows.push({
      division: d.id,
      model: ref ? modelKey(ref) : modelKey(defaultModel),
      latestRun: latest ?? null,
    });
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  for (const r of rows) {
    const run = r.latestRun;
    const about = run
      ? `${run.status} → ${run.model} ${Math.round(run.progress * 100)}% (${run.done}/${run.total}) run ${run.id}`
      : 'no re-embedding';
    process.stdout.write(`${r.division}\t${r.model}\t${about}\n`);
  }
}
