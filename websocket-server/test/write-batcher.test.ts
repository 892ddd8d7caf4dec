import { expect } from 'chai';
import { WriteBatcher, type Flushable } from '../src/write-batcher.ts';

class Target implements Flushable {
  flushes = 0;
  terminated = 0;
  constructor(readonly failWith?: Error) {}
  flush(): void {
    this.flushes++;
    if (this.failWith) throw this.failWith;
  }
  terminate(): void {
    this.terminated++;
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WriteBatcher', () => {
  it('flushes each scheduled target once, on the next turn', async () => {
    const batcher = new WriteBatcher();
    const target = new Target();
    batcher.schedule(target);
    batcher.schedule(target);
    expect(target.flushes).to.equal(0);
    await nextTurn();
    expect(target.flushes).to.equal(1);
  });

  it('a flush that throws terminates that target, reports the error, and the rest of the batch is still flushed', async () => {
    const errors: unknown[] = [];
    const batcher = new WriteBatcher((error) => errors.push(error));
    const failure = new Error('write after end');
    const first = new Target();
    const thrower = new Target(failure);
    const last = new Target();
    for (const target of [first, thrower, last]) batcher.schedule(target);
    // What the scheduled turn runs, called here so that a throw would surface in this test.
    batcher.flushAll();

    expect([first.flushes, thrower.flushes, last.flushes]).to.deep.equal([1, 1, 1]);
    expect([first.terminated, thrower.terminated, last.terminated]).to.deep.equal([0, 1, 0]);
    expect(errors).to.deep.equal([failure]);

    // The batcher is not stuck: a later batch is scheduled and written as usual.
    batcher.schedule(first);
    await nextTurn();
    expect(first.flushes).to.equal(2);
  });

  it('a terminate that throws too does not stop the batch', () => {
    const batcher = new WriteBatcher(() => {});
    const thrower: Flushable = {
      flush: () => {
        throw new Error('flush');
      },
      terminate: () => {
        throw new Error('already gone');
      },
    };
    const last = new Target();
    batcher.schedule(thrower);
    batcher.schedule(last);
    batcher.flushAll();
    expect(last.flushes).to.equal(1);
  });
});
