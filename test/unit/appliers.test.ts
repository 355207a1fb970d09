/**
 * The processes an ingest node must hear from before it commits: noted by their apply replies,
 * covered by a round that started after them, lost when their node is gone or is another instance.
 */
import { Appliers } from "../../services/ingest/appliers";

const p = (nodeID: string, instanceID: string, service = "aggregator") => ({
  service,
  nodeID,
  instanceID,
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
    a.forget([p("n2", "i2")]);
    a.forgetNode("n3");
    expect(a.lost(isLive)).toEqual([]);
    expect(a.size).toBe(1);
  });
});
