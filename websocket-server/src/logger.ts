/**
 * winston, configured once. Modules receive a `Logger` and derive children with context
 * (`connId`, `userId`); nothing here ever receives a token or a cookie, and `redact` below is a
 * second line of defence for fields with those names.
 */
import winston from 'winston';

export type Logger = winston.Logger;

const SECRET_KEYS = /token|cookie|authorization|secret|password/i;

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (SECRET_KEYS.test(key)) info[key] = '[redacted]';
  }
  return info;
});

export function createLogger(options: { level: string; format: 'json' | 'pretty'; nodeId?: string }): Logger {
  const format =
    options.format === 'pretty'
      ? winston.format.combine(redact(), winston.format.timestamp(), winston.format.colorize(), winston.format.simple())
      : winston.format.combine(redact(), winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level: options.level,
    format,
    defaultMeta: { service: 'fonana-ws', ...(options.nodeId ? { nodeId: options.nodeId } : {}) },
    // stderr for everything keeps stdout free for tools that read the process's output.
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
  });
}
