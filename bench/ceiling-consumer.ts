/**
 * The ceiling of end-to-end throughput: a kafkajs consumer that only counts records, with the
 * fetch settings a Tickstream node uses (`eachBatch`, partitions consumed concurrently, bytes per
 * partition, fetch wait), so that the ratio Tickstream / ceiling is the cost of Tickstream's own
 * work. Offsets are committed after every batch, as a node does.
 *
 *   node dist/bench/ceiling-consumer.js BROKERS TOPIC GROUP CONCURRENCY MAX_BYTES_PER_PARTITION MAX_WAIT_MS
 *
 * Reports its consumption window (first batch → last record counted, with CPU times) over the IPC
 * channel on `{ type: "report" }`; exits when the benchmark goes away.
 */
import { Kafka, logLevel } from "kafkajs";
import type { ConsumptionWindow } from "./stats";

export interface CeilingReport {
  window: ConsumptionWindow | null;
  batches: number;
}

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error("ceiling-consumer runs as a child of the benchmark (IPC channel)");
  process.removeAllListeners("warning"); // kafkajs's negative-timeout warnings on Node ≥ 23
  const [brokers, topic, groupId, concurrency, maxBytesPerPartition, maxWaitMs] =
    process.argv.slice(2);
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
  process.on("message", (m: { type?: string }) => {
    if (m.type === "report") send({ type: "report", report: { window, batches } });
  });
  process.on("disconnect", () => process.exit(0));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: partitions,
    eachBatch: ({ batch }) => {
      if (window === null) {
        const cpu = process.cpuUsage();
        window = { records: 0, firstAt: Date.now(), lastAt: 0, cpuFirst: cpu, cpuLast: cpu };
      }
      window.records += batch.messages.length;
      window.lastAt = Date.now();
      window.cpuLast = process.cpuUsage();
      batches += 1;
      return Promise.resolve();
    },
  });
  send({ type: "started" });
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`ceiling-consumer: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
