/**
 * A node's history of closed bars: what the aggregator hands over and asks for, with its metrics
 * and (rate-limited) warnings. Writing goes through the batching writer; reading merges the store
 * with the bars still waiting to be written, and degrades instead of failing.
 */
import type { Logger, ServiceBroker } from "moleculer";
import type { LiveInterval } from "../contracts/bars";
import type { HistoryConfig } from "../config";
import { M } from "../metrics";
import type { Binding } from "../native";
import { latestByKey, storedBar, type HistoryStore, type StoredBar } from "./store";
import { HistoryWriter, type HistoryWriterStats } from "./writer";

/** Least time between two warnings about the same kind of history problem. */
const WARN_EVERY_MS = 10_000;

/** What a read found: `unavailable` when the store failed (only waiting bars are listed then). */
export interface HistoryRange {
  status: "ok" | "unavailable";
  bars: StoredBar[];
  /** Whether history holds any bar of the symbol and interval (looked up only when asked). */
  known: boolean;
  error?: unknown;
}

export class BarHistory {
  private readonly writer: HistoryWriter;
  private readonly warnedAt = new Map<string, number>();

  constructor(
    readonly store: HistoryStore,
    config: HistoryConfig,
    private readonly broker: ServiceBroker,
    private readonly logger: Logger,
  ) {
    const metered = broker.isMetricsEnabled();
    const metrics = broker.metrics;
    this.writer = new HistoryWriter(store, config, {
      written: (n) => {
        if (metered) metrics.increment(M.historyWritten, undefined, n);
      },
      buffered: (n) => {
        if (metered) metrics.set(M.historyBuffered, n);
      },
      dropped: (n) => {
        if (metered) metrics.increment(M.historyDropped, undefined, n);
        this.warn("dropped", "history buffer full; oldest closed bars dropped", {
          dropped: n,
          bufferMax: config.bufferMax,
        });
      },
      failed: (err, attempt, retryInMs) => {
        if (metered) metrics.increment(M.historyWriteErrors);
        this.warn("write", "history write failed; closed bars stay buffered", {
          err: err.message,
          attempt,
          retryInMs,
        });
      },
      recovered: (attempts) =>
        logger.info(
          { store: store.name, failedAttempts: attempts },
          "history store reachable again; writing buffered bars",
        ),
    });
    logger.info({ store: store.name }, "history store");
  }

  get stats(): HistoryWriterStats {
    return this.writer.stats;
  }

  /** Whether the last write failed. */
  get failing(): boolean {
    return this.writer.failing;
  }

  /** Bars that just closed (from the engine's queue). */
  closed(bars: readonly Binding.SymbolBar[]): void {
    this.writer.add(bars.map((c) => storedBar(c.symbol, c.interval as LiveInterval, c.bar)));
  }

  /** Closed bars changed after they closed (revisions found by `RevisionScanner`). */
  revised(bars: readonly StoredBar[]): void {
    this.writer.add(bars);
  }

  /** Closed bars with start in [fromMs, toMs), the newest `limit` (and any waiting to be written). */
  async read(
    symbol: string,
    interval: LiveInterval,
    fromMs: number | undefined,
    toMs: number | undefined,
    limit: number,
    mustKnow: boolean,
  ): Promise<HistoryRange> {
    // Taken before the query: a flush meanwhile moves bars from here to the store, never away.
    const waiting = this.writer.pendingBars(symbol, interval, fromMs, toMs);
    try {
      const rows = await this.store.readBars(symbol, interval, fromMs, toMs, limit);
      const known =
        rows.length > 0 ||
        waiting.length > 0 ||
        (mustKnow &&
          (await this.store.readBars(symbol, interval, undefined, undefined, 1)).length > 0);
      return { status: "ok", bars: latestByKey([...rows, ...waiting]), known };
    } catch (err: unknown) {
      if (this.broker.isMetricsEnabled()) this.broker.metrics.increment(M.historyReadErrors);
      this.warn("read", "history read failed; answering from memory", {
        err: (err as Error).message,
      });
      return { status: "unavailable", bars: waiting, known: waiting.length > 0, error: err };
    }
  }

  /**
   * Keeps writing what is queued (the caller hands over the last closed and revised bars first)
   * for up to `timeoutMs`, and closes the store; what could not be written is logged.
   */
  async close(timeoutMs: number): Promise<void> {
    const lost = await this.writer.close(timeoutMs);
    if (lost > 0)
      this.logger.warn(
        { store: this.store.name, lost },
        "history unavailable at shutdown; closed bars not written",
      );
  }

  private warn(kind: string, message: string, details: object): void {
    const now = Date.now();
    if (now - (this.warnedAt.get(kind) ?? 0) < WARN_EVERY_MS) return;
    this.warnedAt.set(kind, now);
    this.logger.warn({ store: this.store.name, ...details }, message);
  }
}
