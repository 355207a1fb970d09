/**
 * The actions every per-symbol actor service shares (aggregator, anomaly): `apply` a packed trade
 * batch, and `export` / `import` a symbol's state for handoff between nodes. The service supplies
 * its role (bars, detector) and an `onApplied` hook for its own events and metrics.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { SymbolActors, type ActorRole } from "../src/actors/symbol-actors";
import type { Config } from "../src/config";
import { registerMetrics, timed } from "../src/metrics";
import type { Binding } from "../src/native";

export interface ApplyParams {
  batch: Buffer;
  /** Wall-clock ms when the batch's records were produced (oldest), for the latency histogram. */
  producedAtMs?: number;
}

export interface SymbolActorsVars {
  actors: SymbolActors;
}

export interface SymbolActorsMethods {
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
}

type This = Service & SymbolActorsVars & SymbolActorsMethods;

export function symbolActorsMixin(config: Config, role: ActorRole): Partial<ServiceSchema> {
  const mixin: Partial<ServiceSchema<ServiceSettingSchema, SymbolActorsMethods, SymbolActorsVars>> =
    {
      created(this: This) {
        registerMetrics(this.broker);
        this.actors = new SymbolActors(config, role);
      },

      actions: {
        /** Applies one packed trade batch; idempotent, so callers may retry it. */
        apply: {
          params: {
            batch: { type: "class", instanceOf: Buffer },
            producedAtMs: { type: "number", optional: true },
          },
          handler(this: This, ctx: Context<ApplyParams>) {
            const result = timed(this.broker, `${this.name}.apply`, () =>
              this.actors.apply(ctx.params.batch, Date.now()),
            );
            this.onApplied(result, ctx.params);
            return SymbolActors.counts(result);
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
            return { symbol: this.actors.engine.importSymbol(ctx.params.state, ctx.params.merge) };
          },
        },
      },
    };
  // Moleculer's typings cannot say that the concrete service provides `onApplied`.
  return mixin as unknown as Partial<ServiceSchema>;
}
