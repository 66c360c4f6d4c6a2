import type { FeedRow } from '../../indexing/change-feed.js';
import { contextualDocument, type View } from './contextual.js';
import { type ScoredDoc, topDocuments } from './scoring.js';
import { Segment } from './segment.js';
import { MemoryStore } from './store.js';
import { TermDictionary } from './terms.js';
import { parseTsvector } from './tsvector.js';

/**
 * The feed's columns for the keyword index, in this order: division, agent, session, sequence,
 * deleted, the stored lexemes (the redacted text's only when there is one), and the date words of
 * occurred_at (UTC) lexemised like any text. Deleted memories come without their words.
 */
export const FEED_COLUMNS = [
  'n.division_id',
  'n.agent_id',
  'n.session_id',
  'n.sequence',
  'n.deleted_at IS NOT NULL',
  'CASE WHEN n.deleted_at IS NULL THEN n.fts::text END',
  'CASE WHEN n.deleted_at IS NULL AND n.redacted_text IS NOT NULL THEN n.fts_redacted::text END',
  `CASE WHEN n.deleted_at IS NULL AND n.occurred_at IS NOT NULL
     THEN to_tsvector('english', to_char(n.occurred_at AT TIME ZONE 'UTC', 'FMDD FMMonth YYYY'))::text END`,
];

/** A memory as the change feed gives it (see FEED_COLUMNS). */
interface MemoryChange {
  seq: number;
  key: number;
  division: string;
  agent: string | null;
  session: string | null;
  sequence: number | null;
  deleted: boolean;
  /** tsvector text of the text; null for deleted memories. */
  fts: string | null;
  /** tsvector text of the redacted text, only when there is one. */
  redacted: string | null;
  /** tsvector text of "8 May 2023", when occurred_at is set. */
  date: string | null;
}

const toChange = (r: FeedRow): MemoryChange => {
  const v = r.values;
  return {
    seq: r.seq,
    key: r.key,
    division: v[0] as string,
    agent: v[1] as string | null,
    session: v[2] as string | null,
    sequence: v[3] as number | null,
    deleted: v[4] as boolean,
    fts: v[5] as string | null,
    redacted: v[6] as string | null,
    date: v[7] as string | null,
  };
};

interface DivisionState {
  full: Segment;
  /** Exists once a memory of the division has a redacted text; until then both views are equal. */
  redacted: Segment | null;
  /** Memories with a redacted text. */
  redactedMemories: number;
}

/**
 * The index's data: the memory store, the term dictionary and one segment per division and view,
 * kept equal to "every live memory's contextual document" by `apply` (rows from the change feed,
 * each version applied once) followed by `settle` (re-adds the documents the changes touched: the
 * memory itself and its old and new session neighbours). Deleted and purged memories leave the
 * index; superseded and expired ones stay in it (search filters them in SQL, and superseded ones
 * stay searchable with includeSuperseded) and remain their neighbours' context until deleted.
 */
export class IndexState {
  readonly store = new MemoryStore();
  readonly terms = new TermDictionary();
  private readonly divisions: DivisionState[] = [];
  private readonly divisionIds = new Map<string, number>();
  private readonly dirty = new Set<number>();
  /** Row versions applied so far (counting skipped repeats out). */
  applied = 0;

  private division(id: string): number {
    let index = this.divisionIds.get(id);
    if (index === undefined) {
      index = this.divisions.length;
      this.divisions.push({ full: new Segment(), redacted: null, redactedMemories: 0 });
      this.divisionIds.set(id, index);
    }
    return index;
  }

  private segments(slot: number): [Segment, Segment | null] {
    const d = this.divisions[this.store.divisionOf[slot]];
    return [d.full, d.redacted];
  }

  /** Takes the slot's documents out of the segments (their terms are recomputed to lower the df). */
  private unindex(slot: number): void {
    if (slot < 0) return;
    const [full, redacted] = this.segments(slot);
    const s = this.store;
    for (const [seg, view, docs] of [
      [full, 'full', s.fullDoc],
      [redacted, 'redacted', s.redactedDoc],
    ] as const) {
      const doc = docs[slot];
      if (!seg || doc < 0) continue;
      seg.kill(doc, contextualDocument(s, slot, view as View, seg.prevUsed[doc], seg.nextUsed[doc]));
      docs[slot] = -1;
    }
    this.dirty.add(slot);
  }

  private lexemes(text: string | null): number[] | null {
    if (text === null) return null;
    const pairs: number[] = [];
    parseTsvector(text, (lexeme, count) => pairs.push(this.terms.intern(lexeme), count));
    return pairs;
  }

