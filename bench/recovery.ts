/**
 * Recovery: how long a node takes to get back the state of 1 M trades, by the three routes there
 * are, on the same states in one run.
 *
 * - `jetstream`: the checkpoint store Tickstream uses (NATS JetStream KV, src/custody/store.ts):
 *   write every symbol's state, then get them all back and import them into empty engines.
 * - `compactedTopic`: the alternative the issue names: the same states as records of a compacted
 *   Kafka topic (key = symbol), read back whole from the beginning by a consumer and imported.
 * - `replay`: no checkpoint: decode and apply the 1 M trade records again (in process: the floor of
 *   a replay from Kafka, which also pays for fetching them).
 *
 * The trades: `symbols` symbols, JSON records with ids (so the states hold id sets as a FIX feed
 * makes them), 5 ms of event time apart, applied to the aggregator's and the anomaly service's
 * engines with the configured defaults, exactly as one node holds them.
 */
import { performance } from "node:perf_hooks";
import { Kafka, logLevel } from "kafkajs";
import { engineOptions } from "../src/actors/symbol-actors";
import { custodyKey, JetStreamCustodyStore } from "../src/custody/store";
import { loadConfig } from "../src/config";
import { mulberry32 } from "../src/feed/synthetic";
import type { KafkaHandle } from "../scripts/infra/kafka";
import type { NatsHandle } from "../scripts/infra/nats";
import { native, type Binding } from "../src/native";
import { message, type BenchOptions, type Section, type SectionResult } from "./harness";
import { sharedKafka, sharedNats } from "./infra";

const TRADES_PER_CALL = 4_000;
const SERVICES = ["aggregator", "anomaly"] as const;

interface Engines {
  aggregator: Binding.Engine;
  anomaly: Binding.Engine;
}

function engines(): Engines {
  const config = loadConfig(process.env);
  return {
    aggregator: new native.Engine(engineOptions(config, { bars: true, detector: false })),
    anomaly: new native.Engine(engineOptions(config, { bars: false, detector: true })),
  };
}

/** Packed batches of `trades` JSON trades over `symbols` symbols (decoded once, untimed). */
function tradeBatches(
  trades: number,
  symbols: number,
): { payload: Buffer; offsets: Uint32Array; seqs: Float64Array; lastMs: number }[] {
  const rand = mulberry32(11);
  const prices = Array.from({ length: symbols }, () => 20 + rand() * 480);
  const out = [];
  let t = Date.UTC(2026, 0, 5, 14, 0, 0);
  for (let first = 0; first < trades; first += TRADES_PER_CALL) {
    const n = Math.min(TRADES_PER_CALL, trades - first);
    const records: Buffer[] = [];
    for (let k = 0; k < n; k++) {
      const s = Math.floor(rand() * symbols);
      prices[s] = prices[s]! * (1 + 0.002 * (rand() - 0.5));
      const qty = 1 + Math.floor(rand() * 999);
      t += 5;
      records.push(
        Buffer.from(
          `{"symbol":"S${s}","price":"${prices[s].toFixed(2)}","qty":"${qty}","ts":${t},"id":"E${first + k}"}`,
          "latin1",
        ),
      );
    }
    const offsets = new Uint32Array(n + 1);
    records.forEach((r, k) => (offsets[k + 1] = offsets[k]! + r.length));
    const seqs = Float64Array.from({ length: n }, (_, k) => first + k);
    out.push({ payload: Buffer.concat(records), offsets, seqs, lastMs: t });
  }
  return out;
}

/** Decodes and applies every batch to both engines; returns the time taken, ms. */
function apply(
  batches: ReturnType<typeof tradeBatches>,
  into: Engines,
  decoder: Binding.FixDecoder,
): number {
  const started = performance.now();
  for (const b of batches) {
    const decoded = decoder.decodeBatch(b.payload, b.offsets, b.seqs, "recovery/0");
    into.aggregator.applyBatch(decoded.batch, b.lastMs);
    into.anomaly.applyBatch(decoded.batch, b.lastMs);
    into.aggregator.drainClosed();
    into.aggregator.drainTouched();
    into.anomaly.drainTouched();
  }
  return performance.now() - started;
}

