/**
 * One batch through the pipeline: decode (parser), then apply to the per-symbol actors
 * (aggregator for bars, anomaly for detectors), each by an acknowledged call. The batch is done
 * only when every call has acknowledged; a failed batch is retried whole, which is safe because
 * `apply` is idempotent (offset watermarks and trade ids).
 */
import type { ServiceBroker } from "moleculer";
import type { ApplyCounts } from "../../src/actors/symbol-actors";
import { M } from "../../src/metrics";
import type { ParseResult } from "../parser.service";
import type { Delivery, DeliveryHooks, RawBatch } from "./sources";

export interface PipelineCounts {
  batches: number;
  records: number;
  retries: number;
}

const MAX_BACKOFF_MS = 5000;

export class Pipeline {
  readonly counts: PipelineCounts = { batches: 0, records: 0, retries: 0 };
  private stopping = false;

  constructor(
    private readonly broker: ServiceBroker,
    private readonly sourceKind: string,
  ) {}

  stop(): void {
    this.stopping = true;
  }

  /** Delivers a batch, retrying with capped backoff until it is applied or the node stops. */
  async deliver(batch: RawBatch, hooks: DeliveryHooks = {}): Promise<Delivery | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        const delivery = await this.once(batch);
        this.counts.batches += 1;
        this.counts.records += batch.offsets.length - 1;
        return delivery;
      } catch (err: unknown) {
        if (this.stopping) return null;
        this.counts.retries += 1;
        const wait = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(attempt, 6));
        this.broker.logger.warn(
          { source: batch.source, err: (err as Error).message, attempt, wait },
          "batch failed; retrying",
        );
        await hooks.onRetry?.();
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private async once(batch: RawBatch): Promise<Delivery> {
    const parsed = await this.broker.call<ParseResult, object>("parser.parse", {
      source: batch.source,
      payload: batch.payload,
      offsets: batch.offsets,
      seqs: batch.seqs,
    });
    if (this.broker.isMetricsEnabled())
      this.broker.metrics.increment(
        M.messagesReceived,
        { source: this.sourceKind },
        parsed.records,
      );
    const rejects = [...parsed.rejects];
    if (parsed.trades + parsed.orders > 0) {
      let producedAtMs = Infinity;
      for (const t of batch.producedAtMs) producedAtMs = Math.min(producedAtMs, t);
      const params = {
        batch: parsed.batch,
        producedAtMs: Number.isFinite(producedAtMs) ? producedAtMs : undefined,
      };
      const [bars] = await Promise.all([
        this.broker.call<ApplyCounts, object>("aggregator.apply", params),
        this.broker.call<ApplyCounts, object>("anomaly.apply", params),
      ]);
      // Trades older than every retention window are reported like rejects, never dropped silently.
      for (const record of new Set(bars.tooLateRecords))
        rejects.push({ record, reason: "TOO_LATE", offset: 0 });
    }
    return { rejects };
  }
}
