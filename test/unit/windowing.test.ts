/**
 * The windowing domain code without a broker: interval parsing, calendars in time zones across
 * DST changes (expected instants written out by hand from the zones' published rules), sessions,
 * exact decimals, the roll-up's version rule, and the query over in-memory live bars.
 */
import { calendar } from "../../src/windowing/calendar";
import { decimalText, ratio, scaled } from "../../src/windowing/decimal";
import { windowBars, rollingWindow, type ReadLive } from "../../src/windowing/query";
import { Rollup, type BaseBar } from "../../src/windowing/rollup";
import { parseSession, SessionClock } from "../../src/windowing/session";
import {
  parseActivityInterval,
  parseInterval,
  parseLiveIntervals,
  parseSpec,
  parseWindow,
} from "../../src/windowing/spec";
import type { LiveInterval } from "../../src/contracts/bars";
import { dayStart, localDay, parseZone } from "../../src/windowing/zone";

const utc = (iso: string) => Date.parse(iso);
const LIVE: LiveInterval[] = ["1m", "5m", "1h"];

function problem(f: () => unknown): { code: number; parameter: string } | null {
  try {
    f();
    return null;
  } catch (err: unknown) {
    const e = err as { code: number; data: { parameter: string } };
    return { code: e.code, parameter: e.data.parameter };
  }
}

describe("intervals", () => {
  it("parses any multiple of a live interval and says which live intervals exist otherwise", () => {
    expect(parseInterval("15m", LIVE)).toMatchObject({ n: 15, unit: "m", ms: 900_000 });
    expect(parseInterval("4h", LIVE).ms).toBe(14_400_000);
    expect(parseInterval("1w", LIVE).ms).toBe(604_800_000);
    expect(parseInterval("120s", LIVE).ms).toBe(120_000);
    expect(parseInterval(undefined, LIVE).text).toBe("1m");
    for (const bad of ["30s", "7x", "0m", "m", "367d", "01m", "1.5h"])
      expect(problem(() => parseInterval(bad, LIVE))).toEqual({ code: 422, parameter: "interval" });
    expect(() => parseInterval("30s", LIVE)).toThrow(/1m, 5m, 1h/);
    // With only 5m and 1h live, 1m bars cannot be made.
    expect(problem(() => parseInterval("1m", ["5m", "1h"]))?.code).toBe(422);
    expect(parseSpec("366d")?.ms).toBe(366 * 86_400_000);
  });

  it("reads BAR_INTERVALS as a subset of the core's intervals, finest first, and tick and volume specs", () => {
    expect(parseLiveIntervals("1h,1m")).toEqual({ intervals: ["1m", "1h"], activity: [] });
    expect(parseLiveIntervals("1m,5m,1h,100t,5000v")).toEqual({
      intervals: ["1m", "5m", "1h"],
      activity: ["100t", "5000v"],
    });
    for (const bad of [
      "",
      "15m",
      "1m,1m",
      "1m,,5m",
      "100t",
      "1m,0t",
      "1m,1t,2t,3t,4t,5t",
      "1m,7t,7t",
    ])
      expect(parseLiveIntervals(bad)).toBeNull();
    expect(parseActivityInterval("1m", ["7t"])).toBeNull();
    expect(parseActivityInterval("7t", ["7t"])).toBe("7t");
    expect(problem(() => parseActivityInterval("8t", ["7t"]))).toEqual({
      code: 422,
      parameter: "interval",
    });
  });

  it("checks windows, zones and sessions with a 422 naming the parameter", () => {
    expect(parseWindow("30m").ms).toBe(1_800_000);
    expect(parseWindow("45s").ms).toBe(45_000);
    expect(problem(() => parseWindow("32d"))?.parameter).toBe("window");
    expect(problem(() => parseWindow("5x"))?.parameter).toBe("window");
    expect(parseZone("America/New_York")).toBe("America/New_York");
    expect(parseZone(undefined)).toBe("UTC");
    expect(parseZone("america/new_york")).toBe("America/New_York");
    expect(parseZone("Asia/Kolkata")).toBe("Asia/Kolkata");
    expect(problem(() => parseZone("Mars/Olympus"))?.parameter).toBe("tz");
    expect(parseSession("09:30-16:00")).toEqual({
      text: "09:30-16:00",
      openMs: 34_200_000,
      closeMs: 57_600_000,
    });
    expect(parseSession("00:00-24:00")?.closeMs).toBe(86_400_000);
    for (const bad of ["16:00-09:30", "09:30-09:30", "9:30-16:00", "24:30-25:00", "09:60-10:00"])
      expect(problem(() => parseSession(bad))?.parameter).toBe("session");
  });
});

