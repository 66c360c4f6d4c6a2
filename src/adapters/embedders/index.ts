import type { Config } from '../../config.js';
import { createLocalEmbedder } from './local.js';
import { createOpenAIEmbedder } from './openai.js';
import type { Embedder } from './port.js';

export { type Embedder, type EmbeddingModel, modelKey } from './port.js';

/** Builds the embedder the configuration names (the local model's weights load only when chosen). */
export async function createEmbedder(config: Config): Promise<Embedder> {
  switch (config.EMBEDDER) {
    case 'local':
      return createLocalEmbedder();
    case 'openai': {
      const { EMBEDDER_URL: url, EMBEDDER_MODEL: model, EMBEDDER_DIMENSIONS: dimensions } = config;
      // loadConfig already requires these for EMBEDDER=openai; this guards configs built by hand.
      if (!url || !model || !dimensions) {
        throw new Error('EMBEDDER=openai needs EMBEDDER_URL, EMBEDDER_MODEL and EMBEDDER_DIMENSIONS');
      }
      return createOpenAIEmbedder({
        url,
        model,
        version: config.EMBEDDER_MODEL_VERSION,
        dimensions,
        apiKey: config.EMBEDDER_API_KEY,
        timeoutMs: config.EMBEDDER_TIMEOUT_MS,
        batchSize: config.EMBEDDER_BATCH_SIZE,
      });
    }
  }
}