  /** Applies row versions from the feed; documents are re-added by `settle`. */
  apply(rows: readonly FeedRow[]): void {
    const s = this.store;
    for (const raw of rows) {
      const row = toChange(raw);
      const key = row.key;
      let slot = s.slotOf(key);
      if (slot !== undefined && row.seq <= s.changeSeqOf[slot]) continue;
      if (slot === undefined && row.deleted) continue;
      this.applied++;
      if (slot !== undefined) {
        // Out of its session first: its neighbours' documents hold its words.
        const { prev, next } = s.neighbours(slot);
        this.unindex(slot);
        this.unindex(prev);
        this.unindex(next);
        s.removeFromGroup(slot);
        if (s.hasRedactedText(slot)) this.divisions[s.divisionOf[slot]].redactedMemories--;
        if (row.deleted) {
          s.release(slot);
          this.dirty.delete(slot);
          continue;
        }
      } else {
        slot = s.allocate(key);
        this.dirty.add(slot);
      }
      const division = this.division(row.division);
      s.divisionOf[slot] = division;
      s.changeSeqOf[slot] = row.seq;
      s.setTerms(slot, 'own', this.lexemes(row.fts) ?? []);
      s.setTerms(slot, 'redacted', this.lexemes(row.redacted));
      s.setTerms(slot, 'date', this.lexemes(row.date) ?? []);
      if (row.redacted !== null) this.divisions[division].redactedMemories++;
      if (row.session !== null && row.sequence !== null) {
        const place = s.placeIn(division, row.agent, row.session, row.sequence, key);
        this.unindex(place.prev);
        this.unindex(place.next);
        s.insertInGroup(slot, place.id, place.at, row.sequence);
      }
    }
  }

  /** Indexes the documents `apply` took out or created, then compacts segments mostly dead. */
  settle(): void {
    const s = this.store;
    for (const d of this.divisions) {
      if (d.redactedMemories > 0 && d.redacted === null) d.redacted = this.copyOf(d.full, 'redacted');
    }
    for (const slot of this.dirty) {
      const { prev, next } = s.neighbours(slot);
      const [full, redacted] = this.segments(slot);
      s.fullDoc[slot] = full.add(slot, prev, next, contextualDocument(s, slot, 'full', prev, next));
      if (redacted) {
        s.redactedDoc[slot] = redacted.add(
          slot,
          prev,
          next,
          contextualDocument(s, slot, 'redacted', prev, next),
        );
      }
    }
    this.dirty.clear();
    for (const d of this.divisions) {
      if (d.full.compactable) d.full = this.copyOf(d.full, 'full');
      if (d.redacted?.compactable) d.redacted = this.copyOf(d.redacted, 'redacted');
    }
  }

  /** A fresh segment of the live documents of `seg`, in a view (ids renumbered, dead ones gone). */
  private copyOf(seg: Segment, view: View): Segment {
    const s = this.store;
    const out = new Segment();
    const docs = view === 'full' ? s.fullDoc : s.redactedDoc;
    for (let doc = 0; doc < seg.docs; doc++) {
      if (!seg.alive[doc]) continue;
      const slot = seg.slotOf[doc];
      const [prev, next] = [seg.prevUsed[doc], seg.nextUsed[doc]];
      docs[slot] = out.add(slot, prev, next, contextualDocument(s, slot, view, prev, next));
    }
    return out;
  }

  /** Best documents of a division for the lexemes; `allowedKeys` limits them when given. */
  search(
    divisionId: string,
    view: View,
    lexemes: readonly string[],
    k: number,
    allowedKeys?: readonly number[],
  ): { key: number; score: number }[] {
    const index = this.divisionIds.get(divisionId);
    if (index === undefined) return [];
    const d = this.divisions[index];
    const seg = view === 'redacted' && d.redacted ? d.redacted : d.full;
    const viewDocs = seg === d.full ? this.store.fullDoc : this.store.redactedDoc;
    const termIds: number[] = [];
    for (const lexeme of new Set(lexemes)) {
      const id = this.terms.find(lexeme);
      if (id !== undefined) termIds.push(id);
    }
    let allowed: Uint8Array | undefined;
    if (allowedKeys) {
      allowed = new Uint8Array(seg.docs);
      for (const key of allowedKeys) {
        const slot = this.store.slotOf(key);
        if (slot !== undefined && viewDocs[slot] >= 0 && this.store.divisionOf[slot] === index) {
          allowed[viewDocs[slot]] = 1;
        }
      }
    }
    const keyOf = (doc: number) => this.store.keyOf[seg.slotOf[doc]];
    return topDocuments(seg, termIds, k, keyOf, allowed).map((h: ScoredDoc) => ({
      key: keyOf(h.doc),
      score: h.score,
    }));
  }

  stats() {
    let postings = 0;
    let bytes = this.store.bytes;
    for (const d of this.divisions) {
      for (const seg of [d.full, d.redacted]) {
        if (!seg) continue;
        postings += seg.postingCount;
        bytes += seg.bytes;
      }
    }
    return {
      memories: this.store.size,
      terms: this.terms.size,
      divisions: this.divisions.length,
      postings,
      bytes,
    };
  }
}
