/**
 * The OpenAPI 3.1 description of the REST API. A test walks every route against a running node
 * and validates the answers with these schemas; schemathesis fuzzes the API from this document.
 */
import { LIVE_INTERVALS } from "../../src/contracts/bars";

const nullableNumber = { type: ["number", "null"] };

const error = {
  type: "object",
  required: ["name", "message", "code"],
  properties: {
    name: { type: "string" },
    message: { type: "string" },
    code: { type: "integer" },
    type: { type: "string" },
    data: {},
  },
};

const bar = {
  type: "object",
  additionalProperties: false,
  required: [
    "start",
    "startMs",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
    "closed",
    "revised",
    "orders",
    "generation",
    "revision",
  ],
  properties: {
    start: { type: "string", format: "date-time", description: "Interval start, UTC" },
    startMs: { type: "integer", description: "Interval start, epoch ms" },
    open: { ...nullableNumber, description: "Null when the bar holds orders but no trade" },
    high: nullableNumber,
    low: nullableNumber,
    close: nullableNumber,
    volume: { type: "number", minimum: 0 },
    vwap: { ...nullableNumber, description: "Σ price·qty / Σ qty; null when volume is 0" },
    trades: { type: "integer", minimum: 0 },
    closed: { type: "boolean" },
    revised: {
      type: "boolean",
      description: "Changed after it had closed (a late trade or order, a cancel or a correction)",
    },
    orders: {
      type: "object",
      additionalProperties: false,
      required: ["count", "buyQty", "sellQty"],
      properties: {
        count: { type: "integer", minimum: 0 },
        buyQty: { type: "number", minimum: 0 },
        sellQty: { type: "number", minimum: 0 },
      },
    },
    generation: {
      type: "integer",
      minimum: 0,
      description:
        "Custody epoch of the symbol state this version of the bar came from (grows with every move of the symbol between nodes)",
    },
    revision: {
      type: "integer",
      minimum: 0,
      description:
        "Changes applied to the bar within its state: every trade, order, cancel and correction counts one. Versions of a bar order by (generation, revision); the higher one replaces the lower in history and in answers",
    },
  },
};

/** A bar rolled up from live bars (any interval, time zone, session) or filled by `fill=prev`. */
const rolledBar = {
  ...bar,
  required: [...bar.required, "endMs", "filled"],
  properties: {
    ...bar.properties,
    start: {
      type: "string",
      format: "date-time",
      description: "The UTC instant the (local) interval starts",
    },
    startMs: {
      type: "integer",
      description: "The UTC instant the (local) interval starts, epoch ms",
    },
    endMs: {
      type: "integer",
      description:
        "Where the interval ends, epoch ms (exclusive): a local day may last 23 or 25 hours",
    },
    closed: {
      type: "boolean",
      description:
        "Every live bar in it is closed and the interval has ended on the server's clock",
    },
    generation: {
      type: "integer",
      minimum: 0,
      description: "The highest generation of the live bars rolled up (0 for a filled bar)",
    },
    revision: {
      type: "integer",
      minimum: 0,
      description:
        "The sum of the revisions of the live bars of that generation: any change to any of them raises the version (0 for a filled bar)",
    },
    filled: {
      type: "boolean",
      description:
        "An interval without trades listed by fill=prev: open = high = low = close = the previous close, volume 0, trades 0",
    },
  },
};

const INTERVAL_PATTERN = "^[1-9][0-9]{0,5}[smhdw]$";
/** Time intervals, and tick (`<n>t`) and volume (`<n>v`) bars. */
const BARS_INTERVAL_PATTERN = "^[1-9][0-9]{0,8}[smhdwtv]$";

/** A tick or volume bar (BAR_INTERVALS `<n>t`, `<n>v`). */
const activityBar = {
  type: "object",
  additionalProperties: false,
  required: [
    "number",
    "start",
    "startMs",
    "endMs",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
    "closed",
  ],
  properties: {
    number: {
      type: "integer",
      minimum: 0,
      description: "Bar number within the symbol's state (0 for its first bar of the spec)",
    },
    start: { type: "string", format: "date-time", description: "Event time of its first trade" },
    startMs: { type: "integer", description: "Event time of its first trade, epoch ms" },
    endMs: { type: "integer", description: "Event time of its last trade, epoch ms" },
    open: { type: "number" },
    high: { type: "number" },
    low: { type: "number" },
    close: { type: "number" },
    volume: { type: "number", minimum: 0 },
    vwap: { ...nullableNumber, description: "Σ price·qty / Σ qty; null when volume is 0" },
    trades: { type: "integer", minimum: 1 },
    closed: {
      type: "boolean",
      description: "It reached its trade count or volume (the forming bar is last, closed=false)",
    },
  },
};

