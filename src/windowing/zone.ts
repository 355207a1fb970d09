/**
 * Local time in an IANA time zone, from the platform's time-zone database (`Intl`; Node 24 has no
 * `Temporal` without a flag). Everything here works on epoch milliseconds: a "local" value is the
 * local wall-clock time written as if it were UTC (`Date.UTC` of the local fields), so local days
 * are `Math.floor(local / DAY_MS)` and local times of day are remainders.
 *
 * A local time can name no instant (the hour skipped when clocks go forward) or two (the hour
 * repeated when they go back); `instantsAt` returns every instant, `firstAtOrAfter` the first
 * instant whose local time is at or after the given one, which is how a day or a session starts.
 */

import { badParameter } from "../errors";
import { offsetAt } from "./offset";

export const DAY_MS = 86_400_000;

/** The zone's canonical name, or null when the platform does not know it. */
export function knownZone(name: string): string | null {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/**
 * The `tz` query parameter: an IANA zone the platform knows (default UTC). Its spelling is fixed
 * (`america/new_york` → `America/New_York`), but a link keeps its name: ICU would answer the
 * legacy `Asia/Calcutta` for `Asia/Kolkata`.
 */
export function parseZone(value: string | undefined, name = "tz"): string {
  if (value === undefined || value === "") return "UTC";
  const zone = value.length > 64 ? null : knownZone(value);
  if (zone === null)
    throw badParameter(name, "must be an IANA time zone such as America/New_York or UTC", value);
  return zone.toLowerCase() === value.toLowerCase() ? zone : value;
}

export const isUtc = (zone: string): boolean =>
  ["UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"].includes(
    zone,
  );

/** The local time (as UTC fields) of instant `t`. */
export const localOf = (zone: string, t: number): number => t + offsetAt(zone, t);

/** Every instant whose local time is `local`, ascending: none in a gap, two in a repeated hour. */
export function instantsAt(zone: string, local: number): number[] {
  // At most one offset change lies within a day of any instant, so the offsets a day before and
  // after are the only candidates.
  const out: number[] = [];
  for (const off of [offsetAt(zone, local - DAY_MS), offsetAt(zone, local + DAY_MS)]) {
    const t = local - off;
    if (localOf(zone, t) === local && !out.includes(t)) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

/** The first instant whose local time is `local` or, when `local` falls in a gap, just after it. */
export function firstAtOrAfter(zone: string, local: number): number {
  const exact = instantsAt(zone, local);
  if (exact.length > 0) return exact[0]!;
  // In a gap the local time jumps over `local`: find the jump (local time only grows near it).
  let lo = local - offsetAt(zone, local - DAY_MS);
  let hi = local - offsetAt(zone, local + DAY_MS);
  if (lo > hi) [lo, hi] = [hi, lo];
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localOf(zone, mid) >= local) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The local day number (days since 1970-01-01 local) of instant `t`. */
export const localDay = (zone: string, t: number): number => Math.floor(localOf(zone, t) / DAY_MS);

/** The instant local day `day` starts (its first instant at or after local midnight). */
export const dayStart = (zone: string, day: number): number => firstAtOrAfter(zone, day * DAY_MS);
