// pino loggers. Child processes log JSON to stderr synchronously so that nothing written
// before a crash is lost; a terminal gets pino-pretty's readable lines.

import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  readonly name: string;
  readonly level?: string;
  /** Append JSON lines to this file instead of stderr. */
  readonly file?: string | null;
  /** Pretty-print (for a terminal); ignored when `file` is set. */
  readonly pretty?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.FTRAIN_LOG_LEVEL ?? 'info';
  if (options.file) {
    return pino({ name: options.name, level }, pino.destination({ dest: options.file, sync: true, mkdir: true, append: true }));
  }
  if (options.pretty) {
    return pino({
      name: options.name,
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ name: options.name, level }, pino.destination({ dest: 2, sync: true }));
}