describe("calendars", () => {
  const spec = (t: string) => parseSpec(t)!;
  const interval = (t: string, zone: string, at: string) => {
    const cal = calendar(spec(t), zone);
    const start = cal.startOf(utc(at));
    return [new Date(start).toISOString(), new Date(cal.nextStart(start)).toISOString()];
  };

  it("starts New York days at local midnight: 23 hours in March, 25 in November", () => {
    // 2024-03-10 02:00 EST → 03:00 EDT; 2024-11-03 02:00 EDT → 01:00 EST.
    expect(interval("1d", "America/New_York", "2024-03-10T12:00:00Z")).toEqual([
      "2024-03-10T05:00:00.000Z",
      "2024-03-11T04:00:00.000Z",
    ]);
    expect(interval("1d", "America/New_York", "2024-11-03T12:00:00Z")).toEqual([
      "2024-11-03T04:00:00.000Z",
      "2024-11-04T05:00:00.000Z",
    ]);
    // Just before local midnight belongs to the day before.
    expect(interval("1d", "America/New_York", "2024-03-10T04:59:59.999Z")[0]).toBe(
      "2024-03-09T05:00:00.000Z",
    );
  });

  it("follows the local clock for hours: a skipped hour has no bar, a repeated one two", () => {
    expect(interval("4h", "America/New_York", "2024-03-10T07:30:00Z")).toEqual([
      "2024-03-10T05:00:00.000Z",
      "2024-03-10T08:00:00.000Z", // 00:00 EST → 04:00 EDT: three hours
    ]);
    expect(interval("1h", "America/New_York", "2024-11-03T05:30:00Z")).toEqual([
      "2024-11-03T05:00:00.000Z", // 01:00 EDT
      "2024-11-03T06:00:00.000Z", // 01:00 EST
    ]);
    expect(interval("1h", "America/New_York", "2024-11-03T06:30:00Z")).toEqual([
      "2024-11-03T06:00:00.000Z",
      "2024-11-03T07:00:00.000Z",
    ]);
    // India is UTC+05:30: its hours start at half past in UTC.
    expect(interval("1h", "Asia/Kolkata", "2024-03-10T12:10:00Z")).toEqual([
      "2024-03-10T11:30:00.000Z",
      "2024-03-10T12:30:00.000Z",
    ]);
    // Below an hour, intervals stay on the epoch grid whatever the zone.
    expect(interval("15m", "Asia/Kolkata", "2024-03-10T12:10:00Z")[0]).toBe(
      "2024-03-10T12:00:00.000Z",
    );
  });

  it("starts weeks on local Mondays and n-day bars on multiples of n days since 1970", () => {
    expect(interval("1w", "America/New_York", "2024-03-10T12:00:00Z")).toEqual([
      "2024-03-04T05:00:00.000Z",
      "2024-03-11T04:00:00.000Z",
    ]);
    expect(interval("1w", "UTC", "2024-03-10T12:00:00Z")[0]).toBe("2024-03-04T00:00:00.000Z");
    // Day 19792 is 2024-03-10; 19792 is a multiple of 2.
    expect(interval("2d", "UTC", "2024-03-11T12:00:00Z")[0]).toBe("2024-03-10T00:00:00.000Z");
    expect(interval("5h", "UTC", "1970-01-01T07:00:00Z")[0]).toBe("1970-01-01T05:00:00.000Z");
  });

  it("starts a day whose midnight is skipped at the first instant after it", () => {
    // Chile moved its clocks from 2024-09-08 00:00 -04 to 01:00 -03.
    const day = localDay("America/Santiago", utc("2024-09-08T12:00:00Z"));
    expect(new Date(dayStart("America/Santiago", day)).toISOString()).toBe(
      "2024-09-08T04:00:00.000Z",
    );
  });
});

