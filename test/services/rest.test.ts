/**
 * The REST gateway over real HTTP (port 0) on a node fed by the synthetic market. Every answer is
 * validated against the OpenAPI document the node serves, which keeps the document true.
 */
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import type { StartedNode } from "../../app/start";
import { eventually, getJson, startTestNode } from "../support/node";

type Doc = {
  paths: Record<
    string,
    { get: { responses: Record<string, { content?: { "application/json": { schema: object } } }> } }
  >;
  components: { schemas: Record<string, object> };
};

describe("REST API", () => {
  let node: StartedNode & { url: string };
  let doc: Doc;
  const ajv = new Ajv2020({ strict: false });
  addFormats(ajv);

  /** Fetches a path and checks the answer against the documented schema of its route and status. */
  async function call(path: string, route: string, headers: Record<string, string> = {}) {
    const res = await getJson(`${node.url}${path}`, headers);
    const spec = doc.paths[route]?.get.responses[String(res.status)];
    expect({ path, status: res.status, documented: spec !== undefined }).toEqual({
      path,
      status: res.status,
      documented: true,
    });
    const schema = spec?.content?.["application/json"].schema;
    if (schema) {
      const validate = ajv.compile({ ...schema, components: doc.components });
      const ok = validate(res.body);
      expect({ path, errors: ok ? null : validate.errors }).toEqual({ path, errors: null });
    }
    return res;
  }

  beforeAll(async () => {
    node = await startTestNode({
      FEED_RATE: "4000",
      FEED_SYMBOLS: "5",
      FEED_JUMP_PROBABILITY: "0.01",
    });
    doc = (await getJson(`${node.url}/api/openapi.json`)).body as Doc;
    await eventually(async () => {
      const { body } = await getJson(`${node.url}/api/symbols`);
      return (body as { symbols: unknown[] }).symbols.length === 5 ? true : undefined;
    }, "all synthetic symbols to trade");
  });

  afterAll(() => node?.stop());

  it("answers health and readiness", async () => {
    const health = await call("/api/health", "/api/health");
    expect(health.body).toMatchObject({ status: "ok", nodeID: node.broker.nodeID });
    expect((await call("/api/ready", "/api/ready")).status).toBe(200);
  });

  it("lists symbols and serves their bars, oldest first, with the forming bar", async () => {
    const { body } = await call("/api/symbols", "/api/symbols");
    const symbol = (body as { symbols: { symbol: string }[] }).symbols[0]!.symbol;
    for (const interval of ["1m", "5m", "1h"]) {
      const res = await call(`/api/bars/${symbol}?interval=${interval}`, "/api/bars/{symbol}");
      const bars = (
        res.body as {
          bars: {
            startMs: number;
            closed: boolean;
            high: number;
            low: number;
            open: number;
            close: number;
          }[];
        }
      ).bars;
      expect(bars.length).toBeGreaterThan(0);
      expect(bars.at(-1)!.closed).toBe(false);
      for (const b of bars) {
        expect(b.high).toBeGreaterThanOrEqual(Math.max(b.open, b.close, b.low));
        expect(b.low).toBeLessThanOrEqual(Math.min(b.open, b.close));
      }
      expect([...bars].sort((a, b) => a.startMs - b.startMs)).toEqual(bars);
    }
    const limited = await call(
      `/api/bars/${symbol}?limit=1&from=0&to=${Date.now() + 60_000}`,
      "/api/bars/{symbol}",
    );
    expect((limited.body as { bars: unknown[] }).bars).toHaveLength(1);
  });

  it("rolls live bars up into other intervals and trailing windows, as documented", async () => {
    const { body } = await call("/api/symbols", "/api/symbols");
    const symbol = (body as { symbols: { symbol: string }[] }).symbols[0]!.symbol;
    type Rolled = {
      base: string;
      tz: string;
      bars: { startMs: number; endMs: number; trades: number; filled: boolean; closed: boolean }[];
    };
    const m15 = (await call(`/api/bars/${symbol}?interval=15m`, "/api/bars/{symbol}"))
      .body as Rolled;
    expect(m15.base).toBe("5m");
    expect(m15.bars.at(-1)).toMatchObject({ closed: false, filled: false });
    expect(m15.bars.at(-1)!.endMs - m15.bars.at(-1)!.startMs).toBe(900_000);
    // The trades of the forming 15m bar are those of its 5m bars (one read, so they agree).
    const day = (
      await call(
        `/api/bars/${symbol}?interval=1d&tz=America/New_York&fill=prev`,
        "/api/bars/{symbol}",
      )
    ).body as Rolled;
    expect(day).toMatchObject({ base: "1h", tz: "America/New_York" });
    expect(day.bars.length).toBeGreaterThan(0);
    // Within the trade journal (the correction window) any window is exact to the trade.
    const window = await call(
      `/api/bars/${symbol}/rolling?window=30s`,
      "/api/bars/{symbol}/rolling",
    );
    expect(window.body).toMatchObject({ symbol, window: "30s", base: "trades" });
    const w = window.body as { fromMs: number; toMs: number; atMs: number; trades: number };
    expect([w.toMs - w.fromMs, w.toMs]).toEqual([30_000, w.atMs]);
    expect(w.trades).toBeGreaterThan(0);
    // Older than the journal: whole live bars, from history when they left memory.
    const old = await call(
      `/api/bars/${symbol}/rolling?window=10m&at=${Date.now() - 86_400_000}`,
      "/api/bars/{symbol}/rolling",
    );
    expect(old.body).toMatchObject({ base: "5m", trades: 0, open: null, volume: 0 });
  });

  it("finds the synthetic price jumps as anomalies, newest first", async () => {
    const anomalies = await eventually(async () => {
      const res = await call("/api/anomalies?limit=50", "/api/anomalies");
      const list = (res.body as { anomalies: { timeMs: number; zscore: number }[] }).anomalies;
      return list.length > 0 ? list : undefined;
    }, "an anomaly");
    for (const a of anomalies) expect(Math.abs(a.zscore)).toBeGreaterThanOrEqual(4);
    expect(anomalies.map((a) => a.timeMs)).toEqual(
      [...anomalies.map((a) => a.timeMs)].sort((a, b) => b - a),
    );
  });

  it("counts the pipeline per node, rejects by reason", async () => {
    const { body } = await call("/api/stats", "/api/stats");
    const [stats] = (
      body as {
        nodes: {
          nodeID: string;
          messages: { received: number; valid: number };
          trades: { applied: number };
        }[];
      }
    ).nodes;
    expect(stats!.nodeID).toBe(node.broker.nodeID);
    expect(stats!.messages.received).toBeGreaterThan(0);
    expect(stats!.trades.applied).toBeGreaterThan(0);
  });

  it("says which parameter is wrong with a 4xx, never a 500", async () => {
    const cases: [string, number, string | null][] = [
      ["/api/bars/NOPE", 404, null],
      ["/api/bars/AAPL?interval=2x", 422, "interval"],
      ["/api/bars/AAPL?interval=30s", 422, "interval"],
      ["/api/bars/AAPL?interval=5h&tz=America/New_York", 422, "interval"],
      ["/api/bars/AAPL?interval=1d&tz=Mars/Olympus", 422, "tz"],
      ["/api/bars/AAPL?interval=1d&session=16:00-09:30", 422, "session"],
      ["/api/bars/AAPL?interval=1d&fill=next", 422, "fill"],
      ["/api/bars/AAPL/rolling?window=45d", 422, "window"],
      ["/api/bars/AAPL/rolling?window=5m&at=noon", 422, "at"],
      ["/api/bars/AAPL?limit=0", 422, "limit"],
      ["/api/bars/AAPL?limit=abc", 422, "limit"],
      ["/api/bars/AAPL?from=yesterday", 422, "from"],
      ["/api/bars/AAPL?to=2024-02-30T25:00:00Z", 422, "to"],
      ["/api/anomalies?since=soon", 422, "since"],
      ["/api/anomalies?limit=10001", 422, "limit"],
    ];
    for (const [path, status, parameter] of cases) {
      const route = path.includes("/rolling")
        ? "/api/bars/{symbol}/rolling"
        : path.startsWith("/api/bars")
          ? "/api/bars/{symbol}"
          : "/api/anomalies";
      const res = await call(path, route);
      expect({ path, status: res.status }).toEqual({ path, status });
      if (parameter)
        expect((res.body as { data: { parameter: string } }).data.parameter).toBe(parameter);
      else expect((res.body as { message: string }).message).toMatch(/unknown symbol "NOPE"/);
    }
    expect((await getJson(`${node.url}/api/nothing-here`)).status).toBe(404);
    expect((await getJson(`${node.url}/api/bars/AAPL?x=${"a".repeat(3000)}`)).status).toBe(414);
  });

  it("describes every route it serves", () => {
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/api/anomalies",
        "/api/bars/{symbol}",
        "/api/bars/{symbol}/rolling",
        "/api/health",
        "/api/openapi.json",
        "/api/ready",
        "/api/stats",
        "/api/stream",
        "/api/ws",
        "/api/symbols",
      ].sort(),
    );
  });
});

describe("REST protection", () => {
  it("requires the API key when one is configured", async () => {
    const node = await startTestNode({ API_KEY: "s3cret", SERVICES: "api,aggregator" });
    try {
      expect((await getJson(`${node.url}/api/health`)).status).toBe(401);
      expect((await getJson(`${node.url}/api/health`, { "X-API-Key": "wrong" })).status).toBe(401);
      expect((await getJson(`${node.url}/api/health`, { "X-API-Key": "s3cret" })).status).toBe(200);
    } finally {
      await node.stop();
    }
  });

  it("rate-limits each client", async () => {
    const node = await startTestNode({ RATE_LIMIT_PER_MIN: "5", SERVICES: "api,aggregator" });
    try {
      const statuses = [];
      for (let i = 0; i < 7; i++) statuses.push((await getJson(`${node.url}/api/health`)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    } finally {
      await node.stop();
    }
  });
});
