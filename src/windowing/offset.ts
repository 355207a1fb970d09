/**
 * Local time minus UTC in an IANA zone at an instant, from the platform's time-zone database
 * (`Intl`). No imports: the dashboard bundle uses it to draw local time, the server to align bars.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();
/** Offsets by zone and minute: offsets change on minute boundaries in every zone since 1970. */
const offsets = new Map<string, number>();
const OFFSET_CACHE_MAX = 200_000;

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Local time minus UTC at instant `t` in `zone`, in ms. */
export function offsetAt(zone: string, t: number): number {
  if (zone === "UTC") return 0;
  const minute = Math.floor(t / 60_000);
  const key = `${zone}\u0000${minute}`;
  const cached = offsets.get(key);
  if (cached !== undefined) return cached;
  const at = minute * 60_000;
  const p: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(at)))
    if (part.type !== "literal") p[part.type] = Number(part.value);
  const local = Date.UTC(p.year!, p.month! - 1, p.day, p.hour, p.minute, p.second);
  const offset = local - at;
  if (offsets.size >= OFFSET_CACHE_MAX) offsets.clear();
  offsets.set(key, offset);
  return offset;
}
