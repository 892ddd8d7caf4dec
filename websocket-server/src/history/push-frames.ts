/**
 * A broker payload (what a publisher sent, plus `offset`/`epoch` when it went through history)
 * into the push frame subscribers receive, serialized once. Live delivery, replay on subscribe
 * and gap filling all go through here, so a replayed event is byte for byte the live one.
 */
import { randomUUID } from 'node:crypto';
import { eventAllowedOn, publishedEventSchema, type PublishedEvent } from '../protocol/index.ts';
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
  if (!eventAllowedOn(channel, parsed.data.type)) return { ok: false, reason: `${parsed.data.type} events are not accepted on ${channel}` };
  return { ok: true, push: { event: parsed.data, wire: frameText(Buffer.from(JSON.stringify(toPushFrame(channel, parsed.data)))) } };
}

/** Fills `id` and `ts` when the publisher left them out. */
export function toPushFrame(channel: string, event: PublishedEvent) {
  return {
    type: event.type,
    channel,
    data: event.data,
    // An event kept in history always has the same id, so a replayed copy is recognisable.
    id: event.id ?? (event.offset === undefined ? randomUUID() : `${event.epoch}:${event.offset}`),
    ts: event.ts ?? Date.now(),
    ...(event.offset === undefined ? {} : { offset: event.offset, epoch: event.epoch }),
  };
}
