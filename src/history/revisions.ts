/**
 * Closed bars changed after they closed (a late trade or order, a cancel, a correction) must reach
 * history again, but the engine only counts revisions (`ApplyResult.revised`); its closed-bar queue
 * carries each bar once, when it closes. So the symbols of a batch that revised bars are marked, and
 * on the next ticks their revised closed bars are read from the engine and those whose version
 * changed since they were last handed on are handed on again.
 *
 * Every change to a bar raises its revision (and a move to another node its generation), so the
 * version tells whether it changed. The scan is bounded per tick (in symbols), so a burst of
 * late trades over many symbols spreads over several ticks instead of stalling the event loop;
 * the engine picks a symbol's revised closed bars itself (`Engine.revisedBars`).
 */
import type { LiveInterval } from "../contracts/bars";
import type { Binding } from "../native";
import { storedBar, type StoredBar } from "./store";

export class RevisionScanner {
  /** Symbols to scan, in the order they were marked. */
  private readonly due = new Set<string>();
  /** Per symbol: `interval/startMs` → `generation/revision` of each revised bar last handed on. */
  private readonly seen = new Map<string, Map<string, string>>();

  mark(symbols: Iterable<string>): void {
    for (const s of symbols) this.due.add(s);
  }

  get pending(): number {
    return this.due.size;
  }

  /** Forgets a symbol handed to another node. */
  forget(symbol: string): void {
    this.due.delete(symbol);
    this.seen.delete(symbol);
  }

  /**
   * Scans up to `budgetSymbols` due symbols; returns the revised closed bars that changed since
   * the last scan.
   */
  scan(engine: Pick<Binding.Engine, "revisedBars">, budgetSymbols: number): StoredBar[] {
    const out: StoredBar[] = [];
    let scanned = 0;
    for (const symbol of this.due) {
      if (scanned >= budgetSymbols) break;
      scanned += 1;
      this.due.delete(symbol);
      const before = this.seen.get(symbol);
      const now = new Map<string, string>();
      for (const { interval, bar: b } of engine.revisedBars(symbol)) {
        const key = `${interval}/${b.startMs}`;
        const version = `${b.generation}/${b.revision}`;
        now.set(key, version);
        if (before?.get(key) !== version) out.push(storedBar(symbol, interval as LiveInterval, b));
      }
      if (now.size > 0) this.seen.set(symbol, now);
      else this.seen.delete(symbol);
    }
    return out;
  }
}
