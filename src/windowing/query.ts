/**
 * Answers a bar query of any interval, zone, session, range and fill from live bars: picks the
 * live interval to roll up, reads its bars newest first in chunks (memory and history merged, by
 * the caller's `read`) until `limit` whole intervals are known, and rolls them up.
 *
 * Which live interval: the coarsest that divides the interval, the session's bounds and, as found
 * while rolling, the zone's offsets (a live bar across an interval or session boundary makes it
 * try the next finer one). Every live interval is an exact sum of the same trades, so the answer
 * is the same from any of them; the coarsest reads the fewest bars (a 1d bar is 24 1h bars, not
 * 1,440 1m bars) and reaches furthest back in memory when history is off.
 */
import { badParameter } from "../errors";
import { alignmentProblem, calendar, type Calendar } from "./calendar";
import { scaled } from "./decimal";
import { NOTIONAL_SCALE, QTY_SCALE, Rollup, filledBar, type BaseBar } from "./rollup";
import { SessionClock, type Session } from "./session";
import { LIVE_MS, type LiveInterval, type RolledBar } from "../contracts/bars";
import type { Fill, RollingSums } from "../contracts/queries";
import { divisors, type BarSpec } from "./spec";

/** Live bars of `interval` with start in [fromMs, toMs), the newest `limit`, oldest first. */
export type ReadLive = (
  interval: LiveInterval,
  fromMs: number | undefined,
  toMs: number | undefined,
  limit: number,
) => Promise<BaseBar[]>;

export interface WindowQuery {
  spec: BarSpec;
  zone: string;
  session: Session | null;
  /** Intervals whose start lies in [fromMs, toMs). */
  fromMs?: number;
  toMs?: number;
  limit: number;
  fill: Fill;
  nowMs: number;
}

export interface WindowAnswer {
  /** The live interval rolled up. */
  base: LiveInterval;
  bars: RolledBar[];
}

/** Live bars one request may read (about 100 B each while it runs). */
export const MAX_LIVE_BARS = 250_000;
const CHUNK_MAX = 20_000;
/** Intervals `fill=prev` may step over looking for the range (sessions skip most of them). */
const MAX_FILL_STEPS = 1_000_000;

class Misaligned extends Error {}

/** The live intervals a query may roll up, coarsest first; a 422 when there is none. */
export function candidates(
  q: Pick<WindowQuery, "spec" | "zone" | "session">,
  live: readonly LiveInterval[],
): LiveInterval[] {
  const problem = alignmentProblem(q.spec, q.zone);
  if (problem !== null) throw badParameter("interval", problem, q.spec.text);
  const bases = divisors(live, q.spec.ms).filter(
    (b) =>
      q.session === null ||
      (q.session.openMs % LIVE_MS[b] === 0 && q.session.closeMs % LIVE_MS[b] === 0),
  );
  if (bases.length === 0)
    throw badParameter(
      "session",
      `bounds must fall on a boundary of a live interval that divides ${q.spec.text} (${live.join(", ")})`,
      q.session?.text,
    );
  return bases;
}

/** Query times are clamped to 1900–2300: every trade lies within, and the zone database too. */
const EARLIEST_MS = Date.UTC(1900, 0, 1);
const LATEST_MS = Date.UTC(2300, 0, 1);
const clamp = (t: number | undefined) =>
  t === undefined ? undefined : Math.min(LATEST_MS, Math.max(EARLIEST_MS, t));

export async function windowBars(
  query: WindowQuery,
  live: readonly LiveInterval[],
  read: ReadLive,
): Promise<WindowAnswer> {
  const q = { ...query, fromMs: clamp(query.fromMs), toMs: clamp(query.toMs) };
  const bases = candidates(q, live);
  for (const base of bases) {
    try {
      return { base, bars: await rollWith(q, base, read) };
    } catch (err: unknown) {
      if (!(err instanceof Misaligned)) throw err;
    }
  }
  throw badParameter(
    q.session === null ? "tz" : "session",
    `the UTC offsets of ${q.zone} put interval or session boundaries inside live bars of ${bases.join(", ")}`,
    q.zone,
  );
}

