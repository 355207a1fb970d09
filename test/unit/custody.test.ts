/**
 * Custody without a broker: processes sharing one compare-and-set store, each with an engine that
 * is a map of symbol → state bytes. What a superseded holder may still do (nothing that reaches
 * the store or a reader), and what two processes racing for one symbol end with (one holder).
 */
import { Custody, CustodyBusy, type Peers, type StateEngine } from "../../src/custody/custody";
import { StallWatch } from "../../src/custody/stall-watch";
import { custodyKey, MemoryCustodyStore, type Holder } from "../../src/custody/store";

/** An engine whose state of a symbol is the list of trade ids applied to it, as bytes. */
class Engine implements StateEngine {
  readonly states = new Map<string, string[]>();
  apply(symbol: string, id: string): void {
    const ids = this.states.get(symbol);
    if (ids) ids.push(id);
    else this.states.set(symbol, [id]);
  }
  exportSymbol(symbol: string): Buffer | null {
    const s = this.states.get(symbol);
    return s ? Buffer.from(JSON.stringify({ symbol, ids: s })) : null;
  }
  importSymbol(state: Buffer): void {
    const { symbol, ids } = JSON.parse(state.toString()) as { symbol: string; ids: string[] };
    if (this.states.has(symbol)) throw new Error(`${symbol} installed twice`);
    this.states.set(symbol, ids);
  }
  removeSymbol(symbol: string): void {
    this.states.delete(symbol);
  }
}

interface Proc {
  holder: Holder;
  custody: Custody;
  engine: Engine;
  live: boolean;
  dropped: string[];
}

/** A memory store whose writes wait for `open()` while `hold()` is on. */
class GatedStore extends MemoryCustodyStore {
  private gate: Promise<void> | null = null;
  private release: () => void = () => undefined;
  hold(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }
  open(): void {
    this.gate = null;
    this.release();
  }
  override async write(...args: Parameters<MemoryCustodyStore["write"]>): Promise<number> {
    await this.gate;
    return super.write(...args);
  }
  /** Another process's write, which does not wait at the gate. */
  writeNow(...args: Parameters<MemoryCustodyStore["write"]>): Promise<number> {
    return super.write(...args);
  }
}

function cluster(restoreOnSteal = true) {
  const store = new GatedStore();
  const procs: Proc[] = [];
  const peers: Peers = {
    isLive: (h) => procs.some((p) => p.live && p.holder.instanceID === h.instanceID),
    release: async (h, symbols) => {
      const p = procs.find((x) => x.holder.instanceID === h.instanceID);
      if (!p?.live) throw new Error(`${h.nodeID} does not answer`);
      await p.custody.release(symbols);
    },
  };
  const start = (nodeID: string): Proc => {
    const holder = { nodeID, instanceID: `${nodeID}-${procs.length}` };
    const engine = new Engine();
    const dropped: string[] = [];
    const custody = new Custody("aggregator", holder, store, engine, peers, restoreOnSteal, {
      dropped: (s) => dropped.push(s),
    });
    const p = { holder, custody, engine, live: true, dropped };
    procs.push(p);
    return p;
  };
  /** What a holder does for one trade: acquire, check in the same tick, apply, mark. */
  const apply = async (p: Proc, symbol: string, id: string) => {
    await p.custody.acquire([symbol]);
    p.custody.assertHeld([symbol]);
    p.engine.apply(symbol, id);
    p.custody.touched([symbol]);
  };
  return { store, start, apply };
}

