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
import { Appliers, type Process } from "./appliers";
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
  /** The actor processes holding records of this node's not yet committed offsets. */
  appliers: Appliers;
}

interface NodeEvent {
  node: { id: string; services?: { name: string }[] };
}

function hostsActors(node: NodeEvent["node"]): boolean {
  return (node.services ?? []).some((s) => s.name === "aggregator" || s.name === "anomaly");
}

interface Methods {
  announce(force: boolean): void;
  liveInstance(nodeID: string): string | null;
  checkAppliers(why: string, always?: boolean): Process[];
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
       * A node that held per-symbol actors vanished without saying goodbye (crash, SIGKILL), or
       * came back under the same ID as a new process (Moleculer reports no disconnect then, only
       * an update): if it applied records of this node since the last commit, their changes
       * since its last checkpoint are gone, so the log is read again from the last commit. A
       * node that leaves gracefully hands its states over, written first: nothing is lost.
       */
      "$node.disconnected"(this: This, ctx: Context<NodeEvent & { unexpected: boolean }>) {
        const { node, unexpected } = ctx.params;
        if (!unexpected) this.appliers.forgetNode(node.id);
        // A crashed actor node may hold states handed to it by others, never applied from here:
        // without checkpoints (where handoffs are not written first) only the log rebuilds them.
        this.checkAppliers(`${node.id} disconnected`, unexpected && hostsActors(node));
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

      /** Rewinds when a process that holds uncommitted records is gone; returns those processes. */
      checkAppliers(this: This, why: string, always = false): Process[] {
        // A process that stops running the service while its node stays up (it leaves: its
        // states are pushed away, written first) stays noted until its node disconnects, which
        // forgets it. Until then rounds fail, so nothing is committed past what a leaving node
        // has not handed over yet. Services are fixed per process (SERVICES), so every such
        // process disconnects soon after.
        const lost = this.appliers.lost((p) => this.liveInstance(p.nodeID) === p.instanceID);
        if ((lost.length === 0 && !always) || !this.source.rewind) return lost;
        // The rewind takes care of them: a round after it covers only what is applied anew.
        this.appliers.forget(lost);
        this.logger.warn(
          { lost: [...new Set(lost.map((p) => p.nodeID))], why },
          "an actor process holding uncommitted records was lost; replaying the log from the last checkpoint",
        );
        this.source
          .rewind()
          .catch((err: unknown) =>
            this.logger.error({ err: (err as Error).message }, "rewind failed"),
          );
        return lost;
      },

      /**
       * Asks every node of every actor service to write its changed states. True only when all of
       * them did, each one's view of its service's members equals the one called (a member this
       * node does not know yet may hold states that nobody wrote), each answer came from the
       * instance this node knew, and every process that applied records of this node before the
       * round answered it (one that did not is gone, with what it had not written).
       */
      async checkpointRound(this: This): Promise<boolean> {
        const mark = this.appliers.mark();
        const calls = ACTOR_SERVICES.map((service) => ({
          service,
          nodes: members(this.broker, service),
        }));
        if (calls.some((c) => c.nodes.length === 0)) return false;
        const results = await Promise.all(
          calls.map(async ({ service, nodes }) => {
            const known = nodes.map((id) => this.liveInstance(id));
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
            const wrote = new Set(answers.map((a) => `${a.nodeID}/${a.instanceID}`));
            return (
              answers.every(
                (a, i) => a.instanceID === known[i] && [...a.members].sort().join(",") === expected,
              ) &&
              this.appliers
                .before(mark)
                .every((p) => p.service !== service || wrote.has(`${p.nodeID}/${p.instanceID}`))
            );
          }),
        );
        if (!results.every(Boolean)) {
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
        (p) => this.appliers.note(p),
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