interface Exported {
  service: (typeof SERVICES)[number];
  symbol: string;
  state: Buffer;
}

function exportAll(from: Engines): Exported[] {
  const out: Exported[] = [];
  for (const service of SERVICES)
    for (const { symbol } of from[service].symbols()) {
      const state = from[service].exportSymbol(symbol);
      if (state !== null) out.push({ service, symbol, state });
    }
  return out;
}

/** Imports states into empty engines and checks they hold what the source held. */
function importAll(states: Iterable<Exported>, expectTrades: number): number {
  const fresh = engines();
  let n = 0;
  for (const s of states) {
    fresh[s.service].importSymbol(s.state, false);
    n++;
  }
  if (sumTrades(fresh.aggregator) !== expectTrades)
    throw new Error(
      `restored state holds ${sumTrades(fresh.aggregator)} trades, expected ${expectTrades}`,
    );
  return n;
}

function sumTrades(engine: Binding.Engine): number {
  return engine.symbols().reduce((n, s) => n + s.trades, 0);
}

async function viaJetStream(
  nats: NatsHandle,
  states: Exported[],
  expectTrades: number,
): Promise<{ writeMs: number; restoreMs: number }> {
  const bucket = `bench-recovery-${process.pid}-${Date.now().toString(36)}`;
  const store = await JetStreamCustodyStore.open(nats.url, bucket);
  const holder = { nodeID: "bench", instanceID: "1" };
  try {
    let started = performance.now();
    // As custody writes a checkpoint: 32 compare-and-set writes in flight.
    let next = 0;
    const writer = async (): Promise<void> => {
      while (next < states.length) {
        const { service, symbol, state } = states[next++]!;
        await store.write(custodyKey(service, symbol), { epoch: 1, holder, state }, null);
      }
    };
    await Promise.all(Array.from({ length: 32 }, writer));
    const writeMs = performance.now() - started;
    started = performance.now();
    const got = await Promise.all(
      states.map(async ({ service, symbol }) => ({
        service,
        symbol,
        state: (await store.read(custodyKey(service, symbol)))!.state,
      })),
    );
    importAll(got, expectTrades);
    return { writeMs, restoreMs: performance.now() - started };
  } finally {
    await store.close();
  }
}

async function viaCompactedTopic(
  kafka: KafkaHandle,
  states: Exported[],
  expectTrades: number,
): Promise<{ writeMs: number; restoreMs: number; readMs: number }> {
  const client = new Kafka({
    clientId: "bench-recovery",
    brokers: [kafka.brokers],
    logLevel: logLevel.NOTHING,
  });
  const topic = `bench-checkpoints-${process.pid}-${Date.now().toString(36)}`;
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: 1,
        configEntries: [
          { name: "cleanup.policy", value: "compact" },
          { name: "max.message.bytes", value: String(8 << 20) },
        ],
      },
    ],
  });
  await admin.disconnect();
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let started = performance.now();
  for (let i = 0; i < states.length; i += 100)
    await producer.send({
      topic,
      acks: -1,
      messages: states
        .slice(i, i + 100)
        .map((s) => ({ key: `${s.service}.${s.symbol}`, value: s.state })),
    });
  const writeMs = performance.now() - started;
  await producer.disconnect();

  const consumer = client.consumer({
    groupId: `${topic}-restore`,
    maxBytesPerPartition: 64 << 20,
  });
  started = performance.now();
  let firstAt = 0;
  const got: Exported[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          if (firstAt === 0) firstAt = performance.now();
          for (const m of batch.messages) {
            const key = m.key!.toString();
            const dot = key.indexOf(".");
            got.push({
              service: key.slice(0, dot) as Exported["service"],
              symbol: key.slice(dot + 1),
              state: m.value!,
            });
          }
          if (got.length >= states.length) resolve();
          await Promise.resolve();
        },
      })
      .catch(reject);
  });
  importAll(got, expectTrades);
  const end = performance.now();
  await consumer.disconnect();
  return { writeMs, restoreMs: end - started, readMs: end - firstAt };
}

