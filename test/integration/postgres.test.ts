/**
 * History in a real PostgreSQL server (a private cluster this test starts: scripts/infra/postgres.ts).
 *
 * - The store keeps exact NUMERIC values, upserts idempotently (a re-write does not even touch a
 *   row), keeps the latest version of a bar ((generation, revision), not the fullest), keeps
 *   namespaces apart in one table, migrates a table from before versions, and answers ranges like
 *   the engine.
 * - While the server is down the writer never blocks, keeps at most HISTORY_BUFFER_MAX bars
 *   (dropping and counting the oldest), backs off, and writes the rest once the server is back.
 * - A node replaying the JSE corpus keeps serving live bars while the server is stopped mid-run
 *   (REST says history is unavailable), and after the restart history catches up: every 1m bar of
 *   every symbol, in REST and in the table, equals the independent computation. Replaying the
 *   same corpus again on a fresh node changes nothing in the table.
 */
import { readFileSync } from "node:fs";
import { Client } from "pg";
import { HistoryWriter, type BarHistory } from "../../src/history";
import { PostgresHistory, TABLE } from "../../src/history/postgres";
import { decimal, type StoredBar } from "../../src/history/store";
import { startPostgres, type PostgresHandle } from "../../scripts/infra/postgres";
import { M } from "../../src/metrics";
import type { StartedNode } from "../../app/start";
import { fixFile } from "../support/fix-data";
import { asNumber, mdTrades, refBars, type RefTrade } from "../support/reference";
import { eventually, getJson, startTestNode, untilReady } from "../support/node";
import { openApiChecker } from "../support/openapi";
import type { BarsAnswer } from "../../src/contracts/queries";

const FILE = fixFile("hffix-fix.5.0.set.1.fix");
const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);
const MIN = 60_000;

let pg: PostgresHandle;

/** A fresh database on the test's server, so each test owns its table. */
async function database(name: string): Promise<string> {
  const admin = new Client(pg.url);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return pg.url.replace(/\/postgres$/, `/${name}`);
}

async function query<R extends object>(url: string, sql: string): Promise<R[]> {
  const c = new Client(url);
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

function bar(startMs: number, over: Partial<StoredBar> = {}): StoredBar {
  return {
    symbol: "ACME",
    interval: "1m",
    startMs,
    open: "10.5",
    high: "11",
    low: "10",
    close: "10.75",
    volume: "300",
    volumeExact: "300",
    notional: "3180",
    vwap: "10.6",
    trades: 3,
    revised: false,
    orderCount: 0,
    buyQty: "0",
    sellQty: "0",
    generation: 1,
    revision: 3,
    ...over,
  };
}

beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);

afterAll(async () => {
  await pg?.destroy();
});

