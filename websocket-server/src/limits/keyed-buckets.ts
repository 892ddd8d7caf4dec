/**
 * One token bucket per key (a client address, a user id), with bounded memory: a bucket that has
 * refilled completely carries no information and is forgotten when the map grows past
 * `maxKeys`. If every bucket is still in use at that size, the new key is refused (`take`
 * answers false) rather than letting a flood of distinct keys grow the map without bound.
 */
import { TokenBucket } from './token-bucket.ts';

export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxKeys: number;

  constructor(ratePerSecond: number, burst: number, maxKeys = 50_000) {
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#maxKeys = maxKeys;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `key`; false when its bucket is empty (or no room for a new key). */
  take(key: string): boolean {
    return this.#bucket(key)?.take() ?? false;
  }

  /** How long `key` must wait for its next token (ms). */
  retryAfterMs(key: string): number {
    return this.#buckets.get(key)?.retryAfterMs() ?? Math.ceil(1000 / this.#rate);
  }

  #bucket(key: string): TokenBucket | undefined {
    let bucket = this.#buckets.get(key);
    if (bucket) return bucket;
    if (this.#buckets.size >= this.#maxKeys) {
      for (const [other, candidate] of this.#buckets) if (candidate.full) this.#buckets.delete(other);
      if (this.#buckets.size >= this.#maxKeys) return undefined;
    }
    bucket = new TokenBucket(this.#rate, this.#burst);
    this.#buckets.set(key, bucket);
    return bucket;
  }
}
