/**
 * Records waiting to leave for Kafka (bar versions, anomalies), per symbol, kept in the symbol's
 * durable state so that they move with it (checkpoints, handoffs, restores).
 *
 * Invariants:
 * - every entry carries the symbol's next sequence number and the custody epoch it was made under;
 *   the sequence travels with the state, so a new holder continues it;
 * - an entry is released to the publisher only after a write of the state that includes it
 *   succeeded under the holder's lease (`markDurable`): a superseded holder, whose writes are
 *   refused, never releases one;
 * - an entry leaves when the publisher acknowledged it (`acked`); the publisher drops any entry at
 *   or below the (epoch, sequence) it last published for the symbol, so a resend is harmless.
 */

export interface OutEntry {
  seq: number;
  epoch: number;
  topic: string;
  key: string;
  value: string;
  /** When it was made (wall clock, ms): the age of the oldest pending entry is reported. */
  atMs: number;
}

/** A record kept so that a later version of it can be made (an anomaly, until its trade's bust window passes). */
export interface Memo {
  key: string;
  /** Event time it is kept by (ms). */
  timeMs: number;
  value: string;
}

interface SymbolBox {
  next: number;
  entries: OutEntry[];
  /** Entries up to this sequence are in a durable write of the state. */
  durable: number;
  memos: Memo[];
}

/** A symbol's entries ready for the publisher, oldest first. */
export interface Release {
  symbol: string;
  entries: OutEntry[];
}

export class Outbox {
  private readonly boxes = new Map<string, SymbolBox>();
  /** Entries acknowledged by the publisher since this process started. */
  published = 0;

  add(
    symbol: string,
    epoch: number,
    topic: string,
    key: string,
    value: string,
    atMs: number,
  ): void {
    const box = this.box(symbol);
    box.entries.push({ seq: box.next, epoch, topic, key, value, atMs });
    box.next += 1;
  }

  /** Keeps `memo` with the symbol's state; memos older than `keepFromMs` (event time) are dropped. */
  remember(symbol: string, memo: Memo, keepFromMs: number): void {
    const box = this.box(symbol);
    box.memos = box.memos.filter((m) => m.timeMs >= keepFromMs && m.key !== memo.key);
    box.memos.push(memo);
  }

  memos(symbol: string): readonly Memo[] {
    return this.boxes.get(symbol)?.memos ?? [];
  }

  /** Symbols with entries not yet durable, and their latest sequence now. */
  undurable(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [symbol, box] of this.boxes)
      if (box.next - 1 > box.durable) out.set(symbol, box.next - 1);
    return out;
  }

  /** A write that began after `undurable()` returned `seqs` succeeded: those entries are durable. */
  markDurable(seqs: ReadonlyMap<string, number>): void {
    for (const [symbol, seq] of seqs) {
      const box = this.boxes.get(symbol);
      if (box) box.durable = Math.max(box.durable, Math.min(seq, box.next - 1));
    }
  }

  /** Durable entries, at most `limit` in all, whole symbols at a time. */
  releasable(limit = 10_000): Release[] {
    const out: Release[] = [];
    let n = 0;
    for (const [symbol, box] of this.boxes) {
      const entries = box.entries.filter((e) => e.seq <= box.durable);
      if (entries.length === 0) continue;
      out.push({ symbol, entries });
      n += entries.length;
      if (n >= limit) break;
    }
    return out;
  }

  /** The publisher has `symbol`'s entries up to `through`. */
  acked(symbol: string, through: number): void {
    const box = this.boxes.get(symbol);
    if (!box) return;
    const before = box.entries.length;
    box.entries = box.entries.filter((e) => e.seq > through);
    this.published += before - box.entries.length;
  }

  get pending(): number {
    let n = 0;
    for (const box of this.boxes.values()) n += box.entries.length;
    return n;
  }

  oldestAtMs(): number | null {
    let oldest: number | null = null;
    for (const box of this.boxes.values())
      for (const e of box.entries) if (oldest === null || e.atMs < oldest) oldest = e.atMs;
    return oldest;
  }

  /** The symbol's box as bytes for its state (null: nothing to keep yet). */
  exportSymbol(symbol: string): Buffer | null {
    const box = this.boxes.get(symbol);
    return box
      ? Buffer.from(JSON.stringify({ next: box.next, entries: box.entries, memos: box.memos }))
      : null;
  }

  /** Installs a box from a durable state: everything in it is durable already. */
  importSymbol(symbol: string, bytes: Buffer): void {
    const { next, entries, memos } = JSON.parse(bytes.toString("utf8")) as {
      next: number;
      entries: OutEntry[];
      memos: Memo[];
    };
    this.boxes.set(symbol, { next, entries, durable: next - 1, memos });
  }

  removeSymbol(symbol: string): void {
    this.boxes.delete(symbol);
  }

  private box(symbol: string): SymbolBox {
    let box = this.boxes.get(symbol);
    if (box === undefined)
      this.boxes.set(symbol, (box = { next: 1, entries: [], durable: 0, memos: [] }));
    return box;
  }
}

const MAGIC = Buffer.from("OBX1");

/** A symbol's state with its outbox: `OBX1`, engine state length (u32 BE), engine state, outbox. */
export function withOutbox(engineState: Buffer, outbox: Buffer | null): Buffer {
  if (outbox === null) return engineState;
  const head = Buffer.allocUnsafe(8);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(engineState.length, 4);
  return Buffer.concat([head, engineState, outbox]);
}

/** The parts of a state written by `withOutbox` (a state without an outbox is all engine). */
export function splitOutbox(state: Buffer): { engine: Buffer; outbox: Buffer | null } {
  if (state.length < 8 || !state.subarray(0, 4).equals(MAGIC))
    return { engine: state, outbox: null };
  const len = state.readUInt32BE(4);
  return { engine: state.subarray(8, 8 + len), outbox: state.subarray(8 + len) };
}
