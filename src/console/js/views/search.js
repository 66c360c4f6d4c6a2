import { api } from '../api.js';
import { badge, busy, formValues, h, memoryLink, score, table } from '../dom.js';

const text = (name, label, props = {}) =>
  h('label', {}, label, h('input', { name, autocomplete: 'off', ...props }));

/** Try a query: mode, k and filters in, ranked hits with their keyword and vector scores out. */
export async function renderSearch(root, ctx) {
  const out = h('div', {});
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Search' },
    h(
      'label',
      { class: 'wide' },
      'Query',
      h('input', { name: 'query', required: true, autocomplete: 'off' }),
    ),
    h(
      'label',
      {},
      'Mode',
      h(
        'select',
        { name: 'mode' },
        ['hybrid', 'keyword', 'vector'].map((m) => h('option', { value: m }, m)),
      ),
    ),
    // No min/max: the API checks k and says what is wrong, as it does for every client.
    text('k', 'k', { type: 'number', value: '10' }),
    text('namespace', 'Namespace'),
    text('agentId', 'Agent'),
    text('kind', 'Kind'),
    text('tags', 'Tags (all, comma-separated)'),
    text('sessionId', 'Session'),
    text('createdAfter', 'Created after', { type: 'datetime-local' }),
    text('createdBefore', 'Created before', { type: 'datetime-local' }),
    h(
      'label',
      { class: 'check' },
      h('input', { name: 'includeSuperseded', type: 'checkbox' }),
      'include superseded',
    ),
    h('button', { type: 'submit' }, 'Search'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const v = formValues(form);
    const body = { divisionId: ctx.division, query: v.query, mode: v.mode, k: Number(v.k || 10) };
    for (const key of ['namespace', 'agentId', 'kind', 'sessionId']) if (v[key]) body[key] = v[key];
    if (v.tags)
      body.tags = v.tags
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
    for (const key of ['createdAfter', 'createdBefore'])
      if (v[key]) body[key] = new Date(v[key]).toISOString();
    if (v.includeSuperseded) body.includeSuperseded = true;
    busy(event.submitter, out, async () => {
      const res = await api('POST', '/v1/search', { body });
      out.replaceChildren(
        h(
          'p',
          { class: 'muted' },
          `${res.hits.length} hits, mode ${res.mode}, ${res.timings?.totalMs?.toFixed?.(1) ?? '?'} ms`,
          res.timings?.embedMs !== undefined ? ` (query embedding ${res.timings.embedMs.toFixed(1)} ms)` : '',
          res.pending ? `; ${res.pending} matching memories not yet searchable by meaning` : '',
        ),
        table(
          [
            ['#', (hit) => String(hit.rank), 'num'],
            ['Score', (hit) => score(hit.score), 'num'],
            ['Keyword', (hit) => score(hit.keywordScore), 'num'],
            ['Vector', (hit) => score(hit.vectorScore), 'num'],
            [
              'Text',
              (hit) => [
                hit.text,
                h(
                  'div',
                  {},
                  (hit.piiFlags ?? []).map((f) => badge(`PII: ${f}`, 'pii')),
                ),
              ],
              'text',
            ],
            ['Memory', (hit) => memoryLink(hit.id)],
            ['Namespace', (hit) => hit.namespace],
            ['Tags', (hit) => (hit.tags ?? []).map((t) => badge(t))],
          ],
          res.hits.map((hit, i) => ({ ...hit, rank: i + 1 })),
          'No hits.',
        ),
      );
    });
  });
  root.append(
    h(
      'section',
      { class: 'card' },
      h('h2', {}, `Search playground (${ctx.division})`),
      h(
        'p',
        { class: 'muted' },
        'Hybrid fuses the keyword (BM25) and vector rankings; each hit shows both scores where its retriever found it.',
      ),
      form,
      out,
    ),
  );
}
