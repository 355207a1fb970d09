/**
 * The REST gateway (moleculer-web). Routes are thin: they parse and check the query, then call
 * the owning services — on every node that has them for the cluster-wide views (symbols,
 * anomalies, stats). A client mistake is a 4xx naming the parameter; never a 500.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import type { IncomingMessage } from "node:http";
import { parseInterval, parseLimit, parseSymbol, parseTime } from "../../src/api/params";
import type { Config } from "../../src/config";
import { ERR_UNAUTHORIZED, notReady } from "../../src/errors";
import { anomaliesView, statsView, symbolsView } from "../../src/cluster/views";
import { openApiDocument } from "./openapi";

const MAX_URL_BYTES = 2048;

type Query = Record<string, string | undefined>;

interface Vars {
  startedAt: number;
}

type This = Service & Vars;

export function apiService(config: Config): ServiceSchema {
  const schema: ServiceSchema<ApiSettingsSchema, Record<string, never>, Vars> = {
    name: "api",
    mixins: [ApiGateway],

    settings: {
      port: config.http.port,
      ip: "0.0.0.0",
      // Tickstream answers JSON errors of its own shape; no stack traces leave the node.
      log4XXResponses: false,
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
            "GET /anomalies": "api.anomalies",
            "GET /stats": "api.stats",
            "GET /openapi.json": "api.openapi",
          },
          onBeforeCall(_ctx: Context, _route: unknown, req: IncomingMessage) {
            if ((req.url ?? "").length > MAX_URL_BYTES)
              throw new Errors.MoleculerClientError(
                `request URL longer than ${MAX_URL_BYTES} bytes`,
                414,
                "ERR_URI_TOO_LONG",
              );
          },
        },
      ],
    },

    methods: {
      authenticate(_ctx: Context, _route: unknown, req: IncomingMessage) {
        if (req.headers["x-api-key"] !== config.http.apiKey)
          throw new Errors.MoleculerClientError(
            "missing or wrong X-API-Key header",
            401,
            ERR_UNAUTHORIZED,
          );
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
            transporter: this.broker.transit?.connected ?? true,
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
          from: { type: "string", optional: true, max: 64 },
          to: { type: "string", optional: true, max: 64 },
          limit: { type: "string", optional: true, max: 16 },
          $$strict: "remove",
        },
        handler(this: This, ctx: Context<Query>) {
          const q = ctx.params;
          const fromMs = parseTime(q.from, "from");
          const toMs = parseTime(q.to, "to");
          return ctx.call("aggregator.bars", {
            symbol: parseSymbol(q.symbol),
            interval: parseInterval(q.interval),
            ...(fromMs === undefined ? {} : { fromMs }),
            ...(toMs === undefined ? {} : { toMs }),
            limit: parseLimit(q.limit, 500),
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
    },

    created(this: This) {
      this.startedAt = Date.now();
    },
  };
  return schema as unknown as ServiceSchema;
}
