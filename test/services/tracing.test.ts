/**
 * Tracing: one feed batch is one trace (ingest.batch → parser.parse, aggregator.apply,
 * anomaly.apply), and one REST request is one trace (gateway → api.bars → aggregator.bars).
 * Spans are collected by an in-memory exporter registered on a real node fed by the synthetic
 * market; the exporter sees exactly what Zipkin or Console would be given.
 */
import { TracerExporters, type Span, type TracerOptions } from "moleculer";
import type { StartedNode } from "../../app/start";
import { startNode } from "../../app/start";
import { eventually, getJson, testConfig } from "../support/node";

/** Keeps every finished span. */
class MemoryExporter extends TracerExporters.Base {
  readonly spans: Span[] = [];
  override spanFinished(span: Span): void {
    this.spans.push(span);
  }
}

describe("tracing", () => {
  let node: StartedNode & { url: string };
  const exporter = new MemoryExporter({});

  beforeAll(async () => {
    const started = await startNode(
      testConfig({ FEED_RATE: "2000", FEED_SYMBOLS: "5", TRACING: "true" }),
      {
        logger: false,
        // Moleculer takes exporter instances at run time; its typings list only names and options.
        tracing: { enabled: true, exporter: [exporter] as unknown as TracerOptions["exporter"] },
      },
    );
    if (started.url === null) throw new Error("no REST gateway");
    node = started as StartedNode & { url: string };
  });

  afterAll(() => node?.stop());

  const isRoot = (s: Span): boolean => s.parentID === null || s.parentID === undefined;
  const actionName = (s: Span): string | undefined =>
    (s.tags.action as { name?: string } | undefined)?.name;

  it("makes one feed batch one trace through ingest, parser, aggregator and anomaly", async () => {
    // A batch whose trace is complete: root finished, plus a parse and both applies under it.
    const trace = await eventually(() => {
      for (const root of exporter.spans.filter((s) => s.name === "ingest.batch")) {
        const inTrace = exporter.spans.filter((s) => s.traceID === root.traceID);
        const names = new Set(inTrace.map(actionName));
        if (
          names.has("parser.parse") &&
          names.has("aggregator.apply") &&
          names.has("anomaly.apply")
        )
          return { root, inTrace };
      }
      return undefined;
    }, "a complete batch trace");

    const { root, inTrace } = trace;
    expect(isRoot(root)).toBe(true);
    expect(root.tags).toMatchObject({ sourceKind: "synthetic", attempt: 0 });
    // The calls are the root's direct children; nothing in the trace hangs off another trace.
    for (const name of ["parser.parse", "aggregator.apply", "anomaly.apply"]) {
      const spans = inTrace.filter((s) => actionName(s) === name);
      expect({ name, parents: [...new Set(spans.map((s) => s.parentID))] }).toEqual({
        name,
        parents: [root.id],
      });
    }
    const ids = new Set(inTrace.map((s) => s.id));
    for (const s of inTrace) if (s !== root) expect(ids.has(s.parentID ?? "")).toBe(true);

    // Batches are separate traces: no parse span of the pipeline is a root of its own.
    const orphanParses = exporter.spans.filter(
      (s) => actionName(s) === "parser.parse" && isRoot(s),
    );
    expect(orphanParses).toHaveLength(0);
  });

  it("makes a REST request one trace from the gateway to the aggregator", async () => {
    const symbol = await eventually(async () => {
      const { body } = await getJson(`${node.url}/api/symbols`);
      const symbols = (body as { symbols: Array<string | { symbol: string }> }).symbols;
      const first = symbols[0];
      return typeof first === "string" ? first : first?.symbol;
    }, "a traded symbol");
    const res = await getJson(`${node.url}/api/bars/${encodeURIComponent(symbol)}`);
    expect(res.status).toBe(200);

    const { bars, inTrace } = await eventually(() => {
      const bars = exporter.spans.find(
        (s) => actionName(s) === "api.bars" && s.tags.params?.symbol === symbol,
      );
      if (!bars) return undefined;
      const inTrace = exporter.spans.filter((s) => s.traceID === bars.traceID);
      return inTrace.some((s) => actionName(s) === "aggregator.bars")
        ? { bars, inTrace }
        : undefined;
    }, "the REST request's trace");

    const agg = inTrace.find((s) => actionName(s) === "aggregator.bars")!;
    expect(agg.parentID).toBe(bars.id);
    const root = inTrace.find(isRoot);
    expect(root).toBeDefined();
    // The gateway's own action span is the root (moleculer-web creates the request context).
    expect(actionName(root!)).toBe("api.rest");
  });
});
