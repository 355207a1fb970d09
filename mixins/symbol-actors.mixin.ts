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
 */
import {
  Errors,
  type Context,
  type Service,
  type ServiceSchema,
  type ServiceSettingSchema,
} from "moleculer";
import { SymbolActors, type ActorRole } from "../src/actors/symbol-actors";
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
}

export interface SymbolActorsMethods {
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
  refreshMembership(): boolean;
  ensureOwned(symbols: string[]): void;
  ensureHeld(ctx: Context, symbols: string[]): Promise<void>;
  take(symbols: string[]): SymbolState[];
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
      },

      async started(this: This) {
        this.refreshMembership();
        return Promise.resolve();
      },

      /** A graceful stop hands every symbol to its next owner before the node leaves. */
      async stopped(this: This) {
        this.leaving = true;
        await this.rebalancing;
        await this.pushAway("leaving");
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
            for (const s of symbols) this.held.add(s);
            this.countHeld();
            this.onApplied(result, ctx.params);
            return SymbolActors.counts(result);
          },
        },

        /** Gives up the states of the listed symbols this node holds (export and forget, atomically). */
        release: {
          params: { symbols: { type: "array", items: "string", max: 100_000 } },
          handler(this: This, ctx: Context<{ symbols: string[] }>): SymbolState[] {
            const states = this.take(ctx.params.symbols);
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
            return { symbol };
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

        /** Pulls, from whoever holds them, the states of symbols this node owns but does not hold yet. */
        async ensureHeld(this: This, ctx: Context, symbols: string[]) {
          const epoch = this.ownership.epoch;
          const missing = symbols.filter((s) => !this.held.has(s) && this.checked.get(s) !== epoch);
          if (missing.length === 0) return;
          const others = this.ownership.current.filter((n) => n !== this.broker.nodeID);
          const answers = await Promise.all(
            others.map((nodeID) =>
              ctx
                .call<SymbolState[], object>(
                  `${this.name}.release`,
                  { symbols: missing },
                  { nodeID },
                )
                .catch(() => [] as SymbolState[]),
            ),
          );
          this.install(answers.flat());
          for (const s of missing) this.checked.set(s, epoch);
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
          for (const { state } of states)
            this.held.add(this.actors.engine.importSymbol(state, true));
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
              const states = this.take(symbols.slice(i, i + PUSH_CHUNK));
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
