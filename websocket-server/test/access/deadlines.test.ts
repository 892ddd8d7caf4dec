import { expect } from 'chai';
import { Deadlines } from '../../src/access/deadlines.ts';

describe('Deadlines', () => {
  it('fires each deadline once, in time order, never before its time', async () => {
    const deadlines = new Deadlines();
    const fired: Array<{ name: string; lateMs: number }> = [];
    const start = Date.now();
    for (const [name, offset] of [['c', 90], ['a', 30], ['b', 60], ['d', 0]] as const) {
      const at = start + offset;
      deadlines.schedule(at, () => fired.push({ name, lateMs: Date.now() - at }));
    }
    expect(deadlines.size).to.equal(4);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(fired.map((f) => f.name)).to.deep.equal(['d', 'a', 'b', 'c']);
    for (const f of fired) expect(f.lateMs).to.be.at.least(0);
    expect(deadlines.size).to.equal(0);
  });

  it('does not fire cancelled deadlines, after many cancel-and-reschedule rounds too', async () => {
    const deadlines = new Deadlines();
    let fired = 0;
    const now = Date.now();
    // A refresh cancels and reschedules: 1,000 rounds for 10 sockets.
    const handles = Array.from({ length: 10 }, () => deadlines.schedule(now + 60_000, () => fired++));
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < handles.length; i++) {
        handles[i]!.cancel();
        handles[i] = deadlines.schedule(now + 60_000 + round, () => fired++);
      }
    }
    expect(deadlines.size).to.equal(10);
    let early = 0;
    deadlines.schedule(now + 20, () => early++);
    const cancelled = deadlines.schedule(now + 10, () => fired++);
    cancelled.cancel();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(early).to.equal(1);
    expect(fired).to.equal(0);
    deadlines.clear();
    expect(deadlines.size).to.equal(0);
  });

  it('keeps firing the others when one handler throws, and reports the error', async () => {
    const errors: unknown[] = [];
    const deadlines = new Deadlines({ onError: (error) => errors.push(error) });
    let ok = 0;
    const at = Date.now() + 5;
    deadlines.schedule(at, () => {
      throw new Error('boom');
    });
    deadlines.schedule(at, () => ok++);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(ok).to.equal(1);
    expect(errors).to.have.length(1);
  });
});
