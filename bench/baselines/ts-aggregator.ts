/**
 * A plain TypeScript implementation of Tickstream's bars and z-score detector: the baseline
 * the Rust engine (`native/core/src/bars`, `native/core/src/anomaly/zscore.rs`) is measured
 * against.
 *
 * Bars: per symbol (a `Map`), trades update tumbling 1m, 5m and 1h bars aligned to the epoch:
 * open and close are the prices of the first and last trade by event time, ties broken by
 * arrival; high, low, volume, notional (for the VWAP) and the trade count. As in Rust, a bar
 * closes when the symbol's latest trade time reaches its end + grace (default 2 s); a trade for
 * a closed bar still updates it and marks it revised; a bar created already past that point is
 * born closed (and revised). Each batch returns the bars it closed, like the Engine's `closed`.
 *
 * Detector: with r = ln(p / p_prev) in arrival order, once the window of the previous W returns
 * holds at least M, z = (r − mean) / std (sample std, n − 1); the trade is anomalous when
 * std > 0 and |z| ≥ T; then r joins the window. The window keeps running sums of (r − shift)
 * and (r − shift)², recomputed exactly every W updates with shift = the window mean — the Rust
 * detector's scheme, so both give the same z up to rounding.
 *
 * Sums: the Rust bars keep exact i128 fixed-point volume and notional. Plain TypeScript has two
 * honest choices, both available: `number` sums (default: the volume mantissa is exact while
 * it stays below 2^53, i.e. ~9 million units at scale 1e9; notional is a float in price × qty
 * units) or exact `bigint` sums (`exactSums: true`), at the cost of BigInt allocations per add.
 *
 * Work the Rust engine does and this baseline skips (so ratios against it are conservative):
 * retention and eviction of old bars, closing by wall clock, order flow, de-duplication by id
 * or offset, the list of touched symbols, state export; closed bars are returned as the live
 * objects rather than copies.
 */
import type { LiveInterval } from "../../src/contracts/bars";
import type { Trade } from "./ts-fix-parser";

/** A trade as the aggregator takes it: the parser's trade (mantissas at scale 1e9). */
export type AggTrade = Trade;

export type BarSpecName = LiveInterval;

/** Bar intervals, smallest first, with their widths in ms. */
export const BAR_SPECS: readonly { name: BarSpecName; widthMs: number }[] = [
  { name: "1m", widthMs: 60_000 },
  { name: "5m", widthMs: 300_000 },
  { name: "1h", widthMs: 3_600_000 },
];

const SCALE = 1e9;

/** One OHLCV bar of one symbol and interval. Prices are mantissas at scale 1e9. */
export interface Bar {
  symbol: string;
  spec: BarSpecName;
  /** Interval start, epoch ms (inclusive); the end is start + width (exclusive). */
  startMs: number;
  endMs: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** Key of the opening trade: event time (ms + ns within the ms), then arrival number. */
  openMs: number;
  openNs: number;
  openArrival: number;
  closeMs: number;
  closeNs: number;
  closeArrival: number;
  /** Σ qty mantissa (a float once beyond 2^53); 0 with `exactSums`. */
  volume: number;
  /** Σ price × qty in units (float); 0 with `exactSums`. */
  notional: number;
  /** Exact Σ qty mantissa (scale 1e9) with `exactSums`, else 0n. */
  volumeExact: bigint;
  /** Exact Σ price × qty mantissa (scale 1e18) with `exactSums`, else 0n. */
  notionalExact: bigint;
  trades: number;
  closed: boolean;
  /** A trade arrived after the bar closed. */
  revised: boolean;
}

/** Volume-weighted average price in units, or null without volume. */
export function vwap(bar: Bar): number | null {
  if (bar.volumeExact !== 0n) return Number(bar.notionalExact) / Number(bar.volumeExact) / SCALE;
  return bar.volume !== 0 ? bar.notional / (bar.volume / SCALE) : null;
}

/** An anomalous trade. Prices are in units. */
export interface Anomaly {
  symbol: string;
  timeMs: number;
  subMsNs: number;
  price: number;
  prevPrice: number;
  ret: number;
  zscore: number;
  mean: number;
  std: number;
}

export interface DetectorOptions {
  /** W: previous returns in the window (default 100). */
  window?: number;
  /** M: returns needed before a trade can be flagged (default 30). */
  minSamples?: number;
  /** T: |z| threshold (default 4). */
  threshold?: number;
}

export interface AggregatorOptions extends DetectorOptions {
  /** Exact bigint volume and notional (default false: number sums). */
  exactSums?: boolean;
  /** A bar closes once the symbol's latest trade time reaches end + grace (default 2000 ms). */
  graceMs?: number;
}

/** The statistics of an anomalous return. */
export interface ZScoreHit {
  prevPrice: number;
  ret: number;
  zscore: number;
  mean: number;
  std: number;
}

/** Rolling z-score of log returns over a window of the previous W returns. */
export class ZScoreDetector {
  private readonly window: number;
  private readonly minSamples: number;
  private readonly threshold: number;
  private readonly ring: Float64Array;
  /** Returns held (≤ W) and the index of the oldest once full. */
  private n = 0;
  private head = 0;
  private last = 0;
  private shift = 0;
  private sum = 0;
  private sumSq = 0;
  private sinceExact = 0;

