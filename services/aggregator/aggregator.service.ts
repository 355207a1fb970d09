/**
 * The aggregator: per-symbol OHLCV bar actors (1m, 5m, 1h) on the Rust engine.
 *
 * Every FORMING_THROTTLE_MS the bars closed meanwhile are published as `bars.closed` and the
 * forming bars of the symbols that traded as `bars.updated` (best-effort fan-out for live views;
 * trades themselves only ever travel by acknowledged calls). Both queue inside the Rust engine, so
 * applying a batch creates no per-bar JS objects.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Config } from "../../src/config";
import { unknownSymbol } from "../../src/errors";
import { M } from "../../src/metrics";
import type { Binding } from "../../src/native";
import {
  symbolActorsMixin,
  type ApplyParams,
  type SymbolActorsMethods,
  type SymbolActorsVars,
} from "../../mixins/symbol-actors.mixin";
import { toBarJson, type BarJson } from "./bar-json";

const FORMING_THROTTLE_MS = 250;
const INTERVAL_MS = { "1m": 60_000, "5m": 300_000, "1h": 3_600_000 } as const;
const WALL_CLOCK_CLOSE_MS = 1000;

export interface BarsParams {
  symbol: string;
  interval: "1m" | "5m" | "1h";
  fromMs?: number;
  toMs?: number;
  limit: number;
}

interface Vars extends SymbolActorsVars {
  liveSources: Map<string, boolean>;
  timers: NodeJS.Timeout[];
}

interface Methods extends SymbolActorsMethods {
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
  publishClosed(closed: Binding.SymbolBar[]): void;
  publishForming(): void;
  closeByWallClock(): void;
}

type This = Service & Vars & Methods;

export function aggregatorService(config: Config): ServiceSchema {
  const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
    name: "aggregator",
    mixins: [symbolActorsMixin(config, { bars: true, detector: false })],

    actions: {
      bars: {
        strategy: "Rendezvous",
        params: {
          symbol: { type: "string", max: 64 },
          interval: { type: "enum", values: ["1m", "5m", "1h"] },
          fromMs: { type: "number", optional: true },
          toMs: { type: "number", optional: true },
          limit: { type: "number", integer: true, min: 1, max: 10_000 },
        },
        async handler(
          this: This,
          ctx: Context<BarsParams>,
        ): Promise<{ symbol: string; interval: string; bars: BarJson[] }> {
          const { symbol, interval, fromMs, toMs, limit } = ctx.params;
          this.refreshMembership();
          this.ensureOwned([symbol]);
          await this.ensureHeld(ctx, [symbol]);
          const bars = this.actors.engine.bars(symbol, interval, fromMs, toMs, limit);
          if (bars === null) throw unknownSymbol(symbol);
          return { symbol, interval, bars: bars.map(toBarJson) };
        },
      },

      symbols: {
        handler(this: This) {
          return this.actors.engine.symbols().map((s) => ({
            symbol: s.symbol,
            trades: s.trades,
            lastPrice: s.lastPrice ?? null,
            lastTradeTime:
              s.lastTradeMs === undefined || s.lastTradeMs === null
                ? null
                : new Date(s.lastTradeMs).toISOString(),
          }));
        },
      },

      stats: {
        handler(this: This) {
          // The engine counts for the node's life (handed-off symbols included) and sizes its state.
          return this.actors.engine.stats();
        },
      },
    },

    events: {
      /** Ingest nodes say whether their source is live; wall-clock closing only runs while one is. */
      "ingest.status"(this: This, ctx: Context<{ nodeID: string; live: boolean }>) {
        this.liveSources.set(ctx.params.nodeID, ctx.params.live);
      },
      "$node.disconnected"(this: This, ctx: Context<{ node: { id: string } }>) {
        this.liveSources.delete(ctx.params.node.id);
      },
    },

    methods: {
      onApplied(this: This, result: Binding.ApplyResult, params: ApplyParams) {
        const metrics = this.broker.metrics;
        if (this.broker.isMetricsEnabled()) {
          metrics.increment(M.tradesApplied, undefined, result.applied);
          if (result.duplicatesId > 0)
            metrics.increment(M.duplicates, { by: "id" }, result.duplicatesId);
          if (result.duplicatesOffset > 0)
            metrics.increment(M.duplicates, { by: "offset" }, result.duplicatesOffset);
          if (result.revised > 0) metrics.increment(M.revised, undefined, result.revised);
          if (result.tooLate > 0) metrics.increment(M.tooLate, undefined, result.tooLate);
          if (result.orders > 0) metrics.increment(M.orders, undefined, result.orders);
          if (params.producedAtMs !== undefined && result.applied > 0)
            metrics.observe(M.e2eLatency, Date.now() - params.producedAtMs);
        }
      },

      publishClosed(this: This, closed: Binding.SymbolBar[]) {
        if (this.broker.isMetricsEnabled()) {
          const now = Date.now();
          for (const c of closed) {
            const width = INTERVAL_MS[c.interval as keyof typeof INTERVAL_MS];
            this.broker.metrics.increment(M.barsClosed, { interval: c.interval });
            this.broker.metrics.observe(M.barCloseDelay, now - (c.bar.startMs + width), {
              interval: c.interval,
            });
          }
        }
        this.broker
          .broadcast("bars.closed", {
            bars: closed.map((c) => ({
              symbol: c.symbol,
              interval: c.interval,
              bar: toBarJson(c.bar),
            })),
          })
          .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
      },

      /** Every FORMING_THROTTLE_MS: the bars closed meanwhile, then the forming bars of the symbols that traded. */
      publishForming(this: This) {
        const closed = this.actors.engine.drainClosed();
        if (closed.length > 0) this.publishClosed(closed);
        const symbols = this.actors.engine.drainTouched();
        if (symbols.length === 0) return;
        const latest = this.actors.engine.latest(symbols);
        this.broker
          .broadcast("bars.updated", {
            bars: latest.map((c) => ({
              symbol: c.symbol,
              interval: c.interval,
              bar: toBarJson(c.bar),
            })),
          })
          .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
      },

      closeByWallClock(this: This) {
        if (![...this.liveSources.values()].some(Boolean)) return;
        this.actors.engine.closeByWallClock(Date.now());
      },
    },

    created(this: This) {
      this.liveSources = new Map();
      this.timers = [];
    },

    started(this: This) {
      this.timers.push(setInterval(() => this.publishForming(), FORMING_THROTTLE_MS));
      this.timers.push(setInterval(() => this.closeByWallClock(), WALL_CLOCK_CLOSE_MS));
      return Promise.resolve();
    },

    stopped(this: This) {
      for (const t of this.timers) clearInterval(t);
      return Promise.resolve();
    },
  };
  return schema as unknown as ServiceSchema;
}
