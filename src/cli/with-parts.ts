import { loadConfig } from '../config.js';
import { createParts, type Parts, type PartsOptions } from '../parts.js';
import { createLogger } from '../platform/logger.js';

/**
 * Runs a CLI command on the parts it asks for, built by the factory the server uses and only those
 * (so `migrate` opens nothing but the database), then closes them. Nothing runs in the background:
 * no worker (writes are picked up by running workers' polling), no timers. Commands run quietly:
 * unless LOG_LEVEL says otherwise, only warnings reach the terminal, as JSON on stderr.
 */
export async function withParts<T>(
  fn: (parts: Parts) => Promise<T>,
  opts: Pick<PartsOptions, 'objectStore'> = {},
): Promise<T> {
  const config = loadConfig();
  const parts = createParts(config, { ...opts, logger: createLogger(config.LOG_LEVEL ?? 'warn') });
  try {
    return await fn(parts);
  } finally {
    await parts.close();
  }
}
