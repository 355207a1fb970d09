/**
 * A seeded feed of FIX 4.4 fills followed, minutes later, by trade cancels (150=H) and corrections
 * (150=G) of some of them, with the awkward cases a drop copy sends: a report delivered twice, a
 * correction of a busted fill, a cancel of a fill nobody saw, a correction to the same values.
 */
import { encodeFix, fixTimestamp } from "../../src/fix/encode";
import { fixFill } from "./fix-data";

export interface CorrectionsFeed {
  /** One fill per record, in time order. */
  fills: Buffer[];
  /** One cancel or correction per record, 3–12 minutes (event time) after the fill it names. */
  corrections: Buffer[];
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function report(
  kind: "H" | "G",
  execId: string,
  ref: string,
  symbol: string,
  atMs: number,
  price?: string,
  qty?: string,
): Buffer {
  const values: [number, string][] =
    price === undefined
      ? []
      : [
          [31, price],
          [32, qty!],
        ];
  return encodeFix("FIX.4.4", "8", [
    [17, execId],
    [19, ref],
    ...values,
    [55, symbol],
    [60, fixTimestamp(atMs)],
    [150, kind],
  ]);
}

export function correctionsFeed(opts: {
  symbols: readonly string[];
  startMs: number;
  minutes: number;
  fillsPerMinute: number;
  seed: number;
  /** Makes ids unique per test. */
  prefix: string;
}): CorrectionsFeed {
  const random = rng(opts.seed);
  const fills: { id: string; symbol: string; atMs: number; price: string; qty: string }[] = [];
  const price = new Map(opts.symbols.map((s, i) => [s, 100 + 10 * i]));
  for (let m = 0; m < opts.minutes; m++) {
    for (let k = 0; k < opts.fillsPerMinute; k++) {
      const symbol = opts.symbols[Math.floor(random() * opts.symbols.length)]!;
      const p = Math.max(1, price.get(symbol)! * (1 + (random() - 0.5) * 0.01));
      price.set(symbol, p);
      fills.push({
        id: `${opts.prefix}-F${fills.length}`,
        symbol,
        atMs: opts.startMs + m * 60_000 + Math.floor(random() * 60_000),
        price: p.toFixed(3),
        qty: String(1 + Math.floor(random() * 500)),
      });
    }
  }
  fills.sort((a, b) => a.atMs - b.atMs);

  const corrections: { atMs: number; message: Buffer }[] = [];
  let n = 0;
  const add = (kind: "H" | "G", f: (typeof fills)[number], price?: string, qty?: string) => {
    const at = f.atMs + 180_000 + Math.floor(random() * 540_000);
    const message = report(kind, `${opts.prefix}-C${n++}`, f.id, f.symbol, at, price, qty);
    corrections.push({ atMs: at, message });
    return message;
  };
  for (const f of fills) {
    const r = random();
    if (r < 0.12) add("H", f);
    else if (r < 0.24) {
      add(
        "G",
        f,
        (Number(f.price) * (1 + (random() - 0.5) * 0.04)).toFixed(3),
        String(1 + Math.floor(random() * 300)),
      );
    } else if (r < 0.27) {
      // Corrected, then busted: the cancel applies to the corrected fill.
      add("G", f, (Number(f.price) * 1.01).toFixed(3), f.qty);
      add("H", f);
    } else if (r < 0.29) {
      // A correction to the values it already has, and a cancel delivered twice.
      add("G", f, f.price, f.qty);
      const bust = add("H", f);
      corrections.push({ atMs: Number.MAX_SAFE_INTEGER, message: bust });
    }
  }
  // Fills nobody saw.
  for (let k = 0; k < 5; k++) {
    const f = fills[Math.floor(random() * fills.length)]!;
    add("H", { ...f, id: `${opts.prefix}-unknown${k}` });
  }
  corrections.sort((a, b) => a.atMs - b.atMs);
  return {
    fills: fills.map((f) => fixFill(f.id, f.symbol, f.price, f.qty, f.atMs)),
    corrections: corrections.map((c) => c.message),
  };
}
