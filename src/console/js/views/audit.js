import { api } from '../api.js';
import { busy, h, memoryLink, table, time } from '../dom.js';
import { verifyChain, verifySignedHead } from '../verify.js';

const PAGE = 100;

const resource = (e) =>
  e.resourceType === 'memory' ? memoryLink(e.resourceId) : `${e.resourceType} ${e.resourceId}`;

/** Every event up to the head's seq, read page by page (1,000 at a time). */
async function eventsUpTo(division, head, progress) {
  const events = [];
  let afterSeq = 0;
  while (afterSeq < head.seq) {
    const page = await api('GET', '/v1/audit', { query: { divisionId: division, afterSeq, limit: 1000 } });
    for (const e of page.events) if (e.seq <= head.seq) events.push(e);
    progress(events.length);
    if (page.nextAfterSeq === null || page.events.length === 0) break;
    afterSeq = page.nextAfterSeq;
  }
  return events;
}

/** The division's trail: signed head, latest events, and a check of the whole chain here. */
export async function renderAudit(root, ctx) {
  const head = await api('GET', '/v1/audit/head', { query: { divisionId: ctx.division } });
  const result = h('div', { id: 'verify-result' });
  const trusted = h('input', {
    name: 'trustedKeyId',
    placeholder: 'optional',
    size: 46,
    autocomplete: 'off',
  });
  const verify = h('button', { type: 'button' }, 'Verify chain');
  verify.addEventListener('click', () =>
    busy(verify, result, async () => {
      // The head first: events appended meanwhile are after it and not part of this check.
      const current = await api('GET', '/v1/audit/head', { query: { divisionId: ctx.division } });
      const status = h('p', { class: 'muted' }, 'Reading events…');
      result.replaceChildren(status);
      const events = await eventsUpTo(ctx.division, current, (n) => {
        status.textContent = `Read ${n} of ${current.seq} events…`;
      });
      status.textContent = `Checking ${events.length} events…`;
      const chain = await verifyChain(events, current);
      const sig = await verifySignedHead(current, current.publicKey, trusted.value.trim() || undefined);
      const ok = chain.ok && sig.ok;
      result.replaceChildren(
        h(
          'div',
          { class: ok ? 'notice' : 'problem', role: 'status' },
          h(
            'strong',
            {},
            chain.ok
              ? `Chain intact: ${events.length} events, head seq ${current.seq}.`
              : `Chain broken at seq ${chain.seq}: ${chain.reason}.`,
          ),
          h(
            'div',
            {},
            sig.ok
              ? `Head signature valid (Ed25519, key ${sig.keyId}).`
              : `Head signature not verified: ${sig.reason}.`,
          ),
          sig.ok && !trusted.value.trim()
            ? h(
                'div',
                { class: 'muted' },
                'The key came with the head: compare its id with the one you trust (memory-layer keys show).',
              )
            : null,
        ),
      );
    }),
  );

  const list = h('div', {});
  async function load(afterSeq) {
    const page = await api('GET', '/v1/audit', {
      query: { divisionId: ctx.division, afterSeq, limit: PAGE },
    });
    const events = [...page.events].reverse();
    list.replaceChildren(
      table(
        [
          ['Seq', (e) => String(e.seq), 'num'],
          ['When', (e) => time(e.at)],
          ['Actor', (e) => e.actor],
          ['Action', (e) => e.action],
          ['Resource', resource],
          ['Hash', (e) => h('code', { title: e.hash }, e.hash.slice(0, 16))],
        ],
        events,
        'No events yet.',
      ),
      h(
        'div',
        { class: 'pager' },
        afterSeq > 0
          ? h(
              'button',
              { type: 'button', class: 'secondary', onclick: () => load(Math.max(0, afterSeq - PAGE)) },
              'Older events',
            )
          : null,
        afterSeq + PAGE < head.seq
          ? h(
              'button',
              { type: 'button', class: 'secondary', onclick: () => load(afterSeq + PAGE) },
              'Newer events',
            )
          : null,
      ),
    );
  }

  root.append(
    h(
      'section',
      { class: 'card' },
      h('h2', {}, `Audit trail of ${ctx.division}`),
      h(
        'dl',
        { class: 'fields' },
        h('dt', {}, 'Head'),
        h('dd', {}, `seq ${head.seq}`),
        h('dt', {}, 'Head hash'),
        h('dd', {}, h('code', {}, head.hash)),
        h('dt', {}, 'Signed'),
        h('dd', {}, time(head.signedHead?.signedAt)),
        h('dt', {}, 'Signing key id'),
        h('dd', {}, h('code', {}, head.signedHead?.keyId ?? '—')),
        h('dt', {}, 'Signature (JWS)'),
        h(
          'dd',
          {},
          h('code', { title: head.signedHead?.jws ?? '' }, `${(head.signedHead?.jws ?? '').slice(0, 48)}…`),
        ),
      ),
      h('h3', {}, 'Verify'),
      h(
        'p',
        { class: 'muted' },
        'Reads every event and checks, in this browser, the seqs, the links, each hash, the head and its signature.',
      ),
      h('div', { class: 'inline' }, h('label', {}, 'Trusted key id', trusted), ' ', verify),
      result,
    ),
    h('section', { class: 'card' }, h('h2', {}, 'Events (newest first)'), list),
  );
  await load(Math.max(0, head.seq - PAGE));
}
