/**
 * The aggregator's history through a real node (REST on a free port, embedded SQLite store):
 * closed bars are written, a closed bar revised by a late trade is written again (the engine queues
 * a bar only when it closes), a revised bar evicted from memory is served from history as revised,
 * metrics count the writes, and a stopping node writes what it still buffers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fixFill, rawBatch } from "../support/fix-data";
import { SqliteHistory } from "../../src/history/sqlite";
import { namespacedPath } from "../../src/history/store";
import { M } from "../../src/metrics";
import type { StartedNode } from "../../app/start";
import type { ParseResult } from "../../src/contracts/parse";
import { eventually, getJson, startTestNode } from "../support/node";
import type { Context } from "moleculer";
import type { BarsAnswer } from "../../src/contracts/queries";
import type { BarJson } from "../../src/contracts/bars";
import { encodeFix, fixTimestamp } from "../../src/fix/encode";

const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);
const MIN = 60_000;

let seq = 0;
/** Parses fills on the node and applies them to its aggregator, as ingest would. */
function apply(node: StartedNode, fills: [price: string, qty: string, atMs: number][]) {
  return applyRecords(
    node,
    fills.map(([price, qty, atMs]) => fixFill(`E${seq}-${atMs}`, "ACME", price, qty, atMs)),
  );
}

async function applyRecords(node: StartedNode, records: Buffer[]) {
  const parsed = await node.broker.call<ParseResult, object>(
    "parser.parse",
    rawBatch("trades/0", records, seq),
  );
  seq += records.length;
  return node.broker.call<{ applied: number; revised: number }, object>("aggregator.apply", {
    batch: parsed.batch,
  });
}

