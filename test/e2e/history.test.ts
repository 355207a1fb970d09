/**
 * History end to end with the embedded store: a node keeping only 10 minutes of 1m bars (30 of 5m)
 * in memory replays the JSE corpus (88 minutes) and must still serve every bar of every symbol,
 * equal to the independent reference (test/support/reference.ts), with from/to/limit answered
 * across the boundary between memory and history. A node started afterwards on the same file,
 * without any feed, serves the same bars from history alone.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Service } from "moleculer";
import type { BarHistory } from "../../src/history";
import type { Binding } from "../../src/native";
import type { StartedNode } from "../../app/start";
import { fixFile } from "../support/fix-data";
import { asNumber, mdTrades, refBars, type RefBar, type RefTrade } from "../support/reference";
import { eventually, getJson, startTestNode, untilReady } from "../support/node";
import { openApiChecker } from "../support/openapi";
import { LIVE_MS } from "../../src/contracts/bars";
import type { BarsAnswer } from "../../src/contracts/queries";

const FILE = fixFile("hffix-fix.5.0.set.1.fix");

type Aggregator = Service & {
  actors: { engine: Binding.Engine };
  history: BarHistory | null;
};

const aggregatorOf = (node: StartedNode) =>
  node.broker.getLocalService("aggregator") as unknown as Aggregator;

/** What REST shows of a bar, next to what the reference computes for it. */
function shown(b: BarsAnswer["bars"][number]) {
  return [b.startMs, b.open, b.high, b.low, b.close, b.volume, b.trades, b.closed] as const;
}
function expected(e: RefBar) {
  return [
    e.startMs,
    asNumber(e.open),
    asNumber(e.high),
    asNumber(e.low),
    asNumber(e.close),
    asNumber(e.volume),
    e.trades,
    true,
  ] as const;
}

async function bars(url: string, symbol: string, query: string): Promise<BarsAnswer> {
  const { status, body } = await getJson(`${url}/api/bars/${encodeURIComponent(symbol)}?${query}`);
  if (status !== 200) throw new Error(`${symbol} ${query}: ${status} ${JSON.stringify(body)}`);
  return body as BarsAnswer;
}

describe("history with the embedded SQLite store", () => {
  let dir: string;
  let historyUrl: string;
  let node: StartedNode & { url: string };
  let trades: RefTrade[];
  let symbols: string[];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "tickstream-e2e-history-"));
    historyUrl = `sqlite:${path.join(dir, "history.sqlite")}`;
    trades = mdTrades(readFileSync(FILE), ["2", "3"]);
    symbols = [...new Set(trades.map((t) => t.symbol))].sort();
    node = await startTestNode({
      FEED_FILE: FILE,
      FIX_MD_ENTRY_TYPES: "2,3",
      BATCH_MAX_RECORDS: "500",
      RETENTION_1M: "10m",
      RETENTION_5M: "30m",
      HISTORY_URL: historyUrl,
      HISTORY_FLUSH_MS: "100",
    });
    await untilReady(node.url);
    // Every bar closes (event time, then the wall clock) and reaches the store.
    await eventually(
      async () => {
        for (const s of symbols) {
          const b = await bars(node.url, s, "interval=1h&limit=10");
          if (!b.bars.every((x) => x.closed)) return undefined;
        }
        return aggregatorOf(node).history?.stats.buffered === 0 ? true : undefined;
      },
      "every bar to close and be written",
      120_000,
    );
  }, 300_000);

  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("holds only the retention window in memory, so the older bars can only come from history", () => {
    const engine = aggregatorOf(node).actors.engine;
    const busiest = symbols
      .map((s) => ({ s, n: refBars(trades, s, LIVE_MS["1m"]).length }))
      .sort((a, b) => b.n - a.n)[0]!;
    expect(busiest.n).toBeGreaterThan(40);
    expect(engine.bars(busiest.s, "1m", undefined, undefined, 10_000)!.length).toBeLessThanOrEqual(
      10,
    );
  });

  for (const interval of ["1m", "5m", "1h"] as const) {
    it(`serves every ${interval} bar of every symbol, equal to the independent computation`, async () => {
      let total = 0;
      for (const symbol of symbols) {
        const body = await bars(node.url, symbol, `interval=${interval}&limit=10000`);
        expect(body.history).toBe("ok");
        const want = refBars(trades, symbol, LIVE_MS[interval]);
        expect({ symbol, bars: body.bars.map(shown) }).toEqual({
          symbol,
          bars: want.map(expected),
        });
        body.bars.forEach((b, i) => expect(b.start).toBe(new Date(want[i]!.startMs).toISOString()));
        total += want.length;
      }
      expect(total).toBeGreaterThan(symbols.length);
    });
  }

  it("answers from, to and limit across the boundary between memory and history", async () => {
    const symbol = symbols
      .map((s) => ({ s, n: refBars(trades, s, LIVE_MS["1m"]).length }))
      .sort((a, b) => b.n - a.n)[0]!.s;
    const all = refBars(trades, symbol, LIVE_MS["1m"]).map(expected);
    const n = all.length;
    const at = (i: number) => all[i]![0];
    const check = async (query: string, want: readonly (typeof all)[number][]) =>
      expect((await bars(node.url, symbol, `interval=1m&${query}`)).bars.map(shown)).toEqual(want);
    await check("limit=5", all.slice(n - 5));
    await check("limit=20", all.slice(n - 20));
    // `to` is exclusive, like the engine's.
    await check(`from=${at(3)}&to=${at(n - 4)}`, all.slice(3, n - 4));
    await check(`from=${at(3)}&to=${at(n - 4)}&limit=15`, all.slice(n - 4 - 15, n - 4));
    await check(`from=${new Date(at(10)).toISOString()}`, all.slice(10));
    await check(`to=${at(5)}`, all.slice(0, 5));
    await check(`from=${at(n - 1) + 1}&to=${at(n - 1) + 2}`, []);
    const documented = await openApiChecker(node.url);
    const answer = await bars(node.url, symbol, "interval=1m&limit=10000");
    expect(documented("/api/bars/{symbol}", 200, answer)).toEqual([]);
  });

  it("serves the same bars from history alone on a node that never saw the trades", async () => {
    await node.stop();
    // No ingest: nothing reaches this node's memory.
    node = await startTestNode({
      SERVICES: "aggregator,api",
      HISTORY_URL: historyUrl,
    });
    const engine = aggregatorOf(node).actors.engine;
    for (const symbol of symbols.slice(0, 10)) {
      const body = await bars(node.url, symbol, "interval=1m&limit=10000");
      expect(engine.symbolCount()).toBe(0);
      expect({ symbol, bars: body.bars.map(shown) }).toEqual({
        symbol,
        bars: refBars(trades, symbol, LIVE_MS["1m"]).map(expected),
      });
    }
    const unknown = await getJson(`${node.url}/api/bars/NOPE?interval=1m`);
    expect(unknown.status).toBe(404);
    // A symbol known to history with nothing in the range is an empty answer, not a 404.
    const empty = await bars(node.url, symbols[0]!, "interval=1m&from=0&to=1");
    expect(empty).toMatchObject({ bars: [], history: "ok" });
  });
});
