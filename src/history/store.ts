/**
 * The history store: closed bars kept beyond the engine's in-memory retention, so that REST can
 * serve older bars. One small interface, one file per implementation (`sqlite.ts`, `postgres.ts`),
 * and `index.ts` to pick one from the configuration.
 *
 * Values are stored exactly: prices and quantities as the decimal text of the numbers REST shows
 * (`String(n)` is what `JSON.stringify` writes), in TEXT (SQLite) or NUMERIC (PostgreSQL) columns,
 * never in a float column. Reading one back with `Number` gives the identical number.
 */
import path from "node:path";
import type { LiveInterval } from "../contracts/bars";
import type { Binding } from "../native";

/** A closed bar as history keeps it. */
export interface StoredBar {
  symbol: string;
  interval: LiveInterval;
  startMs: number;
  /** Null when the bar holds orders but no trade. */
  open: string | null;
  high: string | null;
  low: string | null;
  close: string | null;
  volume: string;
  /**
   * Σ quantity and Σ price × quantity as exact decimal text, what roll-ups to other intervals sum;
   * null in rows written before they were kept (a roll-up then uses `volume` and `vwap` × `volume`).
   */
  volumeExact: string | null;
  notional: string | null;
  vwap: string | null;
  trades: number;
  revised: boolean;
  orderCount: number;
  buyQty: string;
  sellQty: string;
  /** Custody epoch of the state the bar came from. */
  generation: number;
  /** Changes applied to the bar within that state. Versions order by (generation, revision). */
  revision: number;
}

export interface HistoryStore {
  /** Where the bars go, without credentials (for logs). */
  readonly name: string;
  /**
   * Upserts bars keyed by (symbol, interval, start) within the store's namespace. A stored bar is
   * replaced only by a higher version, (generation, revision) compared in that order (README, "Bar
   * versions"): writing the same version again changes nothing, a revision (a late trade, a cancel,
   * a correction) overwrites even when it holds fewer trades, a bar rebuilt from part of its
   * changes (a replay that began inside it) never clobbers the whole one, and a superseded owner's
   * bar (an older generation) never replaces the current owner's. One transaction per call.
   */
  writeBars(bars: readonly StoredBar[]): Promise<void>;
  /** Bars whose start lies in [fromMs, toMs), the newest `limit` of them, oldest first. */
  readBars(
    symbol: string,
    interval: LiveInterval,
    fromMs: number | undefined,
    toMs: number | undefined,
    limit: number,
  ): Promise<StoredBar[]>;
  close(): Promise<void>;
}

/** The decimal text of a number as JSON shows it. */
export function decimal(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite number: ${n}`);
  return String(n);
}

const optionalDecimal = (n: number | undefined | null): string | null =>
  n === undefined || n === null ? null : decimal(n);

/** A closed bar of the engine as history keeps it. */
export function storedBar(symbol: string, interval: LiveInterval, bar: Binding.Bar): StoredBar {
  return {
    symbol,
    interval,
    startMs: bar.startMs,
    open: optionalDecimal(bar.open),
    high: optionalDecimal(bar.high),
    low: optionalDecimal(bar.low),
    close: optionalDecimal(bar.close),
    volume: decimal(bar.volume),
    volumeExact: bar.volumeExact,
    notional: bar.notional,
    vwap: optionalDecimal(bar.vwap),
    trades: bar.trades,
    revised: bar.revised,
    orderCount: bar.orderCount,
    buyQty: decimal(bar.buyQty),
    sellQty: decimal(bar.sellQty),
    generation: bar.generation,
    revision: bar.revision,
  };
}

/** The key history upserts on. */
export const barKey = (b: Pick<StoredBar, "symbol" | "interval" | "startMs">): string =>
  `${b.symbol}\u0000${b.interval}\u0000${b.startMs}`;

/** A bar's version: (generation, revision), compared in that order. */
export interface Versioned {
  generation: number;
  revision: number;
}

/** Whether version `a` of a bar is later than version `b`. */
export function newer(a: Versioned, b: Versioned): boolean {
  return a.generation > b.generation || (a.generation === b.generation && a.revision > b.revision);
}

/** Keeps, per key, the latest version (the later one given when equal): one row per key. */
export function latestByKey(bars: readonly StoredBar[]): StoredBar[] {
  const byKey = new Map<string, StoredBar>();
  for (const b of bars) {
    const key = barKey(b);
    const held = byKey.get(key);
    if (held === undefined || !newer(held, b)) byKey.set(key, b);
  }
  return [...byKey.values()];
}

/** `path` with `-<namespace>` before its extension: one SQLite file per namespace. */
export function namespacedPath(file: string, namespace: string): string {
  const suffix = namespace.replace(/[^-\w]/g, "_");
  if (suffix === "" || file === ":memory:") return file;
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}-${suffix}${ext}`;
}

/** Range bounds as the integers the stores compare with (fractions round inwards). */
export function rangeBounds(
  fromMs: number | undefined,
  toMs: number | undefined,
): { from: number; to: number } {
  const max = Number.MAX_SAFE_INTEGER;
  const bound = (v: number | undefined, fallback: number) =>
    v === undefined || Number.isNaN(v) ? fallback : Math.max(-max, Math.min(max, Math.ceil(v)));
  return { from: bound(fromMs, -max), to: bound(toMs, max) };
}

/** The columns both stores keep a bar in (after PostgreSQL's namespace), in `barValues` order. */
export const BAR_COLUMNS = [
  "symbol",
  '"interval"',
  "start_ms",
  "open",
  "high",
  "low",
  "close",
  "volume",
  "volume_exact",
  "notional",
  "vwap",
  "trades",
  "revised",
  "order_count",
  "buy_qty",
  "sell_qty",
  "generation",
  "revision",
] as const;

/** A bar's values in `BAR_COLUMNS` order. */
export function barValues(b: StoredBar): (string | number | boolean | null)[] {
  return [
    b.symbol,
    b.interval,
    b.startMs,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.volumeExact,
    b.notional,
    b.vwap,
    b.trades,
    b.revised,
    b.orderCount,
    b.buyQty,
    b.sellQty,
    b.generation,
    b.revision,
  ];
}

/** A row as either store reads it back: PostgreSQL returns bigints as text, SQLite booleans as 0/1. */
export interface BarRow {
  symbol: string;
  interval: string;
  start_ms: number | string;
  open: string | null;
  high: string | null;
  low: string | null;
  close: string | null;
  volume: string;
  volume_exact: string | null;
  notional: string | null;
  vwap: string | null;
  trades: number | string;
  revised: boolean | number;
  order_count: number | string;
  buy_qty: string;
  sell_qty: string;
  generation: number | string;
  revision: number | string;
}

export function fromRow(r: BarRow): StoredBar {
  return {
    symbol: r.symbol,
    interval: r.interval as LiveInterval,
    startMs: Number(r.start_ms),
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
    volumeExact: r.volume_exact,
    notional: r.notional,
    vwap: r.vwap,
    trades: Number(r.trades),
    revised: r.revised === true || r.revised === 1,
    orderCount: Number(r.order_count),
    buyQty: r.buy_qty,
    sellQty: r.sell_qty,
    generation: Number(r.generation),
    revision: Number(r.revision),
  };
}