describe("PostgresHistory", () => {
  it("stores exact NUMERIC values and upserts idempotently, revisions winning", async () => {
    const url = await database("store_test");
    const store = new PostgresHistory(url, { timeoutMs: 5000 });
    try {
      // Prices as real data has them (17 significant digits), and floats' awkward corners.
      const awkward = [Number("25929.169999999996"), 0.1 + 0.2, 1e-7, 1e21];
      const bars = awkward.map((p, i) =>
        bar(T0 + i * MIN, { open: decimal(p), close: decimal(p), vwap: decimal(p) }),
      );
      bars.push(
        bar(T0 + 9 * MIN, {
          open: null,
          high: null,
          low: null,
          close: null,
          volume: "0",
          vwap: null,
          trades: 0,
          orderCount: 2,
          buyQty: "150.25",
          revised: true,
        }),
      );
      await store.writeBars(bars);
      const back = await store.readBars("ACME", "1m", undefined, undefined, 100);
      expect(back.map((b) => b.close && Number(b.close))).toEqual([...awkward, null]);
      // NUMERIC writes 1e-7 as 0.0000001: the same number, other text; everything else is as written.
      const exceptPrices = (b: StoredBar) => ({ ...b, open: null, close: null, vwap: null });
      expect(back.map(exceptPrices)).toEqual(bars.map(exceptPrices));
      const types = await query<{ column_name: string; data_type: string }>(
        url,
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '${TABLE}' AND column_name IN ('open','close','volume','vwap','buy_qty') ORDER BY column_name`,
      );
      expect(new Set(types.map((t) => t.data_type))).toEqual(new Set(["numeric"]));
      const text = await query<{ close: string }>(
        url,
        `SELECT close::text FROM ${TABLE} WHERE start_ms = ${T0}`,
      );
      // Exactly the text JSON shows for the number (its shortest round-trip form).
      expect(text).toEqual([{ close: JSON.stringify(awkward[0]) }]);
      expect(text[0]!.close).toBe("25929.169999999995");

      // Writing the same bars again touches no row (xmin is the writing transaction's id).
      const snapshot = () =>
        query(url, `SELECT xmin::text, * FROM ${TABLE} ORDER BY symbol, "interval", start_ms`);
      const before = await snapshot();
      await store.writeBars(bars);
      await store.writeBars([...bars].reverse());
      expect(await snapshot()).toEqual(before);

      // A revision overwrites; a cancel (fewer trades, higher revision) too; a rebuilt part and a
      // superseded owner's bar do not.
      const revised = bar(T0, { trades: 4, close: "12", revised: true, revision: 4 });
      await store.writeBars([revised]);
      const busted = { ...revised, trades: 2, close: "10", revision: 6 };
      await store.writeBars([busted]);
      await store.writeBars([bar(T0, { trades: 1, revision: 1 })]);
      await store.writeBars([bar(T0, { trades: 9, generation: 0, revision: 90 })]);
      await store.writeBars([{ ...busted, close: "99" }]); // the same version: nothing changes
      expect((await store.readBars("ACME", "1m", T0, T0 + 1, 10))[0]).toEqual(busted);
      // A new owner's bar (a higher generation) wins though its state counted fewer revisions.
      const moved = { ...busted, close: "10.5", generation: 2, revision: 2 };
      await store.writeBars([moved]);
      expect((await store.readBars("ACME", "1m", T0, T0 + 1, 10))[0]).toEqual(moved);

      // Ranges: [from, to), the newest `limit`, oldest first.
      const starts = async (from?: number, to?: number, limit = 100) =>
        (await store.readBars("ACME", "1m", from, to, limit)).map((b) => (b.startMs - T0) / MIN);
      expect(await starts()).toEqual([0, 1, 2, 3, 9]);
      expect(await starts(T0 + MIN, T0 + 9 * MIN)).toEqual([1, 2, 3]);
      expect(await starts(undefined, undefined, 2)).toEqual([3, 9]);
      expect(await store.readBars("ACME", "5m", undefined, undefined, 10)).toEqual([]);

      // Many rows in one batch: more than one INSERT statement, one transaction.
      const many = Array.from({ length: 2500 }, (_, i) => bar(T0 + i * MIN, { symbol: "MANY" }));
      await store.writeBars(many);
      expect(await store.readBars("MANY", "1m", undefined, undefined, 10_000)).toHaveLength(2500);
    } finally {
      await store.close();
    }
  });

  it("keeps namespaces apart in one table, and migrates a table from before namespaces and versions", async () => {
    const url = await database("namespace_test");
    await query(
      url,
      `CREATE TABLE ${TABLE} (symbol text NOT NULL, "interval" text NOT NULL, start_ms bigint NOT NULL,
        open numeric, high numeric, low numeric, close numeric, volume numeric NOT NULL, vwap numeric,
        trades bigint NOT NULL, revised boolean NOT NULL, order_count bigint NOT NULL,
        buy_qty numeric NOT NULL, sell_qty numeric NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (symbol, "interval", start_ms))`,
    );
    await query(
      url,
      `INSERT INTO ${TABLE} VALUES ('ACME', '1m', ${T0}, 1, 1, 1, 7, 9, 1, 9, false, 0, 0, 0)`,
    );
    const legacy = new PostgresHistory(url, { timeoutMs: 5000 });
    const prod = new PostgresHistory(url, { timeoutMs: 5000, namespace: "prod" });
    const test = new PostgresHistory(url, { timeoutMs: 5000, namespace: "test" });
    try {
      const close = async (s: PostgresHistory) =>
        (await s.readBars("ACME", "1m", undefined, undefined, 1))[0]?.close;
      // The old row is the namespace '' at version (0, 0); any version replaces it.
      expect(await close(legacy)).toBe("7");
      await prod.writeBars([bar(T0, { close: "1" })]);
      await test.writeBars([bar(T0, { close: "2" })]);
      expect([await close(legacy), await close(prod), await close(test)]).toEqual(["7", "1", "2"]);
      await legacy.writeBars([bar(T0, { close: "3", generation: 0, revision: 1 })]);
      expect([await close(legacy), await close(prod), await close(test)]).toEqual(["3", "1", "2"]);
      const key = await query<{ n: string }>(
        url,
        `SELECT count(*) AS n FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
          AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '${TABLE}'::regclass AND i.indisprimary`,
      );
      expect(key[0]?.n).toBe("4");
    } finally {
      await Promise.all([legacy.close(), prod.close(), test.close()]);
    }
  });

  it("buffers at most HISTORY_BUFFER_MAX bars while the server is down, then writes them", async () => {
    const url = await database("outage_test");
    const store = new PostgresHistory(url, { timeoutMs: 1000 });
    await pg.stop();
    let attempts = 0;
    const writer = new HistoryWriter(
      store,
      { flushMs: 50, batchSize: 100, bufferMax: 500, retryMaxMs: 300 },
      { failed: () => attempts++ },
    );
    try {
      for (let i = 0; i < 800; i += 50)
        writer.add(Array.from({ length: 50 }, (_, j) => bar(T0 + (i + j) * MIN)));
      expect(writer.stats).toMatchObject({ buffered: 500, dropped: 300, written: 0 });
      const since = Date.now();
      await eventually(() => (attempts >= 4 ? true : undefined), "failed attempts", 30_000);
      // Backoff (50, 100, 200, 300 ms, …): far fewer attempts than one per 50 ms tick.
      expect(attempts).toBeLessThan(4 + (Date.now() - since) / 150);
      expect(writer.failing).toBe(true);

      await pg.start();
      await eventually(() => (writer.stats.buffered === 0 ? true : undefined), "catch-up", 30_000);
      const stored = await store.readBars("ACME", "1m", undefined, undefined, 10_000);
      // The oldest 300 were dropped; the newest 500 arrived, each once.
      expect(stored.map((b) => (b.startMs - T0) / MIN)).toEqual(
        Array.from({ length: 500 }, (_, i) => 300 + i),
      );
      expect(writer.stats).toMatchObject({ written: 500, dropped: 300 });
      expect(writer.failing).toBe(false);
    } finally {
      if (!pg.running()) await pg.start();
      await writer.close(5000);
    }
  });
});

type Aggregator = { history: BarHistory };

describe("a node with PostgreSQL history", () => {
  let url: string;
  let trades: RefTrade[];
  let symbols: string[];
  const nodes: StartedNode[] = [];

  const env = () => ({
    FEED_FILE: FILE,
    FIX_MD_ENTRY_TYPES: "2,3",
    RETENTION_1M: "10m",
    RETENTION_5M: "30m",
    HISTORY_URL: url,
    HISTORY_FLUSH_MS: "100",
    HISTORY_RETRY_MAX_MS: "500",
    HISTORY_TIMEOUT_MS: "1000",
    METRICS: "true",
    METRICS_PORT: "0",
  });
  const writerOf = (node: StartedNode) =>
    (node.broker.getLocalService("aggregator") as unknown as Aggregator).history;
  const metric = (node: StartedNode, name: string) =>
    Number(node.broker.metrics.getMetric(name)?.get()?.value ?? 0);
  const tradesSeen = async (node: StartedNode & { url: string }) => {
    const { body } = await getJson(`${node.url}/api/symbols`);
    return (body as { symbols: { trades: number }[] }).symbols.reduce((n, s) => n + s.trades, 0);
  };
  /** Replay done, every bar closed and handed over, nothing left to write. */
  const settled = async (node: StartedNode & { url: string }) => {
    await untilReady(node.url);
    await eventually(
      async () => {
        for (const s of symbols) {
          const { body } = await getJson(`${node.url}/api/bars/${s}?interval=1h&limit=5`);
          if (!(body as BarsAnswer).bars.every((b) => b.closed)) return undefined;
        }
        return writerOf(node).stats.buffered === 0 && !writerOf(node).failing ? true : undefined;
      },
      "every bar to close and be written",
      120_000,
    );
  };
  const table = () =>
    query<Record<string, unknown>>(
      url,
      `SELECT xmin::text, * FROM ${TABLE} ORDER BY symbol, "interval", start_ms`,
    );

  beforeAll(async () => {
    url = await database("replay_test");
    trades = mdTrades(readFileSync(FILE), ["2", "3"]);
    symbols = [...new Set(trades.map((t) => t.symbol))].sort();
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop();
  });

  it("keeps serving live bars while the server is down, then catches up with every bar", async () => {
    // About 700 records/s: the 13,888-record corpus takes some 20 s, time for an outage.
    const node = await startTestNode({ ...env(), FEED_RATE: "700", BATCH_MAX_RECORDS: "100" });
    nodes.push(node);
    await eventually(
      async () =>
        Number((await query<{ n: string }>(url, `SELECT count(*) AS n FROM ${TABLE}`))[0]?.n) > 20
          ? true
          : undefined,
      "the first bars in PostgreSQL",
      60_000,
    );

    await pg.stop();
    const atStop = await tradesSeen(node);
    const bufferedAtStop = writerOf(node).stats.buffered;
    await eventually(
      () => (metric(node, M.historyWriteErrors) > 0 ? true : undefined),
      "a failed write",
    );
    // Live: trades keep coming, bars keep closing into the buffer, REST answers from memory.
    const during = await eventually(
      async () => {
        const { status, body } = await getJson(`${node.url}/api/bars/${symbols[0]}?interval=1m`);
        const more =
          (await tradesSeen(node)) > atStop + 500 &&
          writerOf(node).stats.buffered > bufferedAtStop + 20;
        return status === 200 && more ? (body as BarsAnswer) : undefined;
      },
      "live bars during the outage",
      60_000,
    );
    expect(during.history).toBe("unavailable");
    expect(during.bars.length).toBeGreaterThan(0);
    const check = await openApiChecker(node.url);
    expect(check("/api/bars/{symbol}", 200, during)).toEqual([]);
    // A symbol memory does not hold cannot be looked up: a documented 503, not a 404 or a 500.
    const unknown = await getJson(`${node.url}/api/bars/NOPE?interval=1m`);
    expect(unknown.status).toBe(503);
    expect(unknown.body).toMatchObject({ type: "ERR_HISTORY_UNAVAILABLE" });
    expect(check("/api/bars/{symbol}", 503, unknown.body)).toEqual([]);

    await pg.start();
    await settled(node);
    expect(metric(node, M.historyDropped)).toBe(0);

    for (const symbol of symbols) {
      const want = refBars(trades, symbol, 60_000);
      const { body } = await getJson(`${node.url}/api/bars/${symbol}?interval=1m&limit=10000`);
      const got = body as BarsAnswer;
      expect(got.history).toBe("ok");
      expect({
        symbol,
        bars: got.bars.map((b) => [b.startMs, b.open, b.high, b.low, b.close, b.volume, b.trades]),
      }).toEqual({
        symbol,
        bars: want.map((e) => [
          e.startMs,
          asNumber(e.open),
          asNumber(e.high),
          asNumber(e.low),
          asNumber(e.close),
          asNumber(e.volume),
          e.trades,
        ]),
      });
    }

    // The table itself: every 1m bar, the decimal text of exactly the numbers REST shows.
    const rows = await query<{
      symbol: string;
      start_ms: string;
      open: string;
      high: string;
      low: string;
      close: string;
      volume: string;
      trades: string;
    }>(
      url,
      `SELECT symbol, start_ms, open::text, high::text, low::text, close::text, volume::text, trades FROM ${TABLE} WHERE "interval" = '1m' ORDER BY symbol, start_ms`,
    );
    const want = symbols.flatMap((s) =>
      refBars(trades, s, 60_000).map((e) => ({
        symbol: s,
        start_ms: String(e.startMs),
        open: String(asNumber(e.open)),
        high: String(asNumber(e.high)),
        low: String(asNumber(e.low)),
        close: String(asNumber(e.close)),
        volume: String(asNumber(e.volume)),
        trades: String(e.trades),
      })),
    );
    expect(rows).toEqual(want);
  }, 300_000);

  it("changes nothing in the table when a fresh node replays the same trades again", async () => {
    const before = await table();
    expect(before.length).toBeGreaterThan(symbols.length);
    await nodes.pop()?.stop();
    const node = await startTestNode(env());
    nodes.push(node);
    await settled(node);
    // It did write every bar it closed; none of them changed a row.
    expect(writerOf(node).stats.written).toBeGreaterThanOrEqual(before.length);
    expect(await table()).toEqual(before);
  }, 300_000);
});
