/** The REST and stream payloads the dashboard reads (see /api/openapi.json). */

export const INTERVALS = ["1m", "5m", "1h"] as const;
export type Interval = (typeof INTERVALS)[number];

export const INTERVAL_MS: Record<Interval, number> = {
  "1m": 60_000,
  "5m": 300_000,
  "1h": 3_600_000,
};

export interface Bar {
  startMs: number;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  volume: number;
  trades: number;
  closed: boolean;
  /** Versions of a bar order by (generation, revision). */
  generation: number;
  revision: number;
}

export interface StreamBar {
  symbol: string;
  interval: string;
  bar: Bar;
}

export interface Anomaly {
  symbol: string;
  timeMs: number;
  price: number;
  prevPrice: number;
  ret: number;
  zscore: number;
  detector: string;
  /** The trade that raised it was later cancelled. */
  cancelled: boolean;
}

export interface SymbolSummary {
  symbol: string;
  epoch: number;
  node: string;
  trades: number;
  lastPrice: number | null;
  lastTradeTime: string | null;
}

export interface NodeStats {
  nodeID: string;
  messages: { received: number; valid: number; rejected: Record<string, number> };
  trades: { applied: number };
  source: { name: string; live: boolean } | null;
}

export interface Hello {
  nodeID: string;
  serverTimeMs: number;
}
