/** Anomalies as REST, the stream and the dashboard show them, and the query that lists them. */

export interface AnomalyRecord {
  symbol: string;
  time: string;
  timeMs: number;
  price: number;
  prevPrice: number;
  ret: number;
  zscore: number;
  mean: number;
  std: number;
  detector: string;
  /** The trade that raised it: `timeNs/seq/ord` (event time, source sequence, ordinal). */
  tradeKey: string;
  /** The trade was later cancelled (a bust); the anomaly stays listed, marked. */
  cancelled: boolean;
}

/** `GET /api/anomalies` and `anomaly.list`: newest first. */
export interface AnomalyQuery {
  symbol?: string;
  sinceMs?: number;
  limit: number;
}
