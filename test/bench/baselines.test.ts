import fs from "node:fs";
import path from "node:path";
import {
  BAR_SPECS,
  TsAggregator,
  vwap,
  ZScoreDetector,
  type AggTrade,
} from "../../bench/baselines/ts-aggregator";
import {
  parseDecimal,
  TsFixParser,
  tradeTimeNs,
  type Trade,
} from "../../bench/baselines/ts-fix-parser";
import { syntheticTrades, tradeBatches } from "../../bench/aggregate";
import { fixDataDir } from "../../bench/harness";
import { loadBinding } from "../../bench/native";

const root = path.resolve(__dirname, "..", "..");
const binding = loadBinding(root);
const RustDecoder = binding.ok ? binding.value.FixDecoder : undefined;
const RustEngine = binding.ok ? binding.value.Engine : undefined;
/** Cross-checks against the Rust core run when the binding is built, and show as skipped otherwise. */
const withRust =
  typeof RustDecoder === "function" && typeof RustEngine === "function" ? it : it.skip;
const dataDir = fixDataDir(root);
const SOH = "\x01";

/** The public samples: verdict, source, description and the message with SOH restored. */
function publicSamples(): { valid: boolean; description: string; bytes: Buffer }[] {
  return fs
    .readFileSync(path.join(dataDir, "public-samples.txt"), "latin1")
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [verdict, , description, message] = line.split("\t");
      const text = message!.replaceAll("<SOH>", SOH).replaceAll("|", SOH);
      return {
        valid: verdict!.startsWith("VALID"),
        description: description!,
        bytes: Buffer.from(text, "latin1"),
      };
    });
}

function parseAll(
  buf: Buffer,
  mdEntryTypes = "2",
): { trades: Trade[]; result: ReturnType<TsFixParser["parse"]> } {
  const trades: Trade[] = [];
  const result = new TsFixParser({ mdEntryTypes }).parse(buf, (t) => trades.push(t));
  return { trades, result };
}

