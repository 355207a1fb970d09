/**
 * The ceiling: a kafkajs consumer that only counts records, with the fetch settings a Tickstream
 * node uses (`eachBatch`, partitions consumed concurrently, bytes per partition, fetch wait), so
 * that Tickstream / ceiling is the cost of Tickstream's own work. It never commits (a node
 * commits without holding up its next fetch, see `CommitQueue` in the Kafka source).
 *
 *   node dist/bench/ceiling-consumer.js BROKERS TOPIC GROUP CONCURRENCY MAX_BYTES_PER_PARTITION MAX_WAIT_MS [--samples]
 *
 * With `--samples` it also keeps, for every record, the time it was handed over minus its Kafka
 * timestamp: the latency floor of kafkajs on this broker and machine.
 *
 * It says `started` once it has joined the group. It reports its consumption window (first batch → last record counted, with CPU times) over the IPC
 * channel on `{ type: "report" }` (`{ type: "reset" }` forgets what it saw first); exits when the
 * benchmark goes away.
 */
import { Kafka, logLevel } from "kafkajs";
import { SampleBuffer, type ConsumptionWindow } from "./stats";

export interface CeilingReport {
  window: ConsumptionWindow | null;
  batches: number;
  /** Per record (with --samples): handed over − Kafka timestamp, ms. */
  samples: Float64Array;
}

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error("ceiling-consumer runs as a child of the benchmark (IPC channel)");
  process.removeAllListeners("warning"); // kafkajs's negative-timeout warnings on Node ≥ 23
  const keepSamples = process.argv.includes("--samples");
  const [brokers, topic, groupId, concurrency, maxBytesPerPartition, maxWaitMs] = process.argv
    .slice(2)
    .filter((a) => !a.startsWith("--"));
  const int = (v: string | undefined, name: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`ceiling-consumer: bad ${name}: ${v}`);
    return n;
  };
  if (!brokers || !topic || !groupId) throw new Error("ceiling-consumer: missing arguments");
  const partitions = int(concurrency, "concurrency");
  const bytes = int(maxBytesPerPartition, "maxBytesPerPartition");
  const kafka = new Kafka({
    clientId: "tickstream-bench-ceiling",
    brokers: brokers.split(","),
    logLevel: logLevel.WARN,
  });
  const consumer = kafka.consumer({
    groupId,
    maxBytesPerPartition: bytes,
    maxBytes: bytes * Math.max(1, partitions),
    maxWaitTimeInMs: int(maxWaitMs, "maxWaitMs"),
    allowAutoTopicCreation: false,
  });
  let window: ConsumptionWindow | null = null;
  let batches = 0;
  let samples = new SampleBuffer();
  const report = (): CeilingReport => ({
    window,
    batches,
    samples: keepSamples ? samples.take() : new Float64Array(0),
  });
  process.on("message", (m: { type?: string }) => {
    if (m.type === "reset") {
      window = null;
      batches = 0;
      samples = new SampleBuffer();
    }
    if (m.type === "report" || m.type === "reset") send({ type: "report", report: report() });
  });
  process.on("disconnect", () => process.exit(0));
  // A normal exit (not death by signal) lets `--cpu-prof` write its profile.
  process.on("SIGTERM", () => process.exit(0));
  // Started = in the group with partitions assigned (the benchmark produces only then).
  consumer.on(consumer.events.GROUP_JOIN, () => send({ type: "started" }));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: partitions,
    eachBatch: ({ batch }) => {
      const now = Date.now();
      if (window === null) {
        const cpu = process.cpuUsage();
        window = { records: 0, firstAt: now, lastAt: 0, cpuFirst: cpu, cpuLast: cpu };
      }
      window.records += batch.messages.length;
      window.lastAt = now;
      window.cpuLast = process.cpuUsage();
      batches += 1;
      if (keepSamples) for (const m of batch.messages) samples.push(now - Number(m.timestamp));
      return Promise.resolve();
    },
  });
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`ceiling-consumer: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