  constructor(options: DetectorOptions = {}) {
    this.window = options.window ?? 100;
    this.minSamples = options.minSamples ?? 30;
    this.threshold = options.threshold ?? 4;
    if (
      this.window < 2 ||
      this.minSamples < 2 ||
      this.minSamples > this.window ||
      !(this.threshold > 0)
    ) {
      throw new Error("detector: need 2 ≤ minSamples ≤ window and threshold > 0");
    }
    this.ring = new Float64Array(this.window);
  }

  /** Mean and sample std of the window (null with fewer than 2 returns). */
  stats(): { n: number; mean: number; std: number } | null {
    if (this.n < 2) return null;
    const d = this.sum / this.n;
    const variance = Math.max((this.sumSq - this.sum * d) / (this.n - 1), 0);
    return { n: this.n, mean: this.shift + d, std: Math.sqrt(variance) };
  }

  /** Feeds the next price (any unit: only ratios matter); returns the hit if anomalous. */
  observe(price: number): ZScoreHit | null {
    if (!(price > 0)) return null;
    const prev = this.last;
    this.last = price;
    if (prev === 0) return null;
    const r = Math.log(price / prev);

    let hit: ZScoreHit | null = null;
    const n = this.n;
    if (n >= this.minSamples) {
      const d = this.sum / n;
      const variance = Math.max((this.sumSq - this.sum * d) / (n - 1), 0);
      if (variance > 0) {
        const mean = this.shift + d;
        const std = Math.sqrt(variance);
        const z = (r - mean) / std;
        if (Math.abs(z) >= this.threshold) hit = { prevPrice: prev, ret: r, zscore: z, mean, std };
      }
    }

    const y = r - this.shift;
    if (n < this.window) {
      this.ring[n] = r;
      this.n = n + 1;
    } else {
      const old = this.ring[this.head]! - this.shift;
      this.sum -= old;
      this.sumSq -= old * old;
      this.ring[this.head] = r;
      this.head = this.head + 1 === this.window ? 0 : this.head + 1;
    }
    this.sum += y;
    this.sumSq += y * y;
    if (++this.sinceExact >= this.window) this.recompute();
    return hit;
  }

  /** Exact two-pass sums around the window mean; bounds drift and cancellation. */
  private recompute(): void {
    const n = this.n;
    let total = 0;
    for (let i = 0; i < n; i++) total += this.ring[i]!;
    const shift = total / n;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const y = this.ring[i]! - shift;
      s += y;
      s2 += y * y;
    }
    this.shift = shift;
    this.sum = s;
    this.sumSq = s2;
    this.sinceExact = 0;
  }
}

/** Per-symbol state. */
interface SymbolState {
  /** Per interval: every bar by start. */
  bars: Map<number, Bar>[];
  /** Per interval: the newest bar, where most trades land. */
  newest: (Bar | null)[];
  /** Per interval: bars not yet closed (a handful at most). */
  open: Bar[][];
  /** Latest trade time, epoch ms. */
  latestMs: number;
  detector: ZScoreDetector;
}

/** Result of {@link TsAggregator.applyBatch}. */
export interface ApplyResult {
  applied: number;
  /** Trades that changed an already closed bar. */
  revised: number;
  anomalies: Anomaly[];
  /** Bars closed by this batch (or born closed). */
  closed: Bar[];
}

/** Bars and anomaly detection for many symbols, fed trades in arrival order. */
export class TsAggregator {
  private readonly symbols = new Map<string, SymbolState>();
  private readonly options: AggregatorOptions;
  private readonly exact: boolean;
  private readonly graceMs: number;
  private arrivals = 0;
  private revised = 0;
  private closed: Bar[] = [];

  constructor(options: AggregatorOptions = {}) {
    this.options = options;
    this.exact = options.exactSums ?? false;
    this.graceMs = options.graceMs ?? 2000;
  }

  /** Applies trades in order. */
  applyBatch(trades: readonly AggTrade[]): ApplyResult {
    const anomalies: Anomaly[] = [];
    this.closed = [];
    this.revised = 0;
    for (const t of trades) {
      const a = this.add(t);
      if (a !== null) anomalies.push(a);
    }
    return { applied: trades.length, revised: this.revised, anomalies, closed: this.closed };
  }

