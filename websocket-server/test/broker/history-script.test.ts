import { expect } from 'chai';
import { newEpoch } from '../../src/broker/history-script.ts';

describe('newEpoch', () => {
  it('gives 8 base64url characters, never the same twice, across several refills of its random pool', () => {
    // 4 KiB pool, 6 bytes an epoch: 2,000 epochs draw the pool three times.
    const epochs = Array.from({ length: 2_000 }, () => newEpoch());
    for (const epoch of epochs) expect(epoch).to.match(/^[A-Za-z0-9_-]{8}$/);
    expect(new Set(epochs).size).to.equal(epochs.length);
  });
});
