import { api } from '../api.js';
import { busy, h, memoryLink, notice, table, time } from '../dom.js';

/** Jobs that failed every attempt, with a retry each (fresh attempts, memory pending again). */
export async function renderDeadLetters(root) {
  const out = h('div', {});
  const list = h('div', {});
  async function load() {
    const { items } = await api('GET', '/v1/jobs/dead', { query: { limit: 500 } });
    list.replaceChildren(
      table(
        [
          ['Job', (j) => String(j.id), 'num'],
          ['Queue', (j) => j.queue],
          ['Memory', (j) => memoryLink(j.memoryId)],
          ['Attempts', (j) => String(j.attempts), 'num'],
          ['Last error', (j) => j.lastError ?? '—', 'text'],
          ['Failed', (j) => time(j.failedAt)],
          [
            '',
            (j) => {
              const b = h('button', { type: 'button', 'aria-label': `Retry job ${j.id}` }, 'Retry');
              b.addEventListener('click', () =>
                busy(b, out, async () => {
                  await api('POST', `/v1/jobs/dead/${encodeURIComponent(j.id)}/retry`);
                  out.replaceChildren(notice(`Job ${j.id} queued again with fresh attempts.`));
                  await load();
                }),
              );
              return b;
            },
          ],
        ],
        items,
        'No dead letters.',
      ),
    );
  }
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  refresh.addEventListener('click', () => busy(refresh, out, load));
  root.append(
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Dead letters'),
      h(
        'p',
        { class: 'muted' },
        "Jobs of your divisions' memories that failed every attempt. Fix the cause (the embedder, usually), then retry.",
      ),
      refresh,
      out,
      list,
    ),
  );
  await load();
}