describe("TypeScript FIX parser baseline", () => {
  const corpus = fs.readFileSync(path.join(dataDir, "hffix-fix.5.0.set.1.fix"));

  it("finds all 13,888 JSE messages valid", () => {
    const { result } = parseAll(corpus, "3");
    expect(result).toMatchObject({ messages: 13_888, valid: 13_888, rejects: [] });
  });

  it("extracts one trade per 269=3 entry with 279=0, counted independently by splitting", () => {
    let expected = 0;
    let action: string | undefined;
    for (const field of corpus.toString("latin1").split(SOH)) {
      if (field.startsWith("8=")) action = undefined;
      else if (field.startsWith("279=")) action = field.slice(4);
      else if (field === "269=3" && action === "0") expected++;
    }
    expect(expected).toBeGreaterThan(11_000);
    const { result, trades } = parseAll(corpus, "3");
    expect(result.trades).toBe(expected);
    expect(trades).toHaveLength(expected);
    // With the default types (Trade = 2) the index values are not trades.
    expect(parseAll(corpus).result.trades).toBe(0);
  });

  it("gives exact fixed-point prices and the SendingTime of the first index value", () => {
    const { trades } = parseAll(corpus, "3");
    // 8=FIXT.1.1|…|52=20111124-06:28:56.151|…|55=JA00|269=3|270=76.79|…|273=06:30:00.000 (no 272)
    expect(trades[0]).toEqual({
      symbol: "JA00",
      price: 76_790_000_000,
      qty: 0,
      timeMs: Date.UTC(2011, 10, 24, 6, 28, 56, 151),
      subMsNs: 0,
    });
    expect(tradeTimeNs(trades[0]!)).toBe(1_322_116_136_151_000_000n);
  });

  it("parses decimals to mantissas, rounding the tenth fraction digit half-up", () => {
    const p = (s: string) => parseDecimal(Buffer.from(s), 0, s.length);
    expect(p("25929.169999999996")).toBe(25_929_170_000_000);
    expect(p("109.03125")).toBe(109_031_250_000);
    expect(p(".995")).toBe(995_000_000);
    expect(p("-1.5")).toBe(-1_500_000_000);
    for (const bad of ["", "-", ".", "+1", "1e5", " 1", "1..2", "9007200"])
      expect(p(bad)).toBeNaN();
  });

  it("accepts the frame of every valid public sample and rejects every broken one", () => {
    // The file's verdicts are about framing (BodyLength, CheckSum, header); a valid frame may
    // still be a rejected trade (the FIX.4.2 fill without LastQty is MISSING_FIELD).
    const framing = new Set([
      "CHECKSUM",
      "BODY_LENGTH",
      "TRUNCATED",
      "GARBLED",
      "BAD_BEGIN_STRING",
    ]);
    const samples = publicSamples();
    expect(samples.filter((s) => !s.valid)).toHaveLength(16);
    for (const s of samples) {
      const reasons = parseAll(s.bytes).result.rejects.map((r) => r.reason);
      if (s.valid)
        expect([s.description, reasons.filter((r) => framing.has(r))]).toEqual([s.description, []]);
      else expect([s.description, reasons.length > 0]).toEqual([s.description, true]);
    }
  });

  it("names the reason of broken messages", () => {
    const reasons = (text: string) =>
      parseAll(Buffer.from(text.replaceAll("|", SOH), "latin1")).result.rejects.map(
        (r) => r.reason,
      );
    const hb = "8=FIX.4.2|9=45|35=0|34=3|49=TW|52=20000426-12:05:06|56=ISLD|10=218|";
    expect(reasons(hb)).toEqual([]);
    expect(reasons(hb.replace("10=218", "10=000"))).toEqual(["CHECKSUM"]);
    expect(reasons(hb.replace("10=218", "10=ABC"))).toEqual(["CHECKSUM"]);
    expect(reasons(hb.replace("9=45", "9=AB"))).toEqual(["BODY_LENGTH"]);
    expect(reasons(hb.replace("FIX.4.2", "FIX.5.0"))).toEqual(["BAD_BEGIN_STRING"]);
    expect(reasons(hb.slice(0, 30))).toEqual(["TRUNCATED"]);
    expect(reasons(`junk${hb}`)).toEqual(["GARBLED"]);
    // A data field may hold SOH and "8=FIX": 95/96 RawData framed by its length.
    expect(reasons("8=FIX.4.4|9=21|35=A|95=7|96=rawdata|10=086|")).toEqual([]);
  });

  withRust("agrees with the Rust decoder on reasons and trades (orders aside)", () => {
    interface RustMessage {
      ok: boolean;
      reason?: string;
      msgType?: string;
      trades: { symbol: string; price: number; qty: number; timeNs: string }[];
    }
    const decoder = new (
      RustDecoder as new (o: object) => { decodeMessages(b: Buffer): RustMessage[] }
    )({ mdEntryTypes: "2,3" });
    const inputs = [
      ...publicSamples().map((s) => s.bytes),
      ...["hffix-fix.5.0.set.1.fix", "hffix-fix.5.0.set.2.fix", "hffix-fix.4.1.set.1.fix"].map(
        (f) => fs.readFileSync(path.join(dataDir, f)),
      ),
    ];
    for (const bytes of inputs) {
      const rust = decoder.decodeMessages(bytes).filter((m) => m.msgType !== "D");
      const { result, trades } = parseAll(bytes, "2,3");
      const tsReasons = result.rejects.map((r) => r.reason);
      expect(tsReasons).toEqual(rust.filter((m) => !m.ok).map((m) => m.reason));
      expect(
        trades.map((t) => [t.symbol, t.price / 1e9, t.qty / 1e9, String(tradeTimeNs(t))]),
      ).toEqual(rust.flatMap((m) => m.trades.map((t) => [t.symbol, t.price, t.qty, t.timeNs])));
    }
  });
});

