import { expect } from 'chai';
import { closeCodeAction, parseClientFrame, publishedEventSchema } from '../../src/protocol/index.ts';

describe('protocol/messages', () => {
  describe('#parseClientFrame', () => {
    it('accepts the three client frames', () => {
      expect(parseClientFrame('{"type":"subscribe","channel":"post_1","id":1}')).to.deep.equal({ ok: true, frame: { type: 'subscribe', channel: 'post_1', id: 1 } });
      expect(parseClientFrame('{"type":"unsubscribe","channel":"post_1"}').ok).to.equal(true);
      expect(parseClientFrame('{"type":"ping","id":"a"}').ok).to.equal(true);
    });
    it('keeps the id of an invalid frame so the error can echo it', () => {
      expect(parseClientFrame('{"type":"subscribe","id":9}')).to.include({ ok: false, id: 9 });
    });
    it('explains what is wrong', () => {
      expect(parseClientFrame('nope')).to.deep.equal({ ok: false, message: 'frame is not valid JSON' });
      expect(parseClientFrame('null')).to.deep.equal({ ok: false, message: 'frame must be a JSON object' });
      expect((parseClientFrame('{"type":"x"}') as { message: string }).message).to.match(/unknown frame type/);
    });
  });

  describe('publishedEventSchema', () => {
    it('checks data against the event’s schema', () => {
      expect(publishedEventSchema.safeParse({ type: 'post_liked', data: { postId: 'p', userId: 'u', likesCount: 1 } }).success).to.equal(true);
      expect(publishedEventSchema.safeParse({ type: 'post_liked', data: { postId: 'p' } }).success).to.equal(false);
      expect(publishedEventSchema.safeParse({ type: 'bogus', data: {} }).success).to.equal(false);
    });
  });

  describe('#closeCodeAction', () => {
    it('tells clients to re-authenticate after 4001, stop after 1000, reconnect otherwise', () => {
      expect(closeCodeAction(4001)).to.equal('reauthenticate');
      expect(closeCodeAction(1000)).to.equal('stop');
      for (const code of [1001, 1006, 1011, 1013, 4029, 4030]) expect(closeCodeAction(code)).to.equal('reconnect');
    });
  });
});
