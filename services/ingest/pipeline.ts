/**
 * One batch through the pipeline: decode (parser, on this node when it runs one), split the
 * packed batch by symbol owner, and apply each part on its owner — aggregator for bars, anomaly
 * for detectors — by acknowledged calls routed by the Rendezvous strategy. The batch is done only
 * when every call has acknowledged; a failed batch is retried whole (after a fresh split, since
 * owners may have changed), which is safe because `apply` is idempotent (offset watermarks and
 * trade ids).
 *
 * With tracing on, each attempt at a batch is one trace: a root span `ingest.batch` whose children
 * are the `parser.parse` call and every `aggregator.apply` / `anomaly.apply` call (`parentSpan`).
 */
import type { CallingOptions, ServiceBroker } from "moleculer";
import type { ApplyReply } from "../../mixins/symbol-actors.mixin";
import { members } from "../../src/cluster/membership";
import { ownerOf } from "../../src/cluster/rendezvous";
import { M } from "../../src/metrics";
import { native } from "../../src/native";
import type { ParseResult } from "../../src/contracts/parse";
import type { Process } from "../../src/custody/appliers";
import type { Delivery, DeliveryHooks, RawBatch } from "./sources";

export interface PipelineCounts {
  batches: number;
  records: number;
  retries: number;
}

const MAX_BACKOFF_MS = 5000;
const ACTOR_SERVICES = ["aggregator", "anomaly"] as const;

/** A part of a batch for one owner, with a symbol of it as the shard key. */
export interface Part {
  owner: string;
  shard: string;
  batch: Buffer;
}

/** Splits a decoded batch between the owners of its symbols among `nodes`. */
export function split(batch: Buffer, symbols: string[], nodes: string[]): Part[] {
  if (nodes.length === 0) throw new Error("no node hosts the service");
  if (nodes.length === 1)
    return symbols.length === 0 ? [] : [{ owner: nodes[0]!, shard: symbols[0]!, batch }];
  const ownerIndex = new Uint32Array(symbols.length);
  const shard = new Map<number, string>();
  symbols.forEach((s, i) => {
    const o = nodes.indexOf(ownerOf(s, nodes)!);
    ownerIndex[i] = o;
    if (!shard.has(o)) shard.set(o, s);
  });
  const parts = native.partitionBatch(batch, ownerIndex, nodes.length);
  return [...shard.entries()].map(([o, s]) => ({ owner: nodes[o]!, shard: s, batch: parts[o]! }));
}

export class Pipeline {
  readonly counts: PipelineCounts = { batches: 0, records: 0, retries: 0 };
  private stopping = false;

  /**
   * `onApplied` hears of every process that answered an `apply` call (applied, or already held,
   * part of a batch), including the parts of a batch that failed elsewhere.
   */
  constructor(
    private readonly broker: ServiceBroker,
    private readonly sourceKind: string,
    private readonly onApplied?: (p: Process) => void,
  ) {}

  stop(): void {
    this.stopping = true;
  }

  /** Delivers a batch, retrying with capped backoff until it is applied or the node stops. */
  async deliver(batch: RawBatch, hooks: DeliveryHooks = {}): Promise<Delivery | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        const delivery = await this.traced(batch, attempt);
        this.counts.batches += 1;
        this.counts.records += batch.offsets.length - 1;
        return delivery;
      } catch (err: unknown) {
        if (this.stopping) return null;
        this.counts.retries += 1;
        const wait = Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(attempt, 7));
        this.broker.logger.warn(
          { source: batch.source, err: (err as Error).message, attempt, wait },
          "batch failed; retrying",
        );
        await hooks.onRetry?.();
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /** One attempt, under a root span when tracing is on (the calls become its children). */
  private async traced(batch: RawBatch, attempt: number): Promise<Delivery> {
    if (!this.broker.isTracingEnabled()) return this.once(batch, {});
    const span = this.broker.tracer.startSpan("ingest.batch", {
      type: "custom",
      tags: {
        source: batch.source,
        sourceKind: this.sourceKind,
        records: batch.offsets.length - 1,
        attempt,
        nodeID: this.broker.nodeID,
      },
    });
    try {
      return await this.once(batch, { parentSpan: span });
    } catch (err: unknown) {
      span.setError(err as Error);
      throw err;
    } finally {
      span.finish();
    }
  }

  private async once(batch: RawBatch, trace: CallingOptions): Promise<Delivery> {
    const local = this.broker.getLocalService("parser") ? { nodeID: this.broker.nodeID } : {};
    const parsed = await this.broker.call<ParseResult, object>(
      "parser.parse",
      { source: batch.source, payload: batch.payload, offsets: batch.offsets, seqs: batch.seqs },
      { ...local, ...trace },
    );
    if (this.broker.isMetricsEnabled())
      this.broker.metrics.increment(
        M.messagesReceived,
        { source: this.sourceKind },
        parsed.records,
      );
    const rejects = [...parsed.rejects];
    // A symbol is in the batch's table only for its rows: trades, orders, cancels, corrections.
    if (parsed.symbols.length > 0) {
      let producedAtMs = Infinity;
      for (const t of batch.producedAtMs) producedAtMs = Math.min(producedAtMs, t);
      const calls: Promise<ApplyReply>[] = [];
      for (const service of ACTOR_SERVICES) {
        for (const part of split(parsed.batch, parsed.symbols, members(this.broker, service))) {
          const params = {
            batch: part.batch,
            producedAtMs: Number.isFinite(producedAtMs) ? producedAtMs : undefined,
          };
          calls.push(
            this.broker
              .call<ApplyReply, object>(`${service}.apply`, params, {
                ...trace,
                meta: { shard: part.shard },
              })
              .then((reply) => {
                this.onApplied?.({
                  service,
                  nodeID: reply.nodeID,
                  instanceID: reply.instanceID,
                  generation: reply.generation,
                });
                return reply;
              }),
          );
        }
      }
      // Every call settles before a failure is reported: the parts that were applied are noted.
      const settled = await Promise.allSettled(calls);
      const failed = settled.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      const results = settled.map((r) => (r as PromiseFulfilledResult<ApplyReply>).value);
      // Trades older than every retention window are reported like rejects, never dropped silently.
      const tooLate = new Set(results.flatMap((r) => r.tooLateRecords));
      for (const record of tooLate) rejects.push({ record, reason: "TOO_LATE", offset: 0 });
    }
    return { rejects };
  }
}
