/**
 * Rolling live bars up into any interval (src/windowing/calendar.ts), exactly: volume, notional
 * and order quantities are summed as BigInt mantissas; VWAP is Σ notional / Σ volume; the open is
 * the first part's open and the close the last part's close (parts are whole live bars in time
 * order); highs and lows are the extremes; trades and orders are counted.
 *
 * A rolled bar's version: `generation` is the highest of its parts', `revision` the sum of the
 * revisions of the parts of that generation. Every change to a bar is stamped with its symbol's
 * current generation, so any change to any part raises the rolled version, and the same parts
 * always give the same version.
 */
import type { RolledBar } from "../contracts/bars";
import { ratio, toNumber } from "./decimal";

/** Scales of the exact fields: quantities at 1e-9, notional (price × quantity) at 1e-18. */
export const QTY_SCALE = 9;
export const NOTIONAL_SCALE = 18;

/** A live bar as the roll-up reads it, from memory or history. */
export interface BaseBar {
  startMs: number;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  /** Σ quantity, mantissa at 1e-9. */
  volume: bigint;
  /** Σ price × quantity, mantissa at 1e-18. */
  notional: bigint;
  trades: number;
  closed: boolean;
  revised: boolean;
  orderCount: number;
  buyQty: bigint;
  sellQty: bigint;
  generation: number;
  revision: number;
}

/** One interval being rolled up from its parts, added in time order. */
export class Rollup {
  private open: number | null = null;
  private high: number | null = null;
  private low: number | null = null;
  private close: number | null = null;
  private volume = 0n;
  private notional = 0n;
  private trades = 0;
  private closed = true;
  private revised = false;
  private orderCount = 0;
  private buyQty = 0n;
  private sellQty = 0n;
  private generation = 0;
  private revision = 0;
  parts = 0;

  constructor(
    readonly startMs: number,
    readonly endMs: number,
  ) {}

  add(b: BaseBar): void {
    this.parts += 1;
    if (b.trades > 0 && b.open !== null && b.high !== null && b.low !== null && b.close !== null) {
      if (this.open === null) this.open = b.open;
      this.close = b.close;
      this.high = this.high === null ? b.high : Math.max(this.high, b.high);
      this.low = this.low === null ? b.low : Math.min(this.low, b.low);
    }
    this.volume += b.volume;
    this.notional += b.notional;
    this.trades += b.trades;
    this.closed &&= b.closed;
    this.revised ||= b.revised;
    this.orderCount += b.orderCount;
    this.buyQty += b.buyQty;
    this.sellQty += b.sellQty;
    if (b.generation > this.generation) [this.generation, this.revision] = [b.generation, 0];
    if (b.generation === this.generation) this.revision += b.revision;
  }

  /** The bar; closed once every part is closed and the interval has ended on the wall clock. */
  bar(nowMs: number): RolledBar {
    const traded = this.trades > 0 && this.open !== null;
    return {
      start: new Date(this.startMs).toISOString(),
      startMs: this.startMs,
      endMs: this.endMs,
      open: traded ? this.open : null,
      high: traded ? this.high : null,
      low: traded ? this.low : null,
      close: traded ? this.close : null,
      volume: toNumber(this.volume, QTY_SCALE),
      // notional / volume carries one factor 1e9 too many (scales 1e-18 and 1e-9).
      vwap: this.volume > 0n ? ratio(this.notional, this.volume * 10n ** 9n) : null,
      trades: this.trades,
      closed: this.closed && this.endMs <= nowMs,
      revised: this.revised,
      orders: {
        count: this.orderCount,
        buyQty: toNumber(this.buyQty, QTY_SCALE),
        sellQty: toNumber(this.sellQty, QTY_SCALE),
      },
      generation: this.generation,
      revision: this.revision,
      filled: false,
    };
  }
}

/** An interval without trades under `fill=prev`: the previous close, nothing traded. */
export function filledBar(startMs: number, endMs: number, close: number, nowMs: number): RolledBar {
  return {
    start: new Date(startMs).toISOString(),
    startMs,
    endMs,
    open: close,
    high: close,
    low: close,
    close,
    volume: 0,
    vwap: null,
    trades: 0,
    closed: endMs <= nowMs,
    revised: false,
    orders: { count: 0, buyQty: 0, sellQty: 0 },
    generation: 0,
    revision: 0,
    filled: true,
  };
}
