/**
 * Wraps a route handler: resolves the dynamic params, turns `ApiError`s into JSON answers and
 * anything unexpected into a 500 that is logged but says nothing about the internals.
 */
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
