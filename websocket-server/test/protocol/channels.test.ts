import { expect } from 'chai';
import { channelName, parseChannel } from '../../src/protocol/index.ts';

describe('protocol/channels', () => {
  describe('#parseChannel', () => {
    it('parses each kind', () => {
      for (const kind of ['notifications', 'feed', 'creator', 'post'] as const) {
        expect(parseChannel(`${kind}_ck123`)).to.deep.equal({ ok: true, channel: { name: `${kind}_ck123`, kind, id: 'ck123' } });
      }
    });
    it('refuses unknown kinds and malformed names', () => {
      expect(parseChannel('chat_1')).to.deep.equal({ ok: false, reason: 'unknown_kind' });
      for (const bad of ['post_', 'post', '_1', 'post_a_b', 'post_a.b', 'POST_1', 'post_' + 'a'.repeat(65), 'post_1 ', 'post_../1']) {
        expect(parseChannel(bad).ok, bad).to.equal(false);
      }
    });
  });
  it('builders produce names the parser accepts', () => {
    expect(parseChannel(channelName.post('42')).ok).to.equal(true);
    expect(channelName.notifications('u1')).to.equal('notifications_u1');
  });
});
