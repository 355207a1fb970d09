/**
 * Per-symbol actors spread over a cluster: what the aggregator and the anomaly service share.
 *
 * Ownership: every symbol has exactly one owner among the live nodes hosting the service, chosen
 * by rendezvous hashing (src/cluster/rendezvous.ts), which is also the Moleculer strategy of the
 * `apply` and query actions. A node refuses (retryably, 409) a batch holding a symbol it does not
 * own under its own view of the membership, so a call routed on a stale view is retried, never
 * applied in the wrong place.
 *
 * Handoff: a symbol's state (bars, detector, dedupe, watermarks) lives in one place at a time.
 * - Push: when the membership changes, a node hands each symbol it no longer owns to its new owner
 *   (`adopt`); a node that stops gracefully hands over everything first.
 * - Pull: before the first batch (or query) of a symbol it does not hold, the owner asks the other
 *   nodes to `release` it. Release is export-and-forget in one synchronous step, so the state can
 *   never be in two places; trades that reached the new owner before the state did are merged with
 *   it exactly (bars are mergeable, ids and watermarks unite).
 *
 * Checkpoints (when a checkpoint store is configured, see src/checkpoint/): `checkpoint` writes
 * every held symbol changed since its last write; a Kafka ingest node calls it on every actor node
 * before it commits its offsets (services/ingest/sources/kafka.ts). A state is also written before
 * it leaves the node (release, push), so that no symbol's changes are ever only in flight. The new
 * owner of a symbol nobody holds (its node was lost, or the whole cluster restarted) loads the
 * checkpoint before it applies anything to it: applying first and merging the checkpoint later
 * would count the trades both contain twice.
 */
import {
  Errors,
  type Context,
  type Service,
  type ServiceSchema,
  type ServiceSettingSchema,
} from "moleculer";
import { SymbolActors, type ActorRole, type ApplyCounts } from "../src/actors/symbol-actors";
import { JetStreamCheckpointStore, type CheckpointStore } from "../src/checkpoint/store";
import { members, Ownership } from "../src/cluster/membership";
import type { Config } from "../src/config";
import { badBatch } from "../src/errors";
import { M, registerMetrics, timed } from "../src/metrics";
import { native, type Binding } from "../src/native";

export interface ApplyParams {
  batch: Buffer;
  /** Wall-clock ms when the batch's records were produced (oldest), for the latency histogram. */
  producedAtMs?: number;
}

/**
 * What `apply` answers: the batch's counts, and which process applied it (an ingest node tracks
 * the processes holding its uncommitted records, services/ingest/appliers.ts).
 */
export interface ApplyReply extends ApplyCounts {
  nodeID: string;
  instanceID: string;
}

export interface SymbolState {
  symbol: string;
  state: Buffer;
}

export interface Handoff {
  time: string;
  service: string;
  from: string;
  to: string;
  symbols: number;
  bytes: number;
  why: "membership" | "leaving" | "pull";
}

export const ERR_WRONG_OWNER = "ERR_WRONG_OWNER";
const HANDOFF_LOG = 100;
/**
 * How long a node that left the membership but is still connected counts as handing its states
 * over (a graceful stop: Moleculer's tracking waits up to 10 s for running requests, then the
 * handoff runs). After that its symbols are restored from their checkpoints as for a lost node.
 */
const LEAVING_GRACE_MS = 30_000;
const PUSH_CHUNK = 200;

export interface SymbolActorsVars {
  actors: SymbolActors;
  ownership: Ownership;
  held: Set<string>;
  /** Symbols already looked for elsewhere in this membership epoch. */
  checked: Map<string, number>;
  handoffs: Handoff[];
  leaving: boolean;
  rebalancing: Promise<void>;
  checkpoints: CheckpointStore | null;
  /** Held symbols changed since their last checkpoint write. */
  dirty: Set<string>;
  /** The running checkpoint write (calls are serialised: a round waits for the previous one). */
  checkpointing: Promise<unknown>;
  /** Symbols whose state is being looked for (peers, then checkpoint), so that it is loaded once. */
  restoring: Map<string, Promise<void>>;
}

