/**
 * The per-symbol actor services through a ServiceBroker: acknowledged, idempotent `apply`, order
 * of updates, and moving a symbol's state between two nodes (over the in-memory Fake transporter).
 */
import { Errors, ServiceBroker } from "moleculer";
import { fixFill, rawBatch } from "../support/fix-data";
import { brokerOptions } from "../../moleculer.config";
import { SERVICE_FACTORIES } from "../../app/services";
import type { ParseResult } from "../../src/contracts/parse";
import { eventually, testConfig } from "../support/node";
import type { BarsAnswer } from "../../src/contracts/queries";

const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);

const fill = (id: number, symbol: string, price: string, qty: string, atMs: number) =>
  fixFill(`E${id}`, symbol, price, qty, atMs);

function broker(
  nodeID: string,
  services: ("parser" | "aggregator" | "anomaly")[],
  transporter?: "Fake",
  namespace = "",
) {
  const config = testConfig({ NODEID: nodeID });
  // Production broker options (strategy, retries, breaker, serializer), in-memory transport.
  const b = new ServiceBroker({
    ...brokerOptions(config),
    nodeID,
    namespace,
    logger: false,
    transporter: transporter ?? null,
    metrics: false,
  });
  for (const s of services) b.createService(SERVICE_FACTORIES[s](config));
  return b;
}

describe("per-symbol actor services", () => {
  const b = broker("actors-1", ["parser", "aggregator", "anomaly"]);
  beforeAll(() => b.start());
  afterAll(() => b.stop());

  it("applies a batch once: a re-delivered batch is counted as duplicates and changes nothing", async () => {
    const records = [
      fill(1, "ACME", "10.00", "100", T0),
      fill(2, "ACME", "10.50", "200", T0 + 1000),
      fill(3, "ACME", "9.75", "100", T0 + 2000),
    ];
    const parsed = await b.call<ParseResult, object>("parser.parse", rawBatch("trades/0", records));
    expect(parsed.trades).toBe(3);
    const first = await b.call("aggregator.apply", { batch: parsed.batch });
    expect(first).toMatchObject({ applied: 3, duplicates: 0 });
    const before = await b.call<BarsAnswer, object>("aggregator.bars", {
      symbol: "ACME",
      interval: "1m",
      limit: 10,
    });
    const again = await b.call("aggregator.apply", { batch: parsed.batch });
    expect(again).toMatchObject({ applied: 0, duplicates: 3 });
    const after = await b.call<BarsAnswer, object>("aggregator.bars", {
      symbol: "ACME",
      interval: "1m",
      limit: 10,
    });
    expect(after).toEqual(before);
    expect(after.bars[0]).toMatchObject({
      open: 10,
      high: 10.5,
      low: 9.75,
      close: 9.75,
      volume: 400,
      trades: 3,
    });
    expect(after.bars[0]!.vwap).toBeCloseTo((10 * 100 + 10.5 * 200 + 9.75 * 100) / 400, 12);
  });

  it("recognises the same trade id from another source as a duplicate", async () => {
    const parsed = await b.call<ParseResult, object>(
      "parser.parse",
      rawBatch("replay/0", [fill(1, "ACME", "10.00", "100", T0)]),
    );
    expect(await b.call("aggregator.apply", { batch: parsed.batch })).toMatchObject({
      applied: 0,
      duplicates: 1,
    });
  });

  it("refuses a malformed batch with a client error", async () => {
    await expect(
      b.call("aggregator.apply", { batch: Buffer.from("garbage") }),
    ).rejects.toMatchObject({ code: 400, type: "ERR_BAD_BATCH" });
    await expect(
      b.call("aggregator.bars", { symbol: "NOPE", interval: "1m", limit: 1 }),
    ).rejects.toMatchObject({ code: 404 });
  });
});

