import {
  LIVE_INTERVALS,
  type ActivityBarJson,
  type BarJson,
  type SymbolBarJson,
} from "../../src/contracts/bars";
import type { StoredBar } from "../../src/history/store";
import { native, type Binding } from "../../src/native";
import { ratio, scaled } from "../../src/windowing/decimal";

export function toBarJson(b: Binding.Bar): BarJson {
  return {
    start: new Date(b.startMs).toISOString(),
    startMs: b.startMs,
    open: b.open ?? null,
    high: b.high ?? null,
    low: b.low ?? null,
    close: b.close ?? null,
    volume: b.volume,
    vwap: b.vwap ?? null,
    trades: b.trades,
    closed: b.closed,
    revised: b.revised,
    orders: { count: b.orderCount, buyQty: b.buyQty, sellQty: b.sellQty },
    generation: b.generation,
    revision: b.revision,
  };
}

const optionalNumber = (text: string | null): number | null =>
  text === null ? null : Number(text);

/** A bar from the history store as REST shows it (stored bars are closed). */
export function storedBarJson(b: StoredBar): BarJson {
  return {
    start: new Date(b.startMs).toISOString(),
    startMs: b.startMs,
    open: optionalNumber(b.open),
    high: optionalNumber(b.high),
    low: optionalNumber(b.low),
    close: optionalNumber(b.close),
    volume: Number(b.volume),
    vwap: optionalNumber(b.vwap),
    trades: b.trades,
    closed: true,
    revised: b.revised,
    orders: { count: b.orderCount, buyQty: Number(b.buyQty), sellQty: Number(b.sellQty) },
    generation: b.generation,
    revision: b.revision,
  };
}

export function activityBarJson(b: Binding.ActivityBarJs): ActivityBarJson {
  const volume = scaled(b.volumeExact, 9);
  return {
    number: b.number,
    start: new Date(b.firstMs).toISOString(),
    startMs: b.firstMs,
    endMs: b.lastMs,
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    // notional (1e-18) / volume (1e-9) carries one factor 1e9 too many.
    vwap: volume > 0n ? ratio(scaled(b.notional, 18), volume * 10n ** 9n) : null,
    trades: b.trades,
    closed: b.closed,
  };
}

const STRIDE: number = native.LATEST_STRIDE;
const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v);

/**
 * The forming bars of `symbols` (`Engine.latestPacked`, one row of numbers per bar) as JSON bars.
 * Bars of many symbols share their start: each start's ISO text is built once per call.
 */
export function unpackLatest(symbols: readonly string[], packed: Float64Array): SymbolBarJson[] {
  const out: SymbolBarJson[] = [];
  const iso = new Map<number, string>();
  for (let at = 0; at + STRIDE <= packed.length; at += STRIDE) {
    const startMs = packed[at + 2]!;
    let start = iso.get(startMs);
    if (start === undefined) {
      start = new Date(startMs).toISOString();
      iso.set(startMs, start);
    }
    out.push({
      symbol: symbols[packed[at]!]!,
      interval: LIVE_INTERVALS[packed[at + 1]!]!,
      bar: {
        start,
        startMs,
        open: orNull(packed[at + 3]!),
        high: orNull(packed[at + 4]!),
        low: orNull(packed[at + 5]!),
        close: orNull(packed[at + 6]!),
        volume: packed[at + 7]!,
        vwap: orNull(packed[at + 8]!),
        trades: packed[at + 9]!,
        closed: packed[at + 10] === 1,
        revised: packed[at + 11] === 1,
        orders: { count: packed[at + 12]!, buyQty: packed[at + 13]!, sellQty: packed[at + 14]! },
        revision: packed[at + 15]!,
        generation: packed[at + 16]!,
      },
    });
  }
  return out;
}
