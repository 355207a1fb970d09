/**
 * Bar intervals a client may ask for (`<n>s`, `<n>m`, `<n>h`, `<n>d`, `<n>w`) and the live
 * intervals the engine keeps (`BAR_INTERVALS`, a subset of the Rust core's 1m, 5m and 1h). Any
 * asked interval must be a multiple of a live one: it is answered by rolling live bars up.
 */
import { LIVE_INTERVALS, LIVE_MS, type LiveInterval } from "../contracts/bars";
import { badParameter } from "../errors";
import { DAY_MS } from "./zone";

export type Unit = "s" | "m" | "h" | "d" | "w";
const UNIT_MS: Record<Unit, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: DAY_MS,
  w: 7 * DAY_MS,
};

/** An interval as asked: `n` units; `ms` is its nominal length (a local day may be 23 or 25 h). */
export interface BarSpec {
  text: string;
  n: number;
  unit: Unit;
  ms: number;
}

/** The longest interval answered: a year of days, 52 weeks. */
const MAX_MS = 366 * DAY_MS;

/** Parses `15m`, `4h`, `1d`, `1w`; null when the text is not such an interval. */
export function parseSpec(text: string): BarSpec | null {
  const m = /^([1-9]\d{0,5})([smhdw])$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] as Unit;
  const ms = n * UNIT_MS[unit];
  return ms > MAX_MS ? null : { text: `${n}${unit}`, n, unit, ms };
}

/** The live intervals of `live` that divide `ms`, coarsest first. */
export function divisors(live: readonly LiveInterval[], ms: number): LiveInterval[] {
  return [...live].filter((l) => ms % LIVE_MS[l] === 0).sort((a, b) => LIVE_MS[b] - LIVE_MS[a]);
}

/** The `interval` query parameter: a spec some live interval divides, or a 422 saying which. */
export function parseInterval(
  value: string | undefined,
  live: readonly LiveInterval[],
  name = "interval",
): BarSpec {
  const spec = parseSpec(value === undefined || value === "" ? "1m" : value);
  const liveText = live.join(", ");
  if (spec === null)
    throw badParameter(
      name,
      `must be <n>s, <n>m, <n>h, <n>d or <n>w (at most 366 days), a multiple of a live interval (${liveText})`,
      value,
    );
  if (divisors(live, spec.ms).length === 0)
    throw badParameter(
      name,
      `must be a multiple of one of the live intervals ${liveText}; no live interval divides ${spec.text}`,
      value,
    );
  return spec;
}

/** A tick (`<n>t`, every n trades) or volume (`<n>v`, every n units) bar spec. */
export const ACTIVITY_PATTERN = /^[1-9]\d{0,8}[tv]$/;
/** Tick and volume specs the core keeps per symbol at most. */
export const MAX_ACTIVITY = 4;

/**
 * `BAR_INTERVALS`: a non-empty subset of the core's time intervals (finest first) and up to
 * four tick and volume specs; null when invalid.
 */
export function parseLiveIntervals(
  text: string,
): { intervals: LiveInterval[]; activity: string[] } | null {
  const items = text.split(",").map((s) => s.trim());
  const intervals: LiveInterval[] = [];
  const activity: string[] = [];
  for (const item of items) {
    const found = LIVE_INTERVALS.find((l) => l === item);
    if (found !== undefined && !intervals.includes(found)) intervals.push(found);
    else if (ACTIVITY_PATTERN.test(item) && !activity.includes(item)) activity.push(item);
    else return null;
  }
  if (intervals.length === 0 || activity.length > MAX_ACTIVITY) return null;
  return { intervals: intervals.sort((a, b) => LIVE_MS[a] - LIVE_MS[b]), activity };
}

/** The longest rolling window: a month of live bars. */
const MAX_WINDOW_MS = 31 * DAY_MS;

/** The `window` of a rolling query: fixed length (a day is 24 h here), at most 31 days. */
export function parseWindow(value: string | undefined, name = "window"): BarSpec {
  const spec = value === undefined ? null : parseSpec(value);
  if (spec === null || spec.ms > MAX_WINDOW_MS)
    throw badParameter(name, "must be <n>s, <n>m, <n>h, <n>d or <n>w, at most 31 days", value);
  return spec;
}

/**
 * An `interval` naming tick or volume bars: one of BAR_INTERVALS' specs, or a 422 listing them.
 * Null when the value is not of that form (a time interval).
 */
export function parseActivityInterval(
  value: string | undefined,
  kept: readonly string[],
  name = "interval",
): string | null {
  if (value === undefined || !ACTIVITY_PATTERN.test(value)) return null;
  if (!kept.includes(value))
    throw badParameter(
      name,
      kept.length === 0
        ? "names tick or volume bars, and BAR_INTERVALS keeps none"
        : `names tick or volume bars that BAR_INTERVALS does not keep (it keeps ${kept.join(", ")})`,
      value,
    );
  return value;
}
