/**
 * Ingest: owns the trade source (synthetic feed, file replay, Kafka) and drives each of its
 * batches through the pipeline. Broadcasts `ingest.status` so that aggregators know when the
 * feed is live (wall-clock bar closing) and gateways can answer /api/ready.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { CheckpointResult } from "../../mixins/symbol-actors.mixin";
import { members } from "../../src/cluster/membership";
import type { Config } from "../../src/config";
import { M, registerMetrics } from "../../src/metrics";
import { Pipeline } from "./pipeline";
import { createSource, type TradeSource } from "./sources";

const STATUS_INTERVAL_MS = 2000;
const ACTOR_SERVICES = ["aggregator", "anomaly"] as const;
/** A round waits this long for a node's writes (a full write of every held symbol can be large). */
const CHECKPOINT_CALL_TIMEOUT_MS = 60_000;

interface Vars {
  source: TradeSource;
  pipeline: Pipeline;
  statusTimer: NodeJS.Timeout | null;
  lastLive: boolean | null;
  /** Last seen instance of every actor node: a node restarted under the same ID is a loss too. */
  instances: Map<string, string>;
}

interface NodeEvent {
  node: { id: string; instanceID?: string | null; services?: { name: string }[] };
}

interface Methods {
  announce(force: boolean): void;
  actorNodeLost(nodeID: string, why: string): void;
  noteInstance(node: NodeEvent["node"]): void;
  checkpointRound(): Promise<boolean>;
}

type This = Service & Vars & Methods;

function hostsActors(node: NodeEvent["node"]): boolean {
  return (node.services ?? []).some((s) => s.name === "aggregator" || s.name === "anomaly");
}

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
       * symbols' new owners start from their checkpoints (or empty, without checkpoints), so the
       * log is read again from the last checkpoint (or the replay window) to rebuild them.
       */
      "$node.disconnected"(
        this: This,
        ctx: Context<{ node: { id: string; services?: { name: string }[] }; unexpected: boolean }>,
      ) {
        const { node, unexpected } = ctx.params;
        this.instances.delete(node.id);
        if (unexpected && hostsActors(node)) this.actorNodeLost(node.id, "disconnected");
      },
      /**
       * A node that crashed and restarted under the same ID before its heartbeats timed out is
       * never reported disconnected: only its new instance ID tells that its state was lost.
       */
      "$node.connected"(this: This, ctx: Context<NodeEvent>) {
        this.noteInstance(ctx.params.node);
      },
      "$node.updated"(this: This, ctx: Context<NodeEvent>) {
        this.noteInstance(ctx.params.node);
      },
    },

    methods: {
      noteInstance(this: This, node: NodeEvent["node"]) {
        if (node.instanceID === undefined || node.instanceID === null || !hostsActors(node)) return;
        const before = this.instances.get(node.id);
        this.instances.set(node.id, node.instanceID);
        if (before !== undefined && before !== node.instanceID)
          this.actorNodeLost(node.id, "restarted");
      },

      actorNodeLost(this: This, nodeID: string, why: string) {
        if (!this.source.rewind) return;
        this.logger.warn(
          { lost: nodeID, why },
          "an actor node was lost; replaying the log to rebuild its symbols",
        );
        this.source
          .rewind()
          .catch((err: unknown) =>
            this.logger.error({ err: (err as Error).message }, "rewind failed"),
          );
      },

      /**
       * Asks every node of every actor service to write its changed states. True only when all of
       * them did, each one's view of its service's members equals the one called (a member this
       * node does not know yet may hold states that nobody wrote), and each answer came from the
       * instance this node knew (a node restarted under the same ID lost what it held).
       */
      async checkpointRound(this: This): Promise<boolean> {
        const calls = ACTOR_SERVICES.map((service) => ({
          service,
          nodes: members(this.broker, service),
        }));
        if (calls.some((c) => c.nodes.length === 0)) return false;
        const results = await Promise.all(
          calls.map(async ({ service, nodes }) => {
            const known = nodes.map((id) => this.broker.registry.nodes.get(id)?.instanceID);
            const answers = await Promise.all(
              nodes.map((nodeID) =>
                this.broker.call<CheckpointResult, object>(
                  `${service}.checkpoint`,
                  {},
                  { nodeID, timeout: CHECKPOINT_CALL_TIMEOUT_MS, retries: 0 },
                ),
              ),
            );
            const expected = nodes.join(",");
            return answers.every(
              (a, i) => a.instanceID === known[i] && [...a.members].sort().join(",") === expected,
            );
          }),
        );
        return results.every(Boolean);
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
      this.pipeline = new Pipeline(this.broker, this.source.name.split(":")[0] ?? this.source.name);
      this.statusTimer = null;
      this.lastLive = null;
      this.instances = new Map();
    },

    async started(this: This) {
      // Node events before this service started were not seen: take the instances known now.
      for (const node of this.broker.registry.nodes.toArray())
        this.noteInstance(node as unknown as NodeEvent["node"]);
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
