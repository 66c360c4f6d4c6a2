import openapiTS, { astToString } from 'openapi-typescript';

/** What the committed file starts with: where it comes from and how to make it again. */
export const SCHEMA_HEADER = `/**
 * Generated from the Memory Layer service's OpenAPI document (GET /openapi.json) by
 * openapi-typescript. Do not edit: run \`npm run client:types\` after changing a route's schema.
 */

`;

/**
 * The TypeScript types of an OpenAPI document, as committed in src/schema.ts. Deterministic for
 * one document, so that a test can regenerate them from a running service and compare.
 */
export async function schemaTypes(document: object): Promise<string> {
  // biome-ignore lint/suspicious/noExplicitAny: the generator's own OpenAPI typings are stricter than a served document
  const ast = await openapiTS(document as any, { silent: true, alphabetize: true });
  return SCHEMA_HEADER + astToString(ast);
}