export interface CheckpointResult {
  nodeID: string;
  /** The answering process: a node restarted under the same ID has a new one. */
  instanceID: string;
  states: number;
  bytes: number;
  /** This node's view of the service's members when it wrote (the caller checks it matches its own). */
  members: string[];
}

export interface SymbolActorsMethods {
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
  refreshMembership(): boolean;
  ensureOwned(symbols: string[]): void;
  ensureHeld(ctx: Context, symbols: string[]): Promise<void>;
  take(symbols: string[]): SymbolState[];
  takeDurably(symbols: string[]): Promise<SymbolState[]>;
  restore(ctx: Context, symbols: string[]): Promise<void>;
  writeCheckpoint(): Promise<CheckpointResult>;
  install(states: SymbolState[]): void;
  pushAway(why: Handoff["why"]): Promise<void>;
  logHandoff(h: Omit<Handoff, "time" | "service">): void;
  countHeld(): void;
}

type This = Service & SymbolActorsVars & SymbolActorsMethods;

function wrongOwner(
  symbol: string,
  owner: string | undefined,
  nodeID: string,
): Errors.MoleculerRetryableError {
  return new Errors.MoleculerRetryableError(
    `${nodeID} does not own ${symbol} (owner: ${owner ?? "none"})`,
    409,
    ERR_WRONG_OWNER,
    { symbol, owner },
  );
}

