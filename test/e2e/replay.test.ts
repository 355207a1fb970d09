/**
 * End to end on one node: replay the JSE corpus (FIX_MD_ENTRY_TYPES=2,3) through ingest → parser →
 * aggregator/anomaly and compare the bars REST serves, for every interval, with bars computed here
 * independently (test/support/reference.ts shares no code with the system).
 */
import { readFileSync } from "node:fs";
import type { StartedNode } from "../../app/start";
import { fixFile } from "../support/fix-data";
import { asNumber, mdTrades, refBars, type RefTrade } from "../support/reference";
import { eventually, getJson, startTestNode } from "../support/node";
import { LIVE_MS } from "../../src/contracts/bars";
import type { BarsAnswer } from "../../src/contracts/queries";

const FILE = fixFile("hffix-fix.5.0.set.1.fix");

describe("replaying a FIX file end to end", () => {
  let node: StartedNode & { url: string };
  let trades: RefTrade[];

  beforeAll(async () => {
    trades = mdTrades(readFileSync(FILE), ["2", "3"]);
    node = await startTestNode({
      FEED_FILE: FILE,
      FIX_MD_ENTRY_TYPES: "2,3",
      BATCH_MAX_RECORDS: "500",
    });
    await eventually(
      async () => ((await getJson(`${node.url}/api/ready`)).status === 200 ? true : undefined),
      "the replay to finish",
    );
  });

  afterAll(async () => {
    await node?.stop();
  });

  it("applies every trade of the file exactly once", async () => {
    const { body } = await getJson(`${node.url}/api/symbols`);
    const symbols = (body as { symbols: { symbol: string; trades: number }[] }).symbols;
    const expected = new Map<string, number>();
    for (const t of trades) expected.set(t.symbol, (expected.get(t.symbol) ?? 0) + 1);
    expect(symbols).toHaveLength(expected.size);
    expect(new Map(symbols.map((s) => [s.symbol, s.trades]))).toEqual(expected);
  });

  // The busiest symbols, a quiet one, and the one with the 17-significant-digit prices.
  const picks = () => {
    const counts = new Map<string, number>();
    for (const t of trades) counts.set(t.symbol, (counts.get(t.symbol) ?? 0) + 1);
    const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([s]) => s);
    return [...new Set([sorted[0]!, sorted[1]!, sorted[sorted.length - 1]!, "J200"])];
  };

  for (const interval of ["1m", "5m", "1h"] as const) {
    it(`serves ${interval} bars equal to an independent computation`, async () => {
      for (const symbol of picks()) {
        const expected = refBars(trades, symbol, LIVE_MS[interval]);
        const { status, body } = await getJson(
          `${node.url}/api/bars/${symbol}?interval=${interval}&limit=10000`,
        );
        expect(status).toBe(200);
        const got = (body as BarsAnswer).bars;
        expect(got.map((b) => b.startMs)).toEqual(expected.map((b) => b.startMs));
        got.forEach((b, i) => {
          const e = expected[i]!;
          expect({
            symbol,
            start: b.start,
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
            trades: b.trades,
          }).toEqual({
            symbol,
            start: new Date(e.startMs).toISOString(),
            open: asNumber(e.open),
            high: asNumber(e.high),
            low: asNumber(e.low),
            close: asNumber(e.close),
            volume: asNumber(e.volume),
            trades: e.trades,
          });
          // Index values carry no size: no volume, so no VWAP.
          expect(b.vwap).toBeNull();
        });
      }
    });
  }

  it("closes every bar once the replay is done (event time, then the wall clock)", async () => {
    const symbol = picks()[0]!;
    const bars = await eventually(async () => {
      const { body } = await getJson(`${node.url}/api/bars/${symbol}?interval=1h`);
      const b = (body as BarsAnswer).bars;
      return b.every((x) => x.closed) ? b : undefined;
    }, "the last bars to close");
    expect(bars.length).toBeGreaterThan(0);
  });
});
