/**
 * Bar events stay small: a batch that closes more bars than BARS_PER_EVENT (a replay) publishes
 * them in several `bars.closed` events, each under NATS's max_payload, and loses none.
 */
import type { Context } from "moleculer";
import { BARS_PER_EVENT } from "../../services/aggregator/aggregator.service";
import type { BarJson } from "../../src/contracts/bars";
import type { ParseResult } from "../../src/contracts/parse";
import type { StartedNode } from "../../app/start";
import { fixFill, rawBatch } from "../support/fix-data";
import { eventually, startTestNode } from "../support/node";

const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);
const MIN = 60_000;
const SYMBOLS = Math.ceil(BARS_PER_EVENT * 1.5);

async function applyRecords(node: StartedNode, records: Buffer[], firstSeq: number) {
  const parsed = await node.broker.call<ParseResult, object>(
    "parser.parse",
    rawBatch("trades/0", records, firstSeq),
  );
  await node.broker.call("aggregator.apply", { batch: parsed.batch });
}

describe("bar events", () => {
  it(`publishes more than ${BARS_PER_EVENT} closed bars in events of at most ${BARS_PER_EVENT}`, async () => {
    const node = await startTestNode({ SERVICES: "parser,aggregator,api", BAR_GRACE_MS: "0" });
    const events: { symbol: string; interval: string; bar: BarJson }[][] = [];
    node.broker.createService({
      name: "spy",
      events: {
        "bars.closed"(
          ctx: Context<{ bars: { symbol: string; interval: string; bar: BarJson }[] }>,
        ) {
          events.push(ctx.params.bars);
        },
      },
    });
    try {
      const symbols = Array.from({ length: SYMBOLS }, (_, i) => `S${i}`);
      await applyRecords(
        node,
        symbols.map((s) => fixFill(`A-${s}`, s, "10", "1", T0 + 1000)),
        0,
      );
      // A trade two minutes later closes every symbol's first 1m bar, in one batch.
      await applyRecords(
        node,
        symbols.map((s) => fixFill(`B-${s}`, s, "11", "1", T0 + 2 * MIN + 1000)),
        SYMBOLS,
      );
      const closed1m = () =>
        new Set(
          events
            .flat()
            .filter((b) => b.interval === "1m")
            .map((b) => b.symbol),
        );
      await eventually(
        () => (closed1m().size === SYMBOLS ? true : undefined),
        "every symbol's closed 1m bar",
      );
      expect(events.length).toBeGreaterThan(1);
      for (const e of events) expect(e.length).toBeLessThanOrEqual(BARS_PER_EVENT);
      expect(events.flat().filter((b) => b.interval === "1m")).toHaveLength(SYMBOLS);
    } finally {
      await node.stop();
    }
  }, 60_000);
});
