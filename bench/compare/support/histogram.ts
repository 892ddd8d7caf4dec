/**
 * Latency histogram, mergeable across processes: 10 µs buckets up to 100 ms, then 1 ms buckets
 * up to 120 s (beyond that, the last bucket). Percentiles are read at the bucket's upper edge.
 */
const FINE = 10_000; // 10 µs × 10,000 = 100 ms
const COARSE = 120_000;

export class Histogram {
  readonly buckets = new Uint32Array(FINE + COARSE);
  count = 0;
  max = 0;

  add(ms: number): void {
    const value = ms < 0 ? 0 : ms;
    const index = value < 100 ? Math.floor(value * 100) : Math.min(FINE + COARSE - 1, FINE + Math.floor(value - 100));
    this.buckets[index] = (this.buckets[index] ?? 0) + 1;
    this.count++;
    if (value > this.max) this.max = value;
  }

  /** Sparse [index, count] pairs, with [-1, max] first. */
  toJSON(): number[][] {
    const pairs: number[][] = [[-1, this.max]];
    this.buckets.forEach((count, index) => {
      if (count) pairs.push([index, count]);
    });
    return pairs;
  }

  merge(pairs: number[][]): void {
    for (const [index = 0, count = 0] of pairs) {
      if (index === -1) this.max = Math.max(this.max, count);
      else {
        this.buckets[index] = (this.buckets[index] ?? 0) + count;
        this.count += count;
      }
    }
  }

  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let index = 0; index < this.buckets.length; index++) {
      seen += this.buckets[index] ?? 0;
      if (seen >= rank) return Math.min(this.max, index < FINE ? (index + 1) / 100 : 100 + (index - FINE + 1));
    }
    return this.max;
  }
}
