/** Prisma's "record to update/delete does not exist" (a concurrent delete won the race). */
export function isRecordNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2025';
}

/** Prisma's connection-level codes: the server is unreachable, timed out, or closed on us. */
const UNAVAILABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const UNAVAILABLE_MESSAGE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Connection terminated|timeout exceeded when trying to connect|Can't reach database server|the database system is (starting up|shutting down)/i;

/**
 * The database could not be reached (as opposed to refusing what was asked): the request may
 * succeed if retried shortly. With the PrismaPg adapter the pg error arrives as the cause of a
 * DriverAdapterError, so the whole cause chain is looked at.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (typeof current !== 'object') return false;
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|57P01|57P03)$/.test(code))) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
    current = cause;
  }
  return false;
}
