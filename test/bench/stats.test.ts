/**
 * The arithmetic behind the Kafka benchmark sections (bench/stats.ts), against values worked out
 * by hand: nearest-rank percentiles, consumption rates and CPU shares, and which stream event
 * first showed each trade.
 */
import {
  consumptionRate,
  percentile,
  streamDeliveries,
  summarize,
  type ConsumptionWindow,
  type ProducedTrade,
  type ReceivedBar,
} from "../../bench/stats";

describe("percentile (nearest rank)", () => {
  const oneToHundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);

  it("picks the smallest sample with at least p % of the samples at or below it", () => {
    expect(percentile(oneToHundred, 50)).toBe(50);
    expect(percentile(oneToHundred, 95)).toBe(95);
    expect(percentile(oneToHundred, 99)).toBe(99);
    expect(percentile(oneToHundred, 100)).toBe(100);
    expect(percentile(oneToHundred, 0.5)).toBe(1);
  });

  it("never interpolates: ten samples give the 10th for p95 and the 5th for p50", () => {
    const ten = [3, 4, 7, 8, 9, 11, 12, 20, 30, 400];
    expect(percentile(ten, 50)).toBe(9);
    expect(percentile(ten, 95)).toBe(400);
    expect(percentile(ten, 90)).toBe(30);
    expect(percentile([42], 99)).toBe(42);
  });

  it("refuses no samples and percentiles outside (0, 100]", () => {
    expect(() => percentile([], 50)).toThrow(/no samples/);
    expect(() => percentile([1], 0)).toThrow(/\(0, 100\]/);
    expect(() => percentile([1], 101)).toThrow(/\(0, 100\]/);
  });
});

describe("summarize", () => {
  it("sorts unsorted samples and reports p50/p95/p99, max and mean", () => {
    const samples = [5, 1, 4, 2, 3];
    expect(summarize(samples)).toEqual({
      count: 5,
      p50Ms: 3,
      p95Ms: 5,
      p99Ms: 5,
      maxMs: 5,
      meanMs: 3,
    });
    expect(samples).toEqual([5, 1, 4, 2, 3]); // the input is left alone
  });

  it("is null without samples", () => {
    expect(summarize(new Float64Array(0))).toBeNull();
  });
});

describe("consumptionRate", () => {
  const w = (
    records: number,
    firstAt: number,
    lastAt: number,
    cpuUs: [number, number, number, number],
  ): ConsumptionWindow => ({
    records,
    firstAt,
    lastAt,
    cpuFirst: { user: cpuUs[0], system: cpuUs[1] },
    cpuLast: { user: cpuUs[2], system: cpuUs[3] },
  });

  it("divides the records by the time from the first batch to the last record", () => {
    // 400,000 records in 2.5 s; 1.5 s user + 0.5 s system = 2 s of CPU.
    const r = consumptionRate([w(400_000, 10_000, 12_500, [1e6, 2e5, 2.5e6, 7e5])]);
    expect(r.records).toBe(400_000);
    expect(r.seconds).toBe(2.5);
    expect(r.perSec).toBe(160_000);
    expect(r.cpuSec).toBeCloseTo(2, 12);
    expect(r.cpuPct).toBeCloseTo(80, 10); // 2 s of CPU over 2.5 s
    expect(r.cpuUsPerRecord).toBeCloseTo(5, 12);
  });

  it("spans several processes from the earliest first batch to the latest last record", () => {
    // 1,000 records in [1.0 s, 2.0 s] and 500 in [1.5 s, 3.0 s]: 1,500 records in 2 s.
    const r = consumptionRate([
      w(1_000, 1_000, 2_000, [0, 0, 300_000, 100_000]),
      w(500, 1_500, 3_000, [50_000, 0, 250_000, 200_000]),
    ]);
    expect(r.perSec).toBe(750);
    expect(r.cpuSec).toBeCloseTo(0.8, 12); // 0.4 s + 0.4 s
    expect(r.cpuPct).toBeCloseTo(40, 10);
  });

  it("refuses a window that ends before it starts or takes no time", () => {
    expect(() => consumptionRate([w(1, 2_000, 1_000, [0, 0, 0, 0])])).toThrow(/ends before/);
    expect(() => consumptionRate([w(1, 1_000, 1_000, [0, 0, 0, 0])])).toThrow(/no measurable/);
    expect(() => consumptionRate([])).toThrow(/no consumption window/);
  });
});

describe("streamDeliveries", () => {
  const t = (symbol: string, barStartMs: number, producedAtMs: number): ProducedTrade => ({
    symbol,
    barStartMs,
    producedAtMs,
  });
  const e = (symbol: string, barStartMs: number, trades: number, at: number): ReceivedBar => ({
    symbol,
    barStartMs,
    trades,
    receivedAtMs: at,
  });

  it("credits each trade to the first event of its bar whose count includes it", () => {
    const trades = [t("A", 0, 0), t("A", 0, 10), t("B", 0, 15), t("A", 0, 20)];
    const events = [
      e("A", 0, 2, 100), // shows A's first two trades (coalesced)
      e("B", 0, 1, 120),
      e("A", 0, 3, 350), // A's third
    ];
    const d = streamDeliveries(trades, events);
    expect([...d.latencies]).toEqual([100, 90, 105, 330]);
    expect(d.undelivered).toBe(0);
  });

  it("counts a trade never shown as undelivered, and ignores a stale smaller count", () => {
    const trades = [t("A", 0, 0), t("A", 0, 5), t("A", 60_000, 60_001)];
    const events = [e("A", 0, 1, 50), e("A", 0, 1, 70), e("A", 0, 2, 400), e("A", 0, 1, 500)];
    const d = streamDeliveries(trades, events);
    expect([...d.latencies]).toEqual([50, 395]);
    expect(d.undelivered).toBe(1);
  });

  it("measures only trades from fromMs on, while earlier ones still set the rank", () => {
    const trades = [t("A", 0, 0), t("A", 0, 1_000)];
    // Count 1 is the warm-up trade; the measured trade is the 2nd of the bar.
    const events = [e("A", 0, 1, 40), e("A", 0, 2, 1_250)];
    const d = streamDeliveries(trades, events, 500);
    expect([...d.latencies]).toEqual([250]);
    expect(d.undelivered).toBe(0);
  });
});