const anomaly = {
  type: "object",
  additionalProperties: false,
  required: [
    "symbol",
    "time",
    "timeMs",
    "price",
    "prevPrice",
    "ret",
    "zscore",
    "mean",
    "std",
    "detector",
    "tradeKey",
    "cancelled",
  ],
  properties: {
    symbol: { type: "string" },
    time: { type: "string", format: "date-time" },
    timeMs: { type: "integer" },
    price: { type: "number" },
    prevPrice: { type: "number" },
    ret: { type: "number", description: "ln(price / prevPrice)" },
    zscore: { type: "number" },
    mean: { type: "number" },
    std: { type: "number" },
    detector: { type: "string", enum: ["zscore", "ewma", "mad"] },
    tradeKey: {
      type: "string",
      description: "The trade that raised it: event time ns / source sequence / ordinal",
    },
    cancelled: {
      type: "boolean",
      description: "The trade was later cancelled (ExecType H, TradeReportTransType 1)",
    },
  },
};

const streamBar = {
  type: "object",
  additionalProperties: false,
  required: ["symbol", "interval", "bar"],
  properties: {
    symbol: { type: "string" },
    interval: { type: "string", enum: [...LIVE_INTERVALS] },
    bar: { $ref: "#/components/schemas/Bar" },
  },
};

const streamHello = {
  type: "object",
  additionalProperties: false,
  required: [
    "nodeID",
    "symbols",
    "intervals",
    "anomalies",
    "throttleMs",
    "keepAliveMs",
    "serverTimeMs",
  ],
  properties: {
    nodeID: { type: "string", description: "The gateway node serving this stream" },
    symbols: { type: "array", items: { type: "string" } },
    intervals: { type: "array", items: { type: "string", enum: [...LIVE_INTERVALS] } },
    anomalies: { type: "string", enum: ["none", "subscribed", "all"] },
    throttleMs: { type: "integer", minimum: 0 },
    keepAliveMs: { type: "integer", minimum: 1 },
    serverTimeMs: { type: "integer", description: "The node's clock when the stream opened" },
  },
};

const STREAM_DESCRIPTION = `Server-Sent Events; the connection stays open until the client leaves.

Starts with \`retry:\` (reconnection delay) and a \`hello\` event, then:

- \`bar\`: a forming bar of a subscribed symbol and interval; at most one per STREAM_THROTTLE_MS (250 ms) per symbol and interval, later ones coalesced to the latest (each is the whole bar).
- \`closed\`: a bar that closed (or a closed bar revised by a late trade), at once.
- \`anomaly\`: an anomaly of a subscribed symbol (\`anomalies=1\`) or of any symbol (\`anomalies=all\`).
- \`: keep-alive\` comments every STREAM_KEEPALIVE_MS (15 s).

A client whose unsent backlog passes STREAM_MAX_BUFFER_BYTES is disconnected rather than buffered for; on reconnecting it should reload history with \`/api/bars\` (events carry no ids to resume from). Every gateway node receives every event: any node serves any symbol. Payloads: see \`x-events\`.`;

