/**
 * Any interval, time zones, sessions, ranges, gap filling and rolling windows end to end: a node
 * replays FIX fills of two symbols over days that cross both US daylight-saving changes of 2024,
 * keeping only minutes of live bars in memory (the rest in its SQLite history), and every answer
 * must equal an independent computation from the fills.
 *
 * The reference shares no code with src/windowing: it finds a trade's local interval by formatting
 * the instant in the zone (`Intl`, the platform's zone database, which is what the issue asks to
 * use) and the interval's UTC start by trying every quarter-hour offset, sums BigInt mantissas,
 * and divides for VWAP its own way.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Service } from "moleculer";
import type { BarHistory } from "../../src/history";
import type { Binding } from "../../src/native";
import { fixFill } from "../support/fix-data";
import { eventually, getJson, startTestNode, untilReady } from "../support/node";
import { openApiChecker } from "../support/openapi";
import { asNumber, refDecimal, refTimestamp } from "../support/reference";
import type { StartedNode } from "../../app/start";
import { fixTimestamp } from "../../src/fix/encode";

const SYMBOLS = ["ACME", "BOLT"];
const NY = "America/New_York";

interface Fill {
  symbol: string;
  timeMs: number;
  price: bigint;
  qty: bigint;
  seq: number;
}

/** Fills every 7–23 minutes over three days around each 2024 US DST change, plus edge cases. */
function makeFills(): { file: Buffer; fills: Fill[] } {
  let seed = 20240310;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const times: number[] = [];
  for (const [from, to] of [
    ["2024-03-08T00:00:00Z", "2024-03-12T06:00:00Z"],
    ["2024-11-01T00:00:00Z", "2024-11-05T06:00:00Z"],
  ] as const) {
    for (let t = Date.parse(from); t < Date.parse(to); t += Math.floor((7 + rand() * 16) * 60_000))
      times.push(t + Math.floor(rand() * 1000));
  }
  // On boundaries: New York midnight, session open and close, either side of each DST change.
  for (const iso of [
    "2024-03-10T05:00:00.000Z",
    "2024-03-11T13:30:00.000Z",
    "2024-03-11T19:59:59.999Z",
    "2024-03-11T20:00:00.000Z",
    "2024-11-03T05:30:00.000Z", // 01:30 EDT
    "2024-11-03T06:30:00.000Z", // 01:30 EST
    "2024-11-04T14:30:00.000Z",
  ])
    times.push(Date.parse(iso));
  const edges = new Set(times.slice(-7));
  times.sort((a, b) => a - b);
  const messages: Buffer[] = [];
  const fills: Fill[] = [];
  let n = 0;
  for (const t of times)
    for (const symbol of SYMBOLS) {
      if (rand() < 0.2 && !edges.has(t)) continue;
      const price = (100 + Math.floor(rand() * 5000) / 100).toFixed(2);
      const qty = (1 + Math.floor(rand() * 400) / 8).toString();
      n += 1;
      messages.push(fixFill(`E${n}`, symbol, price, qty, t));
      // What the decoder reads back: FIX timestamps carry milliseconds.
      fills.push({
        symbol,
        timeMs: refTimestamp(fixTimestamp(t)),
        price: refDecimal(price),
        qty: refDecimal(qty),
        seq: n,
      });
    }
  return { file: Buffer.concat(messages), fills };
}

// ---- the independent reference ----------------------------------------------------------------

const partsCache = new Map<string, string>();
/** "YYYY-MM-DD HH:MM:SS" local time of an instant, by Intl's Swedish format. */
function localText(zone: string, t: number): string {
  const key = `${zone}/${t}`;
  let v = partsCache.get(key);
  if (v === undefined) {
    v = new Date(t).toLocaleString("sv-SE", { timeZone: zone, hourCycle: "h23" });
    partsCache.set(key, v);
  }
  return v;
}

