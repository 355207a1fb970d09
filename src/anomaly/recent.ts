/**
 * The most recent anomalies of a node, bounded: a ring that overwrites the oldest entry once
 * full, so memory stays flat however noisy the market gets.
 */
import type { AnomalyQuery, AnomalyRecord } from "../contracts/anomalies";

export class RecentAnomalies {
  private readonly ring: (AnomalyRecord | undefined)[];
  private next = 0;
  private count = 0;
  private total = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.ring = new Array<AnomalyRecord | undefined>(capacity);
  }

  /** Anomalies ever added (including those since overwritten). */
  get added(): number {
    return this.total;
  }

  get size(): number {
    return this.count;
  }

  add(a: AnomalyRecord): void {
    this.ring[this.next] = a;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
    this.total += 1;
  }

  /** Marks the anomalies raised by a cancelled trade; returns how many. */
  cancel(symbol: string, tradeKey: string): number {
    let marked = 0;
    for (const a of this.ring) {
      if (a?.symbol === symbol && a.tradeKey === tradeKey && !a.cancelled) {
        a.cancelled = true;
        marked += 1;
      }
    }
    return marked;
  }

  /** Newest first (by arrival), filtered by symbol and event time, at most `limit`. */
  list(q: AnomalyQuery): AnomalyRecord[] {
    const out: AnomalyRecord[] = [];
    for (let k = 1; k <= this.count && out.length < q.limit; k++) {
      const a = this.ring[(this.next - k + this.capacity) % this.capacity];
      if (!a) continue;
      if (q.symbol !== undefined && a.symbol !== q.symbol) continue;
      if (q.sinceMs !== undefined && a.timeMs < q.sinceMs) continue;
      out.push(a);
    }
    return out;
  }
}
