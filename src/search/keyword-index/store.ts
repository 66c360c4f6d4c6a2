/**
 * What the index knows of each live memory, in typed arrays indexed by a slot (a dense number
 * reused after deletions): its key, division, place in its session, change_seq, and its own
 * lexemes (full text, redacted text when it differs, date words) as (term id, count) pairs in one
 * shared pool. Contextual documents are computed from this, never stored (contextual.ts).
 */

/** The redacted text's lexemes are the full text's (no redaction). */
const SAME = 0xffffffff;

function grown<T extends Float64Array | Int32Array | Uint32Array>(a: T, size: number): T {
  if (size <= a.length) return a;
  const next = new (a.constructor as new (n: number) => T)(Math.max(size, Math.ceil(a.length * 1.5)));
  next.set(a);
  return next;
}

/** A session's live memories of one division and one agent, in session order. */
interface SessionGroup {
  slots: number[];
}

export type TermPairs = { at: number; count: number };

export class MemoryStore {
  keyOf = new Float64Array(1024);
  divisionOf = new Int32Array(1024);
  groupOf = new Int32Array(1024);
  sequenceOf = new Float64Array(1024);
  changeSeqOf = new Float64Array(1024);
  ownAt = new Uint32Array(1024);
  ownCount = new Uint32Array(1024);
  redactedAt = new Uint32Array(1024);
  redactedCount = new Uint32Array(1024);
  dateAt = new Uint32Array(1024);
  dateCount = new Uint32Array(1024);
  /** Document id of the slot's memory in its division's full and redacted segments (-1: none). */
  fullDoc = new Int32Array(1024);
  redactedDoc = new Int32Array(1024);

  /** (term id, count) pairs: pool[2i] term, pool[2i + 1] count. */
  pool = new Uint32Array(1 << 16);
  poolUsed = 0;
  poolLive = 0;

  private readonly slots = new Map<number, number>();
  private readonly free: number[] = [];
  private highWater = 0;
  private readonly groups: (SessionGroup | undefined)[] = [];
  private readonly groupIds = new Map<string, number>();

  get size(): number {
    return this.slots.size;
  }

  slotOf(key: number): number | undefined {
    return this.slots.get(key);
  }

  allocate(key: number): number {
    const slot = this.free.pop() ?? this.highWater++;
    const n = slot + 1;
    if (n > this.keyOf.length) {
      this.keyOf = grown(this.keyOf, n);
      this.divisionOf = grown(this.divisionOf, n);
      this.groupOf = grown(this.groupOf, n);
      this.sequenceOf = grown(this.sequenceOf, n);
      this.changeSeqOf = grown(this.changeSeqOf, n);
      this.ownAt = grown(this.ownAt, n);
      this.ownCount = grown(this.ownCount, n);
      this.redactedAt = grown(this.redactedAt, n);
      this.redactedCount = grown(this.redactedCount, n);
      this.dateAt = grown(this.dateAt, n);
      this.dateCount = grown(this.dateCount, n);
      this.fullDoc = grown(this.fullDoc, n);
      this.redactedDoc = grown(this.redactedDoc, n);
    }
    this.slots.set(key, slot);
    this.keyOf[slot] = key;
    this.groupOf[slot] = -1;
    this.ownCount[slot] = 0;
    this.redactedCount[slot] = SAME;
    this.dateCount[slot] = 0;
    this.fullDoc[slot] = -1;
    this.redactedDoc[slot] = -1;
    return slot;
  }

  release(slot: number): void {
    this.setTerms(slot, 'own', null);
    this.setTerms(slot, 'redacted', null);
    this.setTerms(slot, 'date', null);
    this.slots.delete(this.keyOf[slot]);
    this.free.push(slot);
  }

  /** The slot's lexemes in a view: the redacted view falls back to the full text's. */
  terms(slot: number, which: 'own' | 'redacted' | 'date'): TermPairs {
    if (which === 'date') return { at: this.dateAt[slot], count: this.dateCount[slot] };
    if (which === 'redacted' && this.redactedCount[slot] !== SAME) {
      return { at: this.redactedAt[slot], count: this.redactedCount[slot] };
    }
    return { at: this.ownAt[slot], count: this.ownCount[slot] };
  }

  hasRedactedText(slot: number): boolean {
    return this.redactedCount[slot] !== SAME;
  }

