/**
 * A Tickstream node for the benchmark: the production `startNode` with the configuration from the
 * environment (exactly what `dist/scripts/node.js` runs), plus a probe around its ingest pipeline.
 *
 * The probe wraps the ingest service's `Pipeline.deliver`, which resolves once every actor that
 * owns a trade of the batch has acknowledged applying it. Around each call it takes the time
 * (and CPU time), so that the consumption window starts at the first batch handed to the
 * pipeline — start-up and group join are outside it — and ends when the last one is applied.
 * With `--samples` it also keeps, for every record, applied time minus its Kafka timestamp: exact
 * produce → applied latencies, where the node's own metric keeps one sample per batch (its oldest
 * record) in histogram buckets. The wrapper adds a clock read per batch; samples, a loop over
 * the batch's timestamps. A 5 ms timer measures how late the event loop runs it (work that holds
 * the loop delays every record waiting behind it).
 *
 * It talks to the benchmark over the IPC channel (`{ type: "report" }` → the report; `{ type:
 * "reset" }` forgets the warm-up, then reports) and exits when the benchmark goes away.
 */
import { performance } from "node:perf_hooks";
import type { ServiceBroker } from "moleculer";
import type { Pipeline } from "../services/ingest/pipeline";
import { loadConfig } from "../src/config";
import { startNode } from "../app/start";
import { SampleBuffer, summarize, type ConsumptionWindow } from "./stats";

/** What the probe saw; sent to the benchmark on request. */
export interface ProbeReport {
  nodeID: string;
  window: ConsumptionWindow | null;
  batches: number;
  /** Per batch: deliver() time, ms (decode + split + every apply acknowledged). */
  deliveryMs: Float64Array;
  /** Per record (with --samples): applied − Kafka timestamp, ms. */
  samples: Float64Array;
  /** Lateness of a 5 ms timer since the last reset: how long other work held the event loop. */
  eventLoopDelay: { p50Ms: number; p99Ms: number; maxMs: number } | null;
  /** Nodes this node declared lost for missing heartbeats (`$node.disconnected`, unexpected). */
  nodesLost: number;
}

const LOOP_TICK_MS = 5;

function loopLateness(samples: Float64Array): ProbeReport["eventLoopDelay"] {
  const s = summarize(samples);
  return s && { p50Ms: s.p50Ms, p99Ms: s.p99Ms, maxMs: s.maxMs };
}

export interface Probe {
  report(): ProbeReport;
  /** Forgets what was seen so far (the end of a warm-up). */
  reset(): void;
}

export function probePipeline(broker: ServiceBroker, keepSamples: boolean): Probe {
  const ingest = broker.getLocalService("ingest") as unknown as { pipeline?: Pipeline } | null;
  const pipeline = ingest?.pipeline;
  if (!pipeline || typeof pipeline.deliver !== "function")
    throw new Error("node-probe: the node runs no ingest pipeline to probe");
  let window: ConsumptionWindow | null = null;
  let batches = 0;
  let deliveryMs = new SampleBuffer();
  let samples = new SampleBuffer();
  let lateness = new SampleBuffer();
  let nodesLost = 0;
  broker.localBus.on("$node.disconnected", (p: { unexpected?: boolean }) => {
    if (p.unexpected) nodesLost += 1;
  });
  let last = performance.now();
  const tick = () => {
    const now = performance.now();
    lateness.push(Math.max(0, now - last - LOOP_TICK_MS));
    last = now;
    setTimeout(tick, LOOP_TICK_MS).unref();
  };
  setTimeout(tick, LOOP_TICK_MS).unref();
  const deliver = pipeline.deliver.bind(pipeline);
  const open = (): ConsumptionWindow => {
    const cpu = process.cpuUsage();
    return { records: 0, firstAt: Date.now(), lastAt: 0, cpuFirst: cpu, cpuLast: cpu };
  };
  pipeline.deliver = async (batch, hooks) => {
    const t0 = performance.now();
    window ??= open();
    const delivery = await deliver(batch, hooks);
    if (delivery === null) return delivery;
    const appliedAt = Date.now();
    const w = (window ??= open()); // reset while the batch was in flight
    w.records += batch.offsets.length - 1;
    w.lastAt = appliedAt;
    w.cpuLast = process.cpuUsage();
    batches += 1;
    deliveryMs.push(performance.now() - t0);
    if (keepSamples) for (const p of batch.producedAtMs) samples.push(appliedAt - p);
    return delivery;
  };
  return {
    report: () => ({
      nodeID: broker.nodeID,
      window,
      batches,
      deliveryMs: deliveryMs.take(),
      samples: keepSamples ? samples.take() : new Float64Array(0),
      eventLoopDelay: loopLateness(lateness.take()),
      nodesLost,
    }),
    reset() {
      lateness = new SampleBuffer();
      window = null;
      nodesLost = 0;
      batches = 0;
      deliveryMs = new SampleBuffer();
      samples = new SampleBuffer();
    },
  };
}

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error("node-probe runs as a child of the benchmark (IPC channel)");
  process.removeAllListeners("warning"); // kafkajs's negative-timeout warnings on Node ≥ 23
  const node = await startNode(loadConfig());
  const probe = probePipeline(node.broker, process.argv.includes("--samples"));
  process.on("message", (m: { type?: string }) => {
    if (m.type === "report") send({ type: "report", report: probe.report() });
    if (m.type === "reset") {
      probe.reset();
      send({ type: "report", report: probe.report() });
    }
  });
  process.on("disconnect", () => process.exit(0));
  send({ type: "started", url: node.url });
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`node-probe: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
