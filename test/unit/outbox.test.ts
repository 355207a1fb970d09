import { Outbox, splitOutbox, withOutbox } from "../../src/publish/outbox";

const add = (o: Outbox, symbol: string, value: string, epoch = 1) =>
  o.add(symbol, epoch, "bars", `${symbol}/1m/0`, value, 1000);

describe("outbox", () => {
  it("releases nothing before a durable write, then what the write included, in order", () => {
    const o = new Outbox();
    add(o, "A", "a1");
    add(o, "A", "a2");
    expect(o.releasable()).toEqual([]);
    const due = o.undurable();
    expect(due).toEqual(new Map([["A", 2]]));
    add(o, "A", "a3"); // made after the write began: not in it
    o.markDurable(due);
    expect(o.releasable()[0]!.entries.map((e) => [e.seq, e.value])).toEqual([
      [1, "a1"],
      [2, "a2"],
    ]);
    o.acked("A", 2);
    expect(o.pending).toBe(1);
    expect(o.published).toBe(2);
    expect(o.releasable()).toEqual([]);
  });

  it("moves with the state: a new holder continues the sequence, and what it imported is durable", () => {
    const from = new Outbox();
    add(from, "A", "a1");
    add(from, "A", "a2");
    from.remember("A", { key: "k", timeMs: 5, value: "anomaly" }, 0);
    const state = withOutbox(Buffer.from("TSS1engine"), from.exportSymbol("A"));
    const parts = splitOutbox(state);
    expect(parts.engine.toString()).toBe("TSS1engine");

    const to = new Outbox();
    to.importSymbol("A", parts.outbox!);
    expect(to.releasable()[0]!.entries.map((e) => e.seq)).toEqual([1, 2]);
    expect(to.memos("A")).toEqual([{ key: "k", timeMs: 5, value: "anomaly" }]);
    add(to, "A", "a3", 2);
    expect(to.undurable()).toEqual(new Map([["A", 3]]));
  });

  it("leaves a state without an outbox as it is, and forgets memos past their window", () => {
    const engine = Buffer.from("TSS1engine");
    expect(withOutbox(engine, null)).toBe(engine);
    expect(splitOutbox(engine)).toEqual({ engine, outbox: null });
    const o = new Outbox();
    o.remember("A", { key: "old", timeMs: 1, value: "x" }, 0);
    o.remember("A", { key: "new", timeMs: 10, value: "y" }, 5);
    expect(o.memos("A").map((m) => m.key)).toEqual(["new"]);
  });
});
