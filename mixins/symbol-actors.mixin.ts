/**
 * Per-symbol actors spread over a cluster: what the aggregator and the anomaly service share.
 * Wiring only: who may act on a symbol is decided by custody (src/custody/custody.ts).
 *
 * Routing: every symbol has one owner among the live nodes hosting the service by rendezvous
 * hashing (src/cluster/rendezvous.ts), which is also the Moleculer strategy of the `apply` and
 * query actions. A node refuses (retryably, 409) a batch holding a symbol it does not own under its
 * own view, so a call routed on a stale view is retried. Views may disagree for a while; the
 * custody leases are what keeps a state in one place and fences a superseded holder.
 *
 * Moves: on a membership change a node asks the new owner of every symbol it no longer owns to
 * `adopt` it, and the owner pulls it (acquire: the holder is asked to `release`); a node that
 * stops gracefully releases everything to the store first. Before the first batch or query of a
 * symbol it does not hold, the owner acquires it the same way; a lost holder is superseded.
 */
import {
  type Context,
  type Service,
  type ServiceSchema,
  type ServiceSettingSchema,
} from "moleculer";
import { SymbolActors, type ActorRole, type ApplyCounts } from "../src/actors/symbol-actors";
import { members, Ownership } from "../src/cluster/membership";
import type { Config } from "../src/config";
import { Custody, CustodyBusy, type CheckpointResult as Written } from "../src/custody/custody";
import {
  JetStreamCustodyStore,
  MemoryCustodyStore,
  type CustodyStore,
  type Holder,
} from "../src/custody/store";
import { StallWatch } from "../src/custody/stall-watch";
import {
  badBatch,
  custodyUnavailable,
  ERR_BAD_BATCH,
  nativeFailure,
  unknownMember,
  wrongOwner,
} from "../src/errors";
import { M, registerMetrics, timed } from "../src/metrics";
import { isNativeError, native, type Binding } from "../src/native";
import { Outbox, splitOutbox, withOutbox, type Release } from "../src/publish/outbox";
import { PUBLISHER_SHARD, type PublishReply } from "../src/contracts/publish";

export interface ApplyParams {
  batch: Buffer;
  /** Wall-clock ms when the batch's records were produced (oldest), for the latency histogram. */
  producedAtMs?: number;
}

/** The process that answered, and its custody generation (src/custody/appliers.ts). */
export interface ProcessReply {
  nodeID: string;
  instanceID: string;
  generation: number;
}

/** What `apply` answers: the batch's counts, and which process applied it. */
export type ApplyReply = ApplyCounts & ProcessReply;

export interface Handoff {
  time: string;
  service: string;
  from: string;
  to: string;
  symbols: number;
  bytes: number;
  /** pull: asked of its live holder; released: free in the store (a node left); lost: superseded. */
  why: "pull" | "released" | "lost";
}

export type CheckpointResult = Written & ProcessReply;

const HANDOFF_LOG = 100;
const PUSH_CHUNK = 200;
const STALL_TICK_MS = 100;
/** Attempts of an `adopt` of released states (about 15 s with the backoff) before they wait for their next use. */
const ADOPT_ATTEMPTS = 20;

export interface SymbolActorsVars {
  actors: SymbolActors;
  ownership: Ownership;
  custody: Custody;
  store: CustodyStore;
  handoffs: Handoff[];
  leaving: boolean;
  rebalancing: Promise<void>;
  watch: StallWatch;
  /** The lease re-read after the last stall (see `afterStall`). */
  revalidating: Promise<void>;
  /** Records waiting for Kafka, kept with each symbol's state (src/publish/outbox.ts). */
  outbox: Outbox;
  /** The running publish round, if any (one at a time keeps each symbol's records in order). */
  publishing: Promise<void> | null;
  publishTimer: NodeJS.Timeout | null;
}

export interface SymbolActorsMethods {
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
  refreshMembership(): boolean;
  ensureOwned(symbols: string[]): void;
  acquire(symbols: string[]): Promise<void>;
  ensureServing(symbol: string): Promise<void>;
  pushAway(): Promise<void>;
  logHandoff(h: Omit<Handoff, "time" | "service">, names: readonly string[]): void;
  countHeld(): void;
  process(): ProcessReply;
  afterStall(): Promise<void>;
  publishRound(): Promise<void>;
  outboxStats(): OutboxStats;
}

