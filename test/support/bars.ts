/**
 * The check every cluster test ends with: each symbol's bars, asked through a node's REST API,
 * equal the independent BigInt computation over the whole stream (test/support/reference.ts).
 */
import { LIVE_MS, type LiveInterval } from "../../src/contracts/bars";
import { getJson } from "./node";
import type { BarsAnswer } from "../../src/contracts/queries";
import { asNumber, comparable, refBars, type RefTrade } from "./reference";

/** Every bar of every listed symbol and interval, from `baseUrl`, equals the reference. */
export async function expectBarsEqualReference(
  baseUrl: string,
  trades: readonly RefTrade[],
  symbols: Iterable<string>,
  intervals: readonly LiveInterval[] = ["1m", "5m", "1h"],
): Promise<void> {
  for (const symbol of [...symbols].sort()) {
    for (const interval of intervals) {
      const want = refBars([...trades], symbol, LIVE_MS[interval]).map((x) => ({
        startMs: x.startMs,
        open: asNumber(x.open),
        high: asNumber(x.high),
        low: asNumber(x.low),
        close: asNumber(x.close),
        volume: asNumber(x.volume),
        trades: x.trades,
      }));
      const { body } = await getJson(
        `${baseUrl}/api/bars/${encodeURIComponent(symbol)}?interval=${interval}&limit=10000`,
      );
      // A bar whose every trade was cancelled stays listed, empty: the reference has no bar there.
      const got = (body as BarsAnswer).bars.filter((b) => b.trades > 0).map(comparable);
      expect({ symbol, interval, got }).toEqual({ symbol, interval, got: want });
    }
  }
}
