import { api } from '../api.js';
import { badge, busy, formValues, h, notice, table, time } from '../dom.js';

/** Division and agent holds: list (active and released), place, release. */
export async function renderHolds(root, ctx) {
  const out = h('div', {});
  const list = h('div', {});
  async function load() {
    const { items } = await api('GET', '/v1/legal-holds', { query: { divisionId: ctx.division } });
    list.replaceChildren(
      table(
        [
          ['Hold', (x) => String(x.id), 'num'],
          ['Covers', (x) => (x.agentId ? `agent ${x.agentId}` : 'the whole division')],
          ['Reason', (x) => x.reason, 'text'],
          ['State', (x) => (x.releasedAt ? badge('released') : badge('active', 'hold'))],
          ['Placed', (x) => [time(x.createdAt), h('div', { class: 'muted' }, x.createdBy)]],
          [
            'Released',
            (x) => (x.releasedAt ? [time(x.releasedAt), h('div', { class: 'muted' }, x.releasedBy)] : '—'),
          ],
          [
            '',
            (x) => {
              if (x.releasedAt) return null;
              const b = h('button', { type: 'button', class: 'secondary' }, 'Release');
              b.addEventListener('click', () =>
                busy(b, out, async () => {
                  await api('DELETE', `/v1/legal-holds/${encodeURIComponent(x.id)}`, {
                    query: { divisionId: ctx.division },
                  });
                  out.replaceChildren(notice(`Hold ${x.id} released.`));
                  await load();
                }),
              );
              return b;
            },
          ],
        ],
        items,
        'No legal holds.',
      ),
    );
  }
  const form = h(
    'form',
    { class: 'inline', 'aria-label': 'Place a legal hold' },
    h('label', {}, 'Agent (empty: whole division)', h('input', { name: 'agentId', autocomplete: 'off' })),
    h('label', {}, 'Reason', h('input', { name: 'reason', required: true, size: 40 })),
    h('button', { type: 'submit' }, 'Place hold'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const v = formValues(form);
    const body = { divisionId: ctx.division, reason: v.reason };
    if (v.agentId) body.agentId = v.agentId;
    busy(event.submitter, out, async () => {
      const hold = await api('POST', '/v1/legal-holds', { body });
      form.reset();
      out.replaceChildren(notice(`Hold ${hold.id} placed.`));
      await load();
    });
  });
  root.append(
    h(
      'section',
      { class: 'card' },
      h('h2', {}, `Legal holds of ${ctx.division}`),
      h(
        'p',
        { class: 'muted' },
        'Held memories are never expired, deleted, changed or purged. Holds on single memories are shown on the memory.',
      ),
      form,
      out,
      list,
    ),
  );
  await load();
}
