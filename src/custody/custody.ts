/**
 * Custody of per-symbol states: which process may apply to, write, hand over or serve a symbol.
 *
 * A symbol's entry in the custody store (store.ts) holds its epoch, its holder and its latest
 * durable state, and every write to it is a compare-and-set on the entry's revision.
 *
 * The ingest side of the protocol, which processes must answer a round and when to replay, is
 * appliers.ts beside this file.
 *
 * Lease phases here (MOVES lists every legal move; `move` is the one place a phase changes):
 *   (absent) → acquiring → held → releasing → (absent)
 *              acquiring → (absent) (claim refused);  releasing → held (write failed);
 *              held | releasing → (absent) (dropped: superseded)
 * - acquire: read the entry; if a live process holds it, ask it to release (it writes its state
 *   with holder = none and forgets it); then claim: write epoch + 1 with this process as holder,
 *   conditional on the revision read. The state comes from the entry when it was released (or
 *   written by this process), or on a steal from a lost holder when checkpoints make it exact.
 * - write (checkpoint) and release: conditional on the revision of this process's last write.
 * - a conflicting write or a read showing another epoch or holder: the state is dropped, never
 *   merged, and `generation` grows, which tells the ingest nodes that records this process
 *   acknowledged may be gone (they replay from their last commit).
 *
 * Invariants: only the holder of a symbol's current epoch applies to it (the caller checks
 * `isHeld` in the same tick as the apply), writes it, hands it over or serves it (`verify`);
 * a state is installed only into a process that does not hold the symbol; store operations on one
 * symbol run one at a time. A paused process learns that it was superseded at its next write or
 * verification and drops the state before it is written, served or handed over.
 */
import { CasConflict, custodyKey, type CustodyStore, type Entry, type Holder } from "./store";

/** The process cannot act on the symbol now (being moved, or held elsewhere); retry later. */
export class CustodyBusy extends Error {
  constructor(
    readonly symbol: string,
    readonly reason: string,
  ) {
    super(`${symbol}: ${reason}`);
    this.name = "CustodyBusy";
  }
}

/** What custody needs of the engine that holds the states. */
export interface StateEngine {
  exportSymbol(symbol: string): Buffer | null;
  /** Installs an exported state; the engine does not hold the symbol. */
  importSymbol(state: Buffer): void;
  removeSymbol(symbol: string): void;
}

/** What custody needs of the other processes. */
export interface Peers {
  /** True while `holder` runs: its node is connected and is still that instance. */
  isLive(holder: Holder): boolean;
  /** Asks a live holder to release `symbols` to the store; rejects when it did not answer. */
  release(holder: Holder, symbols: string[]): Promise<void>;
}

export interface CustodyEvents {
  /** States came in: released by `from`, stolen from a lost `from`, or new (`from` null). */
  acquired?(symbols: string[], from: Holder | null, how: Acquired["how"], bytes: number): void;
  /** A state this process held was superseded and dropped. */
  dropped?(symbol: string, why: string): void;
  /** A lease was asked to make a move MOVES does not allow (a bug in this module). */
  illegalMove?(symbol: string, from: string, to: string): void;
}

interface Acquired {
  symbol: string;
  from: Holder | null;
  /** `pulled`: its live holder released it on request; `released`: it was free already. */
  how: "pulled" | "released" | "stolen" | "new";
  bytes: number;
}

type Phase = "acquiring" | "held" | "releasing";

/** Every legal move of a lease ("absent": no lease); any other is a bug, thrown and reported. */
const MOVES: Record<Phase | "absent", readonly (Phase | "absent")[]> = {
  absent: ["acquiring"],
  acquiring: ["held", "absent"],
  held: ["releasing", "absent"],
  releasing: ["held", "absent"],
};

interface Lease {
  phase: Phase;
  epoch: number;
  /** Store revision of this process's last write of the entry. */
  revision: number;
  /** Counts applies; `written` is the count the last successful write of the state included. */
  applied: number;
  written: number;
  /** The running store operation on this symbol (they run one at a time). */
  pending: Promise<unknown>;
}

