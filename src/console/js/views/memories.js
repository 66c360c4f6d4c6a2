import { api } from '../api.js';
import { badge, busy, formValues, h, memoryLink, notice, table, time } from '../dom.js';

const FILTERS = [
  ['namespace', 'Namespace'],
  ['agentId', 'Agent'],
  ['kind', 'Kind'],
  ['sessionId', 'Session'],
];

/** Flags, hold and status of a memory as small badges. */
export function memoryBadges(m) {
  return [
    m.status && m.status !== 'indexed' ? badge(m.status, m.status === 'failed' ? 'bad' : 'warn') : null,
    ...(m.piiFlags ?? []).map((f) => badge(`PII: ${f}`, 'pii')),
    m.redacted ? badge('redacted', 'pii') : null,
    m.legalHold ? badge('legal hold', 'hold') : null,
    m.supersededBy ? badge('superseded') : null,
  ];
}

/** A division's memories, newest first, with filters, pages, and a form to write one. */
export async function renderMemories(root, ctx) {
  const out = h('div', {});
  const list = h('div', {});
  const filters = h(
    'form',
    { class: 'filters', 'aria-label': 'Filters' },
    FILTERS.map(([name, label]) => h('label', {}, label, h('input', { name, autocomplete: 'off' }))),
    h(
      'label',
      {},
      'Status',
      h(
        'select',
        { name: 'status' },
        ['', 'pending', 'indexed', 'failed'].map((s) => h('option', { value: s }, s || 'any')),
      ),
    ),
    h('label', {}, 'Per page', h('input', { name: 'limit', type: 'number', min: 1, max: 500, value: '50' })),
    h('button', { type: 'submit' }, 'Apply filters'),
  );

  const cursors = [];
  async function load(cursor) {
    const q = formValues(filters);
    const page = await api('GET', '/v1/memories', { query: { ...q, divisionId: ctx.division, cursor } });
    list.replaceChildren(
      table(
        [
          ['Memory', (m) => memoryLink(m.id)],
          ['Text', (m) => [m.text, h('div', {}, memoryBadges(m))], 'text'],
          ['Namespace', (m) => m.namespace],
          ['Agent', (m) => m.agentId ?? '—'],
          ['Kind', (m) => m.kind],
          ['Tags', (m) => (m.tags ?? []).map((t) => badge(t))],
          ['Version', (m) => String(m.version), 'num'],
          ['Created', (m) => time(m.createdAt)],
        ],
        page.items,
        'No memories match.',
      ),
      h(
        'div',
        { class: 'pager' },
        cursors.length > 0
          ? h(
              'button',
              { type: 'button', class: 'secondary', onclick: () => load(cursors.pop() ?? undefined) },
              'Previous page',
            )
          : null,
        page.nextCursor
          ? h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                onclick: () => {
                  cursors.push(cursor ?? null);
                  load(page.nextCursor);
                },
              },
              'Next page',
            )
          : null,
      ),
    );
  }
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    cursors.length = 0;
    busy(event.submitter, out, async () => {
      out.replaceChildren();
      await load();
    });
  });

  const writeOut = h('div', {});
  const write = h(
    'form',
    { class: 'inline', 'aria-label': 'New memory' },
    h('label', { class: 'wide' }, 'Text', h('textarea', { name: 'text', required: true, rows: 3 })),
    h('label', {}, 'Namespace', h('input', { name: 'namespace', placeholder: 'default' })),
    h('label', {}, 'Kind', h('input', { name: 'kind', placeholder: 'fact' })),
    h('label', {}, 'Tags (comma-separated)', h('input', { name: 'tags' })),
    h('label', {}, 'Session', h('input', { name: 'sessionId' })),
    h('button', { type: 'submit' }, 'Write memory'),
  );
  write.addEventListener('submit', (event) => {
    event.preventDefault();
    const v = formValues(write);
    const body = { divisionId: ctx.division, text: v.text };
    if (v.namespace) body.namespace = v.namespace;
    if (v.kind) body.kind = v.kind;
    if (v.sessionId) body.sessionId = v.sessionId;
    if (v.tags)
      body.tags = v.tags
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
    busy(event.submitter, writeOut, async () => {
      // wait=true answers once the memory is searchable (or with it still pending after the timeout).
      const m = await api('POST', '/v1/memories', { query: { wait: true }, body });
      write.reset();
      writeOut.replaceChildren(notice('Memory written: ', memoryLink(m.id), ` (${m.status}).`));
      await load();
    });
  });

  root.append(
    h('section', { class: 'card' }, h('h2', {}, `Memories of ${ctx.division}`), filters, out, list),
    h('section', { class: 'card' }, h('h2', {}, 'Write a memory'), write, writeOut),
  );
  await load();
}
