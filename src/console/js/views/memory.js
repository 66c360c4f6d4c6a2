import { api } from '../api.js';
import { badge, busy, h, memoryLink, notice, problemBox, table, time } from '../dom.js';
import { memoryBadges } from './memories.js';

const field = (name, value) => [h('dt', {}, name), h('dd', {}, value ?? '—')];

/** Its audit events: every version (create, update), hold, read of PII, delete. */
async function auditOf(ctx, id) {
  try {
    const page = await api('GET', '/v1/audit', {
      query: { divisionId: ctx.division, resourceType: 'memory', resourceId: id, limit: 1000 },
    });
    return table(
      [
        ['Seq', (e) => String(e.seq), 'num'],
        ['When', (e) => time(e.at)],
        ['Action', (e) => e.action],
        ['Actor', (e) => e.actor],
        ['Digest', (e) => h('code', { title: e.digest }, e.digest.slice(0, 16))],
      ],
      page.events,
      'No audit events.',
    );
  } catch (err) {
    return err.status === 403
      ? h('p', { class: 'muted' }, 'Reading audit events needs the audit:read scope (and a service caller).')
      : problemBox(err);
  }
}

/** One memory: text (redacted unless the caller may see PII), flags, hold, version, trail. */
export async function renderMemory(root, ctx, id) {
  const m = await api('GET', `/v1/memories/${encodeURIComponent(id)}`, {
    query: { divisionId: ctx.division },
  });
  const holdOut = h('div', {});
  const holdReason = h('input', { name: 'reason', placeholder: 'needed to place a hold', size: 40 });
  const holdButton = h('button', { type: 'button' }, m.legalHold ? 'Release hold' : 'Place legal hold');
  holdButton.addEventListener('click', () =>
    busy(holdButton, holdOut, async () => {
      const body = { hold: !m.legalHold };
      if (holdReason.value.trim()) body.reason = holdReason.value.trim();
      await api('PUT', `/v1/memories/${encodeURIComponent(id)}/legal-hold`, {
        query: { divisionId: ctx.division },
        body,
      });
      root.replaceChildren();
      await renderMemory(root, ctx, id);
    }),
  );

  root.append(
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Memory ', h('code', {}, m.id)),
      h('div', {}, memoryBadges(m)),
      h('h3', {}, m.redacted ? 'Text (redacted: personal data hidden from this caller)' : 'Text'),
      h('div', { class: 'memory-text', id: 'memory-text' }, m.text),
      h('h3', {}, 'Fields'),
      h(
        'dl',
        { class: 'fields' },
        field('Version', `${m.version} (updated ${new Date(m.updatedAt).toLocaleString()})`),
        field('Status', m.status),
        field('PII flags', m.piiFlags?.length ? m.piiFlags.map((f) => badge(f, 'pii')) : 'none'),
        field('Legal hold', m.legalHold ? badge('held', 'hold') : 'not held'),
        field('Namespace', m.namespace),
        field('Agent', m.agentId),
        field('Kind', m.kind),
        field(
          'Tags',
          (m.tags ?? []).map((t) => badge(t)),
        ),
        field('Metadata', h('code', {}, JSON.stringify(m.metadata ?? {}))),
        field('Session', m.sessionId ? `${m.sessionId} #${m.sequence ?? '?'}` : null),
        field('Occurred', m.occurredAt ? time(m.occurredAt) : null),
        field('Superseded by', m.supersededBy ? memoryLink(m.supersededBy) : null),
        field(
          'Embedding',
          m.embedding ? `${m.embedding.model}@${m.embedding.version} (${m.embedding.dimensions} dims)` : null,
        ),
        field('Checksum', h('code', {}, m.checksum)),
        field('Expires', m.expiresAt ? time(m.expiresAt) : 'never'),
        field('Created', time(m.createdAt)),
      ),
      h('h3', {}, 'Legal hold'),
      h('div', { class: 'inline' }, h('label', {}, 'Hold reason', holdReason), ' ', holdButton),
      holdOut,
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Versions and audit events'),
      h(
        'p',
        { class: 'muted' },
        `Version ${m.version} is current. Each create and update is an event of the division's hash chain; the service keeps the current text only, and the digests of earlier versions.`,
      ),
      await auditOf(ctx, m.id),
    ),
  );
  if (m.legalHold) holdOut.append(notice('Held: it cannot be changed, deleted, expired or purged.'));
}
