import { expect } from 'chai';
import { MemoryBroker } from '../src/broker/memory.ts';
import { Hub, type HubMember } from '../src/hub.ts';
import { createLogger } from '../src/logger.ts';

class RecordingBroker extends MemoryBroker {
  readonly calls: string[] = [];
  override async subscribe(channel: string) {
    this.calls.push(`+${channel}`);
    return super.subscribe(channel);
  }
  override async unsubscribe(channel: string) {
    this.calls.push(`-${channel}`);
    return super.unsubscribe(channel);
  }
}

const member = (id: string) => {
  const frames: Buffer[] = [];
  const m: HubMember & { frames: Buffer[]; closed: boolean } = { id, closed: false, frames, enqueue: (f) => frames.push(f) };
  return m;
};

describe('Hub', () => {
  let broker: RecordingBroker;
  let hub: Hub;
  const counts = { joined: 0, left: 0 };

  beforeEach(() => {
    broker = new RecordingBroker();
    counts.joined = counts.left = 0;
    hub = new Hub(broker, createLogger({ level: 'error', format: 'json' }), {
      joined: () => counts.joined++,
      left: () => counts.left++,
    });
  });

  describe('#join', () => {
    it('subscribes the broker once per channel, for concurrent joins too', async () => {
      const [a, b] = [member('a'), member('b')];
      await Promise.all([hub.join(a, 'post_1', 'post'), hub.join(b, 'post_1', 'post')]);
      expect(broker.calls).to.deep.equal(['+post_1']);
      expect(hub.subscriptionCount).to.equal(2);
      expect(hub.channelCount).to.equal(1);
    });
    it('does not add a member that closed while the broker subscribed, and releases the channel', async () => {
      const a = member('a');
      const joining = hub.join(a, 'post_1', 'post');
      a.closed = true;
      expect(await joining).to.equal(false);
      expect(hub.has('post_1')).to.equal(false);
      expect(broker.calls).to.deep.equal(['+post_1', '-post_1']);
    });
  });

  describe('#leave / #leaveAll', () => {
    it('unsubscribes the broker when the last member leaves', async () => {
      const [a, b] = [member('a'), member('b')];
      await hub.join(a, 'post_1', 'post');
      await hub.join(b, 'post_1', 'post');
      hub.leave(a, 'post_1');
      expect(broker.calls).to.deep.equal(['+post_1']);
      hub.leave(b, 'post_1');
      expect(broker.calls).to.deep.equal(['+post_1', '-post_1']);
      expect(hub.leave(b, 'post_1')).to.equal(false);
    });
    it('removes a member from every channel in one call', async () => {
      const a = member('a');
      await hub.join(a, 'post_1', 'post');
      await hub.join(a, 'feed_1', 'feed');
      hub.leaveAll(a);
      expect(hub.channelCount).to.equal(0);
      expect(counts).to.deep.equal({ joined: 2, left: 2 });
    });
  });

  describe('#deliver', () => {
    it('hands the same Buffer to every member of exactly that channel', async () => {
      const [a, b, c] = [member('a'), member('b'), member('c')];
      await hub.join(a, 'post_1', 'post');
      await hub.join(b, 'post_1', 'post');
      await hub.join(c, 'post_12', 'post');
      const frame = Buffer.from('{}');
      expect(hub.deliver('post_1', frame)).to.equal(2);
      expect(a.frames[0]).to.equal(frame);
      expect(b.frames[0]).to.equal(frame);
      expect(c.frames).to.be.empty;
    });
  });
});
