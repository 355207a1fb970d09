/** The REST and stream payloads the dashboard reads (see /api/openapi.json). */

export const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"] as const;
export type Interval = (typeof INTERVALS)[number];

export const INTERVAL_MS: Record<Interval, number> = {
  "1m": 60_000,
  "5m": 300_000,
  "15m": 900_000,
  "1h": 3_600_000,
  "4h": 14_400_000,
  "1d": 86_400_000,
};

/** The live interval whose stream events tell that a bar of each interval changed. */
export const STREAMED: Record<Interval, "1m" | "5m" | "1h"> = {
  "1m": "1m",
  "5m": "5m",
  "15m": "5m",
  "1h": "1h",
  "4h": "1h",
  "1d": "1h",
};

/** Time zones offered besides the browser's own. */
export const ZONES = [
  "UTC",
  "America/New_York",
  "America/Chicago",
  "Europe/London",
  "Europe/Berlin",
  "Asia/Tokyo",
  "Asia/Hong_Kong",
  "Asia/Kolkata",
  "Australia/Sydney",
] as const;

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