/** Every instant whose local time reads `text` ("YYYY-MM-DD HH:MM:SS"), trying every quarter-hour offset. */
function instantsOf(zone: string, text: string): number[] {
  const asUtc = Date.parse(`${text.replace(" ", "T")}Z`);
  const found: number[] = [];
  for (let q = -14 * 4; q <= 14 * 4; q += 1) {
    const u = asUtc - q * 900_000;
    if (localText(zone, u) === text) found.push(u);
  }
  return found.sort((a, b) => a - b);
}

const textOf = (localAsUtc: number) =>
  new Date(localAsUtc).toISOString().slice(0, 19).replace("T", " ");
const localAsUtc = (zone: string, t: number) =>
  Date.parse(`${localText(zone, t).replace(" ", "T")}Z`);
const HOUR = 3_600_000;
const DAY = 86_400_000;

/**
 * [startMs, endMs) of the local interval holding `t`: n-hour intervals start at every instant
 * whose local time reads a multiple of n hours (twice in a repeated hour, never in a skipped
 * one); days at local midnight; weeks at local Monday midnight.
 */
function refInterval(zone: string, unit: "h" | "d" | "w", n: number, t: number): [number, number] {
  const local = localAsUtc(zone, t);
  if (unit === "h") {
    const width = n * HOUR;
    let start = Number.NaN;
    for (let k = 0; Number.isNaN(start); k += 1) {
      const text = textOf(Math.floor(local / width) * width - k * width);
      const before = instantsOf(zone, text).filter((u) => u <= t);
      if (before.length > 0) start = Math.max(...before);
    }
    const startLocal = localAsUtc(zone, start);
    let end = Number.NaN;
    for (let k = 0; Number.isNaN(end); k += 1) {
      const after = instantsOf(zone, textOf(startLocal + k * width)).filter((u) => u > start);
      if (after.length > 0) end = Math.min(...after);
    }
    return [start, end];
  }
  let first = Math.floor(local / DAY) * DAY;
  let days = n;
  if (unit === "w") {
    first -= ((new Date(first).getUTCDay() + 6) % 7) * DAY; // back to Monday
    days = 7 * n;
  }
  const midnight = (day: number) => instantsOf(zone, textOf(day))[0]!;
  return [midnight(first), midnight(first + days * DAY)];
}

interface RefRolled {
  startMs: number;
  endMs: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  vwap: number;
  trades: number;
}

/** Σ notional / Σ volume to 30 decimals, then one rounding. */
function refVwap(notional: bigint, volume: bigint): number {
  const q = (notional * 10n ** 30n) / (volume * 10n ** 9n);
  const s = q.toString().padStart(31, "0");
  return Number(`${s.slice(0, -30)}.${s.slice(-30)}`);
}

function refRolled(
  fills: readonly Fill[],
  symbol: string,
  interval: (t: number) => [number, number],
  keep: (t: number) => boolean = () => true,
): RefRolled[] {
  const out = new Map<
    number,
    RefRolled & { n: bigint; v: bigint; hi: bigint; lo: bigint; first: Fill; last: Fill }
  >();
  const key = (f: Fill) => [f.timeMs, f.seq] as const;
  const before = (a: Fill, b: Fill) =>
    key(a)[0] < key(b)[0] || (key(a)[0] === key(b)[0] && key(a)[1] < key(b)[1]);
  for (const f of fills) {
    if (f.symbol !== symbol || !keep(f.timeMs)) continue;
    const [startMs, endMs] = interval(f.timeMs);
    const b = out.get(startMs);
    if (b === undefined) {
      out.set(startMs, {
        startMs,
        endMs,
        open: 0,
        high: 0,
        low: 0,
        close: 0,
        volume: 0,
        vwap: 0,
        trades: 1,
        n: f.price * f.qty,
        v: f.qty,
        hi: f.price,
        lo: f.price,
        first: f,
        last: f,
      });
      continue;
    }
    b.trades += 1;
    b.n += f.price * f.qty;
    b.v += f.qty;
    if (f.price > b.hi) b.hi = f.price;
    if (f.price < b.lo) b.lo = f.price;
    if (before(f, b.first)) b.first = f;
    if (!before(f, b.last)) b.last = f;
  }
  return [...out.values()]
    .sort((a, b) => a.startMs - b.startMs)
    .map((b) => ({
      startMs: b.startMs,
      endMs: b.endMs,
      open: asNumber(b.first.price),
      high: asNumber(b.hi),
      low: asNumber(b.lo),
      close: asNumber(b.last.price),
      volume: asNumber(b.v),
      vwap: refVwap(b.n, b.v),
      trades: b.trades,
    }));
}

