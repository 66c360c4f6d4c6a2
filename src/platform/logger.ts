import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * JSON logs. Memory text and secrets must never reach a log line: request bodies are not logged,
 * and these paths are redacted in case a caller passes such objects by mistake.
 */
export function createLogger(level: string, opts: { stderr?: boolean } = {}): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'memory-layer' },
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
  return opts.stderr ? pino(options, pino.destination(2)) : pino(options);
}
