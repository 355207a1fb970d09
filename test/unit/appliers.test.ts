/**
 * The processes an ingest node must hear from before it commits: noted by their apply replies,
 * covered by a round that started after them and that they answered under the custody generation
 * they applied under; lost when their node is gone, is another instance, or dropped a state since.
 */
import { Appliers, key } from "../../src/custody/appliers";

const p = (nodeID: string, instanceID: string, service = "aggregator", generation = 0) => ({
  service,
  nodeID,
  instanceID,
  generation,
});

describe("appliers", () => {
  it("a round covers the processes noted before it started, not those noted during it", () => {
    const a = new Appliers();
    a.note(p("n1", "i1"));
    a.note(p("n2", "i2", "anomaly"));
    const mark = a.mark();
    a.note(p("n3", "i3"));
    expect(a.before(mark)).toEqual([p("n1", "i1"), p("n2", "i2", "anomaly")]);
    a.settle(mark);
    expect(a.before(a.mark())).toEqual([p("n3", "i3")]);
  });

  it("a process noted again during a round stays until a later round", () => {
    const a = new Appliers();
    a.note(p("n1", "i1"));
    const mark = a.mark();
    a.note(p("n1", "i1"));
    a.settle(mark);
    expect(a.size).toBe(1);
    a.settle(a.mark());
    expect(a.size).toBe(0);
  });

  it("a process is lost when its node is gone or runs another instance", () => {
    const a = new Appliers();
    a.note(p("n1", "i1"));
    a.note(p("n2", "i2"));
    a.note(p("n3", "i3"));
    const live = new Map([
      ["n1", "i1"],
      ["n2", "i2-restarted"],
    ]);
    const isLive = (x: { nodeID: string; instanceID: string }) =>
      live.get(x.nodeID) === x.instanceID;
    expect(a.lost(isLive)).toEqual([p("n2", "i2"), p("n3", "i3")]);
    a.forget([p("n2", "i2"), p("n3", "i3")]);
    expect(a.lost(isLive)).toEqual([]);
    expect(a.size).toBe(1);
  });

  it("a process whose custody generation moved after it applied is lost, and is not covered", () => {
    const a = new Appliers();
    const live = () => true;
    expect(a.note(p("n1", "i1", "aggregator", 4))).toBe(true);
    // A later reply under generation 5: a state it had applied to may have been dropped.
    expect(a.note(p("n1", "i1", "aggregator", 5))).toBe(false);
    expect(a.lost(live)).toEqual([p("n1", "i1", "aggregator", 4)]);

    const b = new Appliers();
    b.note(p("n1", "i1", "aggregator", 4));
    const mark = b.mark();
    const [noted] = b.before(mark);
    b.heard(p("n1", "i1", "aggregator", 5));
    expect(b.covered(noted!, new Set([key(noted!)]))).toBe(false);
    expect(b.lost(live)).toEqual([noted]);

    const c = new Appliers();
    c.note(p("n1", "i1", "aggregator", 4));
    const [same] = c.before(c.mark());
    c.heard(p("n1", "i1", "aggregator", 4));
    expect(c.covered(same!, new Set([key(same!)]))).toBe(true);
    expect(c.covered(same!, new Set())).toBe(false);
  });
});
