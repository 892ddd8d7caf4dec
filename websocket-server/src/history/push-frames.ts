/**
 * A broker payload (what a publisher sent, plus `offset`/`epoch` when it went through history)
 * into the push frame subscribers receive, serialized once. Live delivery, replay on subscribe
 * and gap filling all go through here, so a replayed event is byte for byte the live one.
 *
 * This runs once per event per node, so it is on the delivery path of every event (a quarter of
 * the server's busy time in the targeted benchmark before it was made cheaper). The payload is
 * parsed and checked against the protocol's schema, but not serialized again: the frame is the
 * publisher's own JSON text with `channel` (and `id`/`ts` when missing) written in front. That
 * is the same document the checked value describes, because the event schemas transform
 * nothing and keep extra fields of `data` (loose objects). Only a top-level field the schema
 * does not know (which it drops) or a payload not starting with `{` takes the slower way:
 * serializing the checked value.
 */
import { randomUUID } from 'node:crypto';
import { eventAllowedOn, PUBLISHED_EVENT_FIELDS, publishedEventSchema, type PublishedEvent } from '../protocol/index.ts';
import { frameText } from '../ws-frame.ts';

/** `wire`: the complete WebSocket frame, framed once and written as is to every subscriber. */
export type ParsedPush = { event: PublishedEvent; wire: Buffer };

export function parsePush(channel: string, payload: string): { ok: true; push: ParsedPush } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'payload is not JSON' };
  }
  const parsed = publishedEventSchema.safeParse(value);
  if (!parsed.success) {
    return { ok: false, reason: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
  }
  const event = parsed.data;
  if (!eventAllowedOn(channel, event.type)) return { ok: false, reason: `${event.type} events are not accepted on ${channel}` };
  const text = onlyKnownFields(value as Record<string, unknown>) && payload.charCodeAt(0) === 0x7b /* { */
    ? spliced(channel, event, payload)
    : JSON.stringify(toPushFrame(channel, event));
  return { ok: true, push: { event, wire: frameText(Buffer.from(text)) } };
}

/** Fills `id` and `ts` when the publisher left them out. */
export function toPushFrame(channel: string, event: PublishedEvent) {
  return {
    type: event.type,
    channel,
    data: event.data,
    id: pushId(event),
    ts: event.ts ?? Date.now(),
    ...(event.offset === undefined ? {} : { offset: event.offset, epoch: event.epoch }),
  };
}

/** An event kept in history always has the same id, so a replayed copy is recognisable. */
function pushId(event: PublishedEvent): string {
  return event.id ?? (event.offset === undefined ? randomUUID() : `${event.epoch}:${event.offset}`);
}

/**
 * `{"channel":…,` then the payload after its opening brace: the frame toPushFrame describes,
 * with its fields in another order. A duplicated key means the same here as in JSON.parse
 * (the last one wins, in the server's check and in the browser alike).
 */
function spliced(channel: string, event: PublishedEvent, payload: string): string {
  let head = `{"channel":${JSON.stringify(channel)},`;
  if (event.id === undefined) head += `"id":${JSON.stringify(pushId(event))},`;
  if (event.ts === undefined) head += `"ts":${Date.now()},`;
  return head + payload.slice(1);
}

function onlyKnownFields(value: Record<string, unknown>): boolean {
  for (const key in value) if (!PUBLISHED_EVENT_FIELDS.has(key)) return false;
  return true;
}
