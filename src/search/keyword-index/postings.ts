/** Document ids of a segment fit in 24 bits: each posting is one 32-bit word, (doc << 8) | weight. */
export const MAX_DOCS = 1 << 24;
/** A term's weight in a document is kept in half units (own words count 2, context words 1). */
export const MAX_WEIGHT = 255;

/**
 * One term's postings in one segment: ascending document ids, each packed with the term's weight
 * in that document into a single Uint32 (4 bytes a posting, one typed array a term), so a million
 * memories do not cost an object per posting. Documents are only appended (a changed document
 * gets a new id), so the ids stay sorted and a search can seek in a list by binary search. Entries
 * of dead documents stay until the segment is compacted; `live` counts the others (the document
 * frequency).
 */
export class PostingList {
  data: Uint32Array;
  length = 0;
  live = 0;
  /** Highest weight ever added (an upper bound for scoring; never lowered before a compaction). */
  maxWeight = 0;

  constructor(capacity = 2) {
    this.data = new Uint32Array(capacity);
  }

  push(doc: number, weight: number): void {
    if (this.length === this.data.length) {
      const grown = new Uint32Array(Math.max(4, Math.ceil(this.data.length * 1.5)));
      grown.set(this.data);
      this.data = grown;
    }
    const w = Math.min(weight, MAX_WEIGHT);
    this.data[this.length++] = ((doc << 8) | w) >>> 0;
    this.live++;
    if (w > this.maxWeight) this.maxWeight = w;
  }

  /** Index of the first entry whose document is >= doc, searching from `from` (galloping). */
  seek(doc: number, from: number): number {
    const data = this.data;
    const target = doc * 256;
    let lo = from;
    let step = 1;
    let hi = from;
    while (hi < this.length && data[hi] < target) {
      lo = hi + 1;
      hi += step;
      step *= 2;
    }
    if (hi > this.length) hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (data[mid] < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Bytes held (capacity, not length). */
  get bytes(): number {
    return this.data.byteLength;
  }
}

export const docOf = (entry: number) => entry >>> 8;
export const weightOf = (entry: number) => entry & 0xff;
