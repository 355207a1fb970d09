/**
 * Parsing of REST query parameters. Each parser names the parameter in its error, so a client
 * always learns which part of its request was wrong (422), never a 500.
 */
import { LIVE_INTERVALS, type LiveInterval } from "../contracts/bars";
import { badParameter } from "../errors";

export const LIMIT_MAX = 10_000;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A live interval (the stream's `intervals`); REST's `interval` takes any (src/windowing/spec.ts). */
export function parseInterval(value: string | undefined, name = "interval"): LiveInterval {
  if (value === undefined || value === "") return "1m";
  const found = LIVE_INTERVALS.find((i) => i === value);
  if (!found) throw badParameter(name, `must be one of ${LIVE_INTERVALS.join(", ")}`, value);
  return found;
}

/** `fill`: `none` (default) leaves intervals without trades out, `prev` fills them. */
export function parseFill(value: string | undefined, name = "fill"): "none" | "prev" {
  if (value === undefined || value === "" || value === "none") return "none";
  if (value === "prev") return "prev";
  throw badParameter(name, "must be none or prev", value);
}

/** Accepts ISO-8601 (UTC unless an offset is given) or epoch milliseconds. */
export function parseTime(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (/^-?\d{1,16}$/.test(value)) return Number(value);
  if (ISO_8601.test(value)) {
    const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(value) && value.includes("T");
    const ms = Date.parse(hasZone || !value.includes("T") ? value : `${value}Z`);
    if (Number.isFinite(ms)) return ms;
  }
  throw badParameter(name, "must be an ISO-8601 time or epoch milliseconds", value);
}

export function parseLimit(value: string | undefined, fallback: number, name = "limit"): number {
  if (value === undefined || value === "") return fallback;
  if (!/^\d{1,6}$/.test(value))
    throw badParameter(name, `must be an integer from 1 to ${LIMIT_MAX}`, value);
  const n = Number(value);
  if (n < 1 || n > LIMIT_MAX)
    throw badParameter(name, `must be an integer from 1 to ${LIMIT_MAX}`, value);
  return n;
}

/** Symbols are printable, at most 64 bytes (as the decoder accepts them). */
export function parseSymbol(value: string | undefined, name = "symbol"): string {
  if (value === undefined || value === "") throw badParameter(name, "is required", value);
  // eslint-disable-next-line no-control-regex
  if (Buffer.byteLength(value) > 64 || /[\x00-\x1f\x7f]/.test(value))
    throw badParameter(name, "must be printable and at most 64 bytes", value);
  return value;
}
