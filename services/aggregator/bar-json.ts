import type { StoredBar } from "../../src/history/store";
import type { Binding } from "../../src/native";

/** A bar as REST and events show it (times in UTC). */
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
}

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
  };
}
