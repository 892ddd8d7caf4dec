/**
 * `POST /control`: control messages (protocol/control.ts) for the single-machine default, where
 * the broker is in-process and the app cannot reach it through Redis. Bearer
 * `WS_PUBLISH_SECRET`, body = one control message. Answers 202 once the broker took it: with
 * Redis every node receives it, this one included.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker } from '../broker/broker.ts';
import type { Logger } from '../logger.ts';
import { CONTROL_CHANNEL, controlMessageSchema } from '../protocol/index.ts';
import { BodyTooLargeError, readBody, sendJson } from './body.ts';
import { bearerMatches } from './bearer.ts';

const MAX_BODY_BYTES = 16 * 1024;

export function createControlHandler({ broker, secret, logger }: { broker: Broker; secret: string | undefined; logger: Logger }) {
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (!secret) {
      sendJson(response, 503, { error: 'publish_disabled', message: 'set WS_PUBLISH_SECRET to enable POST /control' });
      return;
    }
    if (!bearerMatches(request, secret)) {
      sendJson(response, 401, { error: 'unauthorized', message: 'Authorization: Bearer <WS_PUBLISH_SECRET> required' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(request, MAX_BODY_BYTES));
    } catch (error) {
      const tooLarge = error instanceof BodyTooLargeError;
      sendJson(response, tooLarge ? 413 : 400, { error: 'bad_request', message: tooLarge ? error.message : 'body is not valid JSON' });
      return;
    }
    const message = controlMessageSchema.safeParse(body);
    if (!message.success) {
      const issues = message.error.issues.map((i) => `${i.path.map(String).join('.') || 'body'}: ${i.message}`).join('; ');
      sendJson(response, 400, { error: 'bad_request', message: issues });
      return;
    }
    try {
      await broker.publish(CONTROL_CHANNEL, JSON.stringify(message.data));
    } catch (error) {
      logger.warn('control publish failed', { type: message.data.type, error: (error as Error).message });
      sendJson(response, 503, { error: 'broker_unavailable', message: 'the broker could not take the message; retry' });
      return;
    }
    sendJson(response, 202, { accepted: message.data.type });
  };
}