export interface CheckpointResult {
  states: number;
  bytes: number;
  /** `generation` after the writes: unchanged means nothing this process applied was dropped. */
  generation: number;
}

const EMPTY = Buffer.alloc(0);
/** Store operations in flight per call: enough to hide the round trip, few enough not to flood. */
const CONCURRENCY = 32;

export class Custody {
  private readonly leases = new Map<string, Lease>();
  /** Grows with every state dropped because another process took it over. */
  generation = 0;

  /**
   * `restoreOnSteal`: a state taken from a lost holder starts from the store's copy (true when
   * checkpoint rounds guarantee the log is replayed after it) or empty (the log is the state).
   */
  constructor(
    private readonly service: string,
    private readonly me: Holder,
    private readonly store: CustodyStore,
    private readonly engine: StateEngine,
    private readonly peers: Peers,
    private readonly restoreOnSteal: boolean,
    private readonly events: CustodyEvents = {},
  ) {}

  isHeld(symbol: string): boolean {
    return this.leases.get(symbol)?.phase === "held";
  }

  /** The epoch this process holds `symbol` under, if it holds it. */
  epochOf(symbol: string): number | undefined {
    const l = this.leases.get(symbol);
    return l?.phase === "held" ? l.epoch : undefined;
  }

  /** Held symbols with their epochs. */
  held(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [s, l] of this.leases) if (l.phase === "held") out.set(s, l.epoch);
    return out;
  }

  /** Symbols held, being acquired or being released. */
  get size(): number {
    return this.leases.size;
  }

  /** Throws `CustodyBusy` unless every symbol is held: call in the same tick as the apply. */
  assertHeld(symbols: readonly string[]): void {
    for (const s of symbols) if (!this.isHeld(s)) throw new CustodyBusy(s, "not held");
  }

  /** The symbols were applied to: their next checkpoint writes them. */
  touched(symbols: readonly string[]): void {
    for (const s of symbols) {
      const l = this.leases.get(s);
      if (l) l.applied += 1;
    }
  }

  /** Makes every symbol held here (claims what is not); concurrent calls share one claim. */
  async acquire(symbols: readonly string[]): Promise<void> {
    const waits: Promise<unknown>[] = [];
    const missing: string[] = [];
    for (const s of symbols) {
      const l = this.leases.get(s);
      if (l === undefined) missing.push(s);
      else if (l.phase === "acquiring") waits.push(l.pending);
      else if (l.phase === "releasing") throw new CustodyBusy(s, "being handed over");
    }
    if (missing.length > 0) {
      const leases = missing.map((s) => {
        const l: Lease = {
          phase: "acquiring",
          epoch: 0,
          revision: 0,
          applied: 0,
          written: 0,
          pending: Promise.resolve(),
        };
        this.assertMove(s, "absent", "acquiring");
        this.leases.set(s, l);
        return l;
      });
      const claim = this.claim(missing);
      for (const l of leases) l.pending = claim.catch(() => undefined);
      waits.push(claim);
    }
    await Promise.all(waits);
    this.assertHeld(symbols);
  }

  private async claim(symbols: string[]): Promise<void> {
    const acquired: Acquired[] = [];
    try {
      let entries = await mapLimit(symbols, (s) => this.store.read(this.key(s)));
      const holders = entries.map((e) => e?.holder ?? null);
      const asked = new Map<string, { holder: Holder; at: number[] }>();
      entries.forEach((e, i) => {
        const h = e?.holder;
        if (!h || this.isMe(h) || !this.peers.isLive(h)) return;
        const k = `${h.nodeID}/${h.instanceID}`;
        const group = asked.get(k) ?? { holder: h, at: [] };
        group.at.push(i);
        asked.set(k, group);
      });
      if (asked.size > 0) {
        await Promise.all(
          [...asked.values()].map(async ({ holder, at }) => {
            const names = at.map((i) => symbols[i]!);
            try {
              await this.peers.release(holder, names);
            } catch (err: unknown) {
              throw new CustodyBusy(
                names[0]!,
                `holder ${holder.nodeID} did not release it: ${(err as Error).message}`,
              );
            }
          }),
        );
        entries = await mapLimit(symbols, (s) => this.store.read(this.key(s)));
      }
      await mapLimit(symbols, async (s, i) => {
        const a = await this.claimOne(s, entries[i] ?? null);
        const asked = holders[i];
        acquired.push(
          a.how === "released" && asked && !this.isMe(asked)
            ? { ...a, how: "pulled", from: asked }
            : a,
        );
      });
    } finally {
      for (const s of symbols) {
        const l = this.leases.get(s);
        if (l?.phase === "acquiring") this.move(s, l, "absent");
      }
      this.report(acquired);
    }
  }

  /** One `acquired` event per previous holder and way. */
  private report(acquired: Acquired[]): void {
    const groups = new Map<string, Acquired[]>();
    for (const a of acquired) {
      const k = `${a.how}/${a.from?.nodeID ?? ""}/${a.from?.instanceID ?? ""}`;
      groups.set(k, [...(groups.get(k) ?? []), a]);
    }
    for (const g of groups.values())
      this.events.acquired?.(
        g.map((a) => a.symbol),
        g[0]!.from,
        g[0]!.how,
        g.reduce((n, a) => n + a.bytes, 0),
      );
  }

  private async claimOne(symbol: string, e: Entry | null): Promise<Acquired> {
    const h = e?.holder ?? null;
    if (h && !this.isMe(h) && this.peers.isLive(h))
      throw new CustodyBusy(symbol, `still held by ${h.nodeID}`);
    const how = e === null ? "new" : h === null || this.isMe(h) ? "released" : "stolen";
    const state = e !== null && (how === "released" || this.restoreOnSteal) ? e.state : EMPTY;
    const epoch = (e?.epoch ?? 0) + 1;
    let revision: number;
    try {
      revision = await this.store.write(
        this.key(symbol),
        { epoch, holder: this.me, state },
        e?.revision ?? null,
      );
    } catch (err: unknown) {
      if (err instanceof CasConflict) throw new CustodyBusy(symbol, "claimed concurrently");
      throw err;
    }
    const l = this.leases.get(symbol);
    if (l === undefined) throw new Error(`custody: ${symbol} claimed without a lease`);
    if (state.length > 0) this.engine.importSymbol(state);
    l.epoch = epoch;
    l.revision = revision;
    this.move(symbol, l, "held");
    return { symbol, from: h, how, bytes: state.length };
  }

  /**
   * Makes every apply made before the call durable: writes each held state applied to since its
   * last write, and waits for writes already under way (another caller's, a release). Resolves
   * once all of them landed or were refused (a refused one is dropped: `generation` grows);
   * rejects when a write failed otherwise (the store is unreachable), so no caller commits past it.
   */
  async checkpoint(): Promise<CheckpointResult> {
    const due = [...this.leases]
      .filter(([, l]) => l.phase !== "acquiring" && l.applied > l.written)
      .map(([symbol, l]) => ({ symbol, l, target: l.applied }));
    const sizes = await mapLimit(due, ({ symbol, l, target }) =>
      l.phase === "held" ? this.write(symbol, l, this.me, target) : l.pending.then(() => 0),
    );
    for (const { symbol, l, target } of due)
      if (this.leases.get(symbol) === l && l.written < target)
        throw new Error(`${this.service} ${symbol}: state not written (store unavailable)`);
    return {
      states: sizes.filter((n) => n > 0).length,
      bytes: sizes.reduce((a, b) => a + b, 0),
      generation: this.generation,
    };
  }

  /**
   * Writes the listed held states now, whether or not they were applied to since their last
   * write (something kept with the state changed, e.g. its outbox). Resolves with the symbols
   * whose write landed under this process's lease; a superseded one is dropped and left out;
   * rejects when the store is unreachable.
   */
  async persist(symbols: readonly string[]): Promise<string[]> {
    const done: string[] = [];
    await mapLimit([...symbols], async (s) => {
      const l = this.leases.get(s);
      if (l?.phase !== "held") return;
      await this.write(s, l, this.me);
      if (this.leases.get(s) === l) done.push(s);
    });
    return done;
  }

  /**
   * Hands symbols over: writes each held one with no holder and forgets it. Returns the symbols
   * released (a symbol not held here, or dropped on the way, is not among them).
   */
  async release(symbols: readonly string[]): Promise<{ symbols: string[]; bytes: number }> {
    const out: string[] = [];
    let bytes = 0;
    await mapLimit([...symbols], async (s) => {
      const l = this.leases.get(s);
      if (l?.phase !== "held") return;
      this.move(s, l, "releasing");
      try {
        bytes += await this.write(s, l, null);
      } catch (err: unknown) {
        if (this.leases.get(s) === l) this.move(s, l, "held");
        throw err;
      }
      if (this.leases.get(s) !== l) return; // dropped: another process had taken it over
      this.move(s, l, "absent");
      this.engine.removeSymbol(s);
      out.push(s);
    });
    return { symbols: out, bytes };
  }

  /**
   * True when the store still names this process as the holder of the symbol's epoch; a state
   * superseded meanwhile is dropped. Queries call it before they answer from the state.
   */
  async verify(symbol: string): Promise<boolean> {
    const l = this.leases.get(symbol);
    if (l?.phase !== "held") return false;
    const e = await this.store.read(this.key(symbol));
    if (e !== null && e.epoch === l.epoch && e.holder !== null && this.isMe(e.holder)) return true;
    if (this.leases.get(symbol) === l) this.drop(symbol, l, "superseded (seen on read)");
    return false;
  }

  /**
   * Re-reads every held lease and drops the superseded ones: after this process stalled, before
   * it applies or answers anything. Returns how many were dropped.
   */
  async revalidate(): Promise<number> {
    const held = [...this.leases].filter(([, l]) => l.phase === "held").map(([s]) => s);
    const current = await mapLimit(held, (s) => this.verify(s));
    return current.filter((ok) => !ok).length;
  }

  /**
   * Writes one symbol's state under its lease, after the store operations before it on the
   * symbol; skipped when a write since included `target` applies. Returns the bytes written.
   */
  private write(
    symbol: string,
    l: Lease,
    holder: Holder | null,
    target = Infinity,
  ): Promise<number> {
    const op = l.pending.then(async () => {
      if (this.leases.get(symbol) !== l || l.written >= target) return 0;
      const applied = l.applied;
      const state = this.engine.exportSymbol(symbol) ?? EMPTY;
      try {
        l.revision = await this.store.write(
          this.key(symbol),
          { epoch: l.epoch, holder, state },
          l.revision,
        );
      } catch (err: unknown) {
        if (!(err instanceof CasConflict)) throw err;
        this.drop(symbol, l, "superseded (write refused)");
        return 0;
      }
      l.written = Math.max(l.written, applied);
      return state.length;
    });
    l.pending = op.catch(() => undefined);
    return op;
  }

  private drop(symbol: string, l: Lease, why: string): void {
    if (this.leases.get(symbol) !== l) return;
    this.move(symbol, l, "absent");
    this.engine.removeSymbol(symbol);
    this.generation += 1;
    this.events.dropped?.(symbol, why);
  }

  /** The one place a lease changes phase. */
  private move(symbol: string, l: Lease, to: Phase | "absent"): void {
    this.assertMove(symbol, l.phase, to);
    if (to === "absent") this.leases.delete(symbol);
    else l.phase = to;
  }

  private assertMove(symbol: string, from: Phase | "absent", to: Phase | "absent"): void {
    if (MOVES[from].includes(to)) return;
    this.events.illegalMove?.(symbol, from, to);
    throw new Error(`custody: ${symbol} cannot move from ${from} to ${to}`);
  }

  private isMe(h: Holder): boolean {
    return h.nodeID === this.me.nodeID && h.instanceID === this.me.instanceID;
  }

  private key(symbol: string): string {
    return custodyKey(this.service, symbol);
  }
}

/** Runs `fn` over `items` with at most CONCURRENCY in flight; results in order, first error thrown. */
async function mapLimit<T, R>(
  items: readonly T[],
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const failures: Error[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err: unknown) {
        failures.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  if (failures[0]) throw failures[0];
  return out;
}
