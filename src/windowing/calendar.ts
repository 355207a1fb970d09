/**
 * Where the intervals of a bar spec start, in a time zone. Intervals shorter than an hour are
 * aligned to the epoch (as the live 1m and 5m bars are). Hours that divide a day, days and weeks
 * follow the local clock: an hour bar starts whenever the local clock shows a multiple of it (so a
 * repeated hour gives two bars and a skipped one none), a day bar at local midnight (23 or 25 h
 * long across a DST change), `<n>d` bars on local day numbers that are multiples of n since
 * 1970-01-01, week bars on local Mondays. In UTC every hour multiple is aligned to the epoch, so
 * `5h` is allowed there; elsewhere an hour interval must divide a day.
 */
import { DAY_MS, dayStart, instantsAt, isUtc, localDay } from "./zone";
import type { BarSpec } from "./spec";

export interface Calendar {
  /** Start of the interval holding instant `t`. */
  startOf(t: number): number;
  /** Start of the interval after the one starting at `start`. */
  nextStart(start: number): number;
}

/** Why a spec cannot be aligned in a zone; null when it can. */
export function alignmentProblem(spec: BarSpec, zone: string): string | null {
  if (spec.unit === "d" || spec.unit === "w" || spec.ms < 3_600_000 || isUtc(zone)) return null;
  return DAY_MS % spec.ms === 0
    ? null
    : `an interval of an hour or more must divide a day to follow the local clock of ${zone}`;
}

const floorTo = (t: number, width: number, origin = 0) =>
  Math.floor((t - origin) / width) * width + origin;

/** 1970-01-05, a Monday: week bars start on Mondays. */
const MONDAY_DAY = 4;

export function calendar(spec: BarSpec, zone: string): Calendar {
  if (spec.unit === "d" || spec.unit === "w") {
    const days = spec.unit === "d" ? spec.n : 7 * spec.n;
    const origin = spec.unit === "d" ? 0 : MONDAY_DAY;
    const firstDay = (t: number) => {
      const d = floorTo(localDay(zone, t), days, origin);
      // A local day can begin after its midnight (a gap); t may lie before its interval's start.
      return dayStart(zone, d) <= t ? d : d - days;
    };
    return {
      startOf: (t) => dayStart(zone, firstDay(t)),
      nextStart: (start) => dayStart(zone, firstDay(start) + days),
    };
  }
  if (spec.ms < 3_600_000 || isUtc(zone))
    return { startOf: (t) => floorTo(t, spec.ms), nextStart: (s) => floorTo(s, spec.ms) + spec.ms };
  return localClock(spec.ms, zone);
}

/** Hour intervals dividing a day, on the local clock: each day's starts are listed once and kept. */
function localClock(width: number, zone: string): Calendar {
  const days = new Map<number, number[]>();
  const startsOf = (day: number): number[] => {
    let starts = days.get(day);
    if (starts === undefined) {
      const set = new Set<number>([dayStart(zone, day)]);
      for (let local = day * DAY_MS; local < (day + 1) * DAY_MS; local += width)
        for (const t of instantsAt(zone, local)) if (localDay(zone, t) === day) set.add(t);
      starts = [...set].sort((a, b) => a - b);
      if (days.size > 10_000) days.clear();
      days.set(day, starts);
    }
    return starts;
  };
  const startOf = (t: number): number => {
    for (let day = localDay(zone, t) + 1; ; day -= 1) {
      const starts = startsOf(day);
      for (let i = starts.length - 1; i >= 0; i -= 1) if (starts[i]! <= t) return starts[i]!;
    }
  };
  const nextStart = (start: number): number => {
    for (let day = localDay(zone, start); ; day += 1)
      for (const s of startsOf(day)) if (s > start) return s;
  };
  return { startOf, nextStart };
}
