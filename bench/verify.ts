/**
 * What a measured Tickstream run must show before its figures count: every record applied once
 * (cluster-wide `/api/stats`), and the bars of a few symbols equal to the independent BigInt
 * reference (`test/support/reference.ts`) built from the trades as they were produced.
 */
import type { BarJson } from "../src/contracts/bars";
import type { NodeStats } from "../src/contracts/stats";
import type { RefTrade } from "../test/support/reference";
import { asNumber, refBars } from "../test/support/reference";

export interface StatsTotals {
  nodes: number;
  received: number;
  rejected: number;
  applied: number;
  duplicates: number;
  tooLate: number;
}

/** `/api/stats` summed over the cluster's nodes. */
export async function statsTotals(url: string): Promise<StatsTotals> {
  const res = await fetch(`${url}/api/stats`);
  if (res.status !== 200) throw new Error(`/api/stats answered ${res.status}`);
  const body = (await res.json()) as { nodes: NodeStats[] };
  const t: StatsTotals = {
    nodes: body.nodes.length,
    received: 0,
    rejected: 0,
    applied: 0,
    duplicates: 0,
    tooLate: 0,
  };
  for (const n of body.nodes) {
    t.received += n.messages.received;
    for (const c of Object.values(n.messages.rejected)) t.rejected += c;
    t.applied += n.trades.applied;
    t.duplicates += n.trades.duplicates;
    t.tooLate += n.trades.tooLate;
  }
  return t;
}

export interface BarCheck {
  symbols: number;
  bars: number;
  /** First differences found ("SYM 1m @start: field got X want Y"), empty when all agree. */
  mismatches: string[];
}

type RestBar = Pick<BarJson, "startMs" | "open" | "high" | "low" | "close" | "volume" | "trades">;

/** Compares every 1m bar of each checked symbol, served over REST, with the reference bars. */
export async function checkBars(url: string, checked: Map<string, RefTrade[]>): Promise<BarCheck> {
  const out: BarCheck = { symbols: 0, bars: 0, mismatches: [] };
  for (const [symbol, trades] of checked) {
    if (trades.length === 0) continue;
    const res = await fetch(`${url}/api/bars/${symbol}?interval=1m&limit=10000`);
    if (res.status !== 200) {
      out.mismatches.push(`${symbol}: /api/bars answered ${res.status}`);
      continue;
    }
    const got = ((await res.json()) as { bars: RestBar[] }).bars;
    const want = refBars(trades, symbol, 60_000);
    out.symbols += 1;
    out.bars += want.length;
    if (got.length !== want.length)
      out.mismatches.push(`${symbol}: ${got.length} bars, reference ${want.length}`);
    for (let i = 0; i < Math.min(got.length, want.length); i++) {
      const g = got[i]!;
      const w = want[i]!;
      const fields: [string, unknown, unknown][] = [
        ["startMs", g.startMs, w.startMs],
        ["open", g.open, asNumber(w.open)],
        ["high", g.high, asNumber(w.high)],
        ["low", g.low, asNumber(w.low)],
        ["close", g.close, asNumber(w.close)],
        ["volume", g.volume, asNumber(w.volume)],
        ["trades", g.trades, w.trades],
      ];
      for (const [field, a, b] of fields)
        if (a !== b)
          out.mismatches.push(`${symbol} @${w.startMs}: ${field} ${String(a)} ≠ ${String(b)}`);
    }
  }
  out.mismatches = out.mismatches.slice(0, 10);
  return out;
}
