/**
 * The quality benchmark's modes and its ablation: one row per technique, each the service with
 * some settings (environment variables, as an operator would set them) over the same memories.
 */

export type Mode = 'hybrid' | 'keyword' | 'vector';

/** Asked in this order: hybrid first, so that its searches include embedding the query. */
export const MODES: Mode[] = ['hybrid', 'vector', 'keyword'];

export interface Variant {
  technique: string;
  mode: Mode;
  /** Settings on top of the defaults; undefined: the defaults (the main run's answers are reused). */
  env?: Record<string, string>;
  /** This row adds one technique to the row above it (the table shows the difference). */
  step?: boolean;
}

export const ABLATION: Variant[] = [
  // Keyword side.
  { technique: 'BM25 over contextual documents', mode: 'keyword' },
  {
    technique: '+ pseudo-relevance feedback',
    mode: 'keyword',
    env: { SEARCH_FEEDBACK: 'on' },
    step: true,
  },
  // Vector side.
  { technique: 'own vectors', mode: 'vector', env: { VECTOR_CONTEXT_WEIGHT: '0' } },
  { technique: '+ session neighbours blended in (0.5)', mode: 'vector', step: true },
  // Fusion.
  {
    technique: 'reciprocal rank fusion (1.0 / 0.7, k 60), own vectors: before issue 10',
    mode: 'hybrid',
    env: { SEARCH_FUSION: 'rrf', VECTOR_CONTEXT_WEIGHT: '0' },
  },
  {
    technique: 'reciprocal rank fusion (1.0 / 0.7, k 60)',
    mode: 'hybrid',
    env: { SEARCH_FUSION: 'rrf' },
    step: true,
  },
  { technique: 'normalised score fusion, keyword weight 0.6 (default)', mode: 'hybrid', step: true },
  {
    technique: 'normalised score fusion, keyword weight 0.5',
    mode: 'hybrid',
    env: { SEARCH_KEYWORD_WEIGHT: '0.5' },
  },
  {
    technique: 'normalised score fusion, keyword weight 0.7',
    mode: 'hybrid',
    env: { SEARCH_KEYWORD_WEIGHT: '0.7' },
  },
  {
    technique: 'normalised score fusion + pseudo-relevance feedback',
    mode: 'hybrid',
    env: { SEARCH_FEEDBACK: 'on' },
  },
];
