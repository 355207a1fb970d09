/** Offsets of IANA time zones from the browser's own zone database, for drawing local time. */
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Local time minus UTC at instant `ms` in `zone`, in ms. */
export function offsetMs(zone: string, ms: number): number {
  if (zone === "UTC") return 0;
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
  const at = Math.floor(ms / 1000) * 1000;
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(new Date(at)))
    if (part.type !== "literal") p[part.type] = Number(part.value);
  return Date.UTC(p.year!, p.month! - 1, p.day, p.hour, p.minute, p.second) - at;
}