describe("sessions", () => {
  it("places live bars inside, outside or across the day's session, on both sides of DST", () => {
    const clock = new SessionClock(parseSession("09:30-16:00")!, "America/New_York");
    const at = (iso: string, minutes: number) => clock.place(utc(iso), utc(iso) + minutes * 60_000);
    expect(at("2024-03-08T14:30:00Z", 5)).toBe("in"); // 09:30 EST
    expect(at("2024-03-08T14:25:00Z", 5)).toBe("out");
    expect(at("2024-03-11T13:30:00Z", 5)).toBe("in"); // 09:30 EDT
    expect(at("2024-03-11T14:30:00Z", 60)).toBe("in");
    expect(at("2024-03-11T13:00:00Z", 60)).toBe("straddles");
    expect(at("2024-03-11T20:00:00Z", 1)).toBe("out"); // 16:00 EDT
    expect(at("2024-03-11T19:59:00Z", 1)).toBe("in");
  });
});

describe("exact decimals", () => {
  it("reads decimal text, exponents included, at a scale and writes it back", () => {
    expect(scaled("1.5", 9)).toBe(1_500_000_000n);
    expect(scaled("1e-7", 9)).toBe(100n);
    expect(scaled("-2.5e+3", 9)).toBe(-2_500_000_000_000n);
    expect(scaled("123456789.012345678901234567", 18)).toBe(123456789012345678901234567n);
    expect(decimalText(-12n, 9)).toBe("-0.000000012");
    expect(decimalText(3_000_000_000n, 9)).toBe("3");
    expect(ratio(10n, 3n)).toBe(10 / 3);
    expect(ratio(1n, 10n)).toBe(0.1);
  });
});

const base = (startMs: number, over: Partial<BaseBar> = {}): BaseBar => ({
  startMs,
  open: 10,
  high: 10,
  low: 10,
  close: 10,
  volume: 1_000_000_000n,
  notional: 10_000_000_000_000_000_000n,
  trades: 1,
  closed: true,
  revised: false,
  orderCount: 0,
  buyQty: 0n,
  sellQty: 0n,
  generation: 1,
  revision: 1,
  ...over,
});

