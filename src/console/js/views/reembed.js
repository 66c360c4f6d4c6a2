import { api } from '../api.js';
import { badge, busy, formValues, h, notice, table, time } from '../dom.js';

const UNFINISHED = new Set(['queued', 'running']);

function progressCell(run) {
  const pct = Math.round((run.progress ?? 0) * 100);
  return h(
    'span',
    {},
    h('progress', { max: 100, value: String(pct) }),
    ` ${pct} % (${run.done ?? 0} of ${run.total ?? 0})`,
  );
}

const statusBadge = (s) =>
  badge(s, s === 'completed' ? 'ok' : s === 'failed' ? 'bad' : s === 'cancelled' ? '' : 'warn');

/** Re-embedding runs of the division, refreshed every 2 s while one is unfinished. */
export async function renderReembed(root, ctx) {
  const out = h('div', {});
  const list = h('div', {});
  let timer;
  async function load() {
    const { items } = await api('GET', '/v1/reembed', { query: { divisionId: ctx.division } });
    list.replaceChildren(
      table(
        [
          ['Run', (r) => h('code', { title: r.id }, r.id.slice(0, 8))],
          ['From', (r) => r.fromModel ?? 'configured model'],
          ['To', (r) => r.model],
          ['Status', (r) => [statusBadge(r.status), r.error ? h('div', { class: 'error' }, r.error) : null]],
          ['Progress', progressCell],
          ['Embedded', (r) => String(r.embedded ?? 0), 'num'],
          ['Requested', (r) => [time(r.createdAt), h('div', { class: 'muted' }, r.requestedBy)]],
          ['Finished', (r) => time(r.finishedAt)],
          [
            '',
            (r) => {
              if (!UNFINISHED.has(r.status)) return null;
              const b = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
              b.addEventListener('click', () =>
                busy(b, out, async () => {
                  await api('POST', `/v1/reembed/${encodeURIComponent(r.id)}/cancel`);
                  await load();
                }),
              );
              return b;
            },
          ],
        ],
        items,
        'No re-embedding runs.',
      ),
    );
    clearTimeout(timer);
    if (items.some((r) => UNFINISHED.has(r.status))) timer = setTimeout(() => load().catch(() => {}), 2000);
  }
  const form = h(
    'form',
    { class: 'inline', 'aria-label': 'Start a re-embedding' },
    h(
      'label',
      {},
      'Model (name@version)',
      h('input', { name: 'model', required: true, placeholder: 'use-lite@0.2.0' }),
    ),
    h('button', { type: 'submit' }, 'Re-embed division'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const { model } = formValues(form);
    busy(event.submitter, out, async () => {
      const run = await api('POST', '/v1/reembed', { body: { model, divisionId: ctx.division } });
      out.replaceChildren(notice(`Run ${run.id} queued.`));
      await load();
    });
  });
  root.append(
    h(
      'section',
      { class: 'card' },
      h('h2', {}, `Re-embedding runs of ${ctx.division}`),
      h(
        'p',
        { class: 'muted' },
        'Search keeps the current model until every memory has a vector of the new one, then switches.',
      ),
      form,
      out,
      list,
    ),
  );
  await load();
  return () => clearTimeout(timer);
}
