/**
 * The aggregator's bar queries: what `aggregator.bars`, `activityBars` and `rolling` take and
 * answer (the gateway passes them through as REST answers).
 */
import type { ActivityBarJson, BarJson, LiveInterval, RolledBar } from "./bars";

/** `fill=none` leaves intervals without trades out; `prev` fills them with the previous close. */
export type Fill = "none" | "prev";

/** OHLC, volume, VWAP and trades over a trailing window, and what they were summed from. */
export interface RollingSums {
  /** `trades`: every trade in [fromMs, toMs); else the live interval whose whole bars were summed. */
  base: "trades" | LiveInterval;
  fromMs: number;
  toMs: number;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  volume: number;
  vwap: number | null;
  trades: number;
}

/** `ok`: history was read; `unavailable`: it could not be (memory only); `off`: not configured. */
export type HistoryStatus = "ok" | "unavailable" | "off";

export interface BarsAnswer {
  symbol: string;
  interval: string;
  bars: BarJson[];
  history: HistoryStatus;
}

/** An interval other than a live one in UTC: rolled up from live bars (src/windowing/). */
export interface RolledBarsAnswer {
  symbol: string;
  interval: string;
  tz: string;
  session: string | null;
  fill: Fill;
  /** The live interval rolled up. */
  base: LiveInterval;
  bars: RolledBar[];
  history: HistoryStatus;
}

export interface BarsParams {
  symbol: string;
  /** Any interval a live one divides (checked by the gateway; re-checked here). */
  interval: string;
  tz?: string;
  session?: string;
  fill?: Fill;
  fromMs?: number;
  toMs?: number;
  limit: number;
}

export interface ActivityParams {
  symbol: string;
  interval: string;
  fromMs?: number;
  toMs?: number;
  limit: number;
}

/** Tick and volume bars are kept in memory only: `history` is always `off`. */
export interface ActivityAnswer {
  symbol: string;
  interval: string;
  bars: ActivityBarJson[];
  history: "off";
}

export interface RollingParams {
  symbol: string;
  window: string;
  atMs?: number;
}

export interface RollingAnswer extends RollingSums {
  symbol: string;
  window: string;
  atMs: number;
  /** Whether history was read (absent when the trade journal answered). */
  history?: HistoryStatus;
}
