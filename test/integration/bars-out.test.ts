/**
 * Bars and anomalies out to Kafka (BARS_TOPIC, ANOMALIES_TOPIC), read as a downstream consumer
 * would: `read_committed`, from the beginning. Two nodes over a real nats-server and Kafka take
 * fills, then busts and corrections, while the publishing node is paused past the heartbeat
 * timeout (another takes over; the paused one resumes believing it still publishes) and a node is
 * SIGKILLed and restarted. Every bar's versions must arrive once each, in version order, and the
 * latest version of every bar must equal the independent computation over the trades in effect.
 * A second case crashes the output broker while records flow: versions wait (and show as pending
 * in /api/stats, REST answering meanwhile) and are all published once it is back.
 */
import { Kafka, logLevel } from "kafkajs";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { LIVE_INTERVALS, LIVE_MS, type BarRecord } from "../../src/contracts/bars";
import type { AnomalyRecord } from "../../src/contracts/anomalies";
import type { NodeStats } from "../../src/contracts/stats";
import { ownerOf } from "../../src/cluster/rendezvous";
import { PUBLISHER_SHARD } from "../../src/contracts/publish";
import { processCluster, type ProcessCluster } from "../support/cluster";
import { correctionsFeed } from "../support/corrections";
import { eventually, getJson } from "../support/node";
import { asNumber, execReportTrades, refBars, type RefTrade } from "../support/reference";
import { expectBarsEqualReference } from "../support/bars";

const SYMBOLS = ["OUT.A", "OUT.B", "OUT.C", "OUT.D"];
const START = Date.UTC(2025, 0, 7, 9, 0);
const END_KEY = "__end";

