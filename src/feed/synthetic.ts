/**
 * A synthetic market: realistic FIX traffic for a set of symbols, so that a newcomer sees the
 * whole pipeline work without Kafka. Prices follow a geometric random walk with occasional
 * jumps (the anomalies to find); the message mix is what an exchange drop copy plus a market
 * data feed look like: fills, trade capture reports, market-data trades, orders, acks,
 * heartbeats, and a small share of malformed messages.
 *
 * Deterministic for a given seed, so the same feed can be replayed in tests and benchmarks.
 */
import { encodeFix, fixTimestamp, type Field } from "../fix/encode";

export interface SyntheticOptions {
  symbols: number;
  seed: number;
  malformedRatio: number;
  jumpProbability: number;
}

/** The kinds of message the feed writes, with their share of the traffic. */
const MIX = [
  ["fill", 0.38],
  ["tradeCapture", 0.12],
  ["marketData", 0.15],
  ["order", 0.2],
  ["ack", 0.1],
  ["heartbeat", 0.05],
] as const;

type Kind = (typeof MIX)[number][0];

const WELL_KNOWN = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM", "V", "XOM"];

/** Symbol names: well-known tickers first, then `SYM0011`, `SYM0012`, … */
export function symbolNames(n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => WELL_KNOWN[i] ?? `SYM${String(i + 1).padStart(4, "0")}`,
  );
}

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; enough for test traffic. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SymbolWalk {
  symbol: string;
  price: number;
  tick: number;
}

export class SyntheticMarket {
  private readonly rand: () => number;
  private readonly walks: SymbolWalk[];
  private seq = 0;
  private execId = 0;

  constructor(private readonly opts: SyntheticOptions) {
    this.rand = mulberry32(opts.seed);
    this.walks = symbolNames(opts.symbols).map((symbol) => {
      const price = 10 + this.rand() * 490;
      return { symbol, price, tick: price < 50 ? 0.001 : 0.01 };
    });
  }

  /** The symbols this market trades. */
  get symbols(): string[] {
    return this.walks.map((w) => w.symbol);
  }