  /** Replaces a list of pairs (null: none; for 'redacted', the full text's). */
  setTerms(slot: number, which: 'own' | 'redacted' | 'date', pairs: number[] | null): void {
    const [at, count] =
      which === 'own'
        ? [this.ownAt, this.ownCount]
        : which === 'redacted'
          ? [this.redactedAt, this.redactedCount]
          : [this.dateAt, this.dateCount];
    if (count[slot] !== SAME) this.poolLive -= count[slot];
    if (pairs === null) {
      count[slot] = which === 'redacted' ? SAME : 0;
      return;
    }
    const n = pairs.length / 2;
    if (this.poolUsed + n > this.pool.length / 2) this.growPool(n);
    at[slot] = this.poolUsed;
    this.pool.set(pairs, this.poolUsed * 2);
    this.poolUsed += n;
    this.poolLive += n;
    count[slot] = n;
  }

  /** Room for n more pairs: drops the space of replaced lists first when it is most of the pool. */
  private growPool(n: number): void {
    if (this.poolLive + n <= this.pool.length / 4) {
      this.compactPool();
      return;
    }
    const next = new Uint32Array(Math.max(this.pool.length * 2, (this.poolUsed + n) * 2 * 1.25));
    next.set(this.pool.subarray(0, this.poolUsed * 2));
    this.pool = next;
  }

  private compactPool(): void {
    const next = new Uint32Array(this.pool.length);
    let used = 0;
    const move = (at: Uint32Array, count: Uint32Array, slot: number) => {
      const c = count[slot];
      if (c === SAME || c === 0) return;
      next.set(this.pool.subarray(at[slot] * 2, (at[slot] + c) * 2), used * 2);
      at[slot] = used;
      used += c;
    };
    for (const slot of this.slots.values()) {
      move(this.ownAt, this.ownCount, slot);
      move(this.redactedAt, this.redactedCount, slot);
      move(this.dateAt, this.dateCount, slot);
    }
    this.pool = next;
    this.poolUsed = used;
  }

  // Sessions: one group per (division, agent, session), its live memories in session order.

  private groupKey(division: number, agent: string | null, session: string): string {
    return `${division}\u0000${agent ?? ''}\u0000${agent === null ? 0 : 1}\u0000${session}`;
  }

  /** Position of (sequence, key) in the group: the index of the first member after it. */
  private positionIn(group: SessionGroup, sequence: number, key: number): number {
    let lo = 0;
    let hi = group.slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const s = group.slots[mid];
      const before =
        this.sequenceOf[s] < sequence || (this.sequenceOf[s] === sequence && this.keyOf[s] < key);
      if (before) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Where the slot would go in a session: the neighbours it would have there, and the group. */
  placeIn(division: number, agent: string | null, session: string, sequence: number, key: number) {
    const name = this.groupKey(division, agent, session);
    let id = this.groupIds.get(name);
    if (id === undefined) {
      id = this.groups.length;
      this.groups.push({ slots: [] });
      this.groupIds.set(name, id);
    }
    const group = this.groups[id] as SessionGroup;
    const at = this.positionIn(group, sequence, key);
    return {
      id,
      at,
      prev: at > 0 ? group.slots[at - 1] : -1,
      next: at < group.slots.length ? group.slots[at] : -1,
    };
  }

  insertInGroup(slot: number, id: number, at: number, sequence: number): void {
    (this.groups[id] as SessionGroup).slots.splice(at, 0, slot);
    this.groupOf[slot] = id;
    this.sequenceOf[slot] = sequence;
  }

  /** The slot's neighbours in its session (-1: none). */
  neighbours(slot: number): { prev: number; next: number; at: number } {
    const id = this.groupOf[slot];
    if (id < 0) return { prev: -1, next: -1, at: -1 };
    const group = this.groups[id] as SessionGroup;
    const at = this.positionIn(group, this.sequenceOf[slot], this.keyOf[slot]);
    return {
      at,
      prev: at > 0 ? group.slots[at - 1] : -1,
      next: at + 1 < group.slots.length ? group.slots[at + 1] : -1,
    };
  }

  removeFromGroup(slot: number): void {
    const id = this.groupOf[slot];
    if (id < 0) return;
    const { at } = this.neighbours(slot);
    const group = this.groups[id] as SessionGroup;
    group.slots.splice(at, 1);
    this.groupOf[slot] = -1;
  }

  /** Bytes held by the arrays and the pool (the key map and groups are estimated). */
  get bytes(): number {
    const perSlot = this.keyOf.length * (8 * 3 + 4 * 10);
    return perSlot + this.pool.byteLength + this.slots.size * 40;
  }
}