  /** Applies one trade; returns its anomaly, if any. Closed bars collect until the next batch. */
  add(t: AggTrade): Anomaly | null {
    let state = this.symbols.get(t.symbol);
    if (state === undefined) {
      state = {
        bars: BAR_SPECS.map(() => new Map<number, Bar>()),
        newest: BAR_SPECS.map(() => null),
        open: BAR_SPECS.map(() => []),
        latestMs: -Infinity,
        detector: new ZScoreDetector(this.options),
      };
      this.symbols.set(t.symbol, state);
    }
    const arrival = this.arrivals++;
    const horizonMs = state.latestMs - this.graceMs;
    for (let i = 0; i < BAR_SPECS.length; i++) this.addToBar(state, i, t, arrival, horizonMs);
    if (t.timeMs > state.latestMs) {
      state.latestMs = t.timeMs;
      this.closeThrough(state, t.timeMs - this.graceMs);
    }

    const hit = state.detector.observe(t.price);
    if (hit === null) return null;
    return {
      symbol: t.symbol,
      timeMs: t.timeMs,
      subMsNs: t.subMsNs,
      price: t.price / SCALE,
      prevPrice: hit.prevPrice / SCALE,
      ret: hit.ret,
      zscore: hit.zscore,
      mean: hit.mean,
      std: hit.std,
    };
  }

  private addToBar(
    state: SymbolState,
    specIndex: number,
    t: AggTrade,
    arrival: number,
    horizonMs: number,
  ): void {
    const { name, widthMs } = BAR_SPECS[specIndex]!;
    const newest = state.newest[specIndex] ?? null;
    let bar = newest;
    if (bar === null || t.timeMs < bar.startMs || t.timeMs >= bar.endMs) {
      const startMs = Math.floor(t.timeMs / widthMs) * widthMs;
      const map = state.bars[specIndex]!;
      bar = map.get(startMs) ?? null;
      if (bar === null) {
        bar = newBar(t.symbol, name, startMs, startMs + widthMs, t, arrival);
        map.set(startMs, bar);
        if (newest === null || startMs > newest.startMs) state.newest[specIndex] = bar;
        if (bar.endMs <= horizonMs) {
          // Born closed: the update below marks it revised, as in Rust.
          bar.closed = true;
          this.closed.push(bar);
        } else {
          state.open[specIndex]!.push(bar);
        }
      }
    }
    if (bar.closed) {
      bar.revised = true;
      this.revised++;
    }
    this.addTrade(bar, t, arrival);
  }

  /** Closes the open bars whose end is at or before the horizon. */
  private closeThrough(state: SymbolState, horizonMs: number): void {
    for (const open of state.open) {
      for (let i = 0; i < open.length;) {
        const bar = open[i]!;
        if (bar.endMs <= horizonMs) {
          bar.closed = true;
          this.closed.push(bar);
          open.splice(i, 1);
        } else {
          i++;
        }
      }
    }
  }

  private addTrade(bar: Bar, t: AggTrade, arrival: number): void {
    const price = t.price;
    if (bar.trades === 0) {
      bar.open = bar.high = bar.low = bar.close = price;
    } else {
      if (price > bar.high) bar.high = price;
      if (price < bar.low) bar.low = price;
      // Most trades arrive in time order, so test the close first.
      if (after(t.timeMs, t.subMsNs, arrival, bar.closeMs, bar.closeNs, bar.closeArrival)) {
        bar.close = price;
        bar.closeMs = t.timeMs;
        bar.closeNs = t.subMsNs;
        bar.closeArrival = arrival;
      } else if (after(bar.openMs, bar.openNs, bar.openArrival, t.timeMs, t.subMsNs, arrival)) {
        bar.open = price;
        bar.openMs = t.timeMs;
        bar.openNs = t.subMsNs;
        bar.openArrival = arrival;
      }
    }
    if (this.exact) {
      bar.volumeExact += BigInt(t.qty);
      bar.notionalExact += BigInt(price) * BigInt(t.qty);
    } else {
      bar.volume += t.qty;
      bar.notional += (price / SCALE) * (t.qty / SCALE);
    }
    bar.trades++;
  }

  /** The bars of a symbol and interval, oldest first. */
  bars(symbol: string, spec: BarSpecName): Bar[] {
    const index = BAR_SPECS.findIndex((s) => s.name === spec);
    const map = this.symbols.get(symbol)?.bars[index];
    return map === undefined ? [] : [...map.values()].sort((a, b) => a.startMs - b.startMs);
  }

  /** Number of symbols seen. */
  get symbolCount(): number {
    return this.symbols.size;
  }
}

/** An empty bar keyed by its first trade (which `addTrade` then adds). */
function newBar(
  symbol: string,
  spec: BarSpecName,
  startMs: number,
  endMs: number,
  t: AggTrade,
  arrival: number,
): Bar {
  return {
    symbol,
    spec,
    startMs,
    endMs,
    open: 0,
    high: 0,
    low: 0,
    close: 0,
    openMs: t.timeMs,
    openNs: t.subMsNs,
    openArrival: arrival,
    closeMs: t.timeMs,
    closeNs: t.subMsNs,
    closeArrival: arrival,
    volume: 0,
    notional: 0,
    volumeExact: 0n,
    notionalExact: 0n,
    trades: 0,
    closed: false,
    revised: false,
  };
}

/** Whether key (ms, ns, arrival) a comes after key b. */
function after(
  aMs: number,
  aNs: number,
  aArrival: number,
  bMs: number,
  bNs: number,
  bArrival: number,
): boolean {
  if (aMs !== bMs) return aMs > bMs;
  if (aNs !== bNs) return aNs > bNs;
  return aArrival > bArrival;
}
