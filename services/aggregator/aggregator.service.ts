/**
 * The aggregator: per-symbol OHLCV bar actors (1m, 5m, 1h) on the Rust engine.
 *
 * Every FORMING_THROTTLE_MS the bars closed meanwhile are published as `bars.closed` and the
 * forming bars of the symbols that traded as `bars.updated` (best-effort fan-out for live views;
 * trades themselves only ever travel by acknowledged calls). Both queue inside the Rust engine, so
 * applying a batch creates no per-bar JS objects.
 *
 * Closed bars changed later (a late trade or order, a cancel, a correction) are found by the
 * revision scanner on the same tick and published as `bars.closed` again, with their higher
 * version, so the stream and the dashboard follow them.
 *
 * History (src/history/): the bars this node closes, and closed bars it revises later, go to the
 * history store through a batching writer that never holds up live bars; `bars` answers with the
 * union of memory and history, so bars older than in-memory retention are still served.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Config } from "../../src/config";
import { historyUnavailable, unknownSymbol } from "../../src/errors";
import { BarHistory, mergeBars, openHistoryStore, RevisionScanner } from "../../src/history";
import type { StoredBar } from "../../src/history/store";
import { M } from "../../src/metrics";
import { countCorrections, noCorrections } from "../../src/actors/symbol-actors";
import {
  barRecord,
  barRecordKey,
  LIVE_MS,
  STREAM_DEMAND,
  type LiveInterval,
  type StreamDemand,
  type SymbolBarJson,
} from "../../src/contracts/bars";
import type {
  ActivityAnswer,
  ActivityParams,
  BarsAnswer,
  BarsParams,
  HistoryStatus,
  RolledBarsAnswer,
  RollingAnswer,
  RollingParams,
} from "../../src/contracts/queries";
import {
  SKIP_REASONS,
  type AggregatorStats,
  type CorrectionCounts,
} from "../../src/contracts/stats";
import { native, type Binding } from "../../src/native";
import {
  symbolActorsMixin,
  type ApplyParams,
  type SymbolActorsMethods,
  type SymbolActorsVars,
} from "../../mixins/symbol-actors.mixin";
import { activityBarJson, storedBarJson, toBarJson, unpackLatest } from "./bar-json";
import { engineBase, storedBase } from "../../src/windowing/parts";
import {
  rollingWindow,
  windowBars,
  type ReadLive,
  type WindowQuery,
} from "../../src/windowing/query";
import type { BaseBar } from "../../src/windowing/rollup";
import { parseSession } from "../../src/windowing/session";
import { parseActivityInterval, parseInterval, parseWindow } from "../../src/windowing/spec";
import { isUtc, parseZone } from "../../src/windowing/zone";

const FORMING_THROTTLE_MS = 250;
/** Symbols looked at per tick for revised closed bars (a few µs each, plus the revised bars). */
const REVISION_SCAN_SYMBOLS = 250;
/**
 * Bars per `bars.closed` / `bars.updated` event. A replay closes thousands of bars between two
 * publishes; one event for all of them would exceed NATS's max_payload (1 MB by default; a bar
 * is about 0.4 KB), so they go out in events of at most this many.
 */
export const BARS_PER_EVENT = 1_000;
const WALL_CLOCK_CLOSE_MS = 1000;

/** What one read of live bars (memory and history merged) found. */
interface LiveRead {
  bars: BaseBar[];
  history: HistoryStatus;
}

interface Vars extends SymbolActorsVars {
  corrections: CorrectionCounts;
  liveSources: Map<string, boolean>;
  /** Gateway nodes with stream clients: forming bars are broadcast only while there is one. */
  listeners: Set<string>;
  timers: NodeJS.Timeout[];
  history: BarHistory | null;
  revisions: RevisionScanner;
}

interface Methods extends SymbolActorsMethods {
  readLive(
    symbol: string,
    interval: LiveInterval,
    fromMs: number | undefined,
    toMs: number | undefined,
    limit: number,
    mustKnow: boolean,
  ): Promise<LiveRead>;
  liveReader(symbol: string): { read: ReadLive; status: () => HistoryStatus };
  rolledBars(symbol: string, query: WindowQuery): Promise<RolledBarsAnswer>;
  onApplied(result: Binding.ApplyResult, params: ApplyParams): void;
  publishClosed(closed: Binding.SymbolBar[]): void;
  toOutbox(bars: readonly SymbolBarJson[]): void;
  publishRevised(revised: StoredBar[]): void;
  broadcastBars(event: "bars.closed" | "bars.updated", bars: readonly object[]): void;
  drainClosed(): void;
  publishForming(): void;
  closeByWallClock(): void;
}

