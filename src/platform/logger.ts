import { pino } from 'pino';
import { activeTraceIds } from './tracing.js';

export type Logger = pino.Logger;

/**
 * JSON logs. Memory text and secrets must never reach a log line: request bodies are not logged,
 * and these paths are redacted in case a caller passes such objects by mistake.
 */
export function createLogger(
  level: string,
  opts: { stderr?: boolean; destination?: pino.DestinationStream } = {},
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'memory-layer' },
    // Every line written while a request or job batch is traced carries its trace and span ids,
    // so logs and traces join up.
    mixin: () => activeTraceIds() ?? {},
    redact: {
      paths: [
        'text',
        '*.text',
        'query',
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'apiKey',
        '*.apiKey',
      ],
      censor: '[redacted]',
    },
  };
  // `memory-layer mcp` keeps stdout for protocol messages: its logs go to stderr.
  if (opts.destination) return pino(options, opts.destination);
  return opts.stderr ? pino(options, pino.destination(2)) : pino(options);
}
