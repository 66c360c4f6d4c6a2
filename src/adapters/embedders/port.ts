/** Which model produced a vector: recorded on every memory node. */
export interface EmbeddingModel {
  name: string;
  version: string;
  dimensions: number;
}

/** Turns texts into vectors. Adapters: the built-in local model, and any OpenAI-compatible endpoint. */
export interface Embedder {
  readonly model: EmbeddingModel;
  /** One vector per text, in order. Throws on failure; callers retry. */
  embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** `name@version`: the key of a vector space (vectors are only comparable within one). */
export const modelKey = (m: Pick<EmbeddingModel, 'name' | 'version'>) => `${m.name}@${m.version}`;