export interface OutboxStats {
  pending: number;
  published: number;
  /** Age of the oldest pending record, ms (null: none pending). */
  oldestPendingMs: number | null;
}

type This = Service & SymbolActorsVars & SymbolActorsMethods;

function openStore(config: Config, broker: Service["broker"]): Promise<CustodyStore> {
  const { natsUrl, bucket } = config.custody;
  if (natsUrl !== null) return JetStreamCustodyStore.open(natsUrl, bucket);
  // In-process brokers of one namespace (Fake transporter) share a store; a lone broker owns one.
  return Promise.resolve(
    broker.transit
      ? MemoryCustodyStore.named(`${bucket}/${broker.namespace}`)
      : new MemoryCustodyStore(),
  );
}

export function symbolActorsMixin(config: Config, role: ActorRole): Partial<ServiceSchema> {
  // The topic this service's records go to (bars from the aggregator, anomalies from the detector).
  const publishTopic =
    config.publish === null
      ? null
      : role.bars
        ? config.publish.barsTopic
        : config.publish.anomaliesTopic;
  const mixin: Partial<ServiceSchema<ServiceSettingSchema, SymbolActorsMethods, SymbolActorsVars>> =
    {
      created(this: This) {
        registerMetrics(this.broker);
        this.actors = new SymbolActors(config, role);
        this.ownership = new Ownership();
        this.handoffs = [];
        this.leaving = false;
        this.rebalancing = Promise.resolve();
        this.revalidating = Promise.resolve();
        this.watch = new StallWatch(STALL_TICK_MS);
        this.outbox = new Outbox();
        this.publishing = null;
        this.publishTimer = null;
      },

      async started(this: This) {
        this.refreshMembership();
        this.store = await openStore(config, this.broker);
        const engine = this.actors.engine;
        const me: Holder = { nodeID: this.broker.nodeID, instanceID: this.broker.instanceID };
        this.custody = new Custody(
          this.name,
          me,
          this.store,
          {
            // A symbol's outbox is written with its state, so it moves and restores with it.
            exportSymbol: (s) => {
              const state = engine.exportSymbol(s);
              return state === null ? null : withOutbox(state, this.outbox.exportSymbol(s));
            },
            importSymbol: (state) => {
              const parts = splitOutbox(state);
              const symbol = engine.importSymbol(parts.engine, false);
              if (parts.outbox !== null) this.outbox.importSymbol(symbol, parts.outbox);
            },
            removeSymbol: (s) => {
              engine.removeSymbol(s);
              this.outbox.removeSymbol(s);
            },
          },
          {
            isLive: (h) => {
              const node = this.broker.registry.nodes.get(h.nodeID);
              return node?.available === true && node.instanceID === h.instanceID;
            },
            release: async (h, symbols) => {
              await this.broker.call(
                `${this.name}.release`,
                { symbols, instanceID: h.instanceID },
                { nodeID: h.nodeID, retries: 0 },
              );
            },
          },
          config.checkpoints !== null,
          {
            acquired: (symbols, from, how, bytes) => {
              // Bars are stamped with the epoch of the state they come from (their version).
              for (const s of symbols) engine.setGeneration(s, this.custody.epochOf(s) ?? 0);
              if (how === "new") return;
              this.logHandoff(
                {
                  from: from?.nodeID ?? "store",
                  to: this.broker.nodeID,
                  symbols: symbols.length,
                  bytes,
                  why: how === "stolen" ? "lost" : how === "pulled" ? "pull" : "released",
                },
                symbols,
              );
              if (how === "stolen" && config.checkpoints !== null) {
                this.logger.info({ symbols: symbols.length }, "restored from the checkpoint store");
                if (this.broker.isMetricsEnabled())
                  this.broker.metrics.increment(
                    M.checkpointRestored,
                    { service: this.name },
                    symbols.length,
                  );
              }
            },
            illegalMove: (symbol, from, to) => {
              this.logger.error({ symbol, from, to }, "custody: illegal lease move (a bug)");
              if (this.broker.isMetricsEnabled())
                this.broker.metrics.increment(M.custodyIllegalMoves, { service: this.name });
            },
            dropped: (symbol, why) => {
              this.logger.warn({ symbol, why }, "state superseded by a newer epoch; dropped");
              if (this.broker.isMetricsEnabled())
                this.broker.metrics.increment(M.custodyDropped, { service: this.name });
              this.countHeld();
            },
          },
        );
        this.logger.info(
          { bucket: config.custody.bucket, nats: config.custody.natsUrl !== null },
          "custody store open",
        );
        if (publishTopic !== null)
          this.publishTimer = setInterval(() => {
            this.publishing ??= this.publishRound().finally(() => (this.publishing = null));
          }, config.publish!.intervalMs);
      },

      /** A graceful stop hands every symbol to its next owner before the node leaves. */
      async stopped(this: This) {
        this.leaving = true;
        if (this.publishTimer) clearInterval(this.publishTimer);
        await this.publishing;
        await this.rebalancing;
        await this.pushAway();
        this.watch.stop();
        await this.store?.close();
      },

      events: {
        "$services.changed"(this: This) {
          if (this.refreshMembership() && !this.leaving) {
            this.rebalancing = this.rebalancing.then(() => this.pushAway());
          }
        },
        "$node.disconnected"(this: This) {
          this.refreshMembership();
        },
      },

      actions: {
        /** Applies one packed trade batch of symbols this node owns; idempotent, so callers may retry. */
        apply: {
          strategy: "Rendezvous",
          params: {
            batch: { type: "class", instanceOf: Buffer },
            producedAtMs: { type: "number", optional: true },
          },
          async handler(this: This, ctx: Context<ApplyParams>): Promise<ApplyReply> {
            await this.afterStall();
            let symbols: string[];
            try {
              symbols = native.batchSymbols(ctx.params.batch);
            } catch (err: unknown) {
              throw isNativeError(err, ERR_BAD_BATCH)
                ? badBatch((err as Error).message, err)
                : nativeFailure(err);
            }
            this.refreshMembership();
            this.ensureOwned(symbols);
            await this.acquire(symbols);
            // Same tick as the apply: nothing can release or drop a state in between.
            try {
              this.custody.assertHeld(symbols);
            } catch (err: unknown) {
              const busy = err as CustodyBusy;
              throw wrongOwner(busy.symbol, undefined, `${this.broker.nodeID}: ${busy.message}`);
            }
            const result = timed(this.broker, `${this.name}.apply`, () =>
              this.actors.apply(ctx.params.batch, Date.now()),
            );
            this.custody.touched(symbols);
            this.countHeld();
            this.onApplied(result, ctx.params);
            return { ...SymbolActors.counts(result), ...this.process() };
          },
        },

        /**
         * Gives up the listed symbols: each held one is written to the custody store with no
         * holder, then forgotten. `instanceID` names the process the caller read from the store.
         */
        release: {
          params: {
            symbols: { type: "array", items: "string", max: 100_000 },
            instanceID: { type: "string", optional: true },
          },
          async handler(this: This, ctx: Context<{ symbols: string[]; instanceID?: string }>) {
            if (
              ctx.params.instanceID !== undefined &&
              ctx.params.instanceID !== this.broker.instanceID
            )
              return { released: 0 };
            // A node serves (and acquires) before every other node has its INFO: releasing to a
            // member this node does not know yet would have it take the symbols straight back.
            this.refreshMembership();
            const from = ctx.nodeID;
            if (from && from !== this.broker.nodeID && !this.ownership.current.includes(from))
              throw unknownMember(this.broker.nodeID, from, this.name);
            const { symbols } = await this.custody.release(ctx.params.symbols);
            return { released: symbols.length };
          },
        },

        /** Takes over symbols released to this node (the states come from the custody store). */
        adopt: {
          params: {
            symbols: { type: "array", items: "string", max: 100_000 },
            attempts: { type: "number", integer: true, min: 1, max: 100, default: 1 },
          },
          async handler(this: This, ctx: Context<{ symbols: string[]; attempts: number }>) {
            // States released by a leaving node are held by no one until acquired: it asks for
            // several attempts (a claim racing another, a holder not knowing this node yet).
            for (let attempt = 0; ; attempt++) {
              this.refreshMembership();
              const mine = ctx.params.symbols.filter(
                (s) => this.ownership.owner(s) === this.broker.nodeID && !this.custody.isHeld(s),
              );
              if (mine.length === 0 || this.leaving) return { adopted: attempt };
              try {
                await this.acquire(mine);
                return { adopted: attempt + 1 };
              } catch (err: unknown) {
                if (attempt + 1 >= ctx.params.attempts) throw err;
              }
              await new Promise((resolve) =>
                setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)),
              );
            }
          },
        },

        /** A symbol's whole state as versioned bytes, or null when this node does not hold it. */
        export: {
          params: { symbol: { type: "string", max: 64 } },
          handler(this: This, ctx: Context<{ symbol: string }>) {
            return this.actors.engine.exportSymbol(ctx.params.symbol);
          },
        },

        /**
         * Writes every held symbol changed since its last write to the custody store; resolves
         * once the store has them all, with this process's custody generation.
         */
        checkpoint: {
          async handler(this: This): Promise<CheckpointResult> {
            await this.afterStall();
            const written = await this.custody.checkpoint();
            if (this.broker.isMetricsEnabled()) {
              this.broker.metrics.increment(
                M.checkpointStates,
                { service: this.name },
                written.states,
              );
              this.broker.metrics.increment(
                M.checkpointBytes,
                { service: this.name },
                written.bytes,
              );
            }
            return { ...written, ...this.process() };
          },
        },

        /** Recent handoffs of this node (newest first). */
        handoffs: {
          handler(this: This): Handoff[] {
            return [...this.handoffs].reverse();
          },
        },

        /** This node's view: members of the service, the owner of a symbol, and its epoch here. */
        owner: {
          params: { symbol: { type: "string", max: 64 } },
          handler(this: This, ctx: Context<{ symbol: string }>) {
            this.refreshMembership();
            const epoch = this.custody.epochOf(ctx.params.symbol);
            return {
              symbol: ctx.params.symbol,
              owner: this.ownership.owner(ctx.params.symbol) ?? null,
              members: this.ownership.current,
              held: epoch !== undefined,
              epoch: epoch ?? null,
            };
          },
        },
      },

      methods: {
        /**
         * After this process stalled for longer than a heartbeat interval (others may have taken
         * its symbols meanwhile), every held lease is re-read and the superseded states dropped
         * before anything is applied, written or answered. Callers during the re-read wait for it.
         */
        afterStall(this: This): Promise<void> {
          const gapMs = this.watch.takeGapMs();
          if (gapMs > config.heartbeat.intervalS * 1000)
            this.revalidating = this.revalidating.then(async () => {
              try {
                const dropped = await this.custody.revalidate();
                this.logger.warn(
                  { gapMs: Math.round(gapMs), dropped },
                  "leases re-read after a stall",
                );
              } catch (err: unknown) {
                // Writes stay fenced by the store; only the early drop is missed.
                this.logger.warn(
                  { err: (err as Error).message },
                  "cannot re-read leases after a stall",
                );
              }
            });
          return this.revalidating;
        },

        /**
         * One publish round: the states with records not yet durable are written (under their
         * leases), then every durable record goes to the publisher in one call; what it
         * acknowledges leaves the outbox. A failure leaves everything for the next round.
         */
        async publishRound(this: This) {
          try {
            const undurable = this.outbox.undurable();
            if (undurable.size > 0) {
              const written = new Set(await this.custody.persist([...undurable.keys()]));
              this.outbox.markDurable(new Map([...undurable].filter(([s]) => written.has(s))));
            }
            const releases: Release[] = this.outbox.releasable();
            if (releases.length > 0) {
              const reply = await this.broker.call<PublishReply, object>(
                "publisher.publish",
                { service: this.name, releases },
                { meta: { shard: PUBLISHER_SHARD } },
              );
              const before = this.outbox.published;
              for (const a of reply.acked) this.outbox.acked(a.symbol, a.through);
              if (this.broker.isMetricsEnabled())
                this.broker.metrics.increment(
                  M.outboxPublished,
                  { service: this.name },
                  this.outbox.published - before,
                );
            }
          } catch (err: unknown) {
            this.logger.warn({ err: (err as Error).message }, "publish round failed; retrying");
          } finally {
            if (this.broker.isMetricsEnabled()) {
              const { pending, oldestPendingMs } = this.outboxStats();
              this.broker.metrics.set(M.outboxPending, pending, { service: this.name });
              this.broker.metrics.set(M.outboxOldestPending, (oldestPendingMs ?? 0) / 1000, {
                service: this.name,
              });
            }
          }
        },

        outboxStats(this: This): OutboxStats {
          const oldest = this.outbox.oldestAtMs();
          return {
            pending: this.outbox.pending,
            published: this.outbox.published,
            oldestPendingMs: oldest === null ? null : Math.max(0, Date.now() - oldest),
          };
        },

        process(this: This): ProcessReply {
          return {
            nodeID: this.broker.nodeID,
            instanceID: this.broker.instanceID,
            generation: this.custody.generation,
          };
        },

        refreshMembership(this: This): boolean {
          return this.ownership.update(
            members(this.broker, this.name, this.leaving ? this.broker.nodeID : undefined),
          );
        },

        ensureOwned(this: This, symbols: string[]) {
          if (this.leaving)
            throw wrongOwner(symbols[0] ?? "?", undefined, `${this.broker.nodeID} is leaving`);
          for (const s of symbols) {
            const owner = this.ownership.owner(s);
            if (owner !== this.broker.nodeID)
              throw wrongOwner(s, owner, `${this.broker.nodeID} does not own ${s}`);
          }
        },

        async acquire(this: This, symbols: string[]) {
          try {
            await this.custody.acquire(symbols);
          } catch (err: unknown) {
            if (err instanceof CustodyBusy)
              throw wrongOwner(err.symbol, undefined, `${this.broker.nodeID}: ${err.message}`);
            throw custodyUnavailable(err);
          }
        },

        /** Before a query is answered from a symbol's state: it is held here under the current epoch. */
        async ensureServing(this: This, symbol: string) {
          await this.afterStall();
          this.refreshMembership();
          this.ensureOwned([symbol]);
          await this.acquire([symbol]);
          let current: boolean;
          try {
            current = await this.custody.verify(symbol);
          } catch (err: unknown) {
            throw custodyUnavailable(err);
          }
          if (!current)
            throw wrongOwner(
              symbol,
              undefined,
              `${this.broker.nodeID} was superseded for ${symbol}`,
            );
        },

        /** Releases every held symbol owned elsewhere and tells its owner; what fails is kept. */
        /**
         * Moves every held symbol owned elsewhere to its owner. While this node stays, the owner
         * pulls them (`adopt`: it acquires, asking this node to release), so a state is held by
         * someone at every moment and an owner that does not agree yet leaves it here. A node
         * that is leaving releases them to the store first, then asks the owner to adopt.
         */
        async pushAway(this: This) {
          this.refreshMembership();
          const byOwner = new Map<string, string[]>();
          for (const s of this.custody.held().keys()) {
            const owner = this.ownership.owner(s);
            if (owner === undefined || owner === this.broker.nodeID) continue;
            byOwner.set(owner, [...(byOwner.get(owner) ?? []), s]);
          }
          const adopt = (owner: string, symbols: string[], attempts: number) =>
            this.broker.call(
              `${this.name}.adopt`,
              { symbols, attempts },
              { nodeID: owner, retries: 0, timeout: 60_000 },
            );
          await Promise.all(
            [...byOwner].map(async ([owner, symbols]) => {
              for (let i = 0; i < symbols.length; i += PUSH_CHUNK) {
                const chunk = symbols.slice(i, i + PUSH_CHUNK);
                try {
                  if (!this.leaving) {
                    await adopt(owner, chunk, 1);
                    continue;
                  }
                  const released = await this.custody.release(chunk);
                  if (released.symbols.length > 0)
                    void adopt(owner, released.symbols, ADOPT_ATTEMPTS).catch(() => undefined);
                } catch (err: unknown) {
                  this.logger.debug(
                    { owner, err: (err as Error).message },
                    "symbols not moved yet; their owner acquires them on next use",
                  );
                }
              }
            }),
          );
        },

        countHeld(this: This) {
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.set(M.symbols, this.custody.size, { service: this.name });
        },

        /** Records a move; the log line names up to 20 of the symbols. */
        logHandoff(this: This, h: Omit<Handoff, "time" | "service">, names: readonly string[]) {
          this.handoffs.push({ time: new Date().toISOString(), service: this.name, ...h });
          if (this.handoffs.length > HANDOFF_LOG) this.handoffs.shift();
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.increment(
              M.handoffs,
              { service: this.name, why: h.why },
              h.symbols,
            );
          this.logger.info({ ...h, names: names.slice(0, 20) }, "handoff");
          this.countHeld();
        },
      },
    };
  // Moleculer's typings cannot say that the concrete service provides `onApplied`.
  return mixin as unknown as Partial<ServiceSchema>;
}
