/**
 * The counters each service answers on `<service>.stats`, the per-node view the gateway merges
 * from them (`GET /api/stats`, the REPL's `stats`, the dashboard's health panel), and the symbol
 * list (`GET /api/symbols`). Free of Node imports: the dashboard bundle includes this file.
 */

/** Why a cancel or correction changed nothing, as `/api/stats` and the metrics name it. */
export const SKIP_REASONS = {
  unknownTrade: "unknown_trade",
  outsideWindow: "outside_window",
  alreadyCancelled: "already_cancelled",
  duplicate: "duplicate",
  unchanged: "unchanged",
} as const;
export type SkipCounts = Record<keyof typeof SKIP_REASONS, number>;

/** What became of the cancels and corrections a node applied (its life). */
export interface CorrectionCounts {
  cancelled: number;
  corrected: number;
  skipped: SkipCounts;
}

/** Records made for Kafka (BARS_TOPIC, ANOMALIES_TOPIC) and how far the publisher has them. */
export interface OutboxStats {
  /** Made and not yet committed to Kafka (waiting to be durable, or for the publisher). */
  pending: number;
  /** Committed by the publisher since the node started. */
  published: number;
  /** Age of the oldest pending one, ms; null when none is pending. */
  oldestPendingMs: number | null;
}

/** `parser.stats`. */
export interface ParserStats {
  records: number;
  messages: number;
  valid: number;
  trades: number;
  orders: number;
  corrections: number;
  /** Cancels and corrections that name no trade (or no symbol): not applied. */
  unreferenced: number;
  rejected: Record<string, number>;
  ignored: Record<string, number>;
}

/** `aggregator.stats`: the engine's counters for the node's life (handed-off symbols included). */
export interface AggregatorStats {
  symbols: number;
  bars: number;
  ids: number;
  stateBytes: number;
  applied: number;
  duplicates: number;
  revised: number;
  tooLate: number;
  anomalies: number;
  orders: number;
  cancels: number;
  corrections: CorrectionCounts;
  correctionsSkipped: number;
  journalTrades: number;
  outbox: OutboxStats;
}

/** `anomaly.stats`. */
export interface AnomalyStats {
  /** Raised since the node started (including those the recent list has dropped). */
  anomalies: number;
  kept: number;
  symbols: number;
  outbox: OutboxStats;
}

/** `ingest.stats`: the source's name and state, the pipeline's counters, then the source's own. */
export interface IngestStats extends Record<string, unknown> {
  source: string;
  live: boolean;
  batches: number;
  records: number;
  retries: number;
}

/** One node's counters of the whole pipeline (`GET /api/stats`). */
export interface NodeStats {
  nodeID: string;
  messages: {
    received: number;
    valid: number;
    rejected: Record<string, number>;
    ignored: Record<string, number>;
  };
  trades: {
    decoded: number;
    applied: number;
    duplicates: number;
    revised: number;
    tooLate: number;
    corrections: number;
  };
  orders: number;
  anomalies: number;
  symbols: number;
  /** Cancels and corrections: decoded by the parser, applied or skipped (by reason) by bars. */
  corrections: {
    received: number;
    unreferenced: number;
    cancelled: number;
    corrected: number;
    skipped: Record<string, number>;
  };
  source: ({ name: string; live: boolean } & Record<string, unknown>) | null;
  /** Bar versions and anomalies on their way to Kafka, this node's actors together. */
  publishing: OutboxStats;
}

/** A row of `GET /api/symbols`. */
export interface SymbolSummary {
  symbol: string;
  /** Custody epoch of the state it was read from. */
  epoch: number;
  /** The node holding the state. */
  node: string;
  trades: number;
  lastPrice: number | null;
  lastTradeTime: string | null;
}
