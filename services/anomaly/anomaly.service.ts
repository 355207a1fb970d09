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
}

interface Methods extends SymbolActorsMethods {
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
}

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
      onApplied(this: This, result: Binding.ApplyResult) {
        for (const c of result.corrected) {
          if (c.kind !== "cancel") continue;
          const { symbol, tradeKey } = c;
          this.broker
            .broadcast("anomaly.cancelled", { symbol, tradeKey })
            .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
        }
        for (const a of result.anomalies) {
          const record = toAnomalyRecord(a);
          this.recent.add(record);
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.increment(M.anomalies, { detector: a.detector });
          this.broker
            .broadcast("anomaly.detected", record)
            .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
        }
      },
    },

    created(this: This) {
      this.recent = new RecentAnomalies(config.anomalyCapacity);
    },
  };
  return schema as unknown as ServiceSchema;
}
