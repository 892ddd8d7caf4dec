/**
 * Wraps a route handler: resolves the dynamic params, turns `ApiError`s into JSON answers and
 * anything unexpected into a 500 that is logged but says nothing about the internals.
 */
import { isDatabaseUnavailable } from '../domain/prisma-errors.ts';
import { ApiError } from './errors.ts';

type Params = Record<string, string | string[] | undefined>;
type Context = { params: Promise<Params> };
type Handler = (request: Request, params: Params) => Promise<Response>;

export function apiRoute(handler: Handler) {
  return async (request: Request, context: Context): Promise<Response> => {
    try {
      return await handler(request, (await context?.params) ?? {});
    } catch (error) {
      if (error instanceof ApiError) {
        return Response.json(
          { error: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) },
          { status: error.status },
        );
      }
      if (isDatabaseUnavailable(error)) {
        // Nothing was committed (a transaction that cannot reach the database does not commit):
        // say so, and when to try again, instead of a bare 500.
        console.error(JSON.stringify({ level: 'error', msg: 'database unavailable', method: request.method, path: new URL(request.url).pathname }));
        return Response.json(
          { error: 'unavailable', message: 'the database is unreachable; nothing was saved, retry shortly' },
          { status: 503, headers: { 'retry-after': '5' } },
        );
      }
      console.error(
        JSON.stringify({
          level: 'error',
          msg: 'route failed',
          method: request.method,
          path: new URL(request.url).pathname,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
      return Response.json({ error: 'internal_error', message: 'something went wrong; retry' }, { status: 500 });
    }
  };
}

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}
