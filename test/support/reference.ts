/**
 * An independent reference for end-to-end checks: splits a FIX stream with a regular expression,
 * reads fields with `split`, and builds bars with BigInt arithmetic. It shares no code with the
 * Rust core or the services, so agreement means something.
 */

export interface RefTrade {
  symbol: string;
  /** Price mantissa at 1e-9, rounded half-up on the 10th decimal (the documented rule). */
  price: bigint;
  qty: bigint;
  timeMs: number;
  /** Arrival order. */
  seq: number;
}

export interface RefBar {
  startMs: number;
  open: bigint;
  high: bigint;
  low: bigint;
  close: bigint;
  volume: bigint;
  trades: number;
}

const SCALE_DIGITS = 9;

/** Decimal text → mantissa at 1e-9, rounding half-up on the 10th fractional digit. */
export function refDecimal(text: string): bigint {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) throw new Error(`not a decimal: ${text}`);
  const frac = (m[3] ?? "").padEnd(SCALE_DIGITS + 1, "0");
  let v = BigInt((m[2] || "0") + frac.slice(0, SCALE_DIGITS));
  if (Number(frac[SCALE_DIGITS]) >= 5) v += 1n;
  return m[1] === "-" ? -v : v;
}

/** FIX UTCTimestamp (millisecond precision or coarser) → epoch ms. */
export function refTimestamp(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/.exec(text);
  if (!m) throw new Error(`not a UTCTimestamp: ${text}`);
  const ms = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  return Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
    ms,
  );
}

/**
 * Trades of MarketDataIncrementalRefresh messages in a raw stream (the JSE corpus): entries start
 * at each 279; an entry is a trade when 279=0 and 269 is one of `entryTypes`. Event time is
 * SendingTime(52): the corpus has no TransactTime and no MDEntryDate.
 */
export function mdTrades(stream: Buffer, entryTypes: string[]): RefTrade[] {
  const text = stream.toString("latin1");
  // eslint-disable-next-line no-control-regex -- SOH is the FIX delimiter
  const messages = text.match(/8=FIX[^\x01]*\x019=\d+\x01[\s\S]*?\x0110=\d{3}\x01/g) ?? [];
  const trades: RefTrade[] = [];
  messages.forEach((msg, msgIndex) => {
    const fields = msg
      .split("\x01")
      .filter((f) => f !== "")
      .map((f) => [f.slice(0, f.indexOf("=")), f.slice(f.indexOf("=") + 1)] as const);
    const get = (tag: string) => fields.find(([t]) => t === tag)?.[1];
    if (get("35") !== "X") return;
    const sending = refTimestamp(get("52")!);
    const entries: Map<string, string>[] = [];
    for (const [tag, value] of fields) {
      if (tag === "279") entries.push(new Map());
      entries[entries.length - 1]?.set(tag, value);
    }
    let ord = 0;
    for (const e of entries) {
      if ((e.get("279") ?? "0") !== "0" || !entryTypes.includes(e.get("269") ?? "")) continue;
      trades.push({
        symbol: e.get("55")!,
        price: refDecimal(e.get("270")!),
        qty: refDecimal(e.get("271") ?? "0"),
        timeMs: sending,
        seq: msgIndex * 1000 + ord++,
      });
    }
  });
  return trades;
}

/** A message's fields by tag (first occurrence), split on SOH. */
function fieldsOf(message: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of message.toString("latin1").split("\x01")) {
    const eq = f.indexOf("=");
    if (eq > 0 && !out.has(f.slice(0, eq))) out.set(f.slice(0, eq), f.slice(eq + 1));
  }
  return out;
}

/**
 * The trades in effect after a stream of FIX 4.4 ExecutionReports, one per record, in order:
 * fills (150=F) are trades; a cancel (150=H) removes the fill whose ExecID(17) its ExecRefID(19)
 * names, a correction (150=G) replaces that fill's LastPx/LastQty and keeps its time. A cancel or
 * correction changes nothing when the fill was not seen before it, was already cancelled, carries
 * the values the fill already has, or repeats the ExecID of a report already applied. A fill whose
 * ExecID was seen is a duplicate. `seq` is the record's position.
 */
export function execReportTrades(records: readonly Buffer[]): RefTrade[] {
  const fills = new Map<string, RefTrade & { cancelled: boolean }>();
  const applied = new Set<string>();
  records.forEach((record, seq) => {
    const f = fieldsOf(record);
    if (f.get("35") !== "8") return;
    const execId = f.get("17")!;
    switch (f.get("150")) {
      case "F":
        if (fills.has(execId)) return;
        fills.set(execId, {
          symbol: f.get("55")!,
          price: refDecimal(f.get("31")!),
          qty: refDecimal(f.get("32")!),
          timeMs: refTimestamp(f.get("60")!),
          seq: seq * 1000,
          cancelled: false,
        });
        return;
      case "H":
      case "G": {
        const fill = fills.get(f.get("19") ?? "");
        if (fill === undefined || fill.cancelled || applied.has(execId)) return;
        if (f.get("150") === "H") fill.cancelled = true;
        else {
          const [price, qty] = [refDecimal(f.get("31")!), refDecimal(f.get("32")!)];
          if (price === fill.price && qty === fill.qty) return;
          [fill.price, fill.qty] = [price, qty];
        }
        applied.add(execId);
        return;
      }
    }
  });
  return [...fills.values()]
    .filter((t) => !t.cancelled)
    .map(({ symbol, price, qty, timeMs, seq }) => ({ symbol, price, qty, timeMs, seq }));
}

/** Bars of one symbol and interval width, oldest first. */
export function refBars(trades: RefTrade[], symbol: string, widthMs: number): RefBar[] {
  const bars = new Map<number, RefBar & { first: [number, number]; last: [number, number] }>();
  const before = (a: [number, number], b: [number, number]) =>
    a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  for (const t of trades) {
    if (t.symbol !== symbol) continue;
    const startMs = Math.floor(t.timeMs / widthMs) * widthMs;
    const key: [number, number] = [t.timeMs, t.seq];
    const b = bars.get(startMs);
    if (!b) {
      bars.set(startMs, {
        startMs,
        open: t.price,
        high: t.price,
        low: t.price,
        close: t.price,
        volume: t.qty,
        trades: 1,
        first: key,
        last: key,
      });
      continue;
    }
    if (before(key, b.first)) [b.open, b.first] = [t.price, key];
    if (!before(key, b.last)) [b.close, b.last] = [t.price, key];
    if (t.price > b.high) b.high = t.price;
    if (t.price < b.low) b.low = t.price;
    b.volume += t.qty;
    b.trades += 1;
  }
  return [...bars.values()].sort((a, b) => a.startMs - b.startMs).map(comparable);
}

/** The fields of a bar the reference computes (exact BigInt here, numbers in REST answers). */
export interface ComparableBar<P> {
  startMs: number;
  open: P;
  high: P;
  low: P;
  close: P;
  volume: P;
  trades: number;
}

/** Just the fields the reference computes, from a reference bar or a REST bar. */
export function comparable<P>(b: ComparableBar<P>): ComparableBar<P> {
  const { startMs, open, high, low, close, volume, trades } = b;
  return { startMs, open, high, low, close, volume, trades };
}

/** A mantissa as the float REST shows (the same conversion any client would do). */
export const asNumber = (mantissa: bigint): number => Number(mantissa) / 1e9;
