/**
 * The anomaly service: per-symbol detectors (z-score by default; ewma and mad by configuration)
 * with the same ownership as the aggregator. Keeps the most recent anomalies of this node and
 * publishes each as `anomaly.detected`. When a trade is cancelled its owner broadcasts
 * `anomaly.cancelled`, and every node marks the anomalies that trade raised (a symbol's older
 * anomalies stay on the node that held it then).
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { RecentAnomalies } from "../../src/anomaly/recent";
import type { AnomalyRecord } from "../../src/contracts/anomalies";
import type { AnomalyStats } from "../../src/contracts/stats";
import type { Config } from "../../src/config";
import { M } from "../../src/metrics";
import type { Binding } from "../../src/native";
import {
  symbolActorsMixin,
  type ApplyParams,
  type SymbolActorsMethods,
  type SymbolActorsVars,
} from "../../mixins/symbol-actors.mixin";

export interface AnomalyListParams {
  symbol?: string;
  sinceMs?: number;
  limit: number;
}

interface Vars extends SymbolActorsVars {
  recent: RecentAnomalies;
  anomaliesTopic: string | null;
}

interface Methods extends SymbolActorsMethods {
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
  anomalyToOutbox(record: AnomalyRecord): void;
  cancelToOutbox(symbol: string, tradeKey: string): void;
}

/** Key of an anomaly on the anomalies topic: its `cancelled` version replaces it under compaction. */
export const anomalyKey = (a: Pick<AnomalyRecord, "symbol" | "tradeKey" | "detector">): string =>
  `${a.symbol}/${a.tradeKey}/${a.detector}`;

type This = Service & Vars & Methods;

export function toAnomalyRecord(a: Binding.Anomaly): AnomalyRecord {
  return {
    symbol: a.symbol,
    time: new Date(a.timeMs).toISOString(),
    timeMs: a.timeMs,
    price: a.price,
    prevPrice: a.prevPrice,
    ret: a.ret,
    zscore: a.zscore,
    mean: a.mean,
    std: a.std,
    detector: a.detector,
    tradeKey: a.tradeKey,
    cancelled: false,
  };
}

export function anomalyService(config: Config): ServiceSchema {
  const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
    name: "anomaly",
    mixins: [symbolActorsMixin(config, { bars: false, detector: true })],

    actions: {
      list: {
        params: {
          symbol: { type: "string", max: 64, optional: true },
          sinceMs: { type: "number", optional: true },
          limit: { type: "number", integer: true, min: 1, max: 10_000 },
        },
        handler(this: This, ctx: Context<AnomalyListParams>) {
          return this.recent.list(ctx.params);
        },
      },

      stats: {
        handler(this: This): AnomalyStats {
          return {
            anomalies: this.recent.added,
            kept: this.recent.size,
            symbols: this.actors.engine.symbolCount(),
            outbox: this.outboxStats(),
          };
        },
      },
    },

    events: {
      "anomaly.cancelled"(this: This, ctx: Context<{ symbol: string; tradeKey: string }>) {
        this.recent.cancel(ctx.params.symbol, ctx.params.tradeKey);
      },
    },

    methods: {
      /**
       * With ANOMALIES_TOPIC: the anomaly waits in its symbol's outbox, and is remembered with the
       * symbol's state for as long as its trade may still be busted (the correction window).
       */
      anomalyToOutbox(this: This, record: AnomalyRecord) {
        const epoch = this.custody.epochOf(record.symbol);
        if (this.anomaliesTopic === null || epoch === undefined) return;
        const key = anomalyKey(record);
        const value = JSON.stringify(record);
        this.outbox.add(record.symbol, epoch, this.anomaliesTopic, key, value, Date.now());
        this.outbox.remember(
          record.symbol,
          { key, timeMs: record.timeMs, value },
          record.timeMs - config.bars.correctionWindowMs,
        );
      },

      /** The `cancelled` version of every remembered anomaly the busted trade raised. */
      cancelToOutbox(this: This, symbol: string, tradeKey: string) {
        const epoch = this.custody.epochOf(symbol);
        if (this.anomaliesTopic === null || epoch === undefined) return;
        for (const m of this.outbox.memos(symbol)) {
          const a = JSON.parse(m.value) as AnomalyRecord;
          if (a.tradeKey !== tradeKey || a.cancelled) continue;
          const value = JSON.stringify({ ...a, cancelled: true });
          this.outbox.add(symbol, epoch, this.anomaliesTopic, m.key, value, Date.now());
          this.outbox.remember(symbol, { ...m, value }, -Infinity);
        }
      },

      onApplied(this: This, result: Binding.ApplyResult) {
        for (const c of result.corrected) {
          if (c.kind !== "cancel") continue;
          const { symbol, tradeKey } = c;
          this.cancelToOutbox(symbol, tradeKey);
          this.broker
            .broadcast("anomaly.cancelled", { symbol, tradeKey })
            .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
        }
        for (const a of result.anomalies) {
          const record = toAnomalyRecord(a);
          this.recent.add(record);
          this.anomalyToOutbox(record);
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.increment(M.anomalies, { detector: a.detector });
          this.broker
            .broadcast("anomaly.detected", record)
            .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
        }
      },
    },

    created(this: This) {
      this.anomaliesTopic = config.publish?.anomaliesTopic ?? null;
      this.recent = new RecentAnomalies(config.anomalyCapacity);
    },
  };
  return schema as unknown as ServiceSchema;
}