describe("roll-ups", () => {
  it("sums exactly and versions a rolled bar by its parts of the highest generation", () => {
    const r = new Rollup(0, 180_000);
    r.add(base(0, { open: 10, high: 12, low: 9, close: 11, generation: 2, revision: 5 }));
    r.add(
      base(60_000, {
        generation: 1,
        revision: 10,
        trades: 0,
        open: null,
        high: null,
        low: null,
        close: null,
        volume: 0n,
        notional: 0n,
      }),
    );
    r.add(
      base(120_000, {
        open: 13,
        high: 14,
        low: 8,
        close: 12,
        // 0.1 + 0.2 as exact mantissas: no float sum.
        volume: 200_000_000n,
        notional: 2_600_000_000_000_000_000n,
        generation: 2,
        revision: 3,
      }),
    );
    const bar = r.bar(Number.MAX_SAFE_INTEGER);
    expect(bar).toMatchObject({
      open: 10,
      high: 14,
      low: 8,
      close: 12,
      volume: 1.2,
      trades: 2,
      generation: 2,
      revision: 8,
      closed: true,
      filled: false,
    });
    expect(bar.vwap).toBe(12.6 / 1.2);
  });

  it("answers any interval from in-memory live bars, and fills gaps with the previous close", async () => {
    // One 1m bar every 7 minutes for 2 hours from 2024-03-08 14:00 UTC.
    const t0 = utc("2024-03-08T14:00:00Z");
    const bars = Array.from({ length: 18 }, (_, i) =>
      base(t0 + i * 7 * 60_000, { open: i, high: i, low: i, close: i }),
    );
    const read: ReadLive = (interval, from, to, limit) => {
      if (interval !== "1m") return Promise.resolve([]);
      const inRange = bars.filter(
        (b) => (from === undefined || b.startMs >= from) && (to === undefined || b.startMs < to),
      );
      return Promise.resolve(inRange.slice(Math.max(0, inRange.length - limit)));
    };
    const q = {
      spec: parseSpec("15m")!,
      zone: "UTC",
      session: null,
      limit: 500,
      fill: "none" as const,
      nowMs: Date.now(),
    };
    // Live bars below an hour can only be rolled up from 1m here (read answers nothing else).
    const { base: used, bars: rolled } = await windowBars(q, ["1m"], read);
    expect(used).toBe("1m");
    expect(rolled.map((b) => [b.startMs - t0, b.open, b.close, b.trades])).toEqual([
      [0, 0, 2, 3],
      [15 * 60_000, 3, 4, 2],
      [30 * 60_000, 5, 6, 2],
      [45 * 60_000, 7, 8, 2],
      [60 * 60_000, 9, 10, 2],
      [75 * 60_000, 11, 12, 2],
      [90 * 60_000, 13, 14, 2],
      [105 * 60_000, 15, 17, 3],
    ]);
    const limited = await windowBars({ ...q, limit: 2 }, ["1m"], read);
    expect(limited.bars.map((b) => b.open)).toEqual([13, 15]);
    const filled = await windowBars(
      { ...q, spec: parseSpec("5m")!, fill: "prev", fromMs: t0, toMs: t0 + 30 * 60_000 },
      ["1m"],
      read,
    );
    expect(filled.bars.map((b) => [(b.startMs - t0) / 60_000, b.close, b.filled])).toEqual([
      [0, 0, false],
      [5, 1, false],
      [10, 2, false],
      [15, 2, true],
      [20, 3, false],
      [25, 4, false],
    ]);
    // Beyond the trade journal: whole live bars with start in [t0 + 6m, t0 + 16m), at 7 and 14 minutes.
    const noJournal = () => null;
    const window = await rollingWindow(
      parseSpec("10m")!,
      t0 + 15 * 60_000,
      ["1m"],
      read,
      noJournal,
    );
    expect(window).toMatchObject({
      base: "1m",
      fromMs: t0 + 6 * 60_000,
      toMs: t0 + 16 * 60_000,
      open: 1,
      close: 2,
      trades: 2,
    });
    await expect(
      rollingWindow(parseSpec("30s")!, t0, ["1m"], read, noJournal),
    ).rejects.toMatchObject({ code: 422, data: { parameter: "window" } });
    // Within it: exactly [at − window, at), whatever the live intervals.
    const asked: number[][] = [];
    const exact = await rollingWindow(parseSpec("30s")!, t0, ["1m"], read, (from, to) => {
      asked.push([from, to]);
      return {
        open: 5,
        high: 6,
        low: 4,
        close: 4.5,
        volumeExact: "0.3",
        notional: "1.5",
        trades: 3,
      };
    });
    expect(asked).toEqual([[t0 - 30_000, t0]]);
    expect(exact).toEqual({
      base: "trades",
      fromMs: t0 - 30_000,
      toMs: t0,
      open: 5,
      high: 6,
      low: 4,
      close: 4.5,
      volume: 0.3,
      vwap: 5,
      trades: 3,
    });
  });
});
