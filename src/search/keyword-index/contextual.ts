import type { DocTerms } from './segment.js';
import type { MemoryStore } from './store.js';

export type View = 'full' | 'redacted';

/**
 * Weights, in half units. A memory's contextual document is its own lexemes counted twice, plus
 * the lexemes of its previous and next memory in the session (same division and agent) and the
 * date words of its occurredAt, counted once: in half units, own 2, context 1. So a memory without
 * neighbours or date is its own text exactly (tf = positions, length = distinct lexemes, as the
 * SQL BM25 counts them), and one in a conversation also matches the words around it, weighted
 * below its own.
 */
const OWN = 2;
const CONTEXT = 1;

let weightByTerm = new Uint16Array(1 << 16);
const scratch: DocTerms = { ids: new Int32Array(256), weights: new Uint16Array(256), count: 0, length: 0 };

function add(store: MemoryStore, at: number, count: number, weight: number): void {
  const pool = store.pool;
  for (let i = 0; i < count; i++) {
    const term = pool[(at + i) * 2];
    const n = pool[(at + i) * 2 + 1];
    if (term >= weightByTerm.length) {
      const next = new Uint16Array(Math.max(term + 1, weightByTerm.length * 2));
      next.set(weightByTerm);
      weightByTerm = next;
    }
    if (weightByTerm[term] === 0) {
      if (scratch.count === scratch.ids.length) {
        const ids = new Int32Array(scratch.count * 2);
        ids.set(scratch.ids);
        scratch.ids = ids;
        const weights = new Uint16Array(scratch.count * 2);
        weights.set(scratch.weights);
        scratch.weights = weights;
      }
      scratch.ids[scratch.count++] = term;
    }
    weightByTerm[term] = Math.min(0xffff, weightByTerm[term] + n * weight);
  }
  scratch.length += count * weight;
}

/**
 * The contextual document of `slot` in a view, with `prev` and `next` as its neighbours (-1: none).
 * Returns a shared scratch object: use it before the next call.
 */
export function contextualDocument(
  store: MemoryStore,
  slot: number,
  view: View,
  prev: number,
  next: number,
): DocTerms {
  scratch.count = 0;
  scratch.length = 0;
  const which = view === 'full' ? 'own' : 'redacted';
  const own = store.terms(slot, which);
  add(store, own.at, own.count, OWN);
  for (const neighbour of [prev, next]) {
    if (neighbour < 0) continue;
    const t = store.terms(neighbour, which);
    add(store, t.at, t.count, CONTEXT);
  }
  const date = store.terms(slot, 'date');
  add(store, date.at, date.count, CONTEXT);
  for (let i = 0; i < scratch.count; i++) {
    const term = scratch.ids[i];
    scratch.weights[i] = weightByTerm[term];
    weightByTerm[term] = 0;
  }
  return scratch;
}