describe("a cluster of actor nodes (Fake transporter)", () => {
  const ns = `cluster-${process.pid}`;
  const SYMBOLS = Array.from({ length: 120 }, (_, i) => `S${i}`);
  const trades: { symbol: string; price: number; qty: number; atMs: number }[] = [];
  let id = 0;

  function nextBatch(n: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const symbol = SYMBOLS[(id * 7) % SYMBOLS.length]!;
      const price = 100 + ((id * 37) % 200) / 100;
      const qty = 1 + (id % 5);
      const atMs = T0 + id * 250;
      id += 1;
      trades.push({ symbol, price, qty, atMs });
      out.push(fill(id, symbol, price.toFixed(2), String(qty), atMs));
    }
    return out;
  }

  /** Decodes on `via`, splits by owner and applies each part through the Rendezvous strategy. */
  async function deliver(via: ServiceBroker, records: Buffer[], seq: number): Promise<void> {
    const { split } = await import("../../services/ingest/pipeline");
    const { members } = await import("../../src/cluster/membership");
    for (let attempt = 0; ; attempt++) {
      try {
        const parsed = await via.call<ParseResult, object>(
          "parser.parse",
          rawBatch("trades/0", records, seq),
          { nodeID: via.nodeID },
        );
        await Promise.all(
          split(parsed.batch, parsed.symbols, members(via, "aggregator")).map((p) =>
            via.call("aggregator.apply", { batch: p.batch }, { meta: { shard: p.shard } }),
          ),
        );
        return;
      } catch (err: unknown) {
        if (attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Bars of every symbol, read through a node's Rendezvous routing, against a direct computation. */
  async function expectExact(via: ServiceBroker): Promise<void> {
    for (const symbol of SYMBOLS) {
      const mine = trades.filter((t) => t.symbol === symbol);
      const byMinute = new Map<number, typeof mine>();
      for (const t of mine) {
        const start = Math.floor(t.atMs / 60_000) * 60_000;
        byMinute.set(start, [...(byMinute.get(start) ?? []), t]);
      }
      const expected = [...byMinute.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([startMs, ts]) => ({
          startMs,
          open: ts[0]!.price,
          high: Math.max(...ts.map((t) => t.price)),
          low: Math.min(...ts.map((t) => t.price)),
          close: ts[ts.length - 1]!.price,
          volume: ts.reduce((v, t) => v + t.qty, 0),
          trades: ts.length,
        }));
      const got = await via.call<BarsAnswer, object>("aggregator.bars", {
        symbol,
        interval: "1m",
        limit: 10_000,
      });
      expect({
        symbol,
        bars: got.bars.map(({ startMs, open, high, low, close, volume, trades: n }) => ({
          startMs,
          open,
          high,
          low,
          close,
          volume,
          trades: n,
        })),
      }).toEqual({ symbol, bars: expected });
    }
  }

  it("keeps every bar exact while a node joins and another leaves gracefully, moving only the symbols that change owner", async () => {
    const a = broker("node-a", ["parser", "aggregator"], "Fake", ns);
    const b = broker("node-b", ["aggregator"], "Fake", ns);
    const c = broker("node-c", ["aggregator"], "Fake", ns);
    const seen = (x: ServiceBroker, n: number) =>
      eventually(
        () =>
          (x.registry.getActionEndpoints("aggregator.apply")?.endpoints.length ?? 0) === n
            ? true
            : undefined,
        `${x.nodeID} to see ${n} aggregators`,
      );
    await a.start();
    await b.start();
    try {
      await seen(a, 2);
      let seq = 0;
      for (let i = 0; i < 10; i++, seq += 50) await deliver(a, nextBatch(50), seq);
      await expectExact(a);

      // A third node joins mid-stream: it owns about a third of the symbols and pulls or receives them.
      await c.start();
      await seen(a, 3);
      for (let i = 0; i < 10; i++, seq += 50) await deliver(a, nextBatch(50), seq);
      await expectExact(a);
      await expectExact(c);
      const moved = (
        await Promise.all(
          [a, b].map((x) =>
            x.call<{ symbols: number; to: string }[], object>(
              "aggregator.handoffs",
              {},
              { nodeID: x.nodeID },
            ),
          ),
        )
      )
        .flat()
        .filter((h) => h.to === "node-c")
        .reduce((n, h) => n + h.symbols, 0);
      const owned = (
        await Promise.all(
          SYMBOLS.map((symbol) =>
            a.call<{ owner: string }, object>("aggregator.owner", { symbol }, { nodeID: "node-a" }),
          ),
        )
      ).filter((o) => o.owner === "node-c").length;
      expect(moved).toBeLessThanOrEqual(owned);
      console.log(
        `join: ${owned} of ${SYMBOLS.length} symbols now owned by the new node; ${moved} states handed over`,
      );

      // node-b leaves gracefully: it hands its symbols over before going.
      await b.stop();
      await seen(a, 2);
      for (let i = 0; i < 10; i++, seq += 50) await deliver(a, nextBatch(50), seq);
      await expectExact(a);
      await expectExact(c);
    } finally {
      await Promise.all([a.stop(), b.stop(), c.stop()]);
    }
  });
});

describe("an owner whose circuit is open", () => {
  it("is retried as designed: no INVALID_ENDPOINT, nothing lost, nothing applied twice", async () => {
    const ns = `breaker-${process.pid}`;
    const failing = { on: true };
    const config = testConfig({ NODEID: "cb-a" });
    const make = (
      nodeID: string,
      services: ("parser" | "aggregator" | "anomaly")[],
      extra: object = {},
    ) => {
      const b = new ServiceBroker({
        ...brokerOptions(testConfig({ NODEID: nodeID })),
        nodeID,
        namespace: ns,
        logger: false,
        transporter: "Fake",
        metrics: false,
        ...extra,
      });
      for (const s of services) b.createService(SERVICE_FACTORIES[s](config));
      return b;
    };
    // node-b's aggregator fails (500, retryable) while `failing.on`: node-a's breaker opens on it.
    const flaky = {
      name: "Flaky",
      localAction(next: (ctx: unknown) => Promise<unknown>, action: { name: string }) {
        return (ctx: unknown) => {
          if (failing.on && action.name === "aggregator.apply")
            return Promise.reject(
              new Errors.MoleculerServerError("injected failure", 500, "INJECTED"),
            );
          return next(ctx);
        };
      },
    };
    const a = make("cb-a", ["parser", "aggregator", "anomaly"]);
    const b = make("cb-b", ["aggregator", "anomaly"], {
      middlewares: [...(brokerOptions(config).middlewares ?? []), flaky],
    });
    await Promise.all([a.start(), b.start()]);
    const warnings: string[] = [];
    const { Pipeline } = await import("../../services/ingest/pipeline");
    a.logger.warn = ((obj: { err?: string }) => {
      warnings.push(String(obj.err));
    }) as typeof a.logger.warn;
    try {
      await eventually(
        () =>
          a.registry.getActionEndpoints("aggregator.apply")?.endpoints.length === 2
            ? true
            : undefined,
        "cb-a to see cb-b",
      );
      const pipeline = new Pipeline(a, "test");
      const t0 = Date.now();
      const symbols = Array.from({ length: 40 }, (_, i) => `CB${i}`);
      const records = symbols.flatMap((symbol, i) => [
        fill(1000 + i, symbol, "10.00", "1", T0),
        fill(2000 + i, symbol, "11.00", "2", T0 + 1000),
      ]);
      // Enough failing calls to trip the breaker (20 requests, 50 % failures in 60 s).
      const deliveries = Array.from({ length: 12 }, (_, k) => {
        const batch = records.slice(k * 8, k * 8 + 8);
        const offsets = new Uint32Array(batch.length + 1);
        batch.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
        return batch.length === 0
          ? Promise.resolve(null)
          : pipeline.deliver({
              source: "cb/0",
              payload: Buffer.concat(batch),
              offsets,
              seqs: Float64Array.from(batch, (_, i) => k * 8 + i),
              producedAtMs: Float64Array.from(batch, () => Date.now()),
            });
      });
      await eventually(
        () =>
          a.registry.getActionEndpoints("aggregator.apply")?.endpoints.find((e) => e.id === "cb-b")
            ?.isAvailable === false
            ? true
            : undefined,
        "cb-b's circuit to open",
        30_000,
      );
      const openedAt = Date.now() - t0;
      failing.on = false;
      await Promise.all(deliveries);
      console.log(
        `breaker opened after ${openedAt} ms; every batch applied after ${Date.now() - t0} ms (half-open after 10 s)`,
      );
      for (const symbol of symbols) {
        const bars = await a.call<BarsAnswer, object>("aggregator.bars", {
          symbol,
          interval: "1m",
          limit: 10,
        });
        expect({
          symbol,
          bars: bars.bars.map((x) => [x.open, x.close, x.volume, x.trades]),
        }).toEqual({ symbol, bars: [[10, 11, 3, 2]] });
      }
      expect(warnings.some((w) => /INVALID_ENDPOINT|not available/i.test(w))).toBe(false);
      expect(warnings.length).toBeGreaterThan(0); // batches did fail and were retried
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 60_000);
});