/** Rolls sorted live bars of width `width` up; throws Misaligned when one straddles a boundary. */
function roll(parts: readonly BaseBar[], width: number, cal: Calendar, q: WindowQuery): Rollup[] {
  const clock = q.session === null ? null : new SessionClock(q.session, q.zone);
  const out: Rollup[] = [];
  let current: Rollup | null = null;
  for (const p of parts) {
    const end = p.startMs + width;
    if (clock !== null) {
      const place = clock.place(p.startMs, end);
      if (place === "out") continue;
      if (place === "straddles") throw new Misaligned();
    }
    if (current === null || p.startMs < current.startMs || p.startMs >= current.endMs) {
      const start = cal.startOf(p.startMs);
      current = new Rollup(start, cal.nextStart(start));
      out.push(current);
    }
    if (end > current.endMs) throw new Misaligned();
    current.add(p);
  }
  return out;
}

/** The newest `max` whole intervals with start in [fromMs, toMs). */
async function collect(
  q: WindowQuery,
  base: LiveInterval,
  cal: Calendar,
  read: ReadLive,
  fromMs: number | undefined,
  toMs: number | undefined,
  max: number,
): Promise<Rollup[]> {
  const width = LIVE_MS[base];
  let lo: number | undefined;
  if (fromMs !== undefined) {
    const s = cal.startOf(fromMs);
    lo = s === fromMs ? s : cal.nextStart(s);
  }
  const hi = toMs === undefined ? undefined : cal.nextStart(cal.startOf(toMs - 1));
  if (lo !== undefined && hi !== undefined && lo >= hi) return [];
  const perInterval = Math.ceil(q.spec.ms / width);
  const chunk = Math.max(100, Math.min(CHUNK_MAX, (Math.min(max, CHUNK_MAX) + 1) * perInterval));
  let parts: BaseBar[] = [];
  let cursor = hi;
  for (;;) {
    const got = await read(base, lo, cursor, chunk);
    parts = got.concat(parts);
    if (parts.length > MAX_LIVE_BARS)
      throw badParameter(
        "limit",
        `needs more than ${MAX_LIVE_BARS} ${base} bars; narrow from/to or lower limit`,
      );
    if (got.length < chunk) break;
    cursor = got[0]!.startMs;
    // More than `max` intervals: the oldest may be partial, the newest `max` are whole.
    if (roll(parts, width, cal, q).length > max) break;
    // A chunk from SQLite holds the event loop ~0.1 s: let heartbeats and batches in between.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const rolled = roll(parts, width, cal, q);
  return rolled.slice(Math.max(0, rolled.length - max));
}

async function rollWith(q: WindowQuery, base: LiveInterval, read: ReadLive): Promise<RolledBar[]> {
  const cal = calendar(q.spec, q.zone);
  if (q.fill === "none")
    return (await collect(q, base, cal, read, q.fromMs, q.toMs, q.limit)).map((r) =>
      r.bar(q.nowMs),
    );

  // fill=prev: the range's last interval is the one holding `to` (not beyond now), or the newest
  // with trades; then up to `limit` intervals back from it, not before `from`.
  let end: number | undefined;
  if (q.toMs !== undefined) end = cal.startOf(Math.min(q.toMs - 1, q.nowMs));
  else end = (await collect(q, base, cal, read, q.fromMs, undefined, 1))[0]?.startMs;
  if (end === undefined || (q.fromMs !== undefined && end < q.fromMs)) return [];
  const clock = q.session === null ? null : new SessionClock(q.session, q.zone);
  const starts: number[] = [];
  for (let s = end, steps = 0; starts.length < q.limit && steps < MAX_FILL_STEPS; steps += 1) {
    if (q.fromMs !== undefined && s < q.fromMs) break;
    // With a session, an interval wholly outside it is no interval of the exchange's.
    if (clock === null || clock.overlaps(s, cal.nextStart(s))) starts.push(s);
    s = cal.startOf(s - 1);
  }
  starts.reverse();
  const first = starts[0];
  if (first === undefined) return [];
  const data = new Map(
    (await collect(q, base, cal, read, first, cal.nextStart(end), Number.MAX_SAFE_INTEGER)).map(
      (r) => [r.startMs, r.bar(q.nowMs)],
    ),
  );
  let prev = await closeBefore(q, base, read, first);
  const out: RolledBar[] = [];
  for (const s of starts) {
    const bar = data.get(s);
    if (bar !== undefined) {
      out.push(bar);
      if (bar.close !== null) prev = bar.close;
    } else if (prev !== null) out.push(filledBar(s, cal.nextStart(s), prev, q.nowMs));
  }
  return out;
}

/** The close of the last live bar with trades (in the session) before `beforeMs`; null if none. */
async function closeBefore(
  q: WindowQuery,
  base: LiveInterval,
  read: ReadLive,
  beforeMs: number,
): Promise<number | null> {
  const width = LIVE_MS[base];
  const clock = q.session === null ? null : new SessionClock(q.session, q.zone);
  const chunk = 1000;
  let cursor = beforeMs;
  for (let seen = 0; seen < MAX_LIVE_BARS; seen += chunk) {
    const got = await read(base, undefined, cursor, chunk);
    for (let i = got.length - 1; i >= 0; i -= 1) {
      const p = got[i]!;
      if (clock !== null && clock.place(p.startMs, p.startMs + width) !== "in") continue;
      if (p.trades > 0 && p.close !== null) return p.close;
    }
    if (got.length < chunk) return null;
    cursor = got[0]!.startMs;
  }
  return null;
}

/** A symbol's trades in a span of event time, summed exactly (the engine's trade journal). */
export interface TradeSums {
  open?: number;
  high?: number;
  low?: number;
  close?: number;
  volumeExact: string;
  notional: string;
  trades: number;
}

/** OHLCV, VWAP and trades over a trailing window. */

/**
 * The trades with an event time in [atMs − window, atMs), exactly, from the symbol's trade
 * journal (`tradeWindow`, null when the journal may not hold them all: a window reaching back
 * before the correction window). Otherwise the whole live bars of the coarsest live interval
 * dividing the window, the last of them the one holding `atMs`: the window then covers
 * [fromMs, toMs), between `window − base` and `window` before `atMs`.
 */
export async function rollingWindow(
  spec: BarSpec,
  atMs: number,
  live: readonly LiveInterval[],
  read: ReadLive,
  tradeWindow: (fromMs: number, toMs: number) => TradeSums | null,
): Promise<RollingSums> {
  const at = clamp(atMs)!;
  const exact = tradeWindow(at - spec.ms, at);
  if (exact !== null) {
    const acc = new Rollup(at - spec.ms, at);
    acc.add({
      startMs: at - spec.ms,
      open: exact.open ?? null,
      high: exact.high ?? null,
      low: exact.low ?? null,
      close: exact.close ?? null,
      volume: scaled(exact.volumeExact, QTY_SCALE),
      notional: scaled(exact.notional, NOTIONAL_SCALE),
      trades: exact.trades,
      closed: true,
      revised: false,
      orderCount: 0,
      buyQty: 0n,
      sellQty: 0n,
      generation: 0,
      revision: 0,
    });
    return answer("trades", acc);
  }
  const base = divisors(live, spec.ms)[0];
  if (base === undefined) {
    // An unknown symbol is a 404 before the window is a 422.
    await read(live[0]!, at, at, 1);
    throw badParameter(
      "window",
      `is finer than the live intervals (${live.join(", ")}) and reaches back before the trade journal (CORRECTION_WINDOW)`,
      spec.text,
    );
  }
  const width = LIVE_MS[base];
  const toMs = Math.floor(at / width) * width + width;
  const acc = new Rollup(toMs - spec.ms, toMs);
  for (const p of await read(base, toMs - spec.ms, toMs, spec.ms / width)) acc.add(p);
  return answer(base, acc);
}

function answer(base: RollingSums["base"], acc: Rollup): RollingSums {
  const { startMs, endMs, open, high, low, close, volume, vwap, trades } = acc.bar(0);
  return { base, fromMs: startMs, toMs: endMs, open, high, low, close, volume, vwap, trades };
}
