/**
 * The quality benchmark's modes and its ablation: one row per technique. A row is the service with
 * some settings (environment variables, as an operator would set them) asked about one copy of the
 * conversations: the full one, or a copy written without what a technique needs (no sessions: no
 * neighbours; no dates: no date words), which is how the keyword side's techniques are switched
 * off from outside.
 */

export type Mode = 'hybrid' | 'keyword' | 'vector';

/** Asked in this order: hybrid first, so that its searches include embedding the query. */
export const MODES: Mode[] = ['hybrid', 'vector', 'keyword'];

/**
 * Copies of the conversations, each in divisions of its own: `full` (session, place and date on
 * every turn), `sessions` (session and place, no date), `plain` (the text alone).
 */
export type Copy = 'full' | 'sessions' | 'plain';

export const COPY_LABELS: Record<Copy, string> = {
  full: 'turns with session and date',
  sessions: 'turns with session, no date',
  plain: 'turns alone (no session, no date)',
};

export interface Variant {
  technique: string;
  mode: Mode;
  /** Settings on top of the defaults; undefined: the defaults. */
  env?: Record<string, string>;
  /** The copy asked (default `full`). */
  copy?: Copy;
  /** This row adds one technique to the row above it (the table shows the difference). */
  step?: boolean;
}

const RRF = { SEARCH_FUSION: 'rrf' };

export const ABLATION: Variant[] = [
  // Keyword side.
  { technique: 'BM25 over each memory’s own words', mode: 'keyword', copy: 'plain' },
  {
    technique: '+ its session neighbours’ words (own words twice)',
    mode: 'keyword',
    copy: 'sessions',
    step: true,
  },
  { technique: '+ the date words of occurredAt', mode: 'keyword', step: true },
  { technique: '+ pseudo-relevance feedback', mode: 'keyword', env: { SEARCH_FEEDBACK: 'on' }, step: true },
  // Vector side.
  { technique: 'own vectors', mode: 'vector', env: { VECTOR_CONTEXT_WEIGHT: '0' } },
  { technique: '+ session neighbours blended in (v + 0.5·(prev + next))', mode: 'vector', step: true },
  // Fusion.
  {
    technique: 'before issue 10: reciprocal rank fusion of the two plain retrievers',
    mode: 'hybrid',
    env: RRF,
    copy: 'plain',
  },
  {
    technique: 'contextual retrievers, reciprocal rank fusion (1.0 / 0.7, k 60)',
    mode: 'hybrid',
    env: RRF,
    step: true,
  },
  {
    technique: 'min-max score fusion, keyword weight 0.65',
    mode: 'hybrid',
    env: { SEARCH_FUSION: 'minmax' },
    step: true,
  },
  { technique: 'standard-score fusion, keyword weight 0.65 (default)', mode: 'hybrid', step: true },
  {
    technique: 'standard-score fusion, keyword weight 0.5',
    mode: 'hybrid',
    env: { SEARCH_KEYWORD_WEIGHT: '0.5' },
  },
  {
    technique: 'standard-score fusion, keyword weight 0.6',
    mode: 'hybrid',
    env: { SEARCH_KEYWORD_WEIGHT: '0.6' },
  },
  {
    technique: 'standard-score fusion, keyword weight 0.7',
    mode: 'hybrid',
    env: { SEARCH_KEYWORD_WEIGHT: '0.7' },
  },
  {
    technique: 'standard-score fusion + pseudo-relevance feedback',
    mode: 'hybrid',
    env: { SEARCH_FEEDBACK: 'on' },
  },
];
