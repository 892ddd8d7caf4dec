/**
 * The app's server-side log: one JSON line per event, so that the lines of the app, the
 * WebSocket server (winston JSON) and scripts read alike. Never pass tokens or cookies as fields.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
type Fields = Record<string, unknown>;

function write(level: Level, msg: string, fields: Fields = {}): void {
  const line = JSON.stringify({ level, msg, service: 'app', time: new Date().toISOString(), ...fields });
  if (level === 'error' || level === 'warn') console.error(line);
  else console.log(line);
}

export const log = {
  debug: (msg: string, fields?: Fields) => {
    if (process.env.LOG_LEVEL === 'debug') write('debug', msg, fields);
  },
  info: (msg: string, fields?: Fields) => write('info', msg, fields),
  warn: (msg: string, fields?: Fields) => write('warn', msg, fields),
  error: (msg: string, fields?: Fields) => write('error', msg, fields),
};