describe("aggregator history", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "tickstream-svc-history-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes closed bars, rewrites a revised one, and serves it from history once memory evicted it", async () => {
    const file = path.join(dir, "revisions.sqlite");
    const node = await startTestNode({
      SERVICES: "parser,aggregator,api",
      HISTORY_URL: `sqlite:${file}`,
      HISTORY_FLUSH_MS: "50",
      BAR_GRACE_MS: "0",
      RETENTION_1M: "5m",
      METRICS: "true",
      METRICS_PORT: "0",
    });
    const store = new SqliteHistory(namespacedPath(file, "tickstream"));
    const stored1m = async (startMs: number) =>
      (await store.readBars("ACME", "1m", startMs, startMs + 1, 1))[0];
    try {
      await apply(node, [
        ["10", "100", T0 + 1000],
        ["11", "100", T0 + 2 * MIN + 1000], // closes the bar at T0 (grace 0)
      ]);
      const first = await eventually(() => stored1m(T0), "the closed bar in history");
      expect(first).toMatchObject({ trades: 1, close: "10", revised: false });

      // A late trade revises the closed bar: the engine does not queue it again, the scan finds it.
      expect(await apply(node, [["12.5", "50", T0 + 30_000]])).toMatchObject({ revised: 1 });
      const revised = await eventually(
        async () => ((await stored1m(T0))?.trades === 2 ? stored1m(T0) : undefined),
        "the revision in history",
      );
      expect(revised).toMatchObject({ high: "12.5", close: "12.5", volume: "150", revised: true });

      // Ten minutes later the bar has left memory (RETENTION_1M=5m); REST still serves it.
      await apply(node, [["13", "10", T0 + 10 * MIN]]);
      const { status, body } = await getJson(`${node.url}/api/bars/ACME?interval=1m&limit=100`);
      expect(status).toBe(200);
      const answer = body as BarsAnswer;
      expect(answer.history).toBe("ok");
      expect(answer.bars.map((b) => (b.startMs - T0) / MIN)).toEqual([0, 2, 10]);
      expect(answer.bars[0]).toMatchObject({
        open: 10,
        high: 12.5,
        low: 10,
        close: 12.5,
        volume: 150,
        trades: 2,
        closed: true,
        revised: true,
      });
      expect(answer.bars.at(-1)).toMatchObject({ closed: false, trades: 1 });

      // 1m T0 twice (closed, then revised); then, closed by the trade at T0+10m, 1m T0+2m and 5m T0.
      const written = () =>
        Number(node.broker.metrics.getMetric(M.historyWritten)?.get()?.value ?? 0);
      await eventually(() => (written() >= 4 ? true : undefined), "four bars written");
      expect(written()).toBe(4);
      expect(node.broker.metrics.getMetric(M.historyWriteErrors)?.get()?.value ?? 0).toBe(0);
    } finally {
      await store.close();
      await node.stop();
    }
  });

  it("publishes and writes the new version of a closed bar a bust changed", async () => {
    const file = path.join(dir, "bust.sqlite");
    const node = await startTestNode({
      SERVICES: "parser,aggregator,api",
      HISTORY_URL: `sqlite:${file}`,
      HISTORY_FLUSH_MS: "50",
      BAR_GRACE_MS: "0",
    });
    const events: { symbol: string; interval: string; bar: BarJson }[] = [];
    node.broker.createService({
      name: "spy",
      events: {
        "bars.closed"(ctx: Context<{ bars: typeof events }>) {
          events.push(...ctx.params.bars);
        },
      },
    });
    const store = new SqliteHistory(namespacedPath(file, "tickstream"));
    try {
      await applyRecords(node, [
        fixFill("B1", "ACME", "10", "100", T0 + 1000),
        fixFill("B2", "ACME", "14", "100", T0 + 2000),
        fixFill("B3", "ACME", "11", "100", T0 + 2 * MIN + 1000), // closes the bar at T0
      ]);
      const before = await eventually(
        async () => (await store.readBars("ACME", "1m", T0, T0 + 1, 1))[0],
        "the closed bar in history",
      );
      expect(before).toMatchObject({ trades: 2, high: "14", revision: 2 });
      // A bust of the high trade, minutes later: fewer trades, a higher revision.
      const bust = encodeFix("FIX.4.4", "8", [
        [17, "X1"],
        [19, "B2"],
        [55, "ACME"],
        [60, fixTimestamp(T0 + 5 * MIN)],
        [150, "H"],
      ]);
      expect(await applyRecords(node, [bust])).toMatchObject({ revised: 1 });
      const after = await eventually(async () => {
        const b = (await store.readBars("ACME", "1m", T0, T0 + 1, 1))[0];
        return b?.trades === 1 ? b : undefined;
      }, "the busted version in history");
      expect(after).toMatchObject({ high: "10", close: "10", volume: "100", revision: 3 });
      const published = await eventually(
        () =>
          events.find((e) => e.interval === "1m" && e.bar.startMs === T0 && e.bar.revision === 3),
        "the new version on bars.closed",
      );
      expect(published.bar).toMatchObject({ trades: 1, high: 10, closed: true, revised: true });
    } finally {
      await store.close();
      await node.stop();
    }
  });

  it("writes the bars it still buffers when the node stops", async () => {
    const file = path.join(dir, "stop.sqlite");
    // Nothing would be written for an hour, or before 10,000 bars: only the stop writes.
    const node = await startTestNode({
      SERVICES: "parser,aggregator,api",
      HISTORY_URL: `sqlite:${file}`,
      HISTORY_FLUSH_MS: "3600000",
      HISTORY_BATCH_SIZE: "10000",
      BAR_GRACE_MS: "0",
    });
    const store = new SqliteHistory(namespacedPath(file, "tickstream"));
    let stopped = false;
    try {
      await apply(
        node,
        Array.from({ length: 20 }, (_, i): [string, string, number] => [
          String(100 + i),
          "1",
          T0 + i * MIN,
        ]),
      );
      const aggregator = node.broker.getLocalService("aggregator") as unknown as {
        history: { stats: { buffered: number } };
      };
      await eventually(
        () => (aggregator.history.stats.buffered >= 19 ? true : undefined),
        "the closed bars to be buffered",
      );
      expect(await store.readBars("ACME", "1m", undefined, undefined, 100)).toEqual([]);
      await node.stop();
      stopped = true;
      const stored = await store.readBars("ACME", "1m", undefined, undefined, 100);
      expect(stored.map((b) => (b.startMs - T0) / MIN)).toEqual(
        Array.from({ length: 19 }, (_, i) => i),
      );
      expect(stored.map((b) => b.close)).toEqual(
        Array.from({ length: 19 }, (_, i) => String(100 + i)),
      );
    } finally {
      await store.close();
      if (!stopped) await node.stop();
    }
  });
});
