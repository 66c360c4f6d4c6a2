import type { FastifyInstance } from 'fastify';
import type { App } from '../../app.js';
import { resolveDivision } from '../../auth/authorize.js';
import { accessOf } from '../../memories/access.js';
import type { SearchQuery } from '../../search/search.js';
import { problem, searchBody, searchResponse } from '../schemas.js';

export function searchRoutes(app: App) {
  return async (server: FastifyInstance) => {
    server.post<{ Body: Partial<SearchQuery> & { k: number; mode: SearchQuery['mode'] } }>(
      '/v1/search',
      {
        config: { scopes: ['memory:read'] },
        schema: {
          tags: ['search'],
          summary: 'Find memories by meaning and by words',
          description:
            '`hybrid` (default) fuses the vector and BM25 keyword rankings by their normalised scores; `vector` and `keyword` use one retriever. Memories of a session are found with the words and meaning of their neighbouring turns too; hits return their own text. Filters: namespace, agentId, kind, tags (all must match), metadata (top-level equality), created-at range. `pending` counts matching memories not yet searchable by meaning.',
          body: searchBody,
          response: { 200: searchResponse, 400: problem, 404: problem, 422: problem, 503: problem },
        },
      },
      async (req) => {
        const divisionId = resolveDivision(req.caller, req.body.divisionId);
        return app.search.search(accessOf(req.caller, divisionId), { ...req.body, divisionId });
      },
    );
  };
}
