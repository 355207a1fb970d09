/**
 * Ingest: owns the trade source (synthetic feed, file replay, Kafka) and drives each of its
 * batches through the pipeline. Broadcasts `ingest.status` so that aggregators know when the
 * feed is live (wall-clock bar closing) and gateways can answer /api/ready.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Config } from "../../src/config";
import { M, registerMetrics } from "../../src/metrics";
import { Pipeline } from "./pipeline";
import { createSource, type TradeSource } from "./sources";

const STATUS_INTERVAL_MS = 2000;

interface Vars {
  source: TradeSource;
  pipeline: Pipeline;
  statusTimer: NodeJS.Timeout | null;
  lastLive: boolean | null;
}

interface Methods {
  announce(force: boolean): void;
}

type This = Service & Vars & Methods;

export function ingestService(config: Config): ServiceSchema {
  const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
    name: "ingest",
    dependencies: ["parser", "aggregator", "anomaly"],

    actions: {
      status: {
        handler(this: This) {
          return { source: this.source.name, live: this.source.live };
        },
      },
      stats: {
        handler(this: This) {
          return {
            source: this.source.name,
            live: this.source.live,
            ...this.pipeline.counts,
            ...this.source.stats(),
          };
        },
      },
    },

    events: {
      /**
       * A node that held per-symbol actors vanished without saying goodbye (crash, SIGKILL): its
       * symbols' new owners start empty, so the log's replay window is read again to rebuild them.
       */
      "$node.disconnected"(
        this: This,
        ctx: Context<{ node: { id: string; services?: { name: string }[] }; unexpected: boolean }>,
      ) {
        const { node, unexpected } = ctx.params;
        const hadActors = (node.services ?? []).some(
          (s) => s.name === "aggregator" || s.name === "anomaly",
        );
        if (!unexpected || !hadActors || !this.source.rewind) return;
        this.logger.warn(
          { lost: node.id },
          "an actor node was lost; replaying the log to rebuild its symbols",
        );
        this.source
          .rewind()
          .catch((err: unknown) =>
            this.logger.error({ err: (err as Error).message }, "rewind failed"),
          );
      },
    },

    methods: {
      announce(this: This, force: boolean) {
        const live = this.source.live;
        if (!force && live === this.lastLive) return;
        this.lastLive = live;
        this.broker
          .broadcast("ingest.status", { nodeID: this.broker.nodeID, live })
          .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
      },
    },

    created(this: This) {
      registerMetrics(this.broker);
      this.source = createSource(config, {
        log: this.logger,
        onLag: (lag) => {
          if (!this.broker.isMetricsEnabled()) return;
          for (const l of lag)
            this.broker.metrics.set(M.kafkaLag, l.records, {
              topic: l.topic,
              partition: l.partition,
            });
        },
        onDeadLetter: (reason) => {
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.increment(M.deadLettered, { reason });
        },
      });
      this.pipeline = new Pipeline(this.broker, this.source.name.split(":")[0] ?? this.source.name);
      this.statusTimer = null;
      this.lastLive = null;
    },

    async started(this: This) {
      await this.source.start(async (batch, hooks) => {
        const delivery = await this.pipeline.deliver(batch, hooks);
        this.announce(false);
        return delivery;
      });
      this.logger.info({ source: this.source.name }, "ingest started");
      this.statusTimer = setInterval(() => this.announce(true), STATUS_INTERVAL_MS);
      this.announce(true);
    },

    async stopped(this: This) {
      if (this.statusTimer) clearInterval(this.statusTimer);
      this.pipeline.stop();
      await this.source.stop();
    },
  };
  return schema as unknown as ServiceSchema;
}
