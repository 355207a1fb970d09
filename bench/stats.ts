/**
 * The arithmetic of the Kafka sections, kept pure so that `test/bench/stats.test.ts` can check it
 * against hand-computed values: percentiles of exact latency samples, consumption rates and CPU
 * shares from timestamps, and which stream event first delivered each trade.
 */

/**
 * The p-th percentile (0 < p ≤ 100) of ascending `sorted` by the nearest-rank method: the
 * smallest sample with at least p % of the samples at or below it. No interpolation, so the
 * answer is always a latency that was actually observed.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) throw new Error("percentile of no samples");
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], not ${p}`);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)]!;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** p50/p95/p99, max and mean of latency samples (ms); null when there are none. */
export function summarize(samples: ArrayLike<number>): LatencySummary | null {
  if (samples.length === 0) return null;
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    count: sorted.length,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1]!,
    meanMs: sum / sorted.length,
  };
}

/** A growable Float64Array: many samples, no per-sample objects. */
export class SampleBuffer {
  private buf = new Float64Array(1 << 16);
  private n = 0;

  push(x: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = x;
  }

  /** A copy of the samples so far. */
  take(): Float64Array {
    return this.buf.slice(0, this.n);
  }
}

/** CPU time of a process in microseconds, as `process.cpuUsage()` gives it. */
export interface CpuTime {
  user: number;
  system: number;
}

/**
 * What a consumer process saw between the arrival of its first batch and the moment its last
 * record was handled (counting, or applied to bars), with its CPU time at both instants.
 */
export interface ConsumptionWindow {
  records: number;
  firstAt: number;
  lastAt: number;
  cpuFirst: CpuTime;
  cpuLast: CpuTime;
}

export interface ConsumptionRate {
  records: number;
  seconds: number;
  perSec: number;
  /** User + system CPU over the window, seconds. */
  cpuSec: number;
  /** CPU over the window as a share of one core, % (above 100 when threads run in parallel). */
  cpuPct: number;
  /** CPU microseconds per record. */
  cpuUsPerRecord: number;
}

/**
 * Records per second over the consumption window (process start-up, group join and the wait for
 * the first fetch are outside it), and the CPU the process used meanwhile. Several processes
 * sharing the work (two nodes) are one window from the earliest first batch to the latest last
 * record, with their CPU times added.
 */
export function consumptionRate(windows: readonly ConsumptionWindow[]): ConsumptionRate {
  if (windows.length === 0) throw new Error("no consumption window");
  let records = 0;
  let firstAt = Infinity;
  let lastAt = -Infinity;
  let cpuUs = 0;
  for (const w of windows) {
    if (w.lastAt < w.firstAt) throw new Error("a consumption window ends before it starts");
    records += w.records;
    firstAt = Math.min(firstAt, w.firstAt);
    lastAt = Math.max(lastAt, w.lastAt);
    cpuUs += w.cpuLast.user - w.cpuFirst.user + (w.cpuLast.system - w.cpuFirst.system);
  }
  const seconds = (lastAt - firstAt) / 1000;
  if (!(seconds > 0)) throw new Error("the consumption took no measurable time");
  return {
    records,
    seconds,
    perSec: records / seconds,
    cpuSec: cpuUs / 1e6,
    cpuPct: cpuUs / 1e4 / seconds,
    cpuUsPerRecord: records > 0 ? cpuUs / records : 0,
  };
}

/** A trade the latency run produced, as the stream client will see its bar. */
export interface ProducedTrade {
  symbol: string;
  /** Start of the trade's 1m bar (event time), epoch ms. */
  barStartMs: number;
  producedAtMs: number;
}

/** A `bar` or `closed` stream event as received: the bar's trade count at that moment. */
export interface ReceivedBar {
  symbol: string;
  barStartMs: number;
  trades: number;
  receivedAtMs: number;
}

export interface StreamDelivery {
  /** Produce → first stream event showing the trade, ms, one per delivered trade. */
  latencies: Float64Array;
  undelivered: number;
}

/**
 * Which stream event first showed each trade. A symbol's trades reach its bars in produce order
 * (one partition per symbol), so the k-th trade of a bar is in every event of that bar with a
 * trade count of at least k; it was delivered by the first such event. Forming updates are
 * coalesced, so one event may deliver many trades; a trade whose bar was never shown again is
 * `undelivered`.
 *
 * `trades` in produce order (all of them: they set each trade's rank in its bar); `events` in
 * arrival order. Only trades produced at or after `fromMs` are measured (the warm-up is not).
 */
export function streamDeliveries(
  trades: readonly ProducedTrade[],
  events: readonly ReceivedBar[],
  fromMs = -Infinity,
): StreamDelivery {
  // Per symbol and bar: arrival times of the events, and the running maximum of their counts.
  const shown = new Map<string, { counts: number[]; at: number[] }>();
  for (const e of events) {
    const key = `${e.symbol}\u0000${e.barStartMs}`;
    let s = shown.get(key);
    if (!s) shown.set(key, (s = { counts: [], at: [] }));
    const best = s.counts.length > 0 ? s.counts[s.counts.length - 1]! : 0;
    if (e.trades > best) {
      s.counts.push(e.trades);
      s.at.push(e.receivedAtMs);
    }
  }
  const rank = new Map<string, number>();
  const latencies: number[] = [];
  let undelivered = 0;
  for (const t of trades) {
    const key = `${t.symbol}\u0000${t.barStartMs}`;
    const k = (rank.get(key) ?? 0) + 1;
    rank.set(key, k);
    if (t.producedAtMs < fromMs) continue;
    const s = shown.get(key);
    const i = s ? lowerBound(s.counts, k) : -1;
    if (!s || i >= s.counts.length) undelivered += 1;
    else latencies.push(s.at[i]! - t.producedAtMs);
  }
  return { latencies: Float64Array.from(latencies), undelivered };
}

/** The first index of ascending `a` whose value is ≥ x (a.length when none). */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
