/**
 * `npm run bench:windowing`: what a rolled-up answer of /api/bars costs when its live bars come
 * from the history store. One symbol in a SQLite file with 500 days of 1h bars, 60 days of 5m
 * and 7 days of 1m bars; each query is answered five times by the roll-up the aggregator runs
 * (src/windowing/query.ts, reading the store as the aggregator does), median and minimum printed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SqliteHistory } from "../src/history/sqlite";
import type { StoredBar } from "../src/history/store";
import { storedBase } from "../src/windowing/parts";
import { windowBars, type ReadLive } from "../src/windowing/query";
import { parseSession } from "../src/windowing/session";
import { LIVE_INTERVALS, type LiveInterval } from "../src/contracts/bars";
import { parseSpec } from "../src/windowing/spec";

const END = Date.UTC(2026, 11, 1);
const LIVE: readonly LiveInterval[] = LIVE_INTERVALS;

function bars(interval: LiveInterval, width: number, n: number): StoredBar[] {
  return Array.from({ length: n }, (_, i) => {
    const p = (100 + (i % 50) / 10).toString();
    return {
      symbol: "X",
      interval,
      startMs: END - (n - i) * width,
      open: p,
      high: p,
      low: p,
      close: p,
      volume: "10",
      volumeExact: "10",
      notional: String(10 * Number(p)),
      vwap: p,
      trades: 3,
      revised: false,
      orderCount: 0,
      buyQty: "0",
      sellQty: "0",
      generation: 1,
      revision: 3,
    };
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tickstream-bench-windowing-"));
  const store = new SqliteHistory(path.join(dir, "history.sqlite"));
  try {
    for (const [interval, width, n] of [
      ["1h", 3_600_000, 500 * 24],
      ["5m", 300_000, 60 * 288],
      ["1m", 60_000, 7 * 1440],
    ] as const) {
      const all = bars(interval, width, n);
      for (let k = 0; k < all.length; k += 5000) await store.writeBars(all.slice(k, k + 5000));
    }
    const read: ReadLive = async (interval, from, to, limit) =>
      (await store.readBars("X", interval, from, to, limit)).map(storedBase);
    const cases = [
      ["1d", "America/New_York", undefined, 500],
      ["1w", "America/New_York", undefined, 60],
      ["4h", "Europe/London", undefined, 500],
      ["15m", "UTC", undefined, 500],
      ["1d", "America/New_York", "09:30-16:00", 60],
      ["1d", "Asia/Kolkata", undefined, 60],
    ] as const;
    for (const [interval, zone, session, limit] of cases) {
      const query = {
        spec: parseSpec(interval)!,
        zone,
        session: parseSession(session),
        limit,
        fill: "none" as const,
        nowMs: Date.now(),
      };
      await windowBars(query, LIVE, read);
      const runs: number[] = [];
      let answer = await windowBars(query, LIVE, read);
      for (let r = 0; r < 5; r++) {
        const t = process.hrtime.bigint();
        answer = await windowBars(query, LIVE, read);
        runs.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      runs.sort((a, b) => a - b);
      console.log(
        `${interval} tz=${zone}${session ? ` session=${session}` : ""} limit=${limit}: ` +
          `${answer.bars.length} bars from ${answer.base}, median ${runs[2]!.toFixed(1)} ms ` +
          `(min ${runs[0]!.toFixed(1)})`,
      );
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
