/** The REST and stream payloads the dashboard reads (see /api/openapi.json), and its choices. */
import type { LiveInterval } from "../../src/contracts/bars";

export type { BarJson as Bar, SymbolBarJson as StreamBar } from "../../src/contracts/bars";
export type { AnomalyRecord as Anomaly } from "../../src/contracts/anomalies";
export type { NodeStats, SymbolSummary } from "../../src/contracts/stats";

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
export const STREAMED: Record<Interval, LiveInterval> = {
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

export interface Hello {
  nodeID: string;
  serverTimeMs: number;
}