  /** Writes the next `n` messages, stamped with the given wall-clock time. */
  next(n: number, nowMs: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) out.push(this.message(nowMs));
    return out;
  }

  private pick(): SymbolWalk {
    const w = this.walks[Math.floor(this.rand() * this.walks.length)];
    if (!w) throw new Error("SyntheticMarket has no symbols");
    return w;
  }

  private kind(): Kind {
    let r = this.rand();
    for (const [kind, share] of MIX) {
      if (r < share) return kind;
      r -= share;
    }
    return "fill";
  }

  /** Moves a symbol's price one step (≈ 1 bp per trade) and, rarely, jumps it 3–8 %. */
  private step(w: SymbolWalk): string {
    const gauss = Math.sqrt(-2 * Math.log(1 - this.rand())) * Math.cos(2 * Math.PI * this.rand());
    let r = gauss * 0.0001;
    if (this.rand() < this.opts.jumpProbability)
      r += (this.rand() < 0.5 ? -1 : 1) * (0.03 + this.rand() * 0.05);
    w.price = Math.max(w.tick, Math.round((w.price * Math.exp(r)) / w.tick) * w.tick);
    return w.price.toFixed(w.tick < 0.01 ? 3 : 2);
  }

  private qty(): string {
    return String(1 + Math.floor(this.rand() * 10) * 100);
  }

  private header(nowMs: number): Field[] {
    this.seq += 1;
    return [
      [34, String(this.seq)],
      [49, "TICKSIM"],
      [52, fixTimestamp(nowMs)],
      [56, "TICKSTREAM"],
    ];
  }

  private message(nowMs: number): Buffer {
    if (this.rand() < this.opts.malformedRatio) return this.malformed(nowMs);
    const kind = this.kind();
    const micros = Math.floor(this.rand() * 1000);
    const transactTime = fixTimestamp(nowMs, micros);
    switch (kind) {
      case "fill": {
        const w = this.pick();
        this.execId += 1;
        return encodeFix("FIX.4.4", "8", [
          ...this.header(nowMs),
          [6, "0"],
          [11, `C${this.execId}`],
          [14, "0"],
          [17, `E${this.opts.seed}-${this.execId}`],
          [31, this.step(w)],
          [32, this.qty()],
          [37, `O${this.execId}`],
          [39, "2"],
          [54, this.rand() < 0.5 ? "1" : "2"],
          [55, w.symbol],
          [60, transactTime],
          [150, "F"],
          [151, "0"],
        ]);
      }
      case "tradeCapture": {
        const w = this.pick();
        this.execId += 1;
        return encodeFix("FIX.4.4", "AE", [
          ...this.header(nowMs),
          [31, this.step(w)],
          [32, this.qty()],
          [55, w.symbol],
          [60, transactTime],
          [487, "0"],
          [571, `T${this.opts.seed}-${this.execId}`],
        ]);
      }
      case "marketData": {
        const w = this.pick();
        const entries = 1 + Math.floor(this.rand() * 3);
        const fields: Field[] = [...this.header(nowMs), [262, "MD1"], [268, String(entries)]];
        for (let e = 0; e < entries; e++) {
          this.execId += 1;
          fields.push(
            [279, "0"],
            [269, "2"],
            [278, `M${this.opts.seed}-${this.execId}`],
            [55, w.symbol],
          );
          fields.push([270, this.step(w)], [271, this.qty()], [60, transactTime]);
        }
        return encodeFix("FIXT.1.1", "X", fields);
      }
      case "order": {
        const w = this.pick();
        this.execId += 1;
        const limit = (w.price * (1 + (this.rand() - 0.5) * 0.002)).toFixed(2);
        return encodeFix("FIX.4.4", "D", [
          ...this.header(nowMs),
          [11, `N${this.opts.seed}-${this.execId}`],
          [38, this.qty()],
          [40, "2"],
          [44, limit],
          [54, this.rand() < 0.5 ? "1" : "2"],
          [55, w.symbol],
          [60, transactTime],
        ]);
      }
      case "ack": {
        const w = this.pick();
        this.execId += 1;
        return encodeFix("FIX.4.4", "8", [
          ...this.header(nowMs),
          [17, `A${this.opts.seed}-${this.execId}`],
          [37, `O${this.execId}`],
          [39, "0"],
          [54, "1"],
          [55, w.symbol],
          [150, "0"],
        ]);
      }
      case "heartbeat":
        return encodeFix("FIX.4.4", "0", this.header(nowMs));
    }
  }

  /** A message broken the way real feeds break: bad checksum, cut short, garbled, bad price. */
  private malformed(nowMs: number): Buffer {
    const w = this.pick();
    const good = encodeFix("FIX.4.4", "8", [
      ...this.header(nowMs),
      [17, `X${this.opts.seed}-${this.seq}`],
      [31, w.price.toFixed(2)],
      [32, "100"],
      [55, w.symbol],
      [60, fixTimestamp(nowMs)],
      [150, "F"],
    ]);
    const flavour = Math.floor(this.rand() * 4);
    if (flavour === 0) {
      // Flip one checksum digit.
      const copy = Buffer.from(good);
      const i = copy.length - 2;
      copy[i] = copy[i] === 0x30 ? 0x31 : 0x30;
      return copy;
    }
    if (flavour === 1) return good.subarray(0, Math.floor(good.length * 0.6));
    if (flavour === 2) return Buffer.from(`garbage ${this.seq} \x01\x01=`, "latin1");
    return encodeFix("FIX.4.4", "8", [
      ...this.header(nowMs),
      [17, `X${this.opts.seed}-${this.seq}`],
      [31, "-1"],
      [32, "100"],
      [55, w.symbol],
      [60, fixTimestamp(nowMs)],
      [150, "F"],
    ]);
  }
}