const WS_DESCRIPTION = `WebSocket (RFC 6455); one connection carries any number of subscriptions. Authenticate with the X-API-Key header or, from a browser, the \`apiKey\` query parameter.

Client messages (JSON text): \`{"op":"subscribe","symbols":[...],"intervals":[...],"anomalies":true|false,"id":any}\` and \`{"op":"unsubscribe", ...}\` (the same fields; with none of symbols, intervals and anomalies it ends every subscription). Intervals default to 1m on the first subscribe.

Server messages, each with \`type\` and a per-connection \`seq\` (1, 2, …, no gaps): \`hello\` on connect; \`ack\` for every request, with its \`op\`, \`id\` and what the connection now receives (\`symbols\`, \`intervals\`, \`anomalies\`); \`snapshot\` after a subscribe, \`bars\` holding the latest bar of each newly subscribed symbol and interval (it may be older than an update already received for the same bar: keep the later \`updated\`); then \`bar\`, \`closed\` and \`anomaly\` with the event in \`data\`, as on /api/stream (see its \`x-events\`); \`error\` with \`error.code\` and \`error.message\` for a message it cannot take (the connection stays open).

Limits as for /api/stream: STREAM_MAX_CONNECTIONS per node (503 before the upgrade), STREAM_MAX_SYMBOLS per connection (an error message), and a client whose unsent backlog passes STREAM_MAX_BUFFER_BYTES is closed with code 1008 ("slow client") rather than buffered for; a stopping node closes with 1001. Pings keep idle connections alive.`;

