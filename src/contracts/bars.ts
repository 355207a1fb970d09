/**
 * Bars as Tickstream answers them: REST, the stream, the REPL, the dashboard and the benchmarks all
 * read these shapes; `services/api/openapi.ts` describes them. Type-only but for the interval list,
 * and free of Node imports: the dashboard bundle includes this file.
 */

/** The intervals the Rust core can keep live (`BAR_INTERVALS` picks among them), finest first. */
export const LIVE_INTERVALS = ["1m", "5m", "1h"] as const;
export type LiveInterval = (typeof LIVE_INTERVALS)[number];
export const LIVE_MS: Record<LiveInterval, number> = {
  "1m": 60_000,
  "5m": 300_000,
  "1h": 3_600_000,
};

/** A time bar (times in UTC). Versions of one bar order by (generation, revision). */
export interface BarJson {
  start: string;
  startMs: number;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  volume: number;
  vwap: number | null;
  trades: number;
  closed: boolean;
  revised: boolean;
  orders: { count: number; buyQty: number; sellQty: number };
  /** Custody epoch of the state the bar came from. */
  generation: number;
  /** Changes (trades, orders, cancels, corrections) applied to the bar within its state. */
  revision: number;
}

/** A bar of any interval, rolled up from live bars (or filled). */
export interface RolledBar extends BarJson {
  /** End of the interval (exclusive): a local day may be 23 or 25 hours long. */
  endMs: number;
  /** True for an interval without trades answered by `fill=prev`. */
  filled: boolean;
}

/** A tick or volume bar: it spans its first to its last trade. */
export interface ActivityBarJson {
  /** Bar number within the symbol's state (0 for its first bar of the spec). */
  number: number;
  /** Event time of its first trade. */
  start: string;
  startMs: number;
  /** Event time of its last trade. */
  endMs: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  vwap: number | null;
  trades: number;
  closed: boolean;
}

/** A bar with its symbol and interval, as `bars.updated` and `bars.closed` (and the stream) carry it. */
export interface SymbolBarJson {
  symbol: string;
  interval: string;
  bar: BarJson;
}

/**
 * `stream.demand`: a gateway node has stream clients (`listening`) or no longer has. Aggregators
 * publish forming bars (`bars.updated`) only while some node listens.
 */
export const STREAM_DEMAND = "stream.demand";
export interface StreamDemand {
  nodeID: string;
  listening: boolean;
}

/** Key of a bar on the bars topic: every version of one bar lands in one partition, in order. */
export const barRecordKey = (symbol: string, interval: string, startMs: number): string =>
  `${symbol}/${interval}/${startMs}`;

/** Value of a bar on the bars topic: the bar as REST shows it, with its symbol, interval and version. */
export interface BarRecord extends BarJson {
  symbol: string;
  interval: string;
  /** (generation, revision): versions of one bar order by it; a consumer keeps the highest. */
  version: [number, number];
}

export function barRecord(symbol: string, interval: string, bar: BarJson): BarRecord {
  return { ...bar, symbol, interval, version: [bar.generation, bar.revision] };
}
