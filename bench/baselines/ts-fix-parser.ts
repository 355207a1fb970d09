/**
 * A plain TypeScript FIX tag=value decoder: the baseline the Rust core is measured against.
 *
 * It does the work of the Rust decoder's FIX path (`native/core/src/decode`): it frames a stream
 * by BodyLength (searching for `8=FIX` only to resynchronise after bytes that cannot be framed),
 * validates BeginString (FIX.4.0–4.4, FIXT.1.1), BodyLength, CheckSum and the syntax of every
 * field (length-prefixed data fields included), then extracts trades from ExecutionReport
 * (35=8), TradeCaptureReport (35=AE) and MarketDataIncrementalRefresh (35=X) with the same
 * rules and reject reasons, in the same order of checks.
 *
 * It is written the way a competent TypeScript engineer writes a parser meant to be fast: byte
 * loops over a Buffer, fields kept as offsets (no string per field, no split of the message),
 * one object per trade. It stops there: no lookup-table tricks beyond one byte-indexed table,
 * no unrolled loops, no caches of symbol strings.
 *
 * Representation (differs from Rust only where a JS `number` forces it):
 * - Prices and quantities are integer mantissas at scale 1e9 in a `number` (`101.25` →
 *   101_250_000_000), parsed from the text, never through `parseFloat`; beyond nine fraction
 *   digits they round half-up on the tenth, as in Rust. A `number` holds these mantissas
 *   exactly up to 2^53 − 1, i.e. values up to 9,007,199.254740991: larger ones are BAD_PRICE /
 *   BAD_QTY here, while Rust's `i64` accepts up to ~9.2e9.
 * - Event time is epoch milliseconds plus the nanoseconds within the millisecond, both exact;
 *   {@link tradeTimeNs} turns them into a BigInt when nanoseconds are needed.
 *
 * Work the Rust decoder does and this baseline skips (each makes the baseline faster, so
 * ratios against it are conservative): NewOrderSingle (35=D) is only syntax-checked, not
 * turned into an order; trade cancels/corrections (150=H/G, 487=1/2, ExecTransType 1/2) are
 * counted, not built; trade ids and sides are not extracted (so ids are not UTF-8-checked);
 * JSON records are not accepted.
 */

/** Why a message (or a run of skipped bytes) was rejected; the Rust core's stable names. */
export type RejectReason =
  | "CHECKSUM"
  | "BODY_LENGTH"
  | "TRUNCATED"
  | "GARBLED"
  | "BAD_BEGIN_STRING"
  | "MISSING_FIELD"
  | "BAD_PRICE"
  | "BAD_QTY"
  | "BAD_TIMESTAMP"
  | "BAD_SYMBOL"
  | "BAD_FIELD";

/** A trade extracted from a message. */
export interface Trade {
  symbol: string;
  /** Price mantissa, scale 1e9 (`price / 1e9` is the price). */
  price: number;
  /** Quantity mantissa, scale 1e9. */
  qty: number;
  /** Event time: epoch milliseconds… */
  timeMs: number;
  /** …plus nanoseconds within that millisecond (0–999,999). */
  subMsNs: number;
}

/** A rejected message or run of skipped bytes. */
export interface Reject {
  /** Byte offset within the parsed buffer. */
  offset: number;
  len: number;
  reason: RejectReason;
}

/** What a call to {@link TsFixParser.parse} saw. */
export interface ParseResult {
  /** Frames and rejected runs, as the Rust decoder counts messages. */
  messages: number;
  valid: number;
  trades: number;
  /** Valid trade cancels and corrections (not turned into records here). */
  corrections: number;
  rejects: Reject[];
}

/** One frame, or one run of skipped bytes, found by {@link frameStream}. */
export interface Frame {
  offset: number;
  len: number;
  /** `null` for a frame that passed framing and CheckSum validation. */
  reject: RejectReason | null;
}

export interface ParserOptions {
  /** MDEntryType(269) values whose MarketDataIncrementalRefresh entries are trades, e.g. "2,3" (default "2"). */
  mdEntryTypes?: string | readonly string[];
  /** Longest accepted symbol, in bytes (default 64). */
  maxSymbolLen?: number;
}

/** Receives each trade of a valid message, in input order. */
export type TradeSink = (trade: Trade) => void;

const SOH = 0x01;
const EQUALS = 0x3d;
const DOT = 0x2e;
const MINUS = 0x2d;
const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** Longest BeginString accepted while looking for its SOH (`FIXT.1.1` is 8 bytes). */
const MAX_BEGIN_STRING = 16;
/** Most digits a BodyLength may have. */
const MAX_BODY_LENGTH_DIGITS = 9;
const MESSAGE_START = Buffer.from("8=FIX", "latin1");
/** `<SOH>10=ddd<SOH>`; ANY_DIGIT stands for one digit. */
const ANY_DIGIT = -1;
const TRAILER = [SOH, 0x31, 0x30, EQUALS, ANY_DIGIT, ANY_DIGIT, ANY_DIGIT, SOH];
/** Index in TRAILER of the first CheckSum digit: a mismatch before it is a BodyLength error. */
const TRAILER_DIGITS_AT = 4;
/** `10^(9 - n)` for n fraction digits read. */
const FRAC_SCALE = [1e9, 1e8, 1e7, 1e6, 1e5, 1e4, 1e3, 100, 10, 1];
const MS_PER_DAY = 86_400_000;
const MIN_YEAR = 1970;
const MAX_YEAR = 2261;
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const CONTROL = /\p{Cc}/u;

