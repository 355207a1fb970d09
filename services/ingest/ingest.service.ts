/**
 * Ingest: owns the trade source (synthetic feed, file replay, Kafka) and drives each of its
 * batches through the pipeline. Broadcasts `ingest.status` so that aggregators know when the
 * feed is live (wall-clock bar closing) and gateways can answer /api/ready.
 */
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { CheckpointResult } from "../../mixins/symbol-actors.mixin";
import type { Config } from "../../src/config";
import type { IngestStats } from "../../src/contracts/stats";
import { M, registerMetrics } from "../../src/metrics";
import { Appliers, key as appliersKey, type Process } from "../../src/custody/appliers";
import { Pipeline } from "./pipeline";
import { createSource, type TradeSource } from "./sources";

const STATUS_INTERVAL_MS = 2000;
/** A round waits this long for a node's writes (a full write of every held symbol can be large). */
const CHECKPOINT_CALL_TIMEOUT_MS = 60_000;

interface Vars {
  source: TradeSource;
  pipeline: Pipeline;
  statusTimer: NodeJS.Timeout | null;
  lastLive: boolean | null;
  /** The actor processes holding records of this node's not yet committed offsets. */
  appliers: Appliers;
}

interface Methods {
  announce(force: boolean): void;
  liveInstance(nodeID: string): string | null;
  checkAppliers(why: string): Process[];
  checkpointRound(): Promise<boolean>;
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
        handler(this: This): IngestStats {
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
       * A node vanished (crash, SIGKILL, or a graceful stop whose handoff may have failed), or
       * came back under the same ID as a new process (Moleculer then reports only an update):
       * if one of its processes applied records of this node since the last commit, the log is
       * read again from there.
       */
      "$node.disconnected"(this: This) {
        this.checkAppliers("disconnected");
      },
      "$node.connected"(this: This) {
        this.checkAppliers("restarted");
      },
      "$node.updated"(this: This) {
        this.checkAppliers("restarted");
      },
    },

    methods: {
      liveInstance(this: This, nodeID: string): string | null {
        const node = this.broker.registry.nodes.get(nodeID);
        return node?.available ? (node.instanceID ?? null) : null;
      },

      /** Rewinds when a process that holds uncommitted records is gone or was superseded. */
      checkAppliers(this: This, why: string): Process[] {
        const lost = this.appliers.lost((p) => this.liveInstance(p.nodeID) === p.instanceID);
        if (lost.length === 0 || !this.source.rewind) return lost;
        // The rewind takes care of them: a round after it covers only what is applied anew.
        this.appliers.forget(lost);
        this.logger.warn(
          { lost: [...new Set(lost.map((p) => p.nodeID))], why },
          "an actor process holding uncommitted records was lost or superseded; replaying the log from the last checkpoint",
        );
        this.source
          .rewind()
          .catch((err: unknown) =>
            this.logger.error({ err: (err as Error).message }, "rewind failed"),
          );
        return lost;
      },

      /**
       * Has every process that applied records of this node since the last commit write its
       * changed states. True only when each answered under the custody generation it applied
       * under: then every record before the round's positions is in the custody store.
       */
      async checkpointRound(this: This): Promise<boolean> {
        const mark = this.appliers.mark();
        const noted = this.appliers.before(mark);
        const calls = new Map<string, { service: string; nodeID: string }>();
        for (const p of noted) calls.set(`${p.service}/${p.nodeID}`, p);
        const answered = new Set<string>();
        await Promise.all(
          [...calls.values()].map(({ service, nodeID }) =>
            this.broker
              .call<CheckpointResult, object>(
                `${service}.checkpoint`,
                {},
                { nodeID, timeout: CHECKPOINT_CALL_TIMEOUT_MS, retries: 0 },
              )
              .then(
                (a) => {
                  const p = { service, ...a };
                  this.appliers.heard(p);
                  answered.add(appliersKey(p));
                },
                (err: unknown) =>
                  this.logger.debug(
                    { nodeID, service, err: (err as Error).message },
                    "checkpoint call failed",
                  ),
              ),
          ),
        );
        if (!noted.every((p) => this.appliers.covered(p, answered))) {
          this.checkAppliers("checkpoint");
          return false;
        }
        this.appliers.settle(mark);
        return true;
      },

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
        ...(config.checkpoints
          ? {
              checkpoint: {
                intervalMs: config.checkpoints.intervalMs,
                round: () => this.checkpointRound(),
                onRound: (result: "ok" | "failed" | "idle", ms: number) => {
                  if (result === "idle") return;
                  if (this.broker.isMetricsEnabled())
                    this.broker.metrics.increment(M.checkpointRounds, { result });
                  if (result === "failed") this.logger.warn({ ms }, "checkpoint round failed");
                  else this.logger.debug({ ms }, "checkpoint round");
                },
              },
            }
          : {}),
      });
      this.appliers = new Appliers();
      this.pipeline = new Pipeline(
        this.broker,
        this.source.name.split(":")[0] ?? this.source.name,
        (p) => {
          if (!this.appliers.note(p)) this.checkAppliers("superseded");
        },
      );
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