/** How a restore compares with replaying: "3.2× faster" or "2.1× slower". */
function versus(replayMs: number, restoreMs: number): string {
  return replayMs >= restoreMs
    ? `${(replayMs / restoreMs).toFixed(1)}× faster`
    : `${(restoreMs / replayMs).toFixed(1)}× slower`;
}

export const recoverySection: Section = {
  key: "recovery",
  title: "Recovery of 1 M trades of state: checkpoint store vs compacted topic vs replay",
  async run(options: BenchOptions): Promise<SectionResult> {
    const trades = 1_000_000;
    const symbols = 1_000;
    const decoder = new native.FixDecoder({});
    options.log(`recovery: generating ${trades} trades over ${symbols} symbols…`);
    const batches = tradeBatches(trades, symbols);
    const source = engines();
    apply(batches, source, decoder);
    const held = sumTrades(source.aggregator);
    if (held !== trades) throw new Error(`the engines hold ${held} of ${trades} trades`);
    // Replay: the same records decoded and applied again into empty engines (median of 3).
    const replays = [0, 1, 2].map(() => apply(batches, engines(), decoder)).sort((a, b) => a - b);
    const replayMs = replays[1]!;
    const states = exportAll(source);
    const bytes = states.reduce((n, s) => n + s.state.length, 0);

    // The run's shared broker and nats-server (stopped by run.ts at the end).
    const [nats, kafka]: [NatsHandle, KafkaHandle] = await Promise.all([
      sharedNats(options),
      sharedKafka(options),
    ]);
    const js = await viaJetStream(nats, states, trades);
    const topic = await viaCompactedTopic(kafka, states, trades).catch((error: unknown) => {
      options.log(`compacted topic failed: ${message(error)}`);
      return null;
    });
    const ms = (x: number) => `${Math.round(x).toLocaleString("en-US")} ms`;
    return {
      json: {
        jetstream: { restoreMs: Math.round(js.restoreMs), writeMs: Math.round(js.writeMs) },
        compactedTopic: topic && {
          restoreMs: Math.round(topic.restoreMs),
          readMs: Math.round(topic.readMs),
          writeMs: Math.round(topic.writeMs),
        },
        replay: { restoreMs: Math.round(replayMs) },
        restoreMsPer1MTrades: Math.round(js.restoreMs),
      },
      meta: { trades, symbols, states: states.length, stateBytes: bytes },
      tables: [
        {
          title: `Getting back ${trades.toLocaleString("en-US")} trades of state (${symbols} symbols, ${states.length} states, ${(bytes / 2 ** 20).toFixed(1)} MiB)`,
          header: ["route", "restore", "write (checkpoint)", "vs replay"],
          rows: [
            [
              "JetStream KV (get + import)",
              ms(js.restoreMs),
              ms(js.writeMs),
              versus(replayMs, js.restoreMs),
            ],
            topic
              ? [
                  "compacted topic (join + read + import)",
                  `${ms(topic.restoreMs)} (read ${ms(topic.readMs)})`,
                  ms(topic.writeMs),
                  versus(replayMs, topic.restoreMs),
                ]
              : ["compacted topic", "failed", "", ""],
            ["replay (decode + apply, in process)", ms(replayMs), "", "1.0×"],
          ],
        },
      ],
      ratios: [],
      notes: [
        "restore = fetch every state and import it into empty engines, checked to hold every trade; replay is the floor of a replay from Kafka (no fetch)",
      ],
    };
  },
};
