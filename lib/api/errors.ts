/**
 * Errors a route handler answers with. Thrown from anywhere below a handler and turned into a
 * JSON response by `apiRoute`; anything else becomes a 500 without details.
 */
export type ApiErrorCode = 'bad_request' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'unprocessable';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly issues?: ReadonlyArray<{ path: string; message: string }>,
  ) {
    super(message);
  }
}

export const unauthorized = (message = 'sign in first') => new ApiError(401, 'unauthorized', message);
export const forbidden = (message: string) => new ApiError(403, 'forbidden', message);
export const notFound = (message: string) => new ApiError(404, 'not_found', message);
export const unprocessable = (message: string, issues?: ReadonlyArray<{ path: string; message: string }>) =>
  new ApiError(422, 'unprocessable', message, issues);