type This = Service & Vars & Methods;

export function aggregatorService(config: Config): ServiceSchema {
  const live = config.bars.intervals;
  const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
    name: "aggregator",
    mixins: [symbolActorsMixin(config, { bars: true, detector: false })],

    actions: {
      bars: {
        strategy: "Rendezvous",
        params: {
          symbol: { type: "string", max: 64 },
          interval: { type: "string", max: 16 },
          tz: { type: "string", optional: true, max: 64 },
          session: { type: "string", optional: true, max: 16 },
          fill: { type: "enum", values: ["none", "prev"], optional: true },
          fromMs: { type: "number", optional: true },
          toMs: { type: "number", optional: true },
          limit: { type: "number", integer: true, min: 1, max: 10_000 },
        },
        async handler(
          this: This,
          ctx: Context<BarsParams>,
        ): Promise<BarsAnswer | RolledBarsAnswer> {
          const { symbol, fromMs, toMs, limit } = ctx.params;
          const spec = parseInterval(ctx.params.interval, live);
          const zone = parseZone(ctx.params.tz);
          const session = parseSession(ctx.params.session);
          const fill = ctx.params.fill ?? "none";
          await this.ensureServing(symbol);
          const interval = live.find((l) => l === spec.text);
          // A live interval aligned as the engine aligns it is served as kept, not rolled up.
          if (
            interval === undefined ||
            session !== null ||
            fill !== "none" ||
            (spec.ms >= 3_600_000 && !isUtc(zone))
          )
            return this.rolledBars(symbol, {
              spec,
              zone,
              session,
              fromMs,
              toMs,
              limit,
              fill,
              nowMs: Date.now(),
            });
          // A bar may have closed and left memory in the same batch: hand it to history first.
          if (this.history !== null) this.drainClosed();
          const memory = this.actors.engine.bars(symbol, interval, fromMs, toMs, limit);
          const stored = await this.history?.read(symbol, interval, fromMs, toMs, limit, !memory);
          if (memory === null && !stored?.known) {
            if (stored?.status === "unavailable") throw historyUnavailable(symbol, stored.error);
            throw unknownSymbol(symbol);
          }
          const older = (stored?.bars ?? []).map(storedBarJson);
          const bars = mergeBars((memory ?? []).map(toBarJson), older, limit);
          return { symbol, interval, bars, history: stored?.status ?? "off" };
        },
      },

      /**
       * Tick and volume bars (BAR_INTERVALS `<n>t`, `<n>v`): memory only, the last 500 per spec;
       * `from`/`to` bound their first trade's time.
       */
      activityBars: {
        strategy: "Rendezvous",
        params: {
          symbol: { type: "string", max: 64 },
          interval: { type: "string", max: 16 },
          fromMs: { type: "number", optional: true },
          toMs: { type: "number", optional: true },
          limit: { type: "number", integer: true, min: 1, max: 10_000 },
        },
        async handler(this: This, ctx: Context<ActivityParams>): Promise<ActivityAnswer> {
          const { symbol, fromMs, toMs, limit } = ctx.params;
          const interval = parseActivityInterval(ctx.params.interval, config.bars.activity);
          await this.ensureServing(symbol);
          const held = interval && this.actors.engine.activityBars(symbol, interval, 10_000);
          if (!interval || !held) throw unknownSymbol(symbol);
          const bars = held
            .filter((b) => (fromMs ?? -Infinity) <= b.firstMs && b.firstMs < (toMs ?? Infinity))
            .slice(-limit)
            .map(activityBarJson);
          return { symbol, interval, bars, history: "off" };
        },
      },

      /** OHLCV over a trailing window: from the trade journal, else whole live bars (src/windowing/query.ts). */
      rolling: {
        strategy: "Rendezvous",
        params: {
          symbol: { type: "string", max: 64 },
          window: { type: "string", max: 16 },
          atMs: { type: "number", optional: true },
        },
        async handler(this: This, ctx: Context<RollingParams>): Promise<RollingAnswer> {
          const { symbol } = ctx.params;
          const spec = parseWindow(ctx.params.window);
          const atMs = ctx.params.atMs ?? Date.now();
          await this.ensureServing(symbol);
          if (this.history !== null) this.drainClosed();
          const reader = this.liveReader(symbol);
          let read = false;
          const readLive: ReadLive = (...args) => {
            read = true;
            return reader.read(...args);
          };
          const sums = await rollingWindow(spec, atMs, live, readLive, (fromMs, toMs) =>
            this.actors.engine.tradeWindow(symbol, fromMs, toMs),
          );
          return {
            symbol,
            window: spec.text,
            atMs,
            ...sums,
            ...(read ? { history: reader.status() } : {}),
          };
        },
      },

      /** The symbols held here, each with its custody epoch (a view keeps the highest). */
      symbols: {
        handler(this: This) {
          const epochs = this.custody.held();
          return this.actors.engine.symbols().map((s) => ({
            symbol: s.symbol,
            epoch: epochs.get(s.symbol) ?? 0,
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
        handler(this: This): AggregatorStats {
          // The engine counts for the node's life (handed-off symbols included) and sizes its state.
          return {
            ...this.actors.engine.stats(),
            corrections: this.corrections,
            outbox: this.outboxStats(),
          };
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
        this.listeners.delete(ctx.params.node.id);
      },
      [STREAM_DEMAND](this: This, ctx: Context<StreamDemand>) {
        if (ctx.params.listening) this.listeners.add(ctx.params.nodeID);
        else this.listeners.delete(ctx.params.nodeID);
      },
    },

    methods: {
      /** Live bars of memory and history merged, as `bars` merges them, for roll-ups. */
      async readLive(
        this: This,
        symbol: string,
        interval: LiveInterval,
        fromMs: number | undefined,
        toMs: number | undefined,
        limit: number,
        mustKnow: boolean,
      ): Promise<LiveRead> {
        const memory = this.actors.engine.bars(symbol, interval, fromMs, toMs, limit);
        const stored = await this.history?.read(
          symbol,
          interval,
          fromMs,
          toMs,
          limit,
          mustKnow && !memory,
        );
        if (mustKnow && memory === null && !stored?.known) {
          if (stored?.status === "unavailable") throw historyUnavailable(symbol, stored.error);
          throw unknownSymbol(symbol);
        }
        const bars = mergeBars(
          (memory ?? []).map(engineBase),
          (stored?.bars ?? []).map(storedBase),
          limit,
        );
        return { bars, history: stored?.status ?? "off" };
      },

      /** Bars of any interval, zone, session or fill, rolled up from live bars. */
      async rolledBars(this: This, symbol: string, query: WindowQuery): Promise<RolledBarsAnswer> {
        if (this.history !== null) this.drainClosed();
        const reader = this.liveReader(symbol);
        const { base, bars } = await windowBars(query, live, reader.read);
        return {
          symbol,
          interval: query.spec.text,
          tz: query.zone,
          session: query.session?.text ?? null,
          fill: query.fill,
          base,
          bars,
          history: reader.status(),
        };
      },

      /** A `ReadLive` for one query: the first read settles whether the symbol exists. */
      liveReader(this: This, symbol: string) {
        let first = true;
        let history: HistoryStatus = this.history === null ? "off" : "ok";
        const read: ReadLive = async (interval, fromMs, toMs, limit) => {
          const got = await this.readLive(symbol, interval, fromMs, toMs, limit, first);
          first = false;
          if (got.history === "unavailable") history = "unavailable";
          return got.bars;
        };
        return { read, status: () => history };
      },

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
          if (result.cancels > 0)
            metrics.increment(M.correctionsApplied, { kind: "cancel" }, result.cancels);
          if (result.corrections > 0)
            metrics.increment(M.correctionsApplied, { kind: "correct" }, result.corrections);
          for (const [k, reason] of Object.entries(SKIP_REASONS)) {
            const n = result.correctionsSkipped[k as keyof typeof SKIP_REASONS];
            if (n > 0) metrics.increment(M.correctionsSkipped, { reason }, n);
          }
        }
        countCorrections(this.corrections, result);
        // The engine counts revisions (late trades, cancels, corrections) but queues only newly
        // closed bars: find the revised ones.
        if (result.revised > 0) this.revisions.mark(native.batchSymbols(params.batch));
      },

      publishClosed(this: This, closed: Binding.SymbolBar[]) {
        this.history?.closed(closed);
        if (this.broker.isMetricsEnabled()) {
          const now = Date.now();
          for (const c of closed) {
            const width = LIVE_MS[c.interval as LiveInterval];
            this.broker.metrics.increment(M.barsClosed, { interval: c.interval });
            this.broker.metrics.observe(M.barCloseDelay, now - (c.bar.startMs + width), {
              interval: c.interval,
            });
          }
        }
        const bars = closed.map((c) => ({
          symbol: c.symbol,
          interval: c.interval,
          bar: toBarJson(c.bar),
        }));
        this.toOutbox(bars);
        this.broadcastBars("bars.closed", bars);
      },

      publishRevised(this: This, revised: StoredBar[]) {
        this.history?.revised(revised);
        const bars = revised.map((b) => ({
          symbol: b.symbol,
          interval: b.interval,
          bar: storedBarJson(b),
        }));
        this.toOutbox(bars);
        this.broadcastBars("bars.closed", bars);
      },

      /** With BARS_TOPIC: each closed bar version waits in its symbol's outbox for the publisher. */
      toOutbox(this: This, bars: readonly SymbolBarJson[]) {
        const topic = config.publish?.barsTopic;
        if (!topic) return;
        const now = Date.now();
        for (const b of bars) {
          const epoch = this.custody.epochOf(b.symbol);
          if (epoch === undefined) continue; // dropped meanwhile: its new holder publishes
          const key = barRecordKey(b.symbol, b.interval, b.bar.startMs);
          const value = JSON.stringify(barRecord(b.symbol, b.interval, b.bar));
          this.outbox.add(b.symbol, epoch, topic, key, value, now);
        }
      },

      /** Broadcasts `bars` in events of at most BARS_PER_EVENT, in order. */
      broadcastBars(this: This, event: "bars.closed" | "bars.updated", bars: readonly object[]) {
        for (let i = 0; i < bars.length; i += BARS_PER_EVENT)
          this.broker
            .broadcast(event, { bars: bars.slice(i, i + BARS_PER_EVENT) })
            .catch((err: unknown) => this.logger.warn({ err }, "event broadcast failed"));
      },

      drainClosed(this: This) {
        const closed = this.actors.engine.drainClosed();
        if (closed.length > 0) this.publishClosed(closed);
      },

      /** Every FORMING_THROTTLE_MS: the bars closed meanwhile, then the forming bars of the symbols that traded. */
      publishForming(this: This) {
        this.drainClosed();
        if (this.revisions.pending > 0) {
          const revised = this.revisions.scan(this.actors.engine, REVISION_SCAN_SYMBOLS);
          if (revised.length > 0) this.publishRevised(revised);
        }
        const symbols = this.actors.engine.drainTouched();
        // Nobody streams: forming bars would be serialised and sent to every gateway for nothing.
        if (symbols.length === 0 || this.listeners.size === 0) return;
        this.broadcastBars(
          "bars.updated",
          unpackLatest(symbols, this.actors.engine.latestPacked(symbols)),
        );
      },

      closeByWallClock(this: This) {
        if (![...this.liveSources.values()].some(Boolean)) return;
        this.actors.engine.closeByWallClock(Date.now());
      },
    },

    created(this: This) {
      this.liveSources = new Map();
      this.listeners = new Set();
      this.corrections = noCorrections();
      this.revisions = new RevisionScanner();
      this.timers = [];
      const store = openHistoryStore(config.history, config.namespace);
      this.history =
        store === null ? null : new BarHistory(store, config.history, this.broker, this.logger);
    },

    started(this: This) {
      this.timers.push(setInterval(() => this.publishForming(), FORMING_THROTTLE_MS));
      this.timers.push(setInterval(() => this.closeByWallClock(), WALL_CLOCK_CLOSE_MS));
      return Promise.resolve();
    },

    /** Runs before the mixin hands the symbols away: what closed here is written from here. */
    async stopped(this: This) {
      for (const t of this.timers) clearInterval(t);
      if (this.history === null) return;
      this.drainClosed();
      while (this.revisions.pending > 0)
        this.history.revised(this.revisions.scan(this.actors.engine, REVISION_SCAN_SYMBOLS));
      await this.history.close(config.history.timeoutMs);
    },
  };
  return schema as unknown as ServiceSchema;
}
