/**
 * zod at the edge: params, query strings and bodies are parsed here, once, before a handler
 * looks at them. Every failure is a 422 listing each problem (a body that is not JSON too, so
 * clients see one shape for "your input is wrong").
 */
import { z } from 'zod';
import { unprocessable } from './errors.ts';

/** Database ids (cuid) and the seed's `demo-…` ids; the same alphabet the channel names accept. */
export const idSchema = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'not a valid id');

function issuesOf(error: z.ZodError) {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw unprocessable(`invalid ${what}`, issuesOf(result.error));
  return result.data;
}

export async function parseBody<S extends z.ZodType>(request: Request, schema: S): Promise<z.infer<S>> {
  let value: unknown;
  try {
    value = await request.json();
  } catch {
    throw unprocessable('the body must be JSON');
  }
  return parseWith(schema, value, 'body');
}

export function parseQuery<S extends z.ZodType>(request: Request, schema: S): z.infer<S> {
  return parseWith(schema, Object.fromEntries(new URL(request.url).searchParams), 'query');
}

export function parseId(params: Record<string, unknown>, name = 'id'): string {
  return parseWith(idSchema, params[name], `${name} parameter`);
}
