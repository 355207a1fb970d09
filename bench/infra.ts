/**
 * One Kafka broker and one nats-server per benchmark run, started by the first section that needs
 * them and shared by the others; `stopInfra` (run.ts calls it at the end, also after a failure)
 * stops them. The pre-loaded topic is shared too: the end-to-end and the two-node sections consume
 * the same records.
 *
 * The broker runs with the full JIT (not the tests' fast-start C1 only), and with a 3 s initial
 * rebalance delay: a new consumer group waits that long for more members before its first
 * assignment, so two nodes started together both get partitions in the first generation
 * instead of one consuming everything and then rebalancing mid-run. Start-up is outside every
 * measured window, so the delay costs wall time only.
 */
import { Kafka, logLevel } from "kafkajs";
import { startKafka, type KafkaHandle } from "../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../scripts/infra/nats";
import { preload, type Preloaded } from "./e2e-data";
import type { BenchOptions } from "./harness";

export const INITIAL_REBALANCE_DELAY_MS = 3_000;

let kafkaHandle: Promise<KafkaHandle> | null = null;
let natsHandle: Promise<NatsHandle> | null = null;
let preloaded: Promise<Preloaded> | null = null;
let runId = 0;

export function sharedKafka(options: BenchOptions): Promise<KafkaHandle> {
  kafkaHandle ??= (async () => {
    options.log("starting Kafka (full JIT)…");
    const started = Date.now();
    const kafka = await startKafka({
      fastStartup: false,
      heapMb: 1024,
      config: { "group.initial.rebalance.delay.ms": INITIAL_REBALANCE_DELAY_MS },
    });
    options.log(`Kafka ${kafka.brokers} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return kafka;
  })();
  return kafkaHandle;
}

export function sharedNats(options: BenchOptions): Promise<NatsHandle> {
  // JetStream on: nodes on a NATS transporter checkpoint to it by default.
  natsHandle ??= startNats({ jetstream: true }).then((nats) => {
    options.log(`nats-server ${nats.url} ready`);
    return nats;
  });
  return natsHandle;
}

/** A kafkajs client of the shared broker for the benchmark process itself. */
export function benchClient(brokers: string): Kafka {
  return new Kafka({ clientId: "tickstream-bench", brokers: [brokers], logLevel: logLevel.WARN });
}

/** Records pre-loaded for the end-to-end sections: `--records`, else 2 M (500 k with --quick). */
export function e2eRecordCount(options: BenchOptions): number {
  return options.records ?? (options.quick ? 500_000 : 2_000_000);
}

/** Symbols whose bars are checked against the reference after a run. */
export const CHECKED_SYMBOLS = 3;

/** The shared pre-loaded topic (written once per run). */
export function sharedTopic(options: BenchOptions): Promise<Preloaded> {
  preloaded ??= (async () => {
    const kafka = await sharedKafka(options);
    const count = e2eRecordCount(options);
    const topic = uniqueName("bench-e2e");
    options.log(`pre-loading ${count} records into ${topic}…`);
    const p = await preload(benchClient(kafka.brokers), topic, count, CHECKED_SYMBOLS, options.log);
    options.log(
      `pre-loaded ${p.records} records (${(p.bytes / p.records).toFixed(0)} B each) in ${p.seconds.toFixed(1)} s`,
    );
    return p;
  })();
  return preloaded;
}

/** A name no other run or section uses (topics, groups, node IDs). */
export function uniqueName(prefix: string): string {
  runId += 1;
  return `${prefix}-${process.pid}-${runId}`;
}

/** Stops what was started; safe to call when nothing was. */
export async function stopInfra(): Promise<void> {
  const k = kafkaHandle;
  const n = natsHandle;
  kafkaHandle = natsHandle = preloaded = null;
  await Promise.allSettled([
    k?.then((h) => h.stop()) ?? Promise.resolve(),
    n?.then((h) => h.stop()) ?? Promise.resolve(),
  ]);
}
