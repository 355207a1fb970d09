/**
 * The REST gateway (moleculer-web). Routes are thin: they parse and check the query, then call
 * the owning services — on every node that has them for the cluster-wide views (symbols,
 * anomalies, stats). A client mistake is a 4xx naming the parameter; never a 500.
 *
 * It also serves the live stream (`/api/stream`, Server-Sent Events from this node's hub, which
 * every broadcast bar and anomaly event reaches) and the dashboard's built files at `/`.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import { existsSync } from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { WebSocketServer } from "ws";
import path from "node:path";
import type { AnomalyRecord } from "../../src/contracts/anomalies";
import { parseFill, parseLimit, parseSymbol, parseTime } from "../../src/api/params";
import { candidates } from "../../src/windowing/query";
import { parseSession } from "../../src/windowing/session";
import { parseActivityInterval, parseInterval, parseWindow } from "../../src/windowing/spec";
import { parseZone } from "../../src/windowing/zone";
import type { Config } from "../../src/config";
import { badParameter, notReady, unauthorized, uriTooLong } from "../../src/errors";
import { anomaliesView, statsView, symbolsView } from "../../src/cluster/views";
import { parseStreamFilter, type StreamQuery } from "../../src/stream/filter";
import { openEventStream, STREAM_CONTENT_TYPE, STREAM_HEADERS } from "../../src/stream/http";
import { StreamHub } from "../../src/stream/hub";
import { attachWebSocket } from "../../src/stream/ws";
import type { BarsAnswer } from "../../src/contracts/queries";
import { streamMetricsHooks } from "../../src/stream/metrics";
import { openApiDocument } from "./openapi";
import { STREAM_DEMAND, type StreamDemand, type SymbolBarJson } from "../../src/contracts/bars";

const MAX_URL_BYTES = 2048;
/** While a node streams, it repeats `stream.demand` this often (events are best-effort). */
const DEMAND_REFRESH_MS = 10_000;

/** Tells the aggregators whether this node has stream clients (they skip forming bars if none has). */
function announceDemand(svc: This): void {
  const demand: StreamDemand = { nodeID: svc.broker.nodeID, listening: svc.hub.size > 0 };
  svc.broker
    .broadcast(STREAM_DEMAND, demand)
    .catch((err: unknown) => svc.logger.warn({ err }, "stream demand broadcast failed"));
}

type Query = Record<string, string | undefined>;

type StreamParams = StreamQuery & { $res?: ServerResponse };

/** What an action may set for moleculer-web to shape its HTTP answer. */
interface ResponseMeta {
  $responseType?: string;
  $responseHeaders?: Record<string, string>;
}

interface Vars {
  startedAt: number;
  hub: StreamHub;
  demandTimer: NodeJS.Timeout | null;
  wss: WebSocketServer | null;
  /** moleculer-web's HTTP server. */
  server: Server;
}

