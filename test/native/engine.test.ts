/**
 * The forming-bar feed: `Engine.latestPacked` read by `unpackLatest` gives, for every symbol and
 * interval, exactly the newest bar that `Engine.bars` returns as objects (the path REST uses).
 */
import { readFileSync } from "node:fs";
import { unpackLatest, toBarJson } from "../../services/aggregator/bar-json";
import { SymbolActors } from "../../src/actors/symbol-actors";
import { ERR_BAD_BATCH, ERR_NATIVE } from "../../src/errors";
import { encodeFix, fixTimestamp } from "../../src/fix/encode";

import { native } from "../../src/native";
import { fixFile, fixFill } from "../support/fix-data";
import { testConfig } from "../support/node";

const jse = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));

const fill = (id: number, price: string, qty: string, atMs: number) =>
  fixFill(`E${id}`, "FILLX", price, qty, atMs);

describe("native engine: forming bars", () => {
  it("packs the newest bar of every interval of each symbol, as Engine.bars has it", () => {
    const decoder = new native.FixDecoder({ mdEntryTypes: "2,3" });
    const frames = native.frameStream(jse);
    const records: Buffer[] = Array.from({ length: frames.length / 2 }, (_, i) =>
      jse.subarray(frames[2 * i], frames[2 * i]! + frames[2 * i + 1]!),
    );
    // JSE's market-data trades carry no size: fills and an order give volume, vwap and order flow.
    const at = Date.UTC(2011, 10, 24, 7, 56, 30);
    records.push(
      fill(1, "101.25", "300", at),
      fill(2, "101.75", "100", at + 1_000),
      encodeFix("FIX.4.4", "D", [
        [11, "O1"],
        [38, "500"],
        [40, "1"],
        [54, "1"],
        [55, "FILLX"],
        [60, fixTimestamp(at + 2_000)],
      ]),
    );
    const offsets = new Uint32Array(records.length + 1);
    records.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
    const decoded = decoder.decodeBatch(Buffer.concat(records), offsets, null, "jse/0");
    const actors = new SymbolActors(testConfig(), { bars: true, detector: false });
    actors.apply(decoded.batch, Date.now());

    const symbols = [...new Set(decoded.symbols)];
    expect(symbols.length).toBeGreaterThan(50);
    // A symbol not held has no row; the others keep their index into `symbols`.
    const asked = ["NOT-HELD", ...symbols];
    const packed = actors.engine.latestPacked(asked);
    expect(packed.length % native.LATEST_STRIDE).toBe(0);
    const got = unpackLatest(asked, packed);

    const expected = symbols.flatMap((symbol) =>
      (["1m", "5m", "1h"] as const).map((interval) => {
        const bars = actors.engine.bars(symbol, interval, null, null, 1) ?? [];
        expect(bars).toHaveLength(1);
        return { symbol, interval, bar: toBarJson(bars[0]!) };
      }),
    );
    expect(got).toEqual(expected);
    const fillx = got.find((b) => b.symbol === "FILLX" && b.interval === "1m")?.bar;
    expect(fillx).toMatchObject({ volume: 400, trades: 2, open: 101.25, close: 101.75 });
    expect(fillx?.vwap).toBeCloseTo(101.375, 9);
    expect(fillx?.orders).toEqual({ count: 1, buyQty: 500, sellQty: 0 });
  });
});

describe("native engine: cancels and corrections", () => {
  const decoder = new native.FixDecoder({});
  const decode = (records: Buffer[], firstSeq: number) => {
    const offsets = new Uint32Array(records.length + 1);
    records.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
    const seqs = Float64Array.from(records, (_, i) => firstSeq + i);
    return decoder.decodeBatch(Buffer.concat(records), offsets, seqs, "fix/0");
  };
  const at = Date.UTC(2025, 0, 6, 9, 0, 10);
  const tcr = (fields: [number, string][]) =>
    encodeFix("FIX.4.4", "AE", [[55, "TCRX"], [60, fixTimestamp(at)], ...fields]);

  it("recomputes bars from both message families and stamps the generation set for the symbol", () => {
    const actors = new SymbolActors(testConfig(), { bars: true, detector: false });
    actors.engine.setGeneration("FILLX", 7);
    actors.apply(
      decode(
        [
          fill(1, "10", "100", at),
          fill(2, "12", "100", at + 1_000),
          fill(3, "11", "100", at + 2_000),
          tcr([
            [571, "R1"],
            [31, "50"],
            [32, "10"],
          ]),
          tcr([
            [571, "R2"],
            [31, "52"],
            [32, "10"],
          ]),
        ],
        0,
      ).batch,
      Date.now(),
    );
    const bust = encodeFix("FIX.4.4", "8", [
      [17, "X1"],
      [19, "E2"],
      [55, "FILLX"],
      [60, fixTimestamp(at + 300_000)],
      [150, "H"],
    ]);
    const correct = encodeFix("FIX.4.4", "8", [
      [17, "X2"],
      [19, "E3"],
      [31, "9.5"],
      [32, "50"],
      [55, "FILLX"],
      [60, fixTimestamp(at + 300_000)],
      [150, "G"],
    ]);
    const replace = tcr([
      [571, "R3"],
      [572, "R2"],
      [487, "2"],
      [31, "40"],
      [32, "5"],
    ]);
    const unreferenced = tcr([
      [571, "R4"],
      [487, "1"],
    ]);
    const decoded = decode([bust, correct, replace, unreferenced, bust], 10);
    expect([decoded.cancels, decoded.corrects, decoded.unreferenced]).toEqual([3, 2, 1]);
    const result = actors.apply(decoded.batch, Date.now());
    expect([result.cancels, result.corrections]).toEqual([1, 2]);
    expect(result.correctionsSkipped.duplicate).toBe(1);
    expect(result.corrected.map((c) => [c.symbol, c.kind])).toEqual([
      ["FILLX", "cancel"],
      ["FILLX", "correct"],
      ["TCRX", "correct"],
    ]);
    const [b] = actors.engine.bars("FILLX", "1m", null, null, 1)!;
    // E2 (12) is gone; E3 became 9.5 × 50: open 10, high 10, low 9.5, close 9.5.
    expect(b).toMatchObject({ open: 10, high: 10, low: 9.5, close: 9.5, volume: 150, trades: 2 });
    expect([b!.revision, b!.generation]).toEqual([5, 7]);
    const [t] = actors.engine.bars("TCRX", "1m", null, null, 1)!;
    expect(t).toMatchObject({ open: 50, high: 50, low: 40, close: 40, volume: 15, trades: 2 });
    expect(t!.generation).toBe(0);
  });
});

describe("SymbolActors.apply", () => {
  it("answers a malformed batch with a client error and other native errors with a native failure", () => {
    const actors = new SymbolActors(testConfig(), { bars: true, detector: false });
    expect(() => actors.apply(Buffer.from("garbage"), Date.now())).toThrow(
      expect.objectContaining({ code: 400, type: ERR_BAD_BATCH, retryable: false }),
    );
    const empty = new native.FixDecoder({}).decodeBatch(
      Buffer.alloc(0),
      new Uint32Array([0]),
      null,
      "s",
    ).batch;
    expect(() => actors.apply(empty, Number.NaN)).toThrow(
      expect.objectContaining({ code: 500, type: ERR_NATIVE }),
    );
  });
});
