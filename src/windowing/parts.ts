/** Live bars from the engine and from history as the roll-up reads them (src/windowing/rollup.ts). */
import type { StoredBar } from "../history/store";
import type { Binding } from "../native";
import { scaled } from "./decimal";
import { NOTIONAL_SCALE, QTY_SCALE, type BaseBar } from "./rollup";

const orNull = (n: number | undefined): number | null => (n === undefined ? null : n);
const numberOrNull = (text: string | null): number | null => (text === null ? null : Number(text));

/** A bar of the engine: volume and notional from their exact texts. */
export function engineBase(b: Binding.Bar): BaseBar {
  return {
    startMs: b.startMs,
    open: orNull(b.open),
    high: orNull(b.high),
    low: orNull(b.low),
    close: orNull(b.close),
    volume: scaled(b.volumeExact, QTY_SCALE),
    notional: scaled(b.notional, NOTIONAL_SCALE),
    trades: b.trades,
    closed: b.closed,
    revised: b.revised,
    orderCount: b.orderCount,
    // Order quantities cross as numbers: exact while they have at most 15 significant digits.
    buyQty: scaled(String(b.buyQty), QTY_SCALE),
    sellQty: scaled(String(b.sellQty), QTY_SCALE),
    generation: b.generation,
    revision: b.revision,
  };
}

/**
 * A bar from history. Rows written before the exact columns existed lack the notional: their
 * share of a rolled VWAP is their (rounded) VWAP × volume.
 */
export function storedBase(b: StoredBar): BaseBar {
  const volume = scaled(b.volumeExact ?? b.volume, QTY_SCALE);
  let notional = 0n;
  if (b.notional !== null) notional = scaled(b.notional, NOTIONAL_SCALE);
  else if (b.vwap !== null) notional = scaled(b.vwap, QTY_SCALE) * volume;
  return {
    startMs: b.startMs,
    open: numberOrNull(b.open),
    high: numberOrNull(b.high),
    low: numberOrNull(b.low),
    close: numberOrNull(b.close),
    volume,
    notional,
    trades: b.trades,
    closed: true,
    revised: b.revised,
    orderCount: b.orderCount,
    buyQty: scaled(b.buyQty, QTY_SCALE),
    sellQty: scaled(b.sellQty, QTY_SCALE),
    generation: b.generation,
    revision: b.revision,
  };
}