/** BeginString classes: unsupported, FIX.4.0–4.2 (fills are 150=1/2), later versions. */
const UNSUPPORTED = 0;
const LEGACY = 1;
const MODERN = 2;
type Version = typeof UNSUPPORTED | typeof LEGACY | typeof MODERN;
const FIXT_1_1 = Buffer.from("FIXT.1.1", "latin1");

/** The data tag whose length `tag` gives (95 → 96 RawData, 212 → 213 XmlData …), or 0. */
function dataTagFor(tag: number): number {
  switch (tag) {
    case 90:
      return 91;
    case 93:
      return 89;
    case 95:
      return 96;
    case 212:
      return 213;
    case 348:
    case 350:
    case 352:
    case 354:
    case 356:
    case 358:
    case 360:
    case 362:
    case 364:
      return tag + 1;
    case 445:
      return 446;
    case 618:
      return 619;
    case 621:
      return 622;
    case 1184:
      return 1185;
    case 1277:
      return 1278;
    case 1401:
      return 1402;
    default:
      return 0;
  }
}

/** `n` ASCII digits at `at` as a number, or -1. The caller has checked the bounds. */
function digitsAt(buf: Buffer, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = buf[i]! - DIGIT_0;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** A group count or data length: 1–9 ASCII digits, or -1. */
function parseCount(buf: Buffer, start: number, end: number): number {
  if (end === start || end - start > 9) return -1;
  return digitsAt(buf, start, end - start);
}

/**
 * FIX float text (`-?digits[.digits]`) → mantissa at scale 1e9, or NaN (syntax, or beyond 2^53).
 * `.995` and `5.` are accepted; `-`, `.`, `+1`, `1e5`, spaces are not.
 */
export function parseDecimal(buf: Buffer, start: number, end: number): number {
  let i = start;
  const negative = i < end && buf[i] === MINUS;
  if (negative) i++;
  const intStart = i;
  let int = 0;
  while (i < end) {
    const d = buf[i]! - DIGIT_0;
    if (d < 0 || d > 9) break;
    int = int * 10 + d;
    i++;
  }
  const intDigits = i - intStart;
  let frac = 0;
  let fracDigits = 0;
  let roundUp = 0;
  if (i < end && buf[i] === DOT) {
    i++;
    const fracStart = i;
    for (; i < end; i++) {
      const d = buf[i]! - DIGIT_0;
      if (d < 0 || d > 9) return NaN;
      const k = i - fracStart;
      if (k < 9) {
        frac = frac * 10 + d;
        fracDigits++;
      } else if (k === 9 && d >= 5) {
        roundUp = 1;
      }
    }
    if (intDigits === 0 && i === fracStart) return NaN;
  } else if (intDigits === 0 || i !== end) {
    return NaN;
  }
  const m = int * 1e9 + frac * FRAC_SCALE[fracDigits]! + roundUp;
  if (m > Number.MAX_SAFE_INTEGER) return NaN;
  return negative && m !== 0 ? -m : m;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = month > 2 ? month - 3 : month + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** A parsed time: epoch (or midnight-relative) milliseconds + nanoseconds within the ms. */
export interface TimeOut {
  ms: number;
  subMsNs: number;
}

/** `YYYYMMDD` at `at` → days since the epoch, or NaN (bad date, year outside 1970–2261). */
function dateDays(buf: Buffer, at: number): number {
  const year = digitsAt(buf, at, 4);
  const month = digitsAt(buf, at + 4, 2);
  const day = digitsAt(buf, at + 6, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return NaN;
  if (year < MIN_YEAR || year > MAX_YEAR) return NaN;
  return daysFromCivil(year, month, day);
}

/**
 * UTCTimeOnly `HH:MM:SS[.sss|.ssssss|.sssssssss]` → ms since midnight into `out`. Second 60 (a
 * leap second) counts as the next second, as in Rust.
 */
function parseTimeOnly(buf: Buffer, start: number, end: number, out: TimeOut): boolean {
  const n = end - start;
  if (n < 8 || buf[start + 2] !== COLON || buf[start + 5] !== COLON) return false;
  const hour = digitsAt(buf, start, 2);
  const minute = digitsAt(buf, start + 3, 2);
  const second = digitsAt(buf, start + 6, 2);
  if (hour < 0 || minute < 0 || second < 0) return false;
  let fracMs = 0;
  let subMsNs = 0;
  if (n !== 8) {
    if ((n !== 12 && n !== 15 && n !== 18) || buf[start + 8] !== DOT) return false;
    fracMs = digitsAt(buf, start + 9, 3);
    if (fracMs < 0) return false;
    if (n >= 15) {
      const micros = digitsAt(buf, start + 12, 3);
      if (micros < 0) return false;
      subMsNs = micros * 1000;
    }
    if (n === 18) {
      const nanos = digitsAt(buf, start + 15, 3);
      if (nanos < 0) return false;
      subMsNs += nanos;
    }
  }
  if (hour > 23 || minute > 59 || second > 60) return false;
  out.ms = ((hour * 60 + minute) * 60 + second) * 1000 + fracMs;
  out.subMsNs = subMsNs;
  return true;
}

/** UTCTimestamp `YYYYMMDD-HH:MM:SS[.fff…]` → epoch time into `out`. */
export function parseUtcTimestamp(buf: Buffer, start: number, end: number, out: TimeOut): boolean {
  if (end - start < 17 || buf[start + 8] !== MINUS) return false;
  if (!parseTimeOnly(buf, start + 9, end, out)) return false;
  const days = dateDays(buf, start);
  if (Number.isNaN(days)) return false;
  out.ms += days * MS_PER_DAY;
  return true;
}

/** MDEntryDate (UTCDateOnly) + MDEntryTime (UTCTimeOnly) → epoch time into `out`. */
function parseDateAndTime(
  buf: Buffer,
  date: number,
  dateEnd: number,
  time: number,
  timeEnd: number,
  out: TimeOut,
): boolean {
  if (dateEnd - date !== 8) return false;
  const days = dateDays(buf, date);
  if (Number.isNaN(days) || !parseTimeOnly(buf, time, timeEnd, out)) return false;
  out.ms += days * MS_PER_DAY;
  return true;
}

/** Epoch nanoseconds of a trade, exact. */
export function tradeTimeNs(trade: Pick<Trade, "timeMs" | "subMsNs">): bigint {
  return BigInt(trade.timeMs) * 1_000_000n + BigInt(trade.subMsNs);
}

/** The symbol at `start..end` if acceptable (non-empty, ≤ max bytes, UTF-8 without control characters). */
function symbolAt(buf: Buffer, start: number, end: number, max: number): string | null {
  if (end === start || end - start > max) return null;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b < 0x20 || b > 0x7e) return otherSymbol(buf, start, end);
  }
  return buf.toString("latin1", start, end);
}

function otherSymbol(buf: Buffer, start: number, end: number): string | null {
  let text: string;
  try {
    text = UTF8.decode(buf.subarray(start, end));
  } catch {
    return null;
  }
  return CONTROL.test(text) ? null : text;
}

/** The class of the BeginString at `start..end`. */
function versionOf(buf: Buffer, start: number, end: number): Version {
  const n = end - start;
  if (n === 7) {
    // FIX.4.0 … FIX.4.4
    if (buf[start] !== 0x46 || buf[start + 1] !== 0x49 || buf[start + 2] !== 0x58)
      return UNSUPPORTED;
    if (buf[start + 3] !== DOT || buf[start + 4] !== 0x34 || buf[start + 5] !== DOT)
      return UNSUPPORTED;
    const minor = buf[start + 6]! - DIGIT_0;
    if (minor < 0 || minor > 4) return UNSUPPORTED;
    return minor <= 2 ? LEGACY : MODERN;
  }
  if (n !== FIXT_1_1.length) return UNSUPPORTED;
  for (let i = 0; i < n; i++) if (buf[start + i] !== FIXT_1_1[i]) return UNSUPPORTED;
  return MODERN;
}

/**
 * Splits a buffer into frames and rejected runs (the Rust `Framer`, rule for rule): a frame is
 * `8=<BeginString><SOH>9=<BodyLength><SOH><body>10=<ddd><SOH>` and ends at body start +
 * BodyLength + 7. Results of {@link Framer.parse} are left in its fields.
 */
class Framer {
  buf: Buffer = Buffer.alloc(0);
  /** End of the framed bytes: the buffer without one trailing `\n` or `\r\n`. */
  limit = 0;
  /** Outcome at the last parsed position: `null` for a good frame. */
  reason: RejectReason | null = null;
  /** End of the frame when its BodyLength delimited it, else -1. */
  frameEnd = -1;
  bodyStart = 0;
  /** Offset of `10=` (the body includes the SOH before it). */
  bodyEnd = 0;
  version: Version = UNSUPPORTED;

  reset(buf: Buffer): void {
    let limit = buf.length;
    if (limit > 0 && buf[limit - 1] === 0x0a) {
      limit -= 1;
      if (limit > 0 && buf[limit - 1] === 0x0d) limit -= 1;
    }
    this.buf = buf;
    this.limit = limit;
  }

  /** Parses and validates the frame starting at `start`. */
  parse(start: number): void {
    const buf = this.buf;
    const limit = this.limit;
    this.frameEnd = -1;
    this.version = UNSUPPORTED;
    if (limit - start < 2) {
      this.reason = buf[start] === 0x38 ? this.beyondEnd(start) : "GARBLED";
      return;
    }
    if (buf[start] !== 0x38 || buf[start + 1] !== EQUALS) {
      this.reason = "GARBLED";
      return;
    }

    const windowEnd = Math.min(limit, start + 2 + MAX_BEGIN_STRING + 1);
    let soh = start + 2;
    while (soh < windowEnd && buf[soh] !== SOH) soh++;
    if (soh === windowEnd) {
      this.reason =
        windowEnd - (start + 2) <= MAX_BEGIN_STRING ? this.beyondEnd(start) : "BAD_BEGIN_STRING";
      return;
    }
    const version = versionOf(buf, start + 2, soh);

    const p = soh + 1;
    if (limit - p < 2) {
      return this.fail(
        version,
        limit === p || buf[p] === 0x39 ? this.beyondEnd(start) : "BODY_LENGTH",
      );
    }
    if (buf[p] !== 0x39 || buf[p + 1] !== EQUALS) return this.fail(version, "BODY_LENGTH");
    let q = p + 2;
    let bodyLength = 0;
    for (;;) {
      if (q >= limit) return this.fail(version, this.beyondEnd(start));
      const c = buf[q]!;
      if (c === SOH) break;
      const d = c - DIGIT_0;
      if (d < 0 || d > 9 || q - (p + 2) >= MAX_BODY_LENGTH_DIGITS)
        return this.fail(version, "BODY_LENGTH");
      bodyLength = bodyLength * 10 + d;
      q++;
    }
    if (q === p + 2) return this.fail(version, "BODY_LENGTH");

    const bodyStart = q + 1;
    const tag10 = bodyStart + bodyLength;
    if (tag10 > limit) return this.fail(version, this.beyondEnd(start));
    // The body's last byte is SOH, then "10=", three digits and SOH; an empty body has no SOH
    // of its own. The first mismatch says which part is bad.
    for (let k = bodyLength === 0 ? 1 : 0; k < TRAILER.length; k++) {
      const at = tag10 - 1 + k;
      if (at >= limit) return this.fail(version, this.beyondEnd(start));
      const got = buf[at]!;
      const want = TRAILER[k]!;
      const ok = want === ANY_DIGIT ? got >= DIGIT_0 && got <= DIGIT_9 : got === want;
      if (!ok) return this.fail(version, k < TRAILER_DIGITS_AT ? "BODY_LENGTH" : "CHECKSUM");
    }

    this.frameEnd = tag10 + 7;
    this.bodyStart = bodyStart;
    this.bodyEnd = tag10;
    this.version = version;
    if (version === UNSUPPORTED) {
      this.reason = "BAD_BEGIN_STRING";
      return;
    }
    const declared = digitsAt(buf, tag10 + 3, 3);
    let sum = 0;
    for (let i = start; i < tag10; i++) sum += buf[i]!;
    this.reason = (sum & 0xff) === declared ? null : "CHECKSUM";
  }

  /** Once the BeginString is known to be bad, that is the reason whatever else fails. */
  private fail(version: Version, reason: RejectReason): void {
    this.reason = version === UNSUPPORTED ? "BAD_BEGIN_STRING" : reason;
  }

  /** A frame running past the buffer: truncated, unless the buffer shows the length is wrong. */
  private beyondEnd(start: number): RejectReason {
    return this.endsWithTrailer() || this.resync(start) < this.limit ? "BODY_LENGTH" : "TRUNCATED";
  }

  private endsWithTrailer(): boolean {
    const buf = this.buf;
    const at = this.limit - 8;
    if (at < 0) return false;
    for (let k = 0; k < TRAILER.length; k++) {
      const got = buf[at + k]!;
      const want = TRAILER[k]!;
      if (want === ANY_DIGIT ? got < DIGIT_0 || got > DIGIT_9 : got !== want) return false;
    }
    return true;
  }

  /** Whether `8=FIX` at `at` is followed within the BeginString window by `<SOH>9=`. */
  private plausibleStart(at: number): boolean {
    const buf = this.buf;
    const limit = this.limit;
    const windowEnd = Math.min(at + 2 + MAX_BEGIN_STRING + 1, limit);
    let i = at + MESSAGE_START.length;
    while (i < windowEnd && buf[i] !== SOH) i++;
    if (i < windowEnd) {
      const after = i + 1;
      if (limit - after >= 2) return buf[after] === 0x39 && buf[after + 1] === EQUALS;
      return limit === after || buf[after] === 0x39;
    }
    return windowEnd === limit && windowEnd < at + 2 + MAX_BEGIN_STRING + 1;
  }

  /** The next plausible message start strictly after `from`, or the limit. */
  resync(from: number): number {
    let search = from + 1;
    while (search < this.limit) {
      const at = this.buf.indexOf(MESSAGE_START, search);
      if (at < 0 || at + MESSAGE_START.length > this.limit) break;
      if (this.plausibleStart(at)) return at;
      search = at + 1;
    }
    return this.limit;
  }
}

/**
 * Walks `tag=value<SOH>` fields of `buf[pos..limit)`. After {@link FieldCursor.next} returns
 * true, `tag`, `start` and `end` describe the field; false means the end, or a syntax error
 * when `garbled` is set. A length tag's paired data field takes exactly that many bytes.
 */
class FieldCursor {
  buf: Buffer = Buffer.alloc(0);
  tag = 0;
  start = 0;
  end = 0;
  garbled = false;
  private pos = 0;
  private limit = 0;
  /** Data tag awaited after a length tag (0 = none), and its length (-1 if not a number). */
  private pendingTag = 0;
  private pendingLen = -1;

  reset(buf: Buffer, from: number, to: number): void {
    this.buf = buf;
    this.pos = from;
    this.limit = to;
    this.garbled = false;
    this.pendingTag = 0;
  }

  next(): boolean {
    const buf = this.buf;
    const limit = this.limit;
    let pos = this.pos;
    if (pos >= limit) return false;
    // Tag: 1–9 first (no leading zero), then digits up to '=', fitting a u32.
    let c = buf[pos++]!;
    if (c < 0x31 || c > DIGIT_9) return this.fail();
    let tag = c - DIGIT_0;
    for (;;) {
      if (pos >= limit) return this.fail();
      c = buf[pos++]!;
      if (c === EQUALS) break;
      if (c < DIGIT_0 || c > DIGIT_9) return this.fail();
      tag = tag * 10 + (c - DIGIT_0);
      if (tag > 0xffff_ffff) return this.fail();
    }

    const start = pos;
    let end: number;
    if (this.pendingTag === tag) {
      end = start + this.pendingLen;
      if (this.pendingLen < 0 || end >= limit || buf[end] !== SOH) return this.fail();
    } else {
      end = start;
      while (end < limit && buf[end] !== SOH) end++;
      if (end === limit) return this.fail();
    }
    const dataTag = dataTagFor(tag);
    this.pendingTag = dataTag;
    if (dataTag !== 0) this.pendingLen = parseCount(buf, start, end);
    this.tag = tag;
    this.start = start;
    this.end = end;
    this.pos = end + 1;
    return true;
  }

  private fail(): boolean {
    this.garbled = true;
    this.pos = this.limit;
    return false;
  }
}

/**
 * Start/end offsets of the first occurrence of a few fields (slot = a field the handler needs).
 * Keeping the first occurrence means a repeating group later in the message cannot override a
 * message-level value.
 */
class Slots {
  readonly start: Int32Array;
  readonly end: Int32Array;

  constructor(n: number) {
    this.start = new Int32Array(n).fill(-1);
    this.end = new Int32Array(n);
  }

  clear(): void {
    this.start.fill(-1);
  }

  /** Records a field unless the slot already holds one. */
  first(slot: number, start: number, end: number): void {
    if (this.start[slot] === -1) {
      this.start[slot] = start;
      this.end[slot] = end;
    }
  }

  has(slot: number): boolean {
    return this.start[slot] !== -1;
  }

  /** Whether the slot holds exactly the one byte `ch`. */
  is(buf: Buffer, slot: number, ch: number): boolean {
    const s = this.start[slot]!;
    return s !== -1 && this.end[slot] === s + 1 && buf[s] === ch;
  }

  /** Whether the slot is empty or holds exactly `ch`. */
  absentOr(buf: Buffer, slot: number, ch: number): boolean {
    return this.start[slot] === -1 || this.is(buf, slot, ch);
  }
}

// Slots of ExecutionReport and TradeCaptureReport fields.
const F_EXEC_ID = 0;
const F_EXEC_TRANS_TYPE = 1;
const F_LAST_PX = 2;
const F_LAST_QTY = 3;
const F_SENDING_TIME = 4;
const F_SYMBOL = 5;
const F_TRANSACT_TIME = 6;
const F_EXEC_TYPE = 7;
const F_TRADE_REPORT_TRANS_TYPE = 8;
const REPORT_SLOTS = 9;

// Slots of a MarketDataIncrementalRefresh entry.
const E_UPDATE_ACTION = 0;
const E_ENTRY_TYPE = 1;
const E_PX = 2;
const E_SIZE = 3;
const E_SYMBOL = 4;
const E_TRANSACT_TIME = 5;
const E_DATE = 6;
const E_TIME = 7;
const ENTRY_SLOTS = 8;

// Single-byte values compared against.
const CH_0 = 0x30;
const CH_1 = 0x31;
const CH_2 = 0x32;
const CH_F = 0x46;
const CH_G = 0x47;
const CH_H = 0x48;

/** The message kinds handled apart, by their MsgType bytes. */
const EXECUTION_REPORT = 0;
const TRADE_CAPTURE_REPORT = 1;
const MARKET_DATA = 2;
const OTHER = 3;
type MsgKind =
  typeof EXECUTION_REPORT | typeof TRADE_CAPTURE_REPORT | typeof MARKET_DATA | typeof OTHER;

/**
 * The decoder. Create one per configuration and call {@link TsFixParser.parse} per buffer (a
 * whole stream, a Kafka batch, or one message); it keeps no state between calls.
 */
export class TsFixParser {
  private readonly maxSymbolLen: number;
  /** `singleByteTypes[c] === 1` when the one-byte MDEntryType `c` is a trade. */
  private readonly singleByteTypes = new Uint8Array(256);
  private readonly otherTypes: Set<string>;
  private readonly framer = new Framer();
  private readonly cursor = new FieldCursor();
  private readonly fields = new Slots(REPORT_SLOTS);
  private readonly entry = new Slots(ENTRY_SLOTS);
  private readonly time: TimeOut = { ms: 0, subMsNs: 0 };
  /** Trades of the MarketDataIncrementalRefresh being decoded (emitted only if it is valid). */
  private readonly pending: Trade[] = [];
  private sink: TradeSink | undefined;
  private trades = 0;
  private corrections = 0;

  constructor(options: ParserOptions = {}) {
    const spec = options.mdEntryTypes ?? "2";
    const types = typeof spec === "string" ? spec.split(",").map((t) => t.trim()) : [...spec];
    if (types.length === 0 || types.some((t) => t === "" || !/^[\x21-\x3c\x3e-\x7e]+$/.test(t))) {
      throw new Error(`mdEntryTypes: invalid list ${JSON.stringify(spec)}`);
    }
    this.otherTypes = new Set(types.filter((t) => t.length > 1));
    for (const t of types) if (t.length === 1) this.singleByteTypes[t.charCodeAt(0)] = 1;
    this.maxSymbolLen = options.maxSymbolLen ?? 64;
  }

  /**
   * Decodes every message of `buf` (one trailing `\n`/`\r\n` is ignored); each trade of a valid
   * message goes to `onTrade`.
   */
  parse(buf: Buffer, onTrade?: TradeSink): ParseResult {
    const framer = this.framer;
    framer.reset(buf);
    this.sink = onTrade;
    this.trades = 0;
    this.corrections = 0;
    const rejects: Reject[] = [];
    let messages = 0;
    let pos = 0;
    while (pos < framer.limit) {
      framer.parse(pos);
      let reason = framer.reason;
      if (reason === null)
        reason = this.decodeMessage(buf, framer.bodyStart, framer.bodyEnd, framer.version);
      const next = framer.frameEnd >= 0 ? framer.frameEnd : framer.resync(pos);
      if (reason !== null) rejects.push({ offset: pos, len: next - pos, reason });
      messages++;
      pos = next;
    }
    this.sink = undefined;
    return {
      messages,
      valid: messages - rejects.length,
      trades: this.trades,
      corrections: this.corrections,
      rejects,
    };
  }

  private emit(trade: Trade): void {
    this.trades++;
    this.sink?.(trade);
  }

  /** Decodes a framed, checksum-valid body; returns the reject reason or null. */
  private decodeMessage(
    buf: Buffer,
    bodyStart: number,
    bodyEnd: number,
    version: Version,
  ): RejectReason | null {
    const c = this.cursor;
    c.reset(buf, bodyStart, bodyEnd);
    if (!c.next()) return c.garbled ? "GARBLED" : "MISSING_FIELD";
    if (c.tag !== 35 || c.end === c.start) return "MISSING_FIELD";
    switch (msgKind(buf, c.start, c.end)) {
      case EXECUTION_REPORT:
        return this.executionReport(buf, version === LEGACY);
      case TRADE_CAPTURE_REPORT:
        return this.tradeCaptureReport(buf);
      case MARKET_DATA:
        return this.marketData(buf);
      default:
        while (c.next());
        return c.garbled ? "GARBLED" : null;
    }
  }

  /**
   * ExecutionReport (35=8): a trade is ExecType F, or 1/2 under FIX.4.0–4.2; LastPx and LastQty
   * both zero/absent is an acknowledgement, not a trade. Checks: Symbol, LastPx > 0,
   * LastQty > 0, ExecID, time (60 else 52), in that order.
   */
  private executionReport(buf: Buffer, legacy: boolean): RejectReason | null {
    const c = this.cursor;
    const f = this.fields;
    f.clear();
    while (c.next()) {
      switch (c.tag) {
        case 17:
          f.first(F_EXEC_ID, c.start, c.end);
          break;
        case 20:
          f.first(F_EXEC_TRANS_TYPE, c.start, c.end);
          break;
        case 31:
          f.first(F_LAST_PX, c.start, c.end);
          break;
        case 32:
          f.first(F_LAST_QTY, c.start, c.end);
          break;
        case 52:
          f.first(F_SENDING_TIME, c.start, c.end);
          break;
        case 55:
          f.first(F_SYMBOL, c.start, c.end);
          break;
        case 60:
          f.first(F_TRANSACT_TIME, c.start, c.end);
          break;
        case 150:
          f.first(F_EXEC_TYPE, c.start, c.end);
          break;
      }
    }
    if (c.garbled) return "GARBLED";

    let tradeTyped: boolean;
    if (f.is(buf, F_EXEC_TYPE, CH_F)) tradeTyped = true;
    else if (f.is(buf, F_EXEC_TYPE, CH_1) || f.is(buf, F_EXEC_TYPE, CH_2)) tradeTyped = legacy;
    else if (f.is(buf, F_EXEC_TYPE, CH_H) || f.is(buf, F_EXEC_TYPE, CH_G))
      return this.correction(buf, f);
    else tradeTyped = false;
    if (!tradeTyped) return null;
    if (legacy && !f.absentOr(buf, F_EXEC_TRANS_TYPE, CH_0)) {
      // 1 = cancel, 2 = correct; 3 (status) restates an earlier execution.
      return f.is(buf, F_EXEC_TRANS_TYPE, CH_1) || f.is(buf, F_EXEC_TRANS_TYPE, CH_2)
        ? this.correction(buf, f)
        : null;
    }

    const hasPx = f.has(F_LAST_PX);
    const hasQty = f.has(F_LAST_QTY);
    const px = hasPx ? parseDecimal(buf, f.start[F_LAST_PX]!, f.end[F_LAST_PX]!) : 0;
    if (Number.isNaN(px)) return "BAD_PRICE";
    const qty = hasQty ? parseDecimal(buf, f.start[F_LAST_QTY]!, f.end[F_LAST_QTY]!) : 0;
    if (Number.isNaN(qty)) return "BAD_QTY";
    if (px === 0 && qty === 0) return null;

    if (!f.has(F_SYMBOL)) return "MISSING_FIELD";
    const symbol = symbolAt(buf, f.start[F_SYMBOL]!, f.end[F_SYMBOL]!, this.maxSymbolLen);
    if (symbol === null) return "BAD_SYMBOL";
    if (!hasPx) return "MISSING_FIELD";
    if (px <= 0) return "BAD_PRICE";
    if (!hasQty) return "MISSING_FIELD";
    if (qty <= 0) return "BAD_QTY";
    if (!f.has(F_EXEC_ID) || f.end[F_EXEC_ID] === f.start[F_EXEC_ID]) return "MISSING_FIELD";
    const timeError = this.eventTime(buf, f);
    if (timeError !== null) return timeError;
    this.emit({ symbol, price: px, qty, timeMs: this.time.ms, subMsNs: this.time.subMsNs });
    return null;
  }

  /** A valid trade cancel or correction: its symbol, when present, must be acceptable. */
  private correction(buf: Buffer, f: Slots): RejectReason | null {
    if (
      f.has(F_SYMBOL) &&
      symbolAt(buf, f.start[F_SYMBOL]!, f.end[F_SYMBOL]!, this.maxSymbolLen) === null
    ) {
      return "BAD_SYMBOL";
    }
    this.corrections++;
    return null;
  }

  /** Event time from TransactTime(60), else SendingTime(52), into `this.time`. */
  private eventTime(buf: Buffer, f: Slots): RejectReason | null {
    const slot = f.has(F_TRANSACT_TIME) ? F_TRANSACT_TIME : F_SENDING_TIME;
    if (!f.has(slot)) return "MISSING_FIELD";
    return parseUtcTimestamp(buf, f.start[slot]!, f.end[slot]!, this.time) ? null : "BAD_TIMESTAMP";
  }

  /**
   * TradeCaptureReport (35=AE): TradeReportTransType 0 or absent is a trade (1/2 are a cancel and
   * a replace). Checks: Symbol, LastPx > 0, LastQty ≥ 0, time (60 else 52).
   */
  private tradeCaptureReport(buf: Buffer): RejectReason | null {
    const c = this.cursor;
    const f = this.fields;
    f.clear();
    while (c.next()) {
      switch (c.tag) {
        case 31:
          f.first(F_LAST_PX, c.start, c.end);
          break;
        case 32:
          f.first(F_LAST_QTY, c.start, c.end);
          break;
        case 52:
          f.first(F_SENDING_TIME, c.start, c.end);
          break;
        case 55:
          f.first(F_SYMBOL, c.start, c.end);
          break;
        case 60:
          f.first(F_TRANSACT_TIME, c.start, c.end);
          break;
        case 487:
          f.first(F_TRADE_REPORT_TRANS_TYPE, c.start, c.end);
          break;
      }
    }
    if (c.garbled) return "GARBLED";
    if (!f.absentOr(buf, F_TRADE_REPORT_TRANS_TYPE, CH_0)) {
      const cancelOrReplace =
        f.is(buf, F_TRADE_REPORT_TRANS_TYPE, CH_1) || f.is(buf, F_TRADE_REPORT_TRANS_TYPE, CH_2);
      return cancelOrReplace ? this.correction(buf, f) : null;
    }
    if (!f.has(F_SYMBOL)) return "MISSING_FIELD";
    const symbol = symbolAt(buf, f.start[F_SYMBOL]!, f.end[F_SYMBOL]!, this.maxSymbolLen);
    if (symbol === null) return "BAD_SYMBOL";
    if (!f.has(F_LAST_PX)) return "MISSING_FIELD";
    const price = parseDecimal(buf, f.start[F_LAST_PX]!, f.end[F_LAST_PX]!);
    if (!(price > 0)) return "BAD_PRICE";
    if (!f.has(F_LAST_QTY)) return "MISSING_FIELD";
    const qty = parseDecimal(buf, f.start[F_LAST_QTY]!, f.end[F_LAST_QTY]!);
    if (!(qty >= 0)) return "BAD_QTY";
    const timeError = this.eventTime(buf, f);
    if (timeError !== null) return timeError;
    this.emit({ symbol, price, qty, timeMs: this.time.ms, subMsNs: this.time.subMsNs });
    return null;
  }

  /**
   * MarketDataIncrementalRefresh (35=X). NoMDEntries(268) is required and must equal the number
   * of entries; entries are delimited by the first tag after 268. An entry is a trade when
   * MDUpdateAction(279) is 0 or absent and MDEntryType(269) is configured; then MDEntryPx(270)
   * > 0, MDEntrySize(271) ≥ 0 (absent = 0), symbol = entry's 55 else the message's, time =
   * entry's 60, else the message's 60, else 272 + 273, else SendingTime(52). One bad trade
   * entry rejects the whole message with the first entry's reason.
   */
  private marketData(buf: Buffer): RejectReason | null {
    const c = this.cursor;
    const e = this.entry;
    const pending = this.pending;
    pending.length = 0;
    let symbol = -1;
    let symbolEnd = 0;
    let transact = -1;
    let transactEnd = 0;
    let sending = -1;
    let sendingEnd = 0;
    let count = -1;
    let inGroup = false;
    let delimiter = 0;
    let entries = 0;
    let error: RejectReason | null = null;
    e.clear();

    while (c.next()) {
      const tag = c.tag;
      if (tag === 52 && sending === -1) {
        sending = c.start;
        sendingEnd = c.end;
      }
      if (inGroup) {
        if (delimiter === 0) delimiter = tag;
        if (tag === delimiter) {
          if (entries > 0 && error === null)
            error = this.mdEntry(buf, symbol, symbolEnd, transact, transactEnd);
          e.clear();
          entries++;
        }
        switch (tag) {
          case 55:
            e.first(E_SYMBOL, c.start, c.end);
            break;
          case 60:
            e.first(E_TRANSACT_TIME, c.start, c.end);
            break;
          case 269:
            e.first(E_ENTRY_TYPE, c.start, c.end);
            break;
          case 270:
            e.first(E_PX, c.start, c.end);
            break;
          case 271:
            e.first(E_SIZE, c.start, c.end);
            break;
          case 272:
            e.first(E_DATE, c.start, c.end);
            break;
          case 273:
            e.first(E_TIME, c.start, c.end);
            break;
          case 279:
            e.first(E_UPDATE_ACTION, c.start, c.end);
            break;
        }
      } else if (tag === 55) {
        if (symbol === -1) {
          symbol = c.start;
          symbolEnd = c.end;
        }
      } else if (tag === 60) {
        if (transact === -1) {
          transact = c.start;
          transactEnd = c.end;
        }
      } else if (tag === 268) {
        if (count !== -1) {
          error ??= "BAD_FIELD";
          continue;
        }
        count = parseCount(buf, c.start, c.end);
        if (count === -1) {
          // Keep walking for syntax; the count stays unknown.
          count = 0;
          error ??= "BAD_FIELD";
        }
        inGroup = count > 0;
      }
    }
    if (c.garbled) return "GARBLED";
    if (entries > 0 && error === null)
      error = this.mdEntry(buf, symbol, symbolEnd, transact, transactEnd);
    if (error !== null) return error;
    if (count === -1) return "MISSING_FIELD";
    if (count !== entries) return "BAD_FIELD";

    let sentOk: boolean | undefined;
    for (const trade of pending) {
      if (!Number.isNaN(trade.timeMs)) continue;
      if (sentOk === undefined) {
        if (sending === -1) return "MISSING_FIELD";
        sentOk = parseUtcTimestamp(buf, sending, sendingEnd, this.time);
        if (!sentOk) return "BAD_TIMESTAMP";
      }
      trade.timeMs = this.time.ms;
      trade.subMsNs = this.time.subMsNs;
    }
    for (const trade of pending) this.emit(trade);
    return null;
  }

  /** Validates the finished entry; a trade goes to `pending` (time NaN = SendingTime, resolved later). */
  private mdEntry(
    buf: Buffer,
    msgSymbol: number,
    msgSymbolEnd: number,
    msgTransact: number,
    msgTransactEnd: number,
  ): RejectReason | null {
    const e = this.entry;
    if (!e.absentOr(buf, E_UPDATE_ACTION, CH_0) || !e.has(E_ENTRY_TYPE)) return null;
    const typeStart = e.start[E_ENTRY_TYPE]!;
    const typeEnd = e.end[E_ENTRY_TYPE]!;
    const isTrade =
      typeEnd === typeStart + 1
        ? this.singleByteTypes[buf[typeStart]!] === 1
        : this.otherTypes.size > 0 &&
          this.otherTypes.has(buf.toString("latin1", typeStart, typeEnd));
    if (!isTrade) return null;

    const hasSymbol = e.has(E_SYMBOL);
    if (!hasSymbol && msgSymbol === -1) return "MISSING_FIELD";
    const symbol = hasSymbol
      ? symbolAt(buf, e.start[E_SYMBOL]!, e.end[E_SYMBOL]!, this.maxSymbolLen)
      : symbolAt(buf, msgSymbol, msgSymbolEnd, this.maxSymbolLen);
    if (symbol === null) return "BAD_SYMBOL";
    if (!e.has(E_PX)) return "MISSING_FIELD";
    const price = parseDecimal(buf, e.start[E_PX]!, e.end[E_PX]!);
    if (!(price > 0)) return "BAD_PRICE";
    const qty = e.has(E_SIZE) ? parseDecimal(buf, e.start[E_SIZE]!, e.end[E_SIZE]!) : 0;
    if (!(qty >= 0)) return "BAD_QTY";

    const t = this.time;
    let timed = true;
    let ok = true;
    if (e.has(E_TRANSACT_TIME))
      ok = parseUtcTimestamp(buf, e.start[E_TRANSACT_TIME]!, e.end[E_TRANSACT_TIME]!, t);
    else if (msgTransact !== -1) ok = parseUtcTimestamp(buf, msgTransact, msgTransactEnd, t);
    else if (e.has(E_DATE) && e.has(E_TIME)) {
      ok = parseDateAndTime(
        buf,
        e.start[E_DATE]!,
        e.end[E_DATE]!,
        e.start[E_TIME]!,
        e.end[E_TIME]!,
        t,
      );
    } else timed = false;
    if (!ok) return "BAD_TIMESTAMP";
    this.pending.push({
      symbol,
      price,
      qty,
      timeMs: timed ? t.ms : NaN,
      subMsNs: timed ? t.subMsNs : 0,
    });
    return null;
  }
}

/** The kind of message a MsgType value denotes. */
function msgKind(buf: Buffer, start: number, end: number): MsgKind {
  if (end === start + 1) {
    const c = buf[start];
    if (c === 0x38) return EXECUTION_REPORT;
    if (c === 0x58) return MARKET_DATA;
  } else if (end === start + 2 && buf[start] === 0x41 && buf[start + 1] === 0x45) {
    return TRADE_CAPTURE_REPORT;
  }
  return OTHER;
}

/** Frames a stream without decoding bodies (used to split a file into one record per message). */
export function frameStream(buf: Buffer): Frame[] {
  const framer = new Framer();
  framer.reset(buf);
  const frames: Frame[] = [];
  let pos = 0;
  while (pos < framer.limit) {
    framer.parse(pos);
    const next = framer.frameEnd >= 0 ? framer.frameEnd : framer.resync(pos);
    frames.push({ offset: pos, len: next - pos, reject: framer.reason });
    pos = next;
  }
  return frames;
}
