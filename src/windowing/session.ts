/**
 * An exchange session, `HH:MM-HH:MM` local time in the query's zone: only live bars that lie
 * inside the day's session count. Bars are whole units (a live bar holds trades of its whole
 * interval), so a session boundary must fall on a live bar's boundary: the minutes must be a
 * multiple of the live interval used (checked when parsed), and so must the zone's offset (found
 * as the bars are read: a bar that straddles a session boundary makes the roll-up try a finer
 * live interval, or answer 422).
 *
 * A session lies within one local day (open < close; `24:00` closes at midnight). On a DST day
 * its bounds are the first instants at or after the local times.
 */
import { badParameter } from "../errors";
import { DAY_MS, dayStart, firstAtOrAfter, localDay } from "./zone";

export interface Session {
  text: string;
  /** Local time of day, ms. */
  openMs: number;
  closeMs: number;
}

export function parseSession(value: string | undefined, name = "session"): Session | null {
  if (value === undefined || value === "") return null;
  const m = /^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/.exec(value);
  const bad = () =>
    badParameter(
      name,
      "must be HH:MM-HH:MM local time with open before close (24:00 at most)",
      value,
    );
  if (!m) throw bad();
  const openMs = (Number(m[1]) * 60 + Number(m[2])) * 60_000;
  const closeMs = (Number(m[3]) * 60 + Number(m[4])) * 60_000;
  if (openMs >= closeMs || closeMs > DAY_MS) throw bad();
  return { text: value, openMs, closeMs };
}

/** Where a bar [start, end) lies against the session. */
export type Placement = "in" | "out" | "straddles";

/** Places bars against a session in one zone; cheapest when asked in time order. */
export class SessionClock {
  private day = Number.NaN;
  private begin = 0;
  private open = 0;
  private close = 0;
  private nextDay = 0;

  constructor(
    private readonly session: Session,
    private readonly zone: string,
  ) {}

  place(start: number, end: number): Placement {
    if (Number.isNaN(this.day) || start < this.begin || start >= this.nextDay)
      this.load(localDay(this.zone, start));
    if (end <= this.open || start >= this.close) return "out";
    return start >= this.open && end <= this.close ? "in" : "straddles";
  }

  /** Whether [start, end) overlaps some day's session (for filling empty intervals). */
  overlaps(start: number, end: number): boolean {
    for (let day = localDay(this.zone, start); dayStart(this.zone, day) < end; day += 1) {
      this.load(day);
      if (this.open < end && this.close > start) return true;
    }
    return false;
  }

  private load(day: number): void {
    if (day === this.day) return;
    this.day = day;
    this.begin = dayStart(this.zone, day);
    this.open = firstAtOrAfter(this.zone, day * DAY_MS + this.session.openMs);
    this.close = firstAtOrAfter(this.zone, day * DAY_MS + this.session.closeMs);
    this.nextDay = dayStart(this.zone, day + 1);
  }
}