describe("custody", () => {
  it("moves a state by release and claim: the new holder continues it, epoch grows", async () => {
    const c = cluster();
    const a = c.start("a");
    const b = c.start("b");
    await c.apply(a, "X", "t1");
    expect(a.custody.held().get("X")).toBe(1);
    await c.apply(b, "X", "t2"); // b asks the live holder a to release
    expect(a.custody.isHeld("X")).toBe(false);
    expect(a.engine.states.has("X")).toBe(false);
    expect(b.engine.states.get("X")).toEqual(["t1", "t2"]);
    expect(b.custody.held().get("X")).toBe(2);
    expect(b.custody.generation).toBe(0);
    expect(a.custody.generation).toBe(0);
  });

  it("a paused holder's checkpoint write after a takeover is refused; it drops the state", async () => {
    const c = cluster();
    const a = c.start("a");
    await c.apply(a, "X", "t1");
    await a.custody.checkpoint();
    a.live = false; // paused past the timeouts: the others count it lost
    await c.apply(a, "X", "t2"); // still applying to its state, not yet knowing
    const b = c.start("b");
    await c.apply(b, "X", "t3"); // supersedes a: restores what a wrote (t1)
    expect(b.engine.states.get("X")).toEqual(["t1", "t3"]);
    a.live = true; // resumes
    const written = await a.custody.checkpoint();
    expect(written.states).toBe(0);
    expect(a.custody.generation).toBe(1); // the ingest nodes see it and replay t2
    expect(a.dropped).toEqual(["X"]);
    expect(a.engine.states.has("X")).toBe(false);
    const entry = await c.store.read(custodyKey("aggregator", "X"));
    expect(entry?.holder).toEqual(b.holder);
    expect(entry?.epoch).toBe(2);
  });

  it("a resumed holder refuses to serve and to hand over a superseded state", async () => {
    const c = cluster();
    const a = c.start("a");
    await c.apply(a, "X", "t1");
    await c.apply(a, "Y", "u1");
    a.live = false;
    const b = c.start("b");
    await c.apply(b, "X", "t2");
    a.live = true;
    // A query on a for X: the store shows b's epoch, so a drops X instead of answering.
    expect(await a.custody.verify("X")).toBe(false);
    expect(a.engine.states.has("X")).toBe(false);
    // Y was never taken over: a still serves it.
    expect(await a.custody.verify("Y")).toBe(true);
    // A stale apply would now have to acquire X again, from its live holder b.
    await c.apply(a, "X", "t3");
    expect(a.engine.states.get("X")).toEqual(["t2", "t3"]);
    expect(b.custody.isHeld("X")).toBe(false);
  });

  it("resume after a pause: re-reading the leases drops every superseded state before anything runs", async () => {
    const c = cluster();
    const a = c.start("a");
    for (const s of ["X", "Y", "Z"]) await c.apply(a, s, `${s}1`);
    a.live = false;
    const b = c.start("b");
    await c.apply(b, "X", "X2");
    await c.apply(b, "Z", "Z2");
    a.live = true;
    expect(await a.custody.revalidate()).toBe(2);
    expect([...a.custody.held().keys()]).toEqual(["Y"]);
    expect([...a.engine.states.keys()]).toEqual(["Y"]);
    expect(a.custody.generation).toBe(2);
  });

  it("a stall of the event loop is reported once, as the time the loop did not run", async () => {
    const watch = new StallWatch(10);
    try {
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(watch.takeGapMs()).toBeLessThan(200);
      const until = Date.now() + 300;
      while (Date.now() < until); // the loop is blocked: no tick runs
      expect(watch.takeGapMs()).toBeGreaterThanOrEqual(290);
      expect(watch.takeGapMs()).toBeLessThan(50);
    } finally {
      watch.stop();
    }
  });

  it("a handoff of a superseded state writes nothing and releases nothing", async () => {
    const c = cluster();
    const a = c.start("a");
    await c.apply(a, "X", "t1");
    a.live = false;
    const b = c.start("b");
    await c.apply(b, "X", "t2");
    a.live = true;
    const released = await a.custody.release(["X"]);
    expect(released.symbols).toEqual([]);
    expect(a.custody.generation).toBe(1);
    const entry = await c.store.read(custodyKey("aggregator", "X"));
    expect(entry?.holder).toEqual(b.holder);
  });

  it("two concurrent claims of one symbol: exactly one process holds it, the other retries", async () => {
    const c = cluster();
    const a = c.start("a");
    const b = c.start("b");
    const results = await Promise.allSettled([a.custody.acquire(["X"]), b.custody.acquire(["X"])]);
    const won = results.filter((r) => r.status === "fulfilled").length;
    expect(won).toBe(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(CustodyBusy);
    expect([a, b].filter((p) => p.custody.isHeld("X"))).toHaveLength(1);
  });

  it("a release racing a checkpoint of the same symbol: both land, in order, and the state moves whole", async () => {
    const c = cluster();
    const a = c.start("a");
    const b = c.start("b");
    await c.apply(a, "X", "t1");
    await c.apply(a, "X", "t2");
    const [written] = await Promise.all([a.custody.checkpoint(), c.apply(b, "X", "t3")]);
    expect(a.custody.generation).toBe(0); // neither write was refused
    expect(written.generation).toBe(0);
    expect(b.engine.states.get("X")).toEqual(["t1", "t2", "t3"]);
  });

  it("a checkpoint waits for another caller's write of the same state, and reports its refusal", async () => {
    const c = cluster();
    const a = c.start("a");
    await c.apply(a, "X", "t1");
    c.store.hold();
    const first = a.custody.checkpoint(); // writing X, not landed yet
    let secondDone = false;
    const second = a.custody.checkpoint().then((r) => ((secondDone = true), r));
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondDone).toBe(false); // the apply is not durable yet: no caller may commit past it
    // Meanwhile another process supersedes a (a is paused): the pending write will be refused.
    a.live = false;
    const b = c.start("b");
    const entry = await c.store.read(custodyKey("aggregator", "X"));
    await c.store.writeNow(
      custodyKey("aggregator", "X"),
      { epoch: entry!.epoch + 1, holder: b.holder, state: entry!.state },
      entry!.revision,
    );
    c.store.open();
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1.generation).toBe(1);
    expect(r2.generation).toBe(1); // the second caller learns that t1 may be gone
    expect(a.custody.isHeld("X")).toBe(false);
  });

  it("applies are refused while a state is being handed over", async () => {
    const c = cluster();
    const a = c.start("a");
    await c.apply(a, "X", "t1");
    const releasing = a.custody.release(["X"]);
    await expect(a.custody.acquire(["X"])).rejects.toBeInstanceOf(CustodyBusy);
    expect(() => a.custody.assertHeld(["X"])).toThrow(CustodyBusy);
    await releasing;
  });

  it("a claim racing a handoff to a third process: one holder, the state never in two places", async () => {
    const c = cluster();
    const a = c.start("a");
    const b = c.start("b");
    const d = c.start("d");
    await c.apply(a, "X", "t1");
    const results = await Promise.allSettled([c.apply(b, "X", "t2"), c.apply(d, "X", "t3")]);
    const holders = [a, b, d].filter((p) => p.custody.isHeld("X"));
    expect(holders).toHaveLength(1);
    const states = [a, b, d].filter((p) => p.engine.states.has("X"));
    expect(states).toEqual(holders);
    const ids = holders[0]!.engine.states.get("X")!;
    // t1 is there once; each trade whose apply succeeded is there once.
    expect(ids.filter((i) => i === "t1")).toHaveLength(1);
    results.forEach((r, i) => {
      if (r.status === "fulfilled") expect(ids).toContain(["t2", "t3"][i]);
    });
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("without checkpoints a state taken from a lost holder starts empty (the log is replayed)", async () => {
    const c = cluster(false);
    const a = c.start("a");
    await c.apply(a, "X", "t1");
    await a.custody.checkpoint();
    a.live = false;
    const b = c.start("b");
    await c.apply(b, "X", "t2");
    expect(b.engine.states.get("X")).toEqual(["t2"]);
  });
});
