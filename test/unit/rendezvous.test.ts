/**
 * Ownership moves: rendezvous hashing moves only what it must when a node joins or leaves; the
 * built-in Shard strategy, measured on the same keys, moves far more (the reason we replaced it).
 */
import { Strategies, type Context, type Endpoint } from "moleculer";
import { Ownership } from "../../src/cluster/membership";
import { ownerOf, RendezvousStrategy } from "../../src/cluster/rendezvous";

const SYMBOLS = Array.from({ length: 10_000 }, (_, i) => `SYM${i}`);
const NODES = ["node-a", "node-b", "node-c"];

type Strategy = { select(list: Endpoint[], ctx?: Context): Endpoint };

function owners(strategy: Strategy, nodeIDs: string[]): Map<string, string> {
  const list = nodeIDs.map((id) => ({ id }) as Endpoint);
  return new Map(
    SYMBOLS.map((symbol) => [
      symbol,
      strategy.select(list, { params: { symbol }, meta: {} } as unknown as Context).id,
    ]),
  );
}

function moved(before: Map<string, string>, after: Map<string, string>): string[] {
  return SYMBOLS.filter((s) => before.get(s) !== after.get(s));
}

const stub = { localBus: { on: () => undefined } };

describe("symbol ownership", () => {
  it("moves only the symbols the new node now owns when a node joins (≈ 1/N)", () => {
    const rendezvous = new RendezvousStrategy(null as never, stub as never, {});
    const before = owners(rendezvous, NODES);
    const after = owners(rendezvous, [...NODES, "node-d"]);
    const changed = moved(before, after);
    for (const s of changed) expect(after.get(s)).toBe("node-d");
    const fraction = changed.length / SYMBOLS.length;
    expect(fraction).toBeGreaterThan(0.22);
    expect(fraction).toBeLessThan(0.28);

    const shard = new Strategies.Shard(null as never, stub as never, {
      shardKey: "symbol",
    }) as unknown as Strategy;
    const shardFraction =
      moved(
        owners(shard, NODES),
        owners(
          new Strategies.Shard(null as never, stub as never, {
            shardKey: "symbol",
          }),
          [...NODES, "node-d"],
        ),
      ).length / SYMBOLS.length;
    console.log(
      `3 → 4 nodes, 10,000 symbols: rendezvous moved ${(fraction * 100).toFixed(1)} %, Shard moved ${(shardFraction * 100).toFixed(1)} %`,
    );
    expect(shardFraction).toBeGreaterThan(fraction * 1.5);
  });

  it("moves only the leaving node's symbols when a node leaves", () => {
    const before = new Map(SYMBOLS.map((s) => [s, ownerOf(s, NODES)!]));
    const after = new Map(SYMBOLS.map((s) => [s, ownerOf(s, ["node-a", "node-c"])!]));
    const changed = moved(before, after);
    expect(changed.length).toBeGreaterThan(0);
    for (const s of changed) expect(before.get(s)).toBe("node-b");
    expect(SYMBOLS.filter((s) => before.get(s) === "node-b")).toEqual(changed);
  });

  it("spreads symbols evenly", () => {
    const counts = new Map<string, number>();
    for (const s of SYMBOLS)
      counts.set(ownerOf(s, NODES)!, (counts.get(ownerOf(s, NODES)!) ?? 0) + 1);
    for (const n of NODES) expect(Math.abs(counts.get(n)! - SYMBOLS.length / 3)).toBeLessThan(300);
  });
});

describe("Ownership", () => {
  it("answers owners for the current node list, recomputed when the list changes", () => {
    const o = new Ownership();
    expect(o.update(["a", "b", "c"])).toBe(true);
    expect(o.update(["a", "b", "c"])).toBe(false);
    expect(o.owner("SYM")).toBe(ownerOf("SYM", ["a", "b", "c"]));
    expect(o.update(["a", "c"])).toBe(true);
    expect(o.owner("SYM")).toBe(ownerOf("SYM", ["a", "c"]));
  });
});
