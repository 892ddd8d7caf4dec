import { expect } from 'chai';
import { parsePush, toPushFrame } from '../../src/history/push-frames.ts';
import { channelName, eventDataSchemas } from '../../src/protocol/index.ts';

type Def = { type: string; shape?: Record<string, { _zod: { def: Def } }>; catchall?: unknown; element?: { _zod: { def: Def } }; innerType?: { _zod: { def: Def } }; options?: Array<{ _zod: { def: Def } }> };

/** Paths of object schemas below `def` that strip unknown keys (no catchall: z.object). */
function strippingObjects(def: Def, path: string): string[] {
  const below = (child: { _zod: { def: Def } } | undefined, step: string) => (child ? strippingObjects(child._zod.def, `${path}${step}`) : []);
  if (def.type === 'object') {
    const own = def.catchall === undefined ? [path] : [];
    return [...own, ...Object.entries(def.shape ?? {}).flatMap(([key, child]) => below(child, `.${key}`))];
  }
  if (def.type === 'array') return below(def.element, '[]');
  if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') return below(def.innerType, '');
  if (def.type === 'union') return (def.options ?? []).flatMap((option, i) => below(option, `|${i}`));
  return [];
}

/** The text of one unmasked WebSocket text frame (what parsePush writes to every subscriber). */
function frameTextOf(wire: Buffer): string {
  expect(wire[0], 'FIN + text opcode').to.equal(0x81);
  const short = wire[1]! & 0x7f;
  const start = short < 126 ? 2 : short === 126 ? 4 : 10;
  const length = short < 126 ? short : short === 126 ? wire.readUInt16BE(2) : Number(wire.readBigUInt64BE(2));
  expect(wire.length, 'the header announces exactly the payload').to.equal(start + length);
  return wire.subarray(start).toString('utf8');
}

const channel = channelName.post('p1');
const liked = { type: 'post_liked', data: { postId: 'p1', userId: 'u1', likesCount: 3, extra: { kept: ['a', 1] } } };

function push(payload: string) {
  const result = parsePush(channel, payload);
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  return { text: frameTextOf(result.push.wire), event: result.push.event };
}

describe('push frames (history/push-frames.ts)', () => {
  it('writes the frame the checked event describes, with channel, id and ts as sent', () => {
    const { text, event } = push(JSON.stringify({ ...liked, id: 'evt-1', ts: 1234 }));
    expect(JSON.parse(text)).to.deep.equal({ channel, ...liked, id: 'evt-1', ts: 1234 });
    expect(JSON.parse(text)).to.deep.equal(toPushFrame(channel, event));
  });

  it('an event with a history position gets the id epoch:offset; without one, a fresh UUID; ts when missing', () => {
    const before = Date.now();
    const kept = JSON.parse(push(`{"offset":7,"epoch":"ep-1",${JSON.stringify(liked).slice(1)}`).text);
    expect(kept).to.include({ id: 'ep-1:7', offset: 7, epoch: 'ep-1', channel });
    expect(kept.ts).to.be.within(before, Date.now());
    const [a, b] = [push(JSON.stringify(liked)).text, push(JSON.stringify(liked)).text].map((t) => JSON.parse(t).id as string);
    expect(a).to.match(/^[0-9a-f-]{36}$/).and.not.equal(b);
  });

  it('a top-level field the protocol does not know is dropped, as the schema drops it', () => {
    const { text } = push(JSON.stringify({ ...liked, id: 'evt-2', ts: 5, secret: 'not for clients', channel: 'feed_other' }));
    expect(JSON.parse(text)).to.deep.equal({ channel, ...liked, id: 'evt-2', ts: 5 });
    expect(text).to.not.include('not for clients').and.not.include('feed_other');
  });

  it('a payload with whitespace before its brace is still one valid frame', () => {
    const { text } = push(`  \n${JSON.stringify({ ...liked, id: 'evt-3', ts: 9 })}`);
    expect(JSON.parse(text)).to.deep.equal({ channel, ...liked, id: 'evt-3', ts: 9 });
  });

  it('escapes what the channel name and the payload carry, byte for byte valid JSON', () => {
    const data = { postId: 'p1', userId: 'u1', likesCount: 1, note: 'quote " backslash \\ newline \n emoji 😀 \u2028' };
    const { text } = push(JSON.stringify({ type: 'post_liked', data, id: 'evt-4', ts: 1 }));
    expect(JSON.parse(text).data).to.deep.equal(data);
  });

  it('a duplicated key reads as JSON.parse reads it, in the check and in the frame: the last one', () => {
    // The first data is invalid (likesCount missing); the last is valid and is what a client parses.
    const { text } = push('{"type":"post_liked","data":{"postId":"p1"},"data":{"postId":"p1","userId":"u1","likesCount":2},"id":"d","ts":1}');
    expect(JSON.parse(text).data).to.deep.equal({ postId: 'p1', userId: 'u1', likesCount: 2 });
    expect(parsePush(channel, '{"type":"post_liked","data":{"postId":"p1","userId":"u1","likesCount":2},"data":{"postId":"p1"}}').ok).to.equal(false);
  });

  it('every event data schema keeps unknown keys at every level, as the splice assumes', () => {
    // A z.object (which strips) anywhere in events.ts would let the spliced frame carry keys the
    // check dropped; the schemas must stay loose objects.
    const stripping = Object.entries(eventDataSchemas).flatMap(([type, schema]) => strippingObjects((schema as unknown as { _zod: { def: Def } })._zod.def, type));
    expect(stripping).to.deep.equal([]);
    expect(strippingObjects({ type: 'object', shape: {} }, 'probe'), 'the walk recognises a stripping object').to.deep.equal(['probe']);
  });

  it('refuses what the protocol does not describe, naming why', () => {
    const refused = (payload: string) => {
      const result = parsePush(channel, payload);
      expect(result.ok, payload).to.equal(false);
      return result.ok ? '' : result.reason;
    };
    expect(refused('not json')).to.equal('payload is not JSON');
    expect(refused(JSON.stringify({ type: 'no_such_event', data: {} }))).to.include('type');
    expect(refused(JSON.stringify({ type: 'post_liked', data: { postId: 'p1', userId: 'u1' } }))).to.include('data.likesCount');
    expect(refused(JSON.stringify({ ...liked, ts: -1 }))).to.include('ts');
    expect(refused(JSON.stringify({ ...liked, offset: 1.5, epoch: 'e' }))).to.include('offset');
    expect(refused(JSON.stringify({ type: 'broadcast', data: { message: 'hi', level: 'info' } }))).to.include('not accepted on');
    expect(refused('[]')).to.not.equal('');
  });
});