describe("TypeScript aggregator baseline", () => {
  const at = (hhmmss: string) =>
    Date.UTC(
      2024,
      0,
      2,
      Number(hhmmss.slice(0, 2)),
      Number(hhmmss.slice(3, 5)),
      Number(hhmmss.slice(6, 8)),
    );
  const trade = (time: string, price: number, qty: number, symbol = "A"): AggTrade => ({
    symbol,
    price: price * 1e9,
    qty: qty * 1e9,
    timeMs: at(time),
    subMsNs: 0,
  });
  const trades = [
    trade("10:00:05", 10, 100),
    trade("10:00:30", 12, 50),
    trade("10:00:20", 9, 10), // out of order: neither open nor close
    trade("10:00:05", 11, 1), // ties with the open in time, arrives later: not the open
    trade("10:01:10", 13, 5), // next minute; closes 10:00 (end 10:01:00 + 2 s grace ≤ 10:01:10)
  ];

  it("builds 1m, 5m and 1h bars equal to hand-computed values", () => {
    const agg = new TsAggregator();
    const result = agg.applyBatch(trades);
    expect(result.applied).toBe(5);
    const [m0, m1] = agg.bars("A", "1m");
    expect(m0).toMatchObject({
      startMs: at("10:00:00"),
      open: 10e9,
      high: 12e9,
      low: 9e9,
      close: 12e9,
      trades: 4,
      volume: 161e9,
      closed: true,
    });
    expect(m0!.notional).toBeCloseTo(10 * 100 + 12 * 50 + 9 * 10 + 11 * 1, 9);
    expect(vwap(m0!)).toBeCloseTo(1701 / 161, 12);
    expect(m1).toMatchObject({
      startMs: at("10:01:00"),
      open: 13e9,
      close: 13e9,
      trades: 1,
      volume: 5e9,
      closed: false,
    });
    for (const spec of ["5m", "1h"] as const) {
      const bars = agg.bars("A", spec);
      expect(bars).toHaveLength(1);
      expect(bars[0]).toMatchObject({
        open: 10e9,
        high: 13e9,
        low: 9e9,
        close: 13e9,
        trades: 5,
        volume: 166e9,
        closed: false,
      });
    }
    expect(result.closed.map((b) => [b.spec, b.startMs])).toEqual([["1m", at("10:00:00")]]);
    expect(BAR_SPECS.map((s) => agg.bars("A", s.name)[0]!.startMs % s.widthMs)).toEqual([0, 0, 0]);
  });

  it("takes an earlier late trade as the open and marks a closed bar revised", () => {
    const agg = new TsAggregator();
    agg.applyBatch(trades);
    const late = agg.applyBatch([trade("10:00:01", 7, 2)]);
    const [m0] = agg.bars("A", "1m");
    expect(m0).toMatchObject({
      open: 7e9,
      low: 7e9,
      close: 12e9,
      trades: 5,
      closed: true,
      revised: true,
    });
    expect(late.revised).toBe(1);
    expect(agg.bars("A", "5m")[0]).toMatchObject({ open: 7e9, revised: false });
  });

  it("keeps exact volume and notional with bigint sums", () => {
    const agg = new TsAggregator({ exactSums: true });
    agg.applyBatch(trades);
    const [m0] = agg.bars("A", "1m");
    expect(m0!.volumeExact).toBe(161n * 10n ** 9n);
    expect(m0!.notionalExact).toBe(1701n * 10n ** 18n);
    expect(vwap(m0!)).toBeCloseTo(1701 / 161, 12);
  });

  it("computes the z-score of each return as a two-pass mean and sample std of the previous W", () => {
    const W = 100;
    const M = 30;
    const T = 1.5; // low, so that many trades are flagged and compared
    const detector = new ZScoreDetector({ window: W, minSamples: M, threshold: T });
    let seed = 7;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    let price = 100;
    const returns: number[] = [];
    let checked = 0;
    let compared = 0;
    let lastMantissa = 0;
    for (let i = 0; i < 2000; i++) {
      price *= 1 + (rand() - 0.5) * 0.01 + (rand() < 0.01 ? 0.05 : 0);
      const mantissa = Math.round(price * 1e4) * 1e5;
      const hit = detector.observe(mantissa);
      if (i === 0) {
        expect(hit).toBeNull();
        lastMantissa = mantissa;
        continue;
      }
      const r = Math.log(mantissa / lastMantissa);
      const window = returns.slice(-W);
      let expectedZ: number | null = null;
      if (window.length >= M) {
        const mean = window.reduce((a, b) => a + b, 0) / window.length;
        const std = Math.sqrt(
          window.reduce((a, x) => a + (x - mean) ** 2, 0) / (window.length - 1),
        );
        if (std > 0) expectedZ = (r - mean) / std;
      }
      const borderline = expectedZ !== null && Math.abs(Math.abs(expectedZ) - T) < 1e-9;
      if (!borderline) {
        checked++;
        expect(hit !== null).toBe(expectedZ !== null && Math.abs(expectedZ) >= T);
        if (hit !== null) {
          expect(hit.zscore).toBeCloseTo(expectedZ!, 9);
          expect(hit.ret).toBe(r);
          compared++;
        }
      }
      returns.push(r);
      lastMantissa = mantissa;
    }
    expect(checked).toBeGreaterThan(1900);
    expect(compared).toBeGreaterThan(50);
  });

  withRust("gives the Rust engine's bars, closed bars and anomalies on synthetic trades", () => {
    interface RustBar {
      startMs: number;
      open?: number;
      high?: number;
      low?: number;
      close?: number;
      volume: number;
      vwap?: number;
      trades: number;
      closed: boolean;
    }
    interface RustEngineApi {
      applyBatch(
        b: Buffer,
        nowMs: number,
      ): { anomalies: { symbol: string; timeMs: number; zscore: number }[]; closed: number };
      bars(symbol: string, interval: string): RustBar[] | null;
    }
    const synthetic = {
      trades: 30_000,
      warmTrades: 0,
      symbols: 50,
      seed: 11,
      startMs: 1_700_000_000_000,
    };
    const trades = syntheticTrades(synthetic);
    const decoder = new (
      RustDecoder as new (o: object) => { decodeBatch: (...a: unknown[]) => { batch: Buffer } }
    )({});
    const engine = new (RustEngine as new (o: object) => RustEngineApi)({
      bars: true,
      detector: true,
    });
    const agg = new TsAggregator();
    const rust = { anomalies: [] as [string, number, number][], closed: 0 };
    const ts = { anomalies: [] as [string, number, number][], closed: 0 };
    for (const b of tradeBatches(trades, 1000)) {
      const r = engine.applyBatch(
        decoder.decodeBatch(b.payload, b.offsets, b.seqs, "test").batch,
        b.lastMs,
      );
      rust.anomalies.push(
        ...r.anomalies.map((a) => [a.symbol, a.timeMs, a.zscore] as [string, number, number]),
      );
      rust.closed += r.closed;
      const t = agg.applyBatch(b.trades);
      ts.anomalies.push(
        ...t.anomalies.map((a) => [a.symbol, a.timeMs, a.zscore] as [string, number, number]),
      );
      ts.closed += t.closed.length;
    }
    expect(ts.anomalies.length).toBeGreaterThan(0);
    // Same anomalies; z agrees to 1e-9 relative (running sums are summed in different orders).
    expect(ts.closed).toBe(rust.closed);
    expect(ts.anomalies.map(([s, t]) => [s, t])).toEqual(rust.anomalies.map(([s, t]) => [s, t]));
    ts.anomalies.forEach(([, , z], i) => {
      const theirs = rust.anomalies[i]![2];
      expect(Math.abs(z - theirs)).toBeLessThanOrEqual(1e-9 * Math.abs(theirs));
    });
    for (let s = 0; s < synthetic.symbols; s++) {
      for (const { name } of BAR_SPECS) {
        const mine = agg.bars(`S${s}`, name).map((b) => ({
          startMs: b.startMs,
          ohlc: [b.open, b.high, b.low, b.close].map((p) => p / 1e9),
          volume: b.volume / 1e9,
          vwap: vwap(b)!.toFixed(9),
          trades: b.trades,
          closed: b.closed,
        }));
        const theirs = (engine.bars(`S${s}`, name) ?? []).map((b) => ({
          startMs: b.startMs,
          ohlc: [b.open, b.high, b.low, b.close],
          volume: b.volume,
          vwap: b.vwap!.toFixed(9),
          trades: b.trades,
          closed: b.closed,
        }));
        expect(mine).toEqual(theirs);
      }
    }
  });
});