export function symbolActorsMixin(config: Config, role: ActorRole): Partial<ServiceSchema> {
  const mixin: Partial<ServiceSchema<ServiceSettingSchema, SymbolActorsMethods, SymbolActorsVars>> =
    {
      created(this: This) {
        registerMetrics(this.broker);
        this.actors = new SymbolActors(config, role);
        this.ownership = new Ownership();
        this.held = new Set();
        this.checked = new Map();
        this.handoffs = [];
        this.leaving = false;
        this.rebalancing = Promise.resolve();
        this.checkpoints = null;
        this.dirty = new Set();
        this.checkpointing = Promise.resolve();
        this.restoring = new Map();
      },

      async started(this: This) {
        this.refreshMembership();
        if (config.checkpoints) {
          const { natsUrl, bucket } = config.checkpoints;
          this.checkpoints = await JetStreamCheckpointStore.open(natsUrl, bucket);
          this.logger.info({ bucket }, "checkpoint store open");
        }
      },

      /** A graceful stop hands every symbol to its next owner before the node leaves. */
      async stopped(this: This) {
        this.leaving = true;
        await this.rebalancing;
        await this.pushAway("leaving");
        await this.checkpoints?.close();
      },

      events: {
        "$services.changed"(this: This) {
          if (this.refreshMembership() && !this.leaving) {
            this.rebalancing = this.rebalancing.then(() => this.pushAway("membership"));
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
          async handler(this: This, ctx: Context<ApplyParams>) {
            let symbols: string[];
            try {
              symbols = native.batchSymbols(ctx.params.batch);
            } catch (err: unknown) {
              throw badBatch((err as Error).message, err);
            }
            this.refreshMembership();
            this.ensureOwned(symbols);
            await this.ensureHeld(ctx, symbols);
            // Ownership may have moved while the states were fetched.
            this.ensureOwned(symbols);
            const result = timed(this.broker, `${this.name}.apply`, () =>
              this.actors.apply(ctx.params.batch, Date.now()),
            );
            for (const s of symbols) {
              this.held.add(s);
              this.dirty.add(s);
            }
            this.countHeld();
            this.onApplied(result, ctx.params);
            const reply: ApplyReply = {
              ...SymbolActors.counts(result),
              nodeID: this.broker.nodeID,
              instanceID: this.broker.instanceID,
            };
            return reply;
          },
        },

        /** Gives up the states of the listed symbols this node holds (export and forget, atomically). */
        release: {
          params: { symbols: { type: "array", items: "string", max: 100_000 } },
          async handler(this: This, ctx: Context<{ symbols: string[] }>): Promise<SymbolState[]> {
            // A node serves (and pulls) before every other node has its INFO. Giving states to a
            // member this node does not know yet would let this node, which still thinks it owns
            // them, restore them from the checkpoint too: two live copies. It asks again later.
            this.refreshMembership();
            const from = ctx.nodeID;
            if (from && from !== this.broker.nodeID && !this.ownership.current.includes(from))
              throw new Errors.MoleculerRetryableError(
                `${this.broker.nodeID} does not know ${from} as a member of ${this.name} yet`,
                409,
                "ERR_UNKNOWN_MEMBER",
                { from },
              );
            const states = await this.takeDurably(ctx.params.symbols);
            if (states.length > 0)
              this.logHandoff({
                from: this.broker.nodeID,
                to: ctx.nodeID ?? "?",
                symbols: states.length,
                bytes: states.reduce((n, s) => n + s.state.length, 0),
                why: "pull",
              });
            return states;
          },
        },

        /** Takes over states handed by another node, merging with what is held. */
        adopt: {
          params: {
            states: {
              type: "array",
              items: {
                type: "object",
                props: { symbol: "string", state: { type: "class", instanceOf: Buffer } },
              },
            },
          },
          handler(this: This, ctx: Context<{ states: SymbolState[] }>) {
            this.install(ctx.params.states);
            return { adopted: ctx.params.states.length };
          },
        },

        /** A symbol's whole state as versioned bytes, or null when this node does not hold it. */
        export: {
          params: { symbol: { type: "string", max: 64 } },
          handler(this: This, ctx: Context<{ symbol: string }>) {
            return this.actors.engine.exportSymbol(ctx.params.symbol);
          },
        },

        /** Installs a state exported by another node, merging with what is held when asked to. */
        import: {
          params: {
            state: { type: "class", instanceOf: Buffer },
            merge: { type: "boolean", default: false },
          },
          handler(this: This, ctx: Context<{ state: Buffer; merge: boolean }>) {
            const symbol = this.actors.engine.importSymbol(ctx.params.state, ctx.params.merge);
            this.held.add(symbol);
            this.dirty.add(symbol);
            return { symbol };
          },
        },

        /**
         * Writes every held symbol changed since its last write to the checkpoint store; resolves
         * once the store has them all. Fails (and keeps them marked) when any write fails.
         */
        checkpoint: {
          async handler(this: This): Promise<CheckpointResult> {
            const run = this.checkpointing.then(() => this.writeCheckpoint());
            this.checkpointing = run.catch(() => undefined);
            return run;
          },
        },

        /** Recent handoffs of this node (newest first). */
        handoffs: {
          handler(this: This): Handoff[] {
            return [...this.handoffs].reverse();
          },
        },

        /** This node's view: members of the service and the owner of a symbol. */
        owner: {
          params: { symbol: { type: "string", max: 64 } },
          handler(this: This, ctx: Context<{ symbol: string }>) {
            this.refreshMembership();
            return {
              symbol: ctx.params.symbol,
              owner: this.ownership.owner(ctx.params.symbol) ?? null,
              members: this.ownership.current,
              held: this.held.has(ctx.params.symbol),
            };
          },
        },
      },

      methods: {
        refreshMembership(this: This): boolean {
          return this.ownership.update(
            members(this.broker, this.name, this.leaving ? this.broker.nodeID : undefined),
          );
        },

        ensureOwned(this: This, symbols: string[]) {
          if (this.leaving) throw wrongOwner(symbols[0] ?? "?", undefined, this.broker.nodeID);
          for (const s of symbols) {
            const owner = this.ownership.owner(s);
            if (owner !== this.broker.nodeID) throw wrongOwner(s, owner, this.broker.nodeID);
          }
        },

        /**
         * Makes sure the states of symbols this node owns but does not hold yet are here: pulled
         * from whoever holds them, else loaded from the checkpoint store. Concurrent calls for the
         * same symbol share one lookup.
         */
        async ensureHeld(this: This, ctx: Context, symbols: string[]) {
          const epoch = this.ownership.epoch;
          const waits: Promise<void>[] = [];
          const missing: string[] = [];
          for (const s of symbols) {
            if (this.held.has(s) || this.checked.get(s) === epoch) continue;
            const pending = this.restoring.get(s);
            if (pending) waits.push(pending);
            else missing.push(s);
          }
          if (missing.length > 0) {
            const lookup = this.restore(ctx, missing).then(() => {
              for (const s of missing) this.checked.set(s, epoch);
            });
            const settled = lookup.finally(() => {
              for (const s of missing) this.restoring.delete(s);
            });
            for (const s of missing)
              this.restoring.set(
                s,
                settled.catch(() => undefined),
              );
            waits.push(settled);
          }
          await Promise.all(waits);
        },

        /** Pulls `symbols` from the other members; what no one holds comes from the checkpoint. */
        async restore(this: This, ctx: Context, symbols: string[]) {
          const self = this.broker.nodeID;
          const others = this.ownership.current.filter((n) => n !== self);
          // A node stopping gracefully withdraws its services before it hands its states over:
          // for a moment it is no member yet still holds them. Loading their checkpoints then
          // and merging the handed-over states later would count the checkpoints' trades twice,
          // so a node that left but is still connected must answer too (it cannot once its
          // services are withdrawn: the restore waits, retryably, until it has gone).
          const leaving = this.ownership
            .leftWithin(LEAVING_GRACE_MS)
            .filter((n) => n !== self && this.broker.registry.nodes.get(n)?.available === true);
          let unanswered = 0;
          const answers = await Promise.all(
            [...others, ...leaving].map((nodeID) =>
              ctx
                .call<SymbolState[], object>(
                  `${this.name}.release`,
                  { symbols },
                  others.includes(nodeID) ? { nodeID } : { nodeID, retries: 0 },
                )
                .catch(() => {
                  unanswered += 1;
                  return [] as SymbolState[];
                }),
            ),
          );
          this.install(answers.flat());
          const store = this.checkpoints;
          if (store === null) return;
          const absent = symbols.filter((s) => !this.held.has(s));
          if (absent.length === 0) return;
          // A member that did not answer may hold one of them: loading its checkpoint now and
          // receiving the live state later would count the checkpoint's trades twice.
          if (unanswered > 0)
            throw new Errors.MoleculerRetryableError(
              `${unanswered} member(s) of ${this.name} did not answer a release; not restoring from the checkpoint yet`,
              503,
              "ERR_RESTORE_PENDING",
            );
          const states = await Promise.all(
            absent.map(async (symbol) => ({ symbol, state: await store.get(this.name, symbol) })),
          );
          const found = states.filter((s): s is SymbolState => s.state !== null);
          this.install(found);
          // Installed states are already in the store as they are: not dirty.
          for (const { symbol } of found) this.dirty.delete(symbol);
          if (found.length === 0) return;
          this.logger.info({ symbols: found.length }, "restored from the checkpoint store");
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.increment(
              M.checkpointRestored,
              { service: this.name },
              found.length,
            );
        },

        /** Writes the dirty held symbols to the checkpoint store. */
        async writeCheckpoint(this: This): Promise<CheckpointResult> {
          this.refreshMembership();
          const members = [...this.ownership.current];
          const store = this.checkpoints;
          if (store === null)
            throw new Errors.MoleculerError(
              `checkpoints are off on ${this.broker.nodeID}`,
              503,
              "ERR_NO_CHECKPOINTS",
            );
          const symbols = [...this.dirty].filter((s) => this.held.has(s));
          this.dirty.clear();
          const states: SymbolState[] = [];
          for (const symbol of symbols) {
            const state = this.actors.engine.exportSymbol(symbol);
            if (state !== null) states.push({ symbol, state });
          }
          try {
            await store.put(this.name, states);
          } catch (err) {
            for (const s of symbols) if (this.held.has(s)) this.dirty.add(s);
            throw err;
          }
          const bytes = states.reduce((n, s) => n + s.state.length, 0);
          if (this.broker.isMetricsEnabled()) {
            this.broker.metrics.increment(
              M.checkpointStates,
              { service: this.name },
              states.length,
            );
            this.broker.metrics.increment(M.checkpointBytes, { service: this.name }, bytes);
          }
          return {
            nodeID: this.broker.nodeID,
            instanceID: this.broker.instanceID,
            states: states.length,
            bytes,
            members,
          };
        },

        /**
         * Takes states that are about to leave the node, after writing them to the checkpoint store:
         * a checkpoint round that runs while a state is in flight finds it on neither node, so the
         * store must already have it. Writes again while batches change them meanwhile.
         */
        async takeDurably(this: This, symbols: string[]): Promise<SymbolState[]> {
          const store = this.checkpoints;
          if (store === null) return this.take(symbols);
          for (let attempt = 0; attempt < 5; attempt++) {
            const held = symbols.filter((s) => this.held.has(s));
            const snapshot: SymbolState[] = [];
            for (const symbol of held) {
              this.dirty.delete(symbol);
              const state = this.actors.engine.exportSymbol(symbol);
              if (state !== null) snapshot.push({ symbol, state });
            }
            try {
              await store.put(this.name, snapshot);
            } catch (err) {
              for (const s of held) if (this.held.has(s)) this.dirty.add(s);
              throw err;
            }
            if (!held.some((s) => this.dirty.has(s))) return this.take(symbols);
          }
          throw new Errors.MoleculerRetryableError(
            "symbol states kept changing while being written; handoff retried later",
            503,
            "ERR_HANDOFF_BUSY",
          );
        },

        take(this: This, symbols: string[]): SymbolState[] {
          const out: SymbolState[] = [];
          for (const symbol of symbols) {
            const state = this.actors.engine.exportSymbol(symbol);
            this.held.delete(symbol);
            if (state === null) continue;
            this.actors.engine.removeSymbol(symbol);
            out.push({ symbol, state });
          }
          return out;
        },

        install(this: This, states: SymbolState[]) {
          for (const { state } of states) {
            const symbol = this.actors.engine.importSymbol(state, true);
            this.held.add(symbol);
            this.dirty.add(symbol);
          }
        },

        /** Hands every held symbol owned elsewhere to its owner; what cannot be delivered is kept. */
        async pushAway(this: This, why: Handoff["why"]) {
          this.refreshMembership();
          const byOwner = new Map<string, string[]>();
          for (const s of this.held) {
            const owner = this.ownership.owner(s);
            if (owner === undefined || owner === this.broker.nodeID) continue;
            byOwner.set(owner, [...(byOwner.get(owner) ?? []), s]);
          }
          for (const [owner, symbols] of byOwner) {
            for (let i = 0; i < symbols.length; i += PUSH_CHUNK) {
              let states: SymbolState[];
              try {
                states = await this.takeDurably(symbols.slice(i, i + PUSH_CHUNK));
              } catch (err: unknown) {
                this.logger.warn(
                  { owner, err: (err as Error).message },
                  "cannot checkpoint states before a handoff; kept",
                );
                continue;
              }
              if (states.length === 0) continue;
              try {
                await this.broker.call(`${this.name}.adopt`, { states }, { nodeID: owner });
                this.logHandoff({
                  from: this.broker.nodeID,
                  to: owner,
                  symbols: states.length,
                  bytes: states.reduce((n, s) => n + s.state.length, 0),
                  why,
                });
              } catch (err: unknown) {
                // The owner went away meanwhile: keep the states; the next membership change retries.
                this.install(states);
                this.logger.warn(
                  { owner, symbols: states.length, err: (err as Error).message },
                  "handoff failed; states kept",
                );
              }
            }
          }
        },

        countHeld(this: This) {
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.set(M.symbols, this.held.size, { service: this.name });
        },

        logHandoff(this: This, h: Omit<Handoff, "time" | "service">) {
          this.handoffs.push({ time: new Date().toISOString(), service: this.name, ...h });
          if (this.handoffs.length > HANDOFF_LOG) this.handoffs.shift();
          if (this.broker.isMetricsEnabled())
            this.broker.metrics.increment(
              M.handoffs,
              { service: this.name, why: h.why },
              h.symbols,
            );
          this.logger.info(h, "handoff");
          this.countHeld();
        },
      },
    };
  // Moleculer's typings cannot say that the concrete service provides `onApplied`.
  return mixin as unknown as Partial<ServiceSchema>;
}