const json = (schema: object, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const errorResponse = (description: string) =>
  json({ $ref: "#/components/schemas/Error" }, description);

/**
 * Answers every route may give: an API key when one is configured, a bound on the request URL
 * (MAX_URL_BYTES in api.service.ts), and rate limiting.
 */
const common = {
  "401": errorResponse("API_KEY is configured and the X-API-Key header is missing or wrong"),
  "414": errorResponse("The request URL is longer than 2048 bytes"),
  "429": errorResponse("Rate limit exceeded"),
};

const errors = {
  "422": errorResponse("A parameter is malformed; `data.parameter` names it"),
  ...common,
};

const timeParam = (name: string, description: string) => ({
  name,
  in: "query",
  required: false,
  description: `${description}: ISO-8601 (UTC unless an offset is given) or epoch milliseconds`,
  schema: { type: "string" },
});

const limitParam = (fallback: number) => ({
  name: "limit",
  in: "query",
  required: false,
  schema: { type: "integer", minimum: 1, maximum: 10000, default: fallback },
});

export function openApiDocument(): object {
  return {
    openapi: "3.1.0",
    info: {
      title: "Tickstream",
      version: "0.1.0",
      description:
        "Real-time OHLCV bars and price anomalies per symbol, computed from FIX and JSON trades.",
    },
    servers: [{ url: "/" }],
    security: [{}, { apiKey: [] }],
    components: {
      schemas: {
        Error: error,
        Bar: bar,
        RolledBar: rolledBar,
        ActivityBar: activityBar,
        Anomaly: anomaly,
        StreamBar: streamBar,
        StreamHello: streamHello,
      },
      securitySchemes: { apiKey: { type: "apiKey", in: "header", name: "X-API-Key" } },
    },
    paths: {
      "/api/health": {
        get: {
          summary: "Liveness",
          responses: {
            "200": json(
              {
                type: "object",
                required: ["status", "nodeID", "uptimeSec"],
                properties: {
                  status: { const: "ok" },
                  nodeID: { type: "string" },
                  uptimeSec: { type: "integer", minimum: 0 },
                },
              },
              "The node is alive",
            ),
            ...common,
          },
        },
      },
      "/api/ready": {
        get: {
          summary: "Readiness: consuming (caught up), transporter connected, native core loaded",
          responses: {
            "200": json(
              {
                type: "object",
                required: ["ready", "nodeID", "checks"],
                properties: {
                  ready: { const: true },
                  nodeID: { type: "string" },
                  checks: { type: "object", additionalProperties: { type: "boolean" } },
                },
              },
              "Ready",
            ),
            "503": errorResponse("Not ready yet; `message` lists the checks"),
            ...common,
          },
        },
      },
      "/api/symbols": {
        get: {
          summary: "Every symbol held by the cluster",
          responses: {
            "200": json(
              {
                type: "object",
                required: ["symbols"],
                properties: {
                  symbols: {
                    type: "array",
                    items: {
                      type: "object",
                      additionalProperties: false,
                      required: ["symbol", "epoch", "node", "trades", "lastPrice", "lastTradeTime"],
                      properties: {
                        symbol: { type: "string" },
                        epoch: {
                          type: "integer",
                          minimum: 0,
                          description:
                            "Custody epoch of the state the row was read from (grows with every move of the symbol between nodes)",
                        },
                        node: {
                          type: "string",
                          description: "The node holding the symbol's state",
                        },
                        trades: {
                          type: "integer",
                          minimum: 0,
                          description: "Trades applied for the symbol",
                        },
                        lastPrice: nullableNumber,
                        lastTradeTime: { type: ["string", "null"], format: "date-time" },
                      },
                    },
                  },
                },
              },
              "Symbols, sorted",
            ),
            ...common,
          },
        },
      },
      "/api/bars/{symbol}": {
        get: {
          summary:
            "Bars of one symbol, oldest first; the forming bar is included with closed=false",
          description:
            "Bars still in memory (see RETENTION_1M, RETENTION_5M, RETENTION_1H) and older closed bars from the history store (HISTORY_URL), merged by interval start: where both hold a bar, the version with the higher (generation, revision) is listed, the one in memory when they are equal. Cancelled and corrected trades are reflected (a bar whose every trade was cancelled is listed with trades 0 and null prices). `history` says whether the store was read.\n\nAny other interval (15m, 4h, 1d, 1w, …), a time zone other than UTC for an interval of an hour or more, a session or fill=prev is answered by rolling up live bars (BAR_INTERVALS) from memory and history together, exactly (sums of volume and notional, VWAP = Σ notional / Σ volume); `base` names the live interval rolled up and the bars are RolledBar. An interval no live interval divides is a 422 naming the live intervals.",
          parameters: [
            {
              name: "symbol",
              in: "path",
              required: true,
              schema: { type: "string", minLength: 1, maxLength: 64 },
            },
            {
              name: "interval",
              in: "query",
              required: false,
              description:
                "<n>s, <n>m, <n>h, <n>d or <n>w (at most 366 days), a multiple of a live interval (BAR_INTERVALS, default 1m,5m,1h); or a tick (<n>t) or volume (<n>v) bar spec BAR_INTERVALS keeps (then tz, session and fill do not apply, and from/to bound the first trade's time)",
              schema: { type: "string", pattern: BARS_INTERVAL_PATTERN, default: "1m" },
            },
            {
              name: "tz",
              in: "query",
              required: false,
              description:
                "IANA time zone (the platform's database) in which intervals of an hour or more, days (local midnight) and weeks (local Monday) start; correct across DST changes. Shorter intervals stay aligned to the epoch",
              schema: {
                type: "string",
                maxLength: 64,
                default: "UTC",
                examples: ["America/New_York"],
              },
            },
            {
              name: "session",
              in: "query",
              required: false,
              description:
                "HH:MM-HH:MM local time in tz, open before close: only live bars inside each day's session count (1d with 09:30-16:00 in America/New_York is the exchange's daily bar). Its bounds must fall on a boundary of a live interval dividing the interval",
              schema: {
                type: "string",
                pattern: "^([01][0-9]|2[0-4]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$",
              },
            },
            {
              name: "fill",
              in: "query",
              required: false,
              description:
                "none: intervals without trades are left out; prev: they are listed as filled bars at the previous close, from `from` (or `limit` intervals back) to `to` (at most now) or the newest bar",
              schema: { type: "string", enum: ["none", "prev"], default: "none" },
            },
            timeParam("from", "Earliest interval start"),
            timeParam("to", "Intervals start before this (exclusive)"),
            limitParam(500),
          ],
          responses: {
            "200": json(
              {
                type: "object",
                required: ["symbol", "interval", "bars", "history"],
                properties: {
                  symbol: { type: "string" },
                  interval: { type: "string", pattern: BARS_INTERVAL_PATTERN },
                  tz: { type: "string", description: "Rolled up: the zone, canonical name" },
                  session: { type: ["string", "null"] },
                  fill: { type: "string", enum: ["none", "prev"] },
                  base: {
                    type: "string",
                    enum: [...LIVE_INTERVALS],
                    description:
                      "Rolled up: the live interval read, the coarsest that divides the interval, the session and the zone's offsets",
                  },
                  bars: {
                    type: "array",
                    items: {
                      anyOf: [
                        { $ref: "#/components/schemas/Bar" },
                        { $ref: "#/components/schemas/RolledBar" },
                        { $ref: "#/components/schemas/ActivityBar" },
                      ],
                    },
                  },
                  history: {
                    type: "string",
                    enum: ["ok", "unavailable", "off"],
                    description:
                      "ok: bars older than in-memory retention came from the history store; unavailable: the store could not be read, so only the bars in memory are listed; off: no history store is configured",
                  },
                },
              },
              "Bars",
            ),
            "404": errorResponse("Unknown symbol"),
            "503": errorResponse(
              "The symbol is not in memory and the history store cannot be read (ERR_HISTORY_UNAVAILABLE)",
            ),
            ...errors,
          },
        },
      },
      "/api/bars/{symbol}/rolling": {
        get: {
          summary: "OHLCV, VWAP and trades over a trailing window",
          description:
            "Exact sums (not averages) over a trailing window, cheap enough to poll. Within the trade journal (CORRECTION_WINDOW, default RETENTION_1M, back from the symbol's latest trade): every trade with an event time in [at − window, at), base `trades`. Further back: the whole live bars of the coarsest live interval dividing `window` (base), the last of them the one holding `at`, so the window covers [fromMs, toMs), between window − base and window before `at`, from memory and history; a window no live interval divides is then a 422.",
          parameters: [
            {
              name: "symbol",
              in: "path",
              required: true,
              schema: { type: "string", minLength: 1, maxLength: 64 },
            },
            {
              name: "window",
              in: "query",
              required: false,
              description: "Length: <n>s, <n>m, <n>h, <n>d (24 h) or <n>w, at most 31 days",
              schema: { type: "string", pattern: INTERVAL_PATTERN, default: "5m" },
            },
            timeParam("at", "The window ends at this instant (default now)"),
          ],
          responses: {
            "200": json(
              {
                type: "object",
                additionalProperties: false,
                required: [
                  "symbol",
                  "window",
                  "base",
                  "atMs",
                  "fromMs",
                  "toMs",
                  "open",
                  "high",
                  "low",
                  "close",
                  "volume",
                  "vwap",
                  "trades",
                ],
                properties: {
                  symbol: { type: "string" },
                  window: { type: "string", pattern: INTERVAL_PATTERN },
                  base: {
                    type: "string",
                    enum: ["trades", ...LIVE_INTERVALS],
                    description:
                      "trades: every trade in [fromMs, toMs) from the trade journal; otherwise the live interval whose whole bars were summed",
                  },
                  atMs: { type: "integer" },
                  fromMs: { type: "integer", description: "The window covers [fromMs, toMs)" },
                  toMs: { type: "integer" },
                  open: { ...nullableNumber, description: "Null without trades" },
                  high: nullableNumber,
                  low: nullableNumber,
                  close: nullableNumber,
                  volume: { type: "number", minimum: 0 },
                  vwap: {
                    ...nullableNumber,
                    description: "Σ price·qty / Σ qty; null when volume is 0",
                  },
                  trades: { type: "integer", minimum: 0 },
                  history: {
                    type: "string",
                    enum: ["ok", "unavailable", "off"],
                    description:
                      "Whether the history store was read (absent when the trade journal answered)",
                  },
                },
              },
              "The window",
            ),
            "404": errorResponse("Unknown symbol"),
            "503": errorResponse(
              "The symbol is not in memory and the history store cannot be read (ERR_HISTORY_UNAVAILABLE)",
            ),
            ...errors,
          },
        },
      },
      "/api/anomalies": {
        get: {
          summary: "Recent anomalies, newest first",
          parameters: [
            {
              name: "symbol",
              in: "query",
              required: false,
              schema: { type: "string", maxLength: 64 },
            },
            timeParam("since", "Earliest event time"),
            limitParam(100),
          ],
          responses: {
            "200": json(
              {
                type: "object",
                required: ["anomalies"],
                properties: {
                  anomalies: { type: "array", items: { $ref: "#/components/schemas/Anomaly" } },
                },
              },
              "Anomalies",
            ),
            ...errors,
          },
        },
      },
      "/api/stream": {
        get: {
          summary: "Live forming bars, closed bars and anomalies (Server-Sent Events)",
          description: STREAM_DESCRIPTION,
          // Never ends by itself: request-response fuzzers must leave it out (see schemathesis.test.ts).
          "x-streaming": true,
          "x-events": {
            hello: { $ref: "#/components/schemas/StreamHello" },
            bar: { $ref: "#/components/schemas/StreamBar" },
            closed: { $ref: "#/components/schemas/StreamBar" },
            anomaly: { $ref: "#/components/schemas/Anomaly" },
          },
          parameters: [
            {
              name: "symbols",
              in: "query",
              required: false,
              description:
                "Comma-separated symbols, at most STREAM_MAX_SYMBOLS (100); required unless anomalies=all",
              schema: { type: "string" },
              example: "AAPL,MSFT",
            },
            {
              name: "intervals",
              in: "query",
              required: false,
              description: "Comma-separated intervals of 1m, 5m, 1h",
              schema: { type: "string", default: "1m" },
              example: "1m,5m",
            },
            {
              name: "anomalies",
              in: "query",
              required: false,
              description: "0: none; 1: those of the listed symbols; all: every symbol's",
              schema: { type: "string", enum: ["0", "1", "all"], default: "0" },
            },
          ],
          responses: {
            "200": {
              description: "The event stream",
              content: {
                "text/event-stream": {
                  schema: { type: "string", description: "SSE frames; see the description" },
                },
              },
            },
            "503": errorResponse("This node already serves STREAM_MAX_CONNECTIONS streams"),
            ...errors,
          },
        },
      },
      "/api/ws": {
        get: {
          summary: "Live bars and anomalies over WebSocket, with subscribe and unsubscribe",
          description: WS_DESCRIPTION,
          // A connection upgrade, not a request-response: fuzzers must leave it out.
          "x-streaming": true,
          parameters: [
            {
              name: "apiKey",
              in: "query",
              required: false,
              description: "The API key, for clients that cannot set the X-API-Key header",
              schema: { type: "string" },
            },
          ],
          responses: {
            "101": { description: "Switched to the WebSocket protocol" },
            "401": { description: "Missing or wrong API key (when API_KEY is set)" },
            "503": { description: "This node already serves STREAM_MAX_CONNECTIONS streams" },
          },
        },
      },
      "/api/stats": {
        get: {
          summary: "Pipeline counters per node",
          responses: {
            "200": json(
              {
                type: "object",
                required: ["nodes"],
                properties: {
                  nodes: {
                    type: "array",
                    items: {
                      type: "object",
                      required: ["nodeID"],
                      properties: {
                        nodeID: { type: "string" },
                        publishing: {
                          type: "object",
                          description:
                            "Bar versions (BARS_TOPIC) and anomalies (ANOMALIES_TOPIC) this node's actors made: pending (not yet committed to Kafka), published (committed since the node started), and the age of the oldest pending one (null: none)",
                          required: ["pending", "published", "oldestPendingMs"],
                          properties: {
                            pending: { type: "integer", minimum: 0 },
                            published: { type: "integer", minimum: 0 },
                            oldestPendingMs: { type: ["integer", "null"], minimum: 0 },
                          },
                        },
                        corrections: {
                          type: "object",
                          description:
                            "Trade cancels and corrections: decoded by this node's parser (received, of which unreferenced name no trade), and applied by its aggregator (cancelled, corrected) or skipped, by reason: unknown_trade, outside_window (older than CORRECTION_WINDOW), already_cancelled, duplicate (the same report again), unchanged (the values the trade already had)",
                          required: [
                            "received",
                            "unreferenced",
                            "cancelled",
                            "corrected",
                            "skipped",
                          ],
                          properties: {
                            received: { type: "integer", minimum: 0 },
                            unreferenced: { type: "integer", minimum: 0 },
                            cancelled: { type: "integer", minimum: 0 },
                            corrected: { type: "integer", minimum: 0 },
                            skipped: {
                              type: "object",
                              additionalProperties: { type: "integer", minimum: 0 },
                            },
                          },
                        },
                      },
                    },
                  },
                },
              },
              "Counters",
            ),
            ...common,
          },
        },
      },
      "/api/openapi.json": {
        get: {
          summary: "This document",
          responses: { "200": json({ type: "object" }, "OpenAPI 3.1"), ...common },
        },
      },
    },
  };
}