/** Reads a topic from the beginning, read_committed, until a marker sent now shows in every partition. */
async function readAll(client: Kafka, topic: string): Promise<{ key: string; value: string }[]> {
  const admin = client.admin();
  await admin.connect();
  const partitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions;
  await admin.disconnect();
  const producer = client.producer();
  await producer.connect();
  const token = String(Date.now());
  await producer.send({
    topic,
    acks: -1,
    messages: partitions.map((p) => ({ partition: p.partitionId, key: END_KEY, value: token })),
  });
  await producer.disconnect();
  const out: { key: string; value: string }[] = [];
  const ended = new Set<number>();
  const consumer = client.consumer({ groupId: `read-${topic}-${token}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ partition, message }) => {
      const key = message.key!.toString();
      const value = message.value!.toString();
      if (key === END_KEY) {
        if (value === token) ended.add(partition);
      } else out.push({ key, value });
      return Promise.resolve();
    },
  });
  try {
    await eventually(
      () => (ended.size === partitions.length ? true : undefined),
      `${topic} read to its end`,
      60_000,
    );
  } finally {
    await consumer.disconnect();
  }
  return out;
}

const after = (a: [number, number], b: [number, number]) =>
  a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

describe("bars and anomalies out to Kafka, exactly once", () => {
  let kafka: KafkaHandle;
  /** The broker the bars go to in the outage case (the input stays on `kafka`). */
  let output: KafkaHandle;
  let nats: NatsHandle;
  let cluster: ProcessCluster;

  beforeAll(async () => {
    [kafka, output, nats] = await Promise.all([
      startKafka(),
      startKafka(),
      startNats({ jetstream: true }),
    ]);
  }, 240_000);
  afterAll(async () => {
    await cluster?.kill();
    await Promise.all([kafka?.stop(), output?.stop(), nats?.stop()]);
  });

  it("publishes every bar version once, in order, through a paused publisher and a SIGKILL", async () => {
    cluster = await processCluster({
      kafka,
      nats,
      name: "barsout",
      partitions: 3,
      env: {
        BATCH_MAX_RECORDS: "100",
        CHECKPOINT_INTERVAL_MS: "1000",
        PUBLISH_INTERVAL_MS: "200",
        HISTORY_URL: "off",
        // Low bars for an anomaly, so that some anomalies' trades are busted later.
        DETECTOR_THRESHOLD: "1.5",
        DETECTOR_MIN_SAMPLES: "5",
      },
    });
    const bars = `${cluster.topic}.bars`;
    const anomalies = `${cluster.topic}.anomalies`;
    const topics = { BARS_TOPIC: bars, ANOMALIES_TOPIC: anomalies };
    const feed = correctionsFeed({
      symbols: SYMBOLS,
      startMs: START,
      minutes: 30,
      fillsPerMinute: 30,
      seed: 23,
      prefix: cluster.topic,
    });
    const records = [...feed.fills, ...feed.corrections];
    const names = ["a", "b"];
    for (const n of names) await cluster.spawn(n, topics);
    const ids = () => names.map((n) => cluster.nodes.get(n)!.nodeID);
    try {
      await Promise.all([...cluster.nodes.values()].map((n) => n.ready()));
      const producer = cluster.producer(records);
      await producer.connect();
      const third = Math.ceil(records.length / 3);
      await producer.send(third);
      const firstUrl = cluster.nodes.get("a")!.url;
      await eventually(async () => {
        const { body } = await getJson(`${firstUrl}/api/stats`);
        const nodes = (body as { nodes: NodeStats[] }).nodes;
        return nodes.reduce((n, s) => n + s.publishing.published, 0) > 0 ? true : undefined;
      }, "the first records published");

      // The publisher (rendezvous over both nodes) is paused past the heartbeat timeout: the
      // other node takes over, and the paused one resumes believing it still publishes.
      const publisherID = ownerOf(PUBLISHER_SHARD, ids())!;
      const paused = names.find((n) => cluster.nodes.get(n)!.nodeID === publisherID)!;
      const url = cluster.nodes.get(names.find((n) => n !== paused)!)!.url;
      cluster.nodes.get(paused)!.child.kill("SIGSTOP");
      await producer.send(third);
      await eventually(async () => {
        const { body } = await getJson(`${url}/api/stats`);
        const nodes = (body as { nodes: NodeStats[] }).nodes;
        return nodes.length === 1 && nodes[0]!.publishing.published > 0 ? true : undefined;
      }, "the other node to publish alone");
      cluster.nodes.get(paused)!.child.kill("SIGCONT");

      // Then the other node is killed mid-stream and restarted under its ID.
      const killed = names.find((n) => n !== paused)!;
      await cluster.nodes.get(killed)!.kill();
      await producer.send(records.length);
      await producer.disconnect();
      await cluster.spawn(killed, topics);
      await Promise.all([...cluster.nodes.values()].map((n) => n.ready()));

      const trades: RefTrade[] = execReportTrades(records);
      const anyUrl = cluster.nodes.get(paused)!.url;
      await eventually(
        async () => {
          await expectBarsEqualReference(anyUrl, trades, SYMBOLS);
          const { body } = await getJson(`${anyUrl}/api/stats`);
          const nodes = (body as { nodes: NodeStats[] }).nodes;
          return nodes.length === 2 && nodes.every((n) => n.publishing.pending === 0)
            ? true
            : undefined;
        },
        "exact bars and nothing left to publish",
        180_000,
      );

      // Every version of a bar once, in version order; the latest equals the reference.
      const got = await readAll(cluster.client, bars);
      const logs = [...cluster.nodes.values()].map((n) => n.output()).join("");
      console.log(
        `${got.length} bar records, ${new Set(got.map((r) => r.key)).size} bars; ` +
          `publisher took over ${logs.split('"publishing to Kafka"').length - 1} times, ` +
          `superseded ${logs.split("publisher superseded").length - 1} times`,
      );
      const latest = new Map<string, BarRecord>();
      for (const { key, value } of got) {
        const r = JSON.parse(value) as BarRecord;
        expect(key).toBe(`${r.symbol}/${r.interval}/${r.startMs}`);
        const before = latest.get(key);
        if (before)
          expect({ key, newer: after(r.version, before.version) }).toEqual({ key, newer: true });
        latest.set(key, r);
      }
      for (const symbol of SYMBOLS)
        for (const interval of LIVE_INTERVALS) {
          const want = refBars(trades, symbol, LIVE_MS[interval]).map((b) => ({
            startMs: b.startMs,
            open: asNumber(b.open),
            high: asNumber(b.high),
            low: asNumber(b.low),
            close: asNumber(b.close),
            volume: asNumber(b.volume),
            trades: b.trades,
          }));
          const published = [...latest.values()]
            .filter((r) => r.symbol === symbol && r.interval === interval && r.trades > 0)
            .sort((x, y) => x.startMs - y.startMs)
            .map((r) => ({
              startMs: r.startMs,
              open: r.open,
              high: r.high,
              low: r.low,
              close: r.close,
              volume: r.volume,
              trades: r.trades,
            }));
          expect({ symbol, interval, published }).toEqual({ symbol, interval, published: want });
        }

      // Each anomaly once, and its cancelled version once when its trade was busted.
      const seen = new Map<string, AnomalyRecord[]>();
      for (const { key, value } of await readAll(cluster.client, anomalies))
        seen.set(key, [...(seen.get(key) ?? []), JSON.parse(value) as AnomalyRecord]);
      expect(seen.size).toBeGreaterThan(0);
      for (const [key, versions] of seen)
        expect({ key, cancelled: versions.map((v) => v.cancelled) }).toEqual({
          key,
          cancelled: versions.length === 1 ? [false] : [false, true],
        });
      expect([...seen.values()].some((v) => v.length === 2)).toBe(true);
    } finally {
      cluster.saveLogs();
    }
  }, 600_000);

  it("keeps versions pending through an outage of the output broker, then publishes them all", async () => {
    await cluster?.kill();
    cluster = await processCluster({
      kafka,
      nats,
      name: "barsoutage",
      partitions: 3,
      env: { BATCH_MAX_RECORDS: "100", CHECKPOINT_INTERVAL_MS: "1000", HISTORY_URL: "off" },
    });
    const bars = `${cluster.topic}.bars`;
    const feed = correctionsFeed({
      symbols: SYMBOLS,
      startMs: START,
      minutes: 20,
      fillsPerMinute: 20,
      seed: 29,
      prefix: cluster.topic,
    });
    const records = [...feed.fills, ...feed.corrections];
    // Input from `kafka` through one node; the actors and the publisher write to `output`.
    await cluster.spawn("in", { SERVICES: "ingest,parser,api" });
    const act = await cluster.spawn("act", {
      SERVICES: "aggregator,anomaly,api",
      KAFKA_BROKERS: output.brokers,
      BARS_TOPIC: bars,
      PUBLISH_INTERVAL_MS: "200",
    });
    try {
      await Promise.all([...cluster.nodes.values()].map((n) => n.ready()));
      output.kill();
      const producer = cluster.producer(records);
      await producer.connect();
      await producer.send(records.length);
      await producer.disconnect();
      const trades = execReportTrades(records);
      // REST is exact while nothing can be published, and the versions wait, ageing.
      await eventually(
        async () => {
          await expectBarsEqualReference(act.url, trades, SYMBOLS);
          const { body } = await getJson(`${act.url}/api/stats`);
          const p = (body as { nodes: NodeStats[] }).nodes.find(
            (n) => n.nodeID === act.nodeID,
          )!.publishing;
          return p.pending > 0 && (p.oldestPendingMs ?? 0) > 2000 ? p : undefined;
        },
        "exact REST answers while versions wait for the broker",
        120_000,
      );
      await output.restart();
      await eventually(
        async () => {
          const { body } = await getJson(`${act.url}/api/stats`);
          const p = (body as { nodes: NodeStats[] }).nodes.find(
            (n) => n.nodeID === act.nodeID,
          )!.publishing;
          return p.pending === 0 && p.published > 0 ? true : undefined;
        },
        "every pending version published",
        120_000,
      );
      const outClient = new Kafka({
        clientId: "bars-out-test",
        brokers: [output.brokers],
        logLevel: logLevel.NOTHING,
      });
      const latest = new Map<string, BarRecord>();
      for (const { key, value } of await readAll(outClient, bars)) {
        const r = JSON.parse(value) as BarRecord;
        const before = latest.get(key);
        if (before)
          expect({ key, newer: after(r.version, before.version) }).toEqual({ key, newer: true });
        latest.set(key, r);
      }
      for (const symbol of SYMBOLS) {
        const want = refBars(trades, symbol, LIVE_MS["1m"]).map((b) => [b.startMs, b.trades]);
        const got = [...latest.values()]
          .filter((r) => r.symbol === symbol && r.interval === "1m" && r.trades > 0)
          .sort((x, y) => x.startMs - y.startMs)
          .map((r) => [r.startMs, r.trades]);
        expect({ symbol, got }).toEqual({ symbol, got: want });
      }
    } finally {
      cluster.saveLogs();
    }
  }, 600_000);
});
