/**
 * `POST /publish`: publishing for backends without Redis access (and for the single-machine
 * default, where the broker is in-process). Body `{channel | channels, type, data, id?}`, bearer
 * `WS_PUBLISH_SECRET`. Answers 202 `{id}` once the broker took the event: with Redis every
 * node receives it, not only this one.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker } from '../broker/broker.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { eventAllowedOn, isReservedChannel, parseChannel, publishRequestSchema, publishedEventSchema } from '../protocol/index.ts';
import { bearerMatches } from './bearer.ts';
import { BodyTooLargeError, readBody, sendJson } from './body.ts';

const MAX_BODY_BYTES = 64 * 1024;

export interface PublishHandlerDeps {
  broker: Broker;
  secret: string | undefined;
  metrics: Metrics;
  logger: Logger;
}

export function createPublishHandler({ broker, secret, metrics, logger }: PublishHandlerDeps) {
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const reply = (status: number, body: unknown) => {
      metrics.published.inc({ status: String(status) });
      sendJson(response, status, body);
    };
    if (!secret) {
      reply(503, { error: 'publish_disabled', message: 'set WS_PUBLISH_SECRET to enable POST /publish' });
      return;
    }
    if (!bearerMatches(request, secret)) {
      reply(401, { error: 'unauthorized', message: 'Authorization: Bearer <WS_PUBLISH_SECRET> required' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(request, MAX_BODY_BYTES));
    } catch (error) {
      const tooLarge = error instanceof BodyTooLargeError;
      reply(tooLarge ? 413 : 400, { error: 'bad_request', message: tooLarge ? error.message : 'body is not valid JSON' });
      return;
    }
    const envelope = publishRequestSchema.safeParse(body);
    if (!envelope.success) {
      reply(400, { error: 'bad_request', message: describe(envelope.error.issues) });
      return;
    }
    const { channel, channels: many, ...rest } = envelope.data;
    const channels = [...new Set(many ?? [channel!])];
    // `broadcast` is reserved but publishable: every node delivers it to every socket (broadcast.ts).
    const invalid = channels.find((name) => !isReservedChannel(name) && !parseChannel(name).ok);
    if (invalid !== undefined) {
      reply(400, { error: 'invalid_channel', message: `invalid channel ${JSON.stringify(invalid)}` });
      return;
    }
    const event = publishedEventSchema.safeParse({ ...rest, id: rest.id ?? randomUUID(), ts: Date.now() });
    if (!event.success) {
      reply(400, { error: 'bad_request', message: describe(event.error.issues) });
      return;
    }
    const misplaced = channels.find((name) => !eventAllowedOn(name, event.data.type));
    if (misplaced !== undefined) {
      reply(400, { error: 'bad_request', message: `${event.data.type} events are not accepted on ${JSON.stringify(misplaced)}: broadcast events go on the broadcast channel only, and it carries nothing else` });
      return;
    }
    const payload = JSON.stringify(event.data);
    const results = await Promise.allSettled(channels.map((name) => broker.publish(name, payload)));
    const failed = results.filter((result) => result.status === 'rejected');
    if (failed.length > 0) {
      logger.warn('publish failed', { channels: channels.length, failed: failed.length, error: String(failed[0]!.reason) });
      reply(503, { error: 'broker_unavailable', message: `the broker could not take the event on ${failed.length} of ${channels.length} channels; retry` });
      return;
    }
    const position = results[0]?.status === 'fulfilled' ? results[0].value : null;
    reply(202, channel === undefined ? { id: event.data.id, channels: channels.length } : { id: event.data.id, channel, ...(position ?? {}) });
  };
}

function describe(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return issues.map((i) => `${i.path.map(String).join('.') || 'body'}: ${i.message}`).join('; ');
}
