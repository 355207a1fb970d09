/**
 * The per-symbol actor services through a ServiceBroker: acknowledged, idempotent `apply`, order
 * of updates, and moving a symbol's state between two nodes (over the in-memory Fake transporter).
 */
import { ServiceBroker } from "moleculer";
import { encodeFix, fixTimestamp } from "../../src/fix/encode";
import { SERVICE_FACTORIES } from "../../src/node/services";
import type { ParseResult } from "../../services/parser.service";
import { eventually, testConfig } from "../support/node";

interface BarsAnswer {
  bars: {
    startMs: number;
    open: number;
    high: number;
    low: number;
    close: number;
    volume: number;
    trades: number;
    vwap: number;
  }[];
}

const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);

function fill(id: number, symbol: string, price: string, qty: string, atMs: number): Buffer {
  return encodeFix("FIX.4.4", "8", [
    [17, `E${id}`],
    [31, price],
    [32, qty],
    [55, symbol],
    [60, fixTimestamp(atMs)],
    [150, "F"],
  ]);
}

function rawBatch(source: string, records: Buffer[], firstSeq = 0) {
  const offsets = new Uint32Array(records.length + 1);
  records.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
  return {
    source,
    payload: Buffer.concat(records),
    offsets,
    seqs: Float64Array.from(records, (_, i) => firstSeq + i),
  };
}

function broker(
  nodeID: string,
  services: ("parser" | "aggregator" | "anomaly")[],
  transporter?: "Fake",
  namespace = "",
) {
  const config = testConfig({ NODEID: nodeID });
  const b = new ServiceBroker({
    nodeID,
    namespace,
    logger: false,
    transporter: transporter ?? null,
    serializer: config.serializer,
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

describe("moving a symbol between nodes", () => {
  const ns = `handoff-${process.pid}`;
  const a = broker("node-a", ["aggregator"], "Fake", ns);
  const c = broker("node-c", ["parser", "aggregator"], "Fake", ns);
  beforeAll(async () => {
    await Promise.all([a.start(), c.start()]);
    await eventually(
      () =>
        a.registry.getActionEndpoints("aggregator.bars")?.endpoints.length === 2 ? true : undefined,
      "node-a to discover node-c",
    );
  });
  afterAll(() => Promise.all([a.stop(), c.stop()]));

  it("exports a state on one node and imports it exactly on another", async () => {
    // Parsed on the other node: raw records and the packed batch cross the serializer both ways.
    const first = await a.call<ParseResult, object>(
      "parser.parse",
      rawBatch("trades/1", [
        fill(10, "MOVE", "50", "1", T0),
        fill(11, "MOVE", "51", "2", T0 + 61_000),
      ]),
    );
    await a.call("aggregator.apply", { batch: first.batch }, { nodeID: "node-a" });
    const state = await a.call<Buffer, object>(
      "aggregator.export",
      { symbol: "MOVE" },
      { nodeID: "node-a" },
    );
    expect(Buffer.isBuffer(state)).toBe(true);
    await c.call("aggregator.import", { state, merge: false }, { nodeID: "node-c" });
    const onA = await a.call(
      "aggregator.bars",
      { symbol: "MOVE", interval: "1m", limit: 10 },
      { nodeID: "node-a" },
    );
    const onC = await a.call(
      "aggregator.bars",
      { symbol: "MOVE", interval: "1m", limit: 10 },
      { nodeID: "node-c" },
    );
    expect(onC).toEqual(onA);
    // The watermark moved with the state: re-delivering the batch to the new owner changes nothing.
    expect(
      await a.call("aggregator.apply", { batch: first.batch }, { nodeID: "node-c" }),
    ).toMatchObject({ applied: 0, duplicates: 2 });
  });
});