// ---- the node ---------------------------------------------------------------------------------

type Aggregator = Service & {
  history: BarHistory | null;
  actors: { engine: Binding.Engine };
};

interface Answer {
  base: string;
  tz: string;
  history: string;
  bars: (RefRolled & { filled: boolean; closed: boolean; generation: number; revision: number })[];
}

describe("windowing: any interval, zones, sessions, ranges, fill and rolling windows", () => {
  let dir: string;
  let node: StartedNode & { url: string };
  let fills: Fill[];
  let check: Awaited<ReturnType<typeof openApiChecker>>;

  async function bars(symbol: string, query: string): Promise<Answer> {
    const { status, body } = await getJson(`${node.url}/api/bars/${symbol}?${query}`);
    if (status !== 200) throw new Error(`${query}: ${status} ${JSON.stringify(body)}`);
    expect({ query, problems: check("/api/bars/{symbol}", 200, body) }).toEqual({
      query,
      problems: [],
    });
    return body as Answer;
  }
  const shown = (b: Answer["bars"][number]) => {
    const { startMs, endMs, open, high, low, close, volume, vwap, trades } = b;
    return { startMs, endMs, open, high, low, close, volume, vwap, trades };
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "tickstream-windowing-"));
    const made = makeFills();
    fills = made.fills;
    const file = path.join(dir, "fills.fix");
    writeFileSync(file, made.file);
    node = await startTestNode({
      FEED_FILE: file,
      BATCH_MAX_RECORDS: "200",
      RETENTION_1M: "10m",
      RETENTION_5M: "1h",
      RETENTION_1H: "6h",
      HISTORY_URL: `sqlite:${path.join(dir, "history.sqlite")}`,
      HISTORY_FLUSH_MS: "100",
      NAMESPACE: `windowing-${process.pid}`,
      BAR_INTERVALS: "1m,5m,1h,7t,100v",
    });
    check = await openApiChecker(node.url);
    await untilReady(node.url);
    await eventually(
      async () => {
        for (const s of SYMBOLS) {
          const { body } = await getJson(`${node.url}/api/bars/${s}?interval=1h&limit=3`);
          if (!(body as Answer).bars.every((b) => b.closed)) return undefined;
        }
        const agg = node.broker.getLocalService("aggregator") as unknown as Aggregator;
        return agg.history?.stats.buffered === 0 ? true : undefined;
      },
      "every bar to close and reach history",
      120_000,
    );
  }, 300_000);

  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the days to history: most live bars are no longer in memory", async () => {
    const { body } = await getJson(`${node.url}/api/bars/ACME?interval=1h&limit=10000`);
    expect((body as Answer).history).toBe("ok");
    expect((body as Answer).bars.length).toBeGreaterThan(100);
    const agg = node.broker.getLocalService("aggregator") as unknown as Aggregator;
    expect(
      agg.actors.engine.bars("ACME", "1h", undefined, undefined, 10_000)!.length,
    ).toBeLessThanOrEqual(7);
    expect(
      agg.actors.engine.bars("ACME", "1m", undefined, undefined, 10_000)!.length,
    ).toBeLessThanOrEqual(11);
  });

  it("rolls up 15m and 2h in UTC, equal to the reference", async () => {
    for (const symbol of SYMBOLS) {
      const m15 = await bars(symbol, "interval=15m&limit=10000");
      expect(m15.base).toBe("5m");
      const fixed =
        (w: number) =>
        (t: number): [number, number] => [Math.floor(t / w) * w, Math.floor(t / w) * w + w];
      expect(m15.bars.map(shown)).toEqual(refRolled(fills, symbol, fixed(900_000)));
      const h2 = await bars(symbol, "interval=2h&limit=10000");
      expect(h2.base).toBe("1h");
      expect(h2.bars.map(shown)).toEqual(refRolled(fills, symbol, fixed(7_200_000)));
    }
  });

  it("aligns 4h, 1d and 1w to New York's clock across both DST changes", async () => {
    for (const symbol of SYMBOLS)
      for (const [interval, unit, n] of [
        ["4h", "h", 4],
        ["1d", "d", 1],
        ["1w", "w", 1],
      ] as const) {
        const got = await bars(symbol, `interval=${interval}&tz=${NY}&limit=10000`);
        expect(got).toMatchObject({ base: "1h", tz: NY });
        expect({ symbol, interval, bars: got.bars.map(shown) }).toEqual({
          symbol,
          interval,
          bars: refRolled(fills, symbol, (t) => refInterval(NY, unit, n, t)),
        });
      }
    const days = await bars("ACME", `interval=1d&tz=${NY}&limit=10000`);
    const length = (iso: string) => {
      const d = days.bars.find((b) => b.startMs === Date.parse(iso))!;
      return (d.endMs - d.startMs) / 3_600_000;
    };
    expect([length("2024-03-10T05:00:00Z"), length("2024-11-03T04:00:00Z")]).toEqual([23, 25]);
  });

  it("keeps two bars for the repeated 01:00 hour in New York", async () => {
    const got = await bars(
      "ACME",
      `interval=1h&tz=${NY}&from=2024-11-03T05:00:00Z&to=2024-11-03T07:00:00Z`,
    );
    expect(got.bars.map((b) => new Date(b.startMs).toISOString())).toEqual([
      "2024-11-03T05:00:00.000Z",
      "2024-11-03T06:00:00.000Z",
    ]);
  });

  it("answers the exchange's daily bar with a session, in winter and in summer", async () => {
    const inSession = (t: number) => {
      const time = localText(NY, t).slice(11);
      return time >= "09:30:00" && time < "16:00:00";
    };
    for (const symbol of SYMBOLS) {
      const got = await bars(symbol, `interval=1d&tz=${NY}&session=09:30-16:00&limit=10000`);
      expect(got.base).toBe("5m");
      const want = refRolled(fills, symbol, (t) => refInterval(NY, "d", 1, t), inSession);
      expect(got.bars.map(shown)).toEqual(want);
      expect(want.length).toBeGreaterThan(6);
    }
  });

  it("falls back to a finer live interval where the zone's offset is not whole hours", async () => {
    const got = await bars("BOLT", "interval=1d&tz=Asia/Kolkata&limit=10000");
    expect(got.base).toBe("5m");
    expect(got.bars.map(shown)).toEqual(
      refRolled(fills, "BOLT", (t) => refInterval("Asia/Kolkata", "d", 1, t)),
    );
  });

  it("bounds the answer with from, to and limit, and fills gaps with the previous close", async () => {
    const all = refRolled(fills, "ACME", (t) => refInterval(NY, "h", 1, t));
    const from = "2024-03-10T00:00:00-05:00";
    const to = Date.parse("2024-03-11T00:00:00-04:00");
    const inRange = all.filter((b) => b.startMs >= Date.parse(from) && b.startMs < to);
    const none = await bars(
      "ACME",
      `interval=1h&tz=${NY}&from=${encodeURIComponent(from)}&to=${to}`,
    );
    expect(none.bars.map(shown)).toEqual(inRange);
    const last5 = await bars("ACME", `interval=1h&tz=${NY}&to=${to}&limit=5`);
    expect(last5.bars.map(shown)).toEqual(all.filter((b) => b.startMs < to).slice(-5));

    // Every quarter hour of that 23-hour day, the empty ones at the close before them.
    const quarters = refRolled(fills, "ACME", (t) => [
      Math.floor(t / 900_000) * 900_000,
      Math.floor(t / 900_000) * 900_000 + 900_000,
    ]);
    const filled = await bars(
      "ACME",
      `interval=15m&tz=${NY}&fill=prev&from=${encodeURIComponent(from)}&to=${to}`,
    );
    expect(filled.bars.map((b) => b.startMs)).toEqual(
      Array.from({ length: 23 * 4 }, (_, i) => Date.parse(from) + i * 900_000),
    );
    let prev = quarters.filter((b) => b.startMs < Date.parse(from)).at(-1)!.close;
    for (const b of filled.bars) {
      const real = quarters.find((r) => r.startMs === b.startMs);
      if (real) {
        expect(shown(b)).toEqual(real);
        expect(b.filled).toBe(false);
        prev = real.close;
      } else
        expect(b).toMatchObject({
          open: prev,
          high: prev,
          low: prev,
          close: prev,
          volume: 0,
          trades: 0,
          filled: true,
        });
    }
    expect(filled.bars.filter((b) => b.filled).length).toBeGreaterThan(10);
    // Without `to`, the range ends with the newest bar; `limit` counts filled intervals too.
    const newest = await bars("ACME", "interval=15m&fill=prev&limit=8");
    expect(newest.bars).toHaveLength(8);
    expect(newest.bars.at(-1)!.startMs).toBe(quarters.at(-1)!.startMs);
  });

  it("answers rolling windows exactly: from the trade journal, else whole live bars", async () => {
    type Window = RefRolled & { base: string; fromMs: number; toMs: number; history?: string };
    const rolling = async (query: string): Promise<Window> => {
      const { status, body } = await getJson(`${node.url}/api/bars/ACME/rolling?${query}`);
      expect({ query, status }).toEqual({ query, status: 200 });
      expect(check("/api/bars/{symbol}/rolling", 200, body)).toEqual([]);
      return body as Window;
    };
    const sums = (w: RefRolled) => {
      const { open, high, low, close, volume, vwap, trades } = w;
      return { open, high, low, close, volume, vwap, trades };
    };
    const reference = (fromMs: number, toMs: number) =>
      refRolled(
        fills,
        "ACME",
        () => [fromMs, toMs],
        (t) => t >= fromMs && t < toMs,
      ).map(sums);

    // March left the journal long ago: the coarsest live interval dividing 30m is 5m, its bars
    // from 14:40 up to the one holding 15:07:30, from history.
    const at = Date.parse("2024-03-11T15:07:30Z");
    const old = await rolling(`window=30m&at=${at}`);
    expect(old).toMatchObject({
      base: "5m",
      fromMs: Date.parse("2024-03-11T14:40:00Z"),
      toMs: Date.parse("2024-03-11T15:10:00Z"),
      history: "ok",
    });
    expect([sums(old)]).toEqual(reference(old.fromMs, old.toMs));
    expect(reference(old.fromMs, old.toMs)).toHaveLength(1);

    // The last minutes are in the journal (CORRECTION_WINDOW = RETENTION_1M = 10m here): exact
    // to the trade, for windows no live interval divides too.
    const last = fills.filter((f) => f.symbol === "ACME").at(-1)!.timeMs;
    for (const [window, ms] of [
      ["45s", 45_000],
      ["7m", 420_000],
    ] as const) {
      const w = await rolling(`window=${window}&at=${last + 1}`);
      expect(w).toMatchObject({ base: "trades", fromMs: last + 1 - ms, toMs: last + 1 });
      expect(w.history).toBeUndefined();
      expect([sums(w)]).toEqual(reference(w.fromMs, w.toMs));
    }
    // Reaching back beyond the journal with a window no live interval divides: a 422.
    const { status, body } = await getJson(`${node.url}/api/bars/ACME/rolling?window=45s&at=${at}`);
    expect([status, (body as { data: { parameter: string } }).data.parameter]).toEqual([
      422,
      "window",
    ]);
  });

  it("keeps tick and volume bars in the order trades are applied", async () => {
    type Activity = RefRolled & { number: number; closed: boolean };
    const unit = 1_000_000_000n;
    for (const symbol of SYMBOLS) {
      // The file is applied in its order; a volume bar closes with the trade that reaches 100.
      const mine = fills.filter((f) => f.symbol === symbol).sort((a, b) => a.seq - b.seq);
      const reference = (closes: (bar: Fill[]) => boolean) => {
        const out: Fill[][] = [[]];
        for (const f of mine) {
          out.at(-1)!.push(f);
          if (closes(out.at(-1)!)) out.push([]);
        }
        if (out.at(-1)!.length === 0) out.pop();
        return out.map((bar, number) => {
          const notional = bar.reduce((s, f) => s + f.price * f.qty, 0n);
          const volume = bar.reduce((s, f) => s + f.qty, 0n);
          return {
            number,
            startMs: bar[0]!.timeMs,
            endMs: bar.at(-1)!.timeMs,
            open: asNumber(bar[0]!.price),
            high: asNumber(bar.reduce((m, f) => (f.price > m ? f.price : m), 0n)),
            low: asNumber(bar.reduce((m, f) => (f.price < m ? f.price : m), bar[0]!.price)),
            close: asNumber(bar.at(-1)!.price),
            volume: asNumber(volume),
            vwap: refVwap(notional, volume),
            trades: bar.length,
            closed: closes(bar),
          };
        });
      };
      for (const [interval, closes] of [
        ["7t", (bar: Fill[]) => bar.length >= 7],
        ["100v", (bar: Fill[]) => bar.reduce((s, f) => s + f.qty, 0n) >= 100n * unit],
      ] as const) {
        const got = await bars(symbol, `interval=${interval}&limit=10000`);
        const want = reference(closes);
        expect(want.length).toBeGreaterThan(20);
        const shownActivity = (b: Answer["bars"][number]) => {
          const { number, startMs, endMs, open, high, low, close, volume, vwap, trades, closed } =
            b as unknown as Activity & { startMs: number; endMs: number };
          return { number, startMs, endMs, open, high, low, close, volume, vwap, trades, closed };
        };
        expect({ symbol, interval, bars: got.bars.map(shownActivity) }).toEqual({
          symbol,
          interval,
          bars: want,
        });
        expect(got.history).toBe("off");
        // from/to bound the first trade's time.
        const mid = want[10]!.startMs;
        const bounded = await bars(symbol, `interval=${interval}&from=${mid}&limit=3`);
        expect(bounded.bars.map(shownActivity)).toEqual(
          want.filter((b) => b.startMs >= mid).slice(-3),
        );
      }
    }
  });

  it("says what is wrong with a 422", async () => {
    for (const [query, parameter] of [
      ["interval=45s", "interval"],
      ["interval=7h&tz=America/New_York", "interval"],
      ["interval=1d&tz=Nowhere/Land", "tz"],
      ["interval=1d&session=9:30-16:00", "session"],
      ["interval=1d&fill=linear", "fill"],
      ["interval=8t", "interval"],
      ["interval=7t&tz=America/New_York", "tz"],
    ] as const) {
      const { status, body } = await getJson(`${node.url}/api/bars/ACME?${query}`);
      expect({
        query,
        status,
        parameter: (body as { data?: { parameter?: string } }).data?.parameter,
      }).toEqual({
        query,
        status: 422,
        parameter,
      });
    }
  });
});