/** The dashboard as `npm run build:dashboard` writes it: `dist/dashboard` of the project root. */
function dashboardDir(): string | null {
  let dir = __dirname;
  while (!existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
  const built = path.join(dir, "dist", "dashboard");
  return existsSync(path.join(built, "index.html")) ? built : null;
}

type This = Service & Vars;

export function apiService(config: Config): ServiceSchema {
  const dashboard = config.http.dashboard ? dashboardDir() : null;
  const schema: ServiceSchema<ApiSettingsSchema, Record<string, never>, Vars> = {
    name: "api",
    mixins: [ApiGateway],

    settings: {
      port: config.http.port,
      ip: "0.0.0.0",
      // Tickstream answers JSON errors of its own shape; no stack traces leave the node.
      log4XXResponses: false,
      ...(dashboard === null
        ? {}
        : { assets: { folder: dashboard, options: { index: "index.html" } } }),
      routes: [
        {
          path: "/api",
          mappingPolicy: "restrict",
          authentication: config.http.apiKey !== null,
          bodyParsers: { json: { limit: "16kb" }, urlencoded: false },
          rateLimit: {
            window: 60_000,
            limit: config.http.rateLimitPerMin,
            headers: true,
            key: (req: IncomingMessage) => req.socket.remoteAddress ?? "unknown",
          },
          aliases: {
            "GET /health": "api.health",
            "GET /ready": "api.ready",
            "GET /symbols": "api.symbols",
            "GET /bars/:symbol": "api.bars",
            "GET /bars/:symbol/rolling": "api.rolling",
            "GET /anomalies": "api.anomalies",
            "GET /stats": "api.stats",
            "GET /openapi.json": "api.openapi",
            // The action needs the response to see its client go and to measure its backlog.
            "GET /stream": { action: "api.stream", passReqResToParams: true },
          },
          onBeforeCall(_ctx: Context, _route: unknown, req: IncomingMessage) {
            if ((req.url ?? "").length > MAX_URL_BYTES) throw uriTooLong(MAX_URL_BYTES);
          },
        },
      ],
    },

    methods: {
      authenticate(_ctx: Context, _route: unknown, req: IncomingMessage) {
        if (req.headers["x-api-key"] !== config.http.apiKey) throw unauthorized();
        return Promise.resolve(null);
      },
    },

    actions: {
      health: {
        handler(this: This) {
          return {
            status: "ok",
            nodeID: this.broker.nodeID,
            uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
          };
        },
      },

      ready: {
        async handler(this: This, ctx: Context) {
          const checks: Record<string, boolean> = {
            native: true,
            // Every local service started, so the node has announced itself (INFO): a node that
            // serves before the others know it cannot take part in handoffs yet.
            started: this.broker.started,
            // The transport's own state too: a NATS outage leaves the transit "connected".
            transporter: this.broker.transit
              ? this.broker.transit.connected && this.broker.transit.tx.connected
              : true,
          };
          if (this.broker.getLocalService("ingest")) {
            const status = await ctx.call<{ live: boolean }, object>(
              "ingest.status",
              {},
              { nodeID: this.broker.nodeID },
            );
            checks.consuming = status.live;
          } else {
            checks.consuming =
              (this.broker.registry.getActionEndpoints("aggregator.apply")?.endpoints.length ?? 0) >
              0;
          }
          if (!Object.values(checks).every(Boolean)) throw notReady(JSON.stringify(checks));
          return { ready: true, nodeID: this.broker.nodeID, checks };
        },
      },

      symbols: {
        async handler(this: This, ctx: Context) {
          return { symbols: await symbolsView(ctx) };
        },
      },

      bars: {
        params: {
          symbol: { type: "string", max: 256 },
          interval: { type: "string", optional: true, max: 16 },
          tz: { type: "string", optional: true, max: 64 },
          session: { type: "string", optional: true, max: 16 },
          fill: { type: "string", optional: true, max: 16 },
          from: { type: "string", optional: true, max: 64 },
          to: { type: "string", optional: true, max: 64 },
          limit: { type: "string", optional: true, max: 16 },
          $$strict: "remove",
        },
        handler(this: This, ctx: Context<Query>) {
          const q = ctx.params;
          const fromMs = parseTime(q.from, "from");
          const toMs = parseTime(q.to, "to");
          const range = {
            ...(fromMs === undefined ? {} : { fromMs }),
            ...(toMs === undefined ? {} : { toMs }),
          };
          const activity = parseActivityInterval(q.interval, config.bars.activity);
          if (activity !== null) {
            for (const p of ["tz", "session", "fill"] as const)
              if (q[p] !== undefined && q[p] !== "")
                throw badParameter(p, "does not apply to tick and volume bars", q[p]);
            return ctx.call("aggregator.activityBars", {
              symbol: parseSymbol(q.symbol),
              interval: activity,
              ...range,
              limit: parseLimit(q.limit, 500),
            });
          }
          const spec = parseInterval(q.interval, config.bars.intervals);
          const tz = parseZone(q.tz);
          const session = parseSession(q.session);
          // Checked here too, so that a query no live interval can answer never reaches an actor.
          candidates({ spec, zone: tz, session }, config.bars.intervals);
          return ctx.call("aggregator.bars", {
            symbol: parseSymbol(q.symbol),
            interval: spec.text,
            ...(q.tz === undefined || q.tz === "" ? {} : { tz }),
            ...(session === null ? {} : { session: session.text }),
            ...(q.fill === undefined || q.fill === "" ? {} : { fill: parseFill(q.fill) }),
            ...(fromMs === undefined ? {} : { fromMs }),
            ...(toMs === undefined ? {} : { toMs }),
            limit: parseLimit(q.limit, 500),
          });
        },
      },

      rolling: {
        params: {
          symbol: { type: "string", max: 256 },
          window: { type: "string", optional: true, max: 16 },
          at: { type: "string", optional: true, max: 64 },
          $$strict: "remove",
        },
        handler(this: This, ctx: Context<Query>) {
          const q = ctx.params;
          const atMs = parseTime(q.at, "at");
          return ctx.call("aggregator.rolling", {
            symbol: parseSymbol(q.symbol),
            window: parseWindow(q.window ?? "5m").text,
            ...(atMs === undefined ? {} : { atMs }),
          });
        },
      },

      anomalies: {
        params: {
          symbol: { type: "string", optional: true, max: 256 },
          since: { type: "string", optional: true, max: 64 },
          limit: { type: "string", optional: true, max: 16 },
          $$strict: "remove",
        },
        async handler(this: This, ctx: Context<Query>) {
          const q = ctx.params;
          const sinceMs = parseTime(q.since, "since");
          const query = {
            ...(q.symbol === undefined || q.symbol === "" ? {} : { symbol: parseSymbol(q.symbol) }),
            ...(sinceMs === undefined ? {} : { sinceMs }),
            limit: parseLimit(q.limit, 100),
          };
          return { anomalies: await anomaliesView(ctx, query) };
        },
      },

      stats: {
        async handler(this: This, ctx: Context) {
          return { nodes: await statsView(ctx) };
        },
      },

      openapi: {
        handler() {
          return openApiDocument();
        },
      },

      stream: {
        params: {
          symbols: { type: "string", optional: true, max: 2048 },
          intervals: { type: "string", optional: true, max: 64 },
          anomalies: { type: "string", optional: true, max: 16 },
          $res: { type: "any", optional: true },
          $$strict: "remove",
        },
        handler(this: This, ctx: Context<StreamParams, ResponseMeta>) {
          const filter = parseStreamFilter(ctx.params, config.stream.maxSymbols);
          const hello = {
            nodeID: this.broker.nodeID,
            symbols: [...filter.symbols],
            intervals: [...filter.intervals],
            anomalies: filter.anomalies,
            throttleMs: config.stream.throttleMs,
            keepAliveMs: config.stream.keepAliveMs,
            serverTimeMs: Date.now(),
          };
          const stream = openEventStream(this.hub, filter, hello, ctx.params.$res);
          ctx.meta.$responseType = STREAM_CONTENT_TYPE;
          ctx.meta.$responseHeaders = STREAM_HEADERS;
          return stream;
        },
      },
    },

    events: {
      "bars.updated"(this: This, ctx: Context<{ bars: SymbolBarJson[] }>) {
        this.hub.barsUpdated(ctx.params.bars);
      },
      "bars.closed"(this: This, ctx: Context<{ bars: SymbolBarJson[] }>) {
        this.hub.barsClosed(ctx.params.bars);
      },
      "anomaly.detected"(this: This, ctx: Context<AnomalyRecord>) {
        this.hub.anomaly(ctx.params);
      },
      /** A node that joins learns at once that this one streams. */
      "$node.connected"(this: This) {
        if (this.hub.size > 0) announceDemand(this);
      },
    },

    created(this: This) {
      this.startedAt = Date.now();
      this.wss = null;
      const metrics = streamMetricsHooks(this.broker, () => hub.size);
      // The first stream opened and the last one closed change what aggregators publish.
      const hub: StreamHub = new StreamHub(config.stream, {
        onOpen: () => {
          metrics.onOpen?.();
          if (hub.size === 1) announceDemand(this);
        },
        onClose: (reason) => {
          metrics.onClose?.(reason);
          if (hub.size === 0) announceDemand(this);
        },
      });
      this.hub = hub;
      this.demandTimer = null;
    },

    started(this: This) {
      this.demandTimer = setInterval(() => {
        if (this.hub.size > 0) announceDemand(this);
      }, DEMAND_REFRESH_MS);
      if (config.http.dashboard && dashboard === null)
        this.logger.warn("dashboard not built (npm run build:dashboard): / answers 404");
      this.wss = attachWebSocket(this.server, this.hub, {
        apiKey: config.http.apiKey,
        maxSymbols: config.stream.maxSymbols,
        hello: () => ({
          nodeID: this.broker.nodeID,
          throttleMs: config.stream.throttleMs,
          maxSymbols: config.stream.maxSymbols,
          serverTimeMs: Date.now(),
        }),
        snapshot: async (symbols, intervals) => {
          const answers = await Promise.allSettled(
            symbols.flatMap((symbol) =>
              intervals.map((interval) =>
                this.broker.call<BarsAnswer, object>("aggregator.bars", {
                  symbol,
                  interval,
                  limit: 1,
                }),
              ),
            ),
          );
          // A symbol nobody has traded yet has no bar: nothing to send for it.
          return answers.flatMap((a) => {
            const bar = a.status === "fulfilled" ? a.value.bars.at(-1) : undefined;
            return bar && a.status === "fulfilled"
              ? [{ symbol: a.value.symbol, interval: a.value.interval, bar }]
              : [];
          });
        },
      });
      return Promise.resolve();
    },

    // Runs before moleculer-web closes its server, which would otherwise wait for the streams.
    stopped(this: This) {
      if (this.demandTimer) clearInterval(this.demandTimer);
      this.hub.stop();
      this.wss?.close();
      return Promise.resolve();
    },
  };
  return schema as unknown as ServiceSchema;
}
