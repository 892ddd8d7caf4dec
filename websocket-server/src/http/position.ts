/**
 * `GET /position?channel=C`: the channel's current position `{offset, epoch}`, for a page that
 * renders from the database: it reads the position first, then the database, and its client
 * subscribes with `since` that position, so nothing published between the render and the
 * subscribe is lost. Bearer `WS_PUBLISH_SECRET` (the app asks, never a browser). With Redis the
 * app reads the position from Redis itself (readHistory in broker/history-script.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker } from '../broker/broker.ts';
import { parseChannel } from '../protocol/index.ts';
import { bearerMatches } from './bearer.ts';
import { sendJson } from './body.ts';

export function createPositionHandler({ broker, secret }: { broker: Broker; secret: string | undefined }) {
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (!secret) {
      sendJson(response, 503, { error: 'publish_disabled', message: 'set WS_PUBLISH_SECRET to enable GET /position' });
      return;
    }
    if (!bearerMatches(request, secret)) {
      sendJson(response, 401, { error: 'unauthorized', message: 'Authorization: Bearer <WS_PUBLISH_SECRET> required' });
      return;
    }
    const channel = new URL(request.url ?? '/', 'http://localhost').searchParams.get('channel') ?? '';
    if (!parseChannel(channel).ok) {
      sendJson(response, 400, { error: 'invalid_channel', message: 'give ?channel=<a valid channel name>' });
      return;
    }
    try {
      const { position } = await broker.history(channel, null, 0);
      sendJson(response, 200, position);
    } catch (error) {
      sendJson(response, 503, { error: 'broker_unavailable', message: (error as Error).message.slice(0, 200) });
    }
  };
}
