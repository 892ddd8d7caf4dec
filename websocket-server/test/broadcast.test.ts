/**
 * Broadcaster (src/broadcast.ts) on its own, with a clock the test moves: the retention window
 * of the latest broadcast, replacement by a newer one, closed targets skipped, invalid payloads
 * counted. The server-level behaviour (every node, every socket) is test/server/broadcast.test.ts.
 */
import { expect } from 'chai';
import { Broadcaster, type BroadcastTarget } from '../src/broadcast.ts';
import { createLogger } from '../src/logger.ts';
import { Metrics } from '../src/metrics.ts';

class Target implements BroadcastTarget {
  readonly frames: string[] = [];
  constructor(public closed = false) {}
  sendWire(frame: Buffer): void {
    // A server text frame of < 126 bytes has a 2-byte header; longer ones 4 bytes.
    const header = (frame[1]! & 0x7f) === 126 ? 4 : 2;
    this.frames.push(frame.subarray(header).toString());
  }
  messages(): string[] {
    return this.frames.map((f) => (JSON.parse(f) as { data: { message: string } }).data.message);
  }
}

/** One labelled value of a counter in this Metrics instance's own registry (0 if never counted). */
async function metricValueOf(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want));
  return found?.value ?? 0;
}

const payload = (message: string, id?: string) => JSON.stringify({ type: 'broadcast', data: { message, level: 'info' }, ...(id ? { id } : {}) });

describe('Broadcaster', () => {
  let now: number;
  let metrics: Metrics;
  const logger = createLogger({ level: 'error', format: 'json', nodeId: 'test' });

  beforeEach(() => {
    now = 1_000_000;
    metrics = new Metrics({ collectProcessMetrics: false });
  });

  it('writes one frame to every open target and skips closed ones', async () => {
    const targets = [new Target(), new Target(true), new Target()];
    new Broadcaster(() => targets, metrics, logger, { retainMs: 0, now: () => now }).handle(payload('hello', 'b1'));
    expect(targets.map((t) => t.messages())).to.deep.equal([['hello'], [], ['hello']]);
    expect(JSON.parse(targets[0]!.frames[0]!)).to.deep.include({ type: 'broadcast', channel: 'broadcast', id: 'b1' });
    expect(await metricValueOf(metrics, 'ws_broadcast_deliveries_total', { when: 'live' })).to.equal(2);
  });

  it('sends the latest broadcast at connect until retainMs has passed, then nothing', () => {
    const broadcaster = new Broadcaster(() => [], metrics, logger, { retainMs: 10_000, now: () => now });
    broadcaster.handle(payload('old', 'b1'));
    broadcaster.handle(payload('new', 'b2'));
    now += 9_999;
    const early = new Target();
    broadcaster.welcome(early);
    expect(early.messages()).to.deep.equal(['new']);
    now += 1;
    const late = new Target();
    broadcaster.welcome(late);
    expect(late.frames).to.deep.equal([]);
  });

  it('keeps nothing with retainMs 0, and counts and drops invalid payloads without replacing the kept one', async () => {
    const none = new Broadcaster(() => [], metrics, logger, { retainMs: 0, now: () => now });
    none.handle(payload('x'));
    const target = new Target();
    none.welcome(target);
    expect(target.frames).to.deep.equal([]);

    const kept = new Broadcaster(() => [], metrics, logger, { retainMs: 60_000, now: () => now });
    kept.handle(payload('good'));
    kept.handle('not json');
    kept.handle(JSON.stringify({ type: 'broadcast', data: { message: 'x', level: 'loud' } }));
    kept.handle(JSON.stringify({ type: 'post_liked', data: { postId: 'p', userId: 'u', likesCount: 1 } }));
    const joiner = new Target();
    kept.welcome(joiner);
    expect(joiner.messages()).to.deep.equal(['good']);
    expect(await metricValueOf(metrics, 'ws_broadcasts_total', { outcome: 'invalid' })).to.equal(3);
  });
});
