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
  {
    technique: 'hybrid, reciprocal rank fusion (1.0 / 0.7, k 60)',
    mode: 'hybrid',
    env: { SEARCH_FUSION: 'rrf' },
  },
  { technique: 'hybrid (defaults)', mode: 'hybrid' },
];
