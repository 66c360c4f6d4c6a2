import { MAX_DOCS, PostingList } from './postings.js';

/** A document's terms as a search indexes them: ids, weights in half units, and its length. */
export interface DocTerms {
  ids: Int32Array;
  weights: Uint16Array;
  count: number;
  /** Document length in half units (see contextual.ts). */
  length: number;
}

const grow = <T extends Int32Array | Uint32Array | Uint8Array>(
  a: T,
  size: number,
  make: (n: number) => T,
): T => {
  if (size <= a.length) return a;
  const next = make(Math.max(size, Math.ceil(a.length * 1.5), 64));
  next.set(a);
  return next;
};

/**
 * The postings of one division in one view (full text, or redacted text for callers without
 * pii:read), with the statistics BM25 needs (N, total length). A document id is a position in
 * this segment; a memory whose document changes is killed and added again under a new id, so
 * postings only grow at their end and stay sorted. `compactable` says when dead ids are worth
 * dropping (the owner then re-adds the live documents into a fresh segment).
 */
export class Segment {
  postings: (PostingList | undefined)[] = [];
  /** Per document id: the store slot of its memory, the neighbours its context was built from. */
  slotOf = new Int32Array(64);
  prevUsed = new Int32Array(64);
  nextUsed = new Int32Array(64);
  lengthOf = new Uint32Array(64);
  alive = new Uint8Array(64);
  docs = 0;
  live = 0;
  totalLength = 0;
  /** Lowest length ever added (a lower bound for scoring; never raised before a compaction). */
  minLength = Number.POSITIVE_INFINITY;

  add(slot: number, prev: number, next: number, terms: DocTerms): number {
    const doc = this.docs++;
    if (doc >= MAX_DOCS) throw new Error('keyword index segment is full (16M document versions)');
    const size = doc + 1;
    this.slotOf = grow(this.slotOf, size, (n) => new Int32Array(n));
    this.prevUsed = grow(this.prevUsed, size, (n) => new Int32Array(n));
    this.nextUsed = grow(this.nextUsed, size, (n) => new Int32Array(n));
    this.lengthOf = grow(this.lengthOf, size, (n) => new Uint32Array(n));
    this.alive = grow(this.alive, size, (n) => new Uint8Array(n));
    this.slotOf[doc] = slot;
    this.prevUsed[doc] = prev;
    this.nextUsed[doc] = next;
    this.lengthOf[doc] = terms.length;
    this.alive[doc] = 1;
    this.live++;
    this.totalLength += terms.length;
    if (terms.length < this.minLength) this.minLength = terms.length;
    for (let i = 0; i < terms.count; i++) {
      const id = terms.ids[i];
      let list = this.postings[id];
      if (!list) {
        list = new PostingList();
        this.postings[id] = list;
      }
      list.push(doc, terms.weights[i]);
    }
    return doc;
  }

  /** Marks a document dead; `terms` must be the ones it was added with (they lower each df). */
  kill(doc: number, terms: DocTerms): void {
    if (!this.alive[doc]) return;
    this.alive[doc] = 0;
    this.live--;
    this.totalLength -= this.lengthOf[doc];
    for (let i = 0; i < terms.count; i++) {
      const list = this.postings[terms.ids[i]];
      if (list) list.live--;
    }
  }

  /** Dead ids are over half of all ids (or the id space is running out). */
  get compactable(): boolean {
    return (this.docs > 4096 && this.live * 2 < this.docs) || this.docs > MAX_DOCS - 65_536;
  }

  /** Bytes held by the postings and per-document arrays (capacity). */
  get bytes(): number {
    let total = this.slotOf.byteLength * 4 + this.alive.byteLength + this.postings.length * 8;
    for (const list of this.postings) if (list) total += list.bytes + 48;
    return total;
  }

  get postingCount(): number {
    let total = 0;
    for (const list of this.postings) if (list) total += list.length;
    return total;
  }
}
