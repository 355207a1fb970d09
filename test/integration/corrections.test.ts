/**
 * Trade cancels and corrections against the independent reference (test/support/reference.ts,
 * `execReportTrades`): fills, then busts and corrections 3–12 minutes (event time) after their
 * fills, once the fills' bars closed and reached history. Through a FIX file replay; through a real
 * Kafka broker across a SIGKILL and a restart, checked in REST and in the SQLite history file; and
 * two runs from one checkout with different data, each in its own namespace.
 */
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { symbolOf } from "../../src/fix/records";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { LIVE_MS, type LiveInterval } from "../../src/contracts/bars";
import { expectBarsEqualReference } from "../support/bars";
import { correctionsFeed } from "../support/corrections";
import { eventually, getJson, startTestNode } from "../support/node";
import { processCluster } from "../support/cluster";
import { spawnNode, type NodeProcess } from "../support/processes";
import { asNumber, execReportTrades, refBars, type RefTrade } from "../support/reference";

const SYMBOLS = ["BUST.A", "BUST.B", "BUST.C", "BUST.D", "BUST.E"];
const START = Date.UTC(2025, 0, 6, 9, 0);
const run = `${process.pid}-${Date.now().toString(36)}`;

/** Every bar of every symbol and interval equals the reference (retried until it does). */
async function eventuallyExact(url: string, trades: RefTrade[], what: string): Promise<void> {
  await eventually(
    async () => {
      await expectBarsEqualReference(url, trades, SYMBOLS);
      return true;
    },
    what,
    120_000,
  );
}

interface Row {
  symbol: string;
  interval: string;
  start_ms: number;
  open: string | null;
  high: string | null;
  low: string | null;
  close: string | null;
  volume: string;
  trades: number;
}

/** Every bar the history file holds equals the reference; returns how many rows it holds. */
function expectHistoryEqualsReference(file: string, trades: RefTrade[]): number {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db
      .prepare(
        `SELECT symbol, "interval", start_ms, open, high, low, close, volume, trades FROM bars`,
      )
      .all() as unknown as Row[];
    for (const row of rows) {
      const width = LIVE_MS[row.interval as LiveInterval];
      const want = refBars(trades, row.symbol, width).find((b) => b.startMs === row.start_ms);
      const got = {
        startMs: row.start_ms,
        open: row.open === null ? null : Number(row.open),
        high: row.high === null ? null : Number(row.high),
        low: row.low === null ? null : Number(row.low),
        close: row.close === null ? null : Number(row.close),
        volume: Number(row.volume),
        trades: row.trades,
      };
      const expected =
        want === undefined
          ? {
              startMs: row.start_ms,
              open: null,
              high: null,
              low: null,
              close: null,
              volume: 0,
              trades: 0,
            }
          : {
              startMs: want.startMs,
              open: asNumber(want.open),
              high: asNumber(want.high),
              low: asNumber(want.low),
              close: asNumber(want.close),
              volume: asNumber(want.volume),
              trades: want.trades,
            };
      expect({ symbol: row.symbol, interval: row.interval, got }).toEqual({
        symbol: row.symbol,
        interval: row.interval,
        got: expected,
      });
    }
    return rows.length;
  } finally {
    db.close();
  }
}

function historyFile(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith(".sqlite"));
  if (files.length !== 1) throw new Error(`expected one history file in ${dir}: ${files.join()}`);
  return path.join(dir, files[0]!);
}

describe("cancels and corrections", () => {
  it("replayed from a FIX file, leave exactly the bars of the trades in effect", async () => {
    const feed = correctionsFeed({
      symbols: SYMBOLS,
      startMs: START,
      minutes: 30,
      fillsPerMinute: 40,
      seed: 11,
      prefix: `file-${run}`,
    });
    const dir = mkdtempSync(path.join(tmpdir(), "tickstream-busts-"));
    const file = path.join(dir, "fills-and-busts.fix");
    writeFileSync(file, Buffer.concat([...feed.fills, ...feed.corrections]));
    const node = await startTestNode({ FEED_FILE: file, BATCH_MAX_RECORDS: "100" });
    try {
      await eventually(
        async () => ((await getJson(`${node.url}/api/ready`)).status === 200 ? true : undefined),
        "the replay to finish",
      );
      const trades = execReportTrades([...feed.fills, ...feed.corrections]);
      expect(trades.length).toBeLessThan(feed.fills.length);
      await eventuallyExact(node.url, trades, "bars equal to the reference");
      const { body } = await getJson(`${node.url}/api/stats`);
      const c = (body as { nodes: { corrections: Record<string, unknown> }[] }).nodes[0]!
        .corrections as { cancelled: number; corrected: number; skipped: Record<string, number> };
      expect(c.cancelled).toBeGreaterThan(0);
      expect(c.corrected).toBeGreaterThan(0);
      expect(c.skipped.unknown_trade).toBe(5);
      expect(c.skipped.duplicate).toBeGreaterThan(0);
    } finally {
      await node.stop();
    }
  }, 180_000);

  describe("through Kafka", () => {
    let kafka: KafkaHandle;
    let client: Kafka;

    beforeAll(async () => {
      kafka = await startKafka();
      client = new Kafka({
        clientId: "corrections-test",
        brokers: [kafka.brokers],
        logLevel: logLevel.NOTHING,
      });
    }, 120_000);
    afterAll(async () => {
      await kafka?.stop();
    });

    async function createTopic(topic: string): Promise<void> {
      const admin = client.admin();
      await admin.connect();
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic, numPartitions: 3 },
          { topic: `${topic}.dlq`, numPartitions: 1 },
        ],
      });
      await admin.disconnect();
    }

    async function produce(topic: string, values: Buffer[]): Promise<void> {
      const producer = client.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await producer.connect();
      for (let i = 0; i < values.length; i += 200) {
        await producer.send({
          topic,
          messages: values.slice(i, i + 200).map((v) => ({ key: symbolOf(v) ?? "none", value: v })),
          acks: -1,
        });
      }
      await producer.disconnect();
    }

    /** Settings of every node in these tests, besides its topic. */
    const SETTINGS = {
      KAFKA_PARTITIONS: "3",
      KAFKA_MAX_WAIT_MS: "50",
      BATCH_MAX_RECORDS: "100",
      HISTORY_FLUSH_MS: "100",
    };

    function env(topic: string, extra: Record<string, string>): Record<string, string> {
      return {
        KAFKA_BROKERS: kafka.brokers,
        KAFKA_TOPICS: topic,
        KAFKA_DLQ_TOPIC: `${topic}.dlq`,
        KAFKA_GROUP_ID: `g-${topic}`,
        ...SETTINGS,
        ...extra,
      };
    }

    it("apply minutes after their bars closed and reached history, across a SIGKILL and a restart", async () => {
      const topic = `busts-${run}`;
      await createTopic(topic);
      const feed = correctionsFeed({
        symbols: SYMBOLS,
        startMs: START,
        minutes: 40,
        fillsPerMinute: 30,
        seed: 7,
        prefix: topic,
      });
      const dir = mkdtempSync(path.join(tmpdir(), "tickstream-busts-kafka-"));
      const nodeEnv = env(topic, {
        HISTORY_URL: `sqlite:${path.join(dir, "history.sqlite")}`,
        NAMESPACE: `busts-${run}`,
      });
      let node: NodeProcess = await spawnNode(`busts-${run}`, nodeEnv);
      try {
        await produce(topic, feed.fills);
        await node.ready();
        const fillsOnly = execReportTrades(feed.fills);
        await eventuallyExact(node.url, fillsOnly, "the fills' bars");
        // The closed bars are in history before any bust arrives.
        const before = await eventually(() => {
          const n = expectHistoryEqualsReference(historyFile(dir), fillsOnly);
          return n > 100 ? n : undefined;
        }, "closed bars in history");
        expect(before).toBeGreaterThan(100);

        const half = Math.floor(feed.corrections.length / 2);
        await produce(topic, feed.corrections.slice(0, half));
        await eventually(async () => {
          const { body } = await getJson(`${node.url}/api/stats`);
          const c = (body as { nodes: { corrections?: { cancelled: number } }[] }).nodes[0]
            ?.corrections;
          return (c?.cancelled ?? 0) > 0 ? true : undefined;
        }, "some busts to be applied");
        await node.kill();
        await produce(topic, feed.corrections.slice(half));
        node = await spawnNode(`busts-${run}`, nodeEnv);
        await node.ready();

        const trades = execReportTrades([...feed.fills, ...feed.corrections]);
        await eventuallyExact(node.url, trades, "bars after every bust and correction");
        // History holds the corrected versions, not the fuller earlier ones.
        await eventually(() => {
          expectHistoryEqualsReference(historyFile(dir), trades);
          return true;
        }, "history to hold the corrected bars");
      } finally {
        await node.kill();
      }
    }, 300_000);

    it("survive handoffs and checkpoint restores in a cluster over NATS", async () => {
      const nats: NatsHandle = await startNats({ jetstream: true });
      const cluster = await processCluster({
        kafka,
        nats,
        name: "busts-cluster",
        partitions: 3,
        env: { ...SETTINGS, CHECKPOINT_INTERVAL_MS: "500" },
      });
      const topic = cluster.topic;
      const feed = correctionsFeed({
        symbols: SYMBOLS,
        startMs: START,
        minutes: 30,
        fillsPerMinute: 30,
        seed: 9,
        prefix: topic,
      });
      const spawn = async (name: string) => {
        const n = await cluster.spawn(name);
        await n.ready();
        return n;
      };
      try {
        const a = await spawn("bust-a");
        await produce(topic, feed.fills);
        await eventuallyExact(a.url, execReportTrades(feed.fills), "the fills' bars on one node");
        // A second node joins: symbols move to it, journals and all.
        const b = await spawn("bust-b");
        const half = Math.floor(feed.corrections.length / 2);
        await produce(topic, feed.corrections.slice(0, half));
        const partial = execReportTrades([...feed.fills, ...feed.corrections.slice(0, half)]);
        await eventuallyExact(b.url, partial, "bars after half the busts, across the join");
        // The joined node is killed: its symbols come back from their checkpoints elsewhere.
        await b.kill();
        await produce(topic, feed.corrections.slice(half));
        const trades = execReportTrades([...feed.fills, ...feed.corrections]);
        await eventuallyExact(a.url, trades, "bars after every bust, across a SIGKILL");
      } finally {
        await cluster.kill();
        await nats.stop();
      }
    }, 300_000);

    it("keeps two runs of one checkout apart: each namespace has its own history", async () => {
      const topic = `two-runs-${run}`;
      await createTopic(topic);
      const common = { symbols: SYMBOLS, startMs: START, minutes: 20, fillsPerMinute: 30 };
      const first = correctionsFeed({ ...common, seed: 21, prefix: `${topic}-1` });
      const second = correctionsFeed({ ...common, seed: 22, prefix: `${topic}-2` });
      const dir = mkdtempSync(path.join(tmpdir(), "tickstream-two-runs-"));
      const historyUrl = `sqlite:${path.join(dir, "history.sqlite")}`;
      const file = path.join(dir, "first.fix");
      writeFileSync(file, Buffer.concat([...first.fills, ...first.corrections]));

      // Run 1: a file replay in the default namespace, stopped gracefully (history written).
      const one = await spawnNode(`first-${run}`, { FEED_FILE: file, HISTORY_URL: historyUrl });
      await one.ready();
      const firstTrades = execReportTrades([...first.fills, ...first.corrections]);
      await eventuallyExact(one.url, firstTrades, "run 1's bars");
      await one.stop();

      // Run 2: other trades for the same symbols and times, from Kafka, in its own namespace.
      await produce(topic, [...second.fills, ...second.corrections]);
      const two = await spawnNode(
        `second-${run}`,
        env(topic, { HISTORY_URL: historyUrl, NAMESPACE: `second-${run}` }),
      );
      try {
        await two.ready();
        const secondTrades = execReportTrades([...second.fills, ...second.corrections]);
        await eventuallyExact(two.url, secondTrades, "run 2's bars, none of run 1's");
      } finally {
        await two.stop();
      }

      // Run 1's namespace still serves run 1's bars, from history alone.
      const again = await spawnNode(`first-again-${run}`, {
        SERVICES: "aggregator,api",
        HISTORY_URL: historyUrl,
      });
      try {
        await again.ready();
        // Each symbol's newest 1m bar never closed in run 1 (no later trade): history has the rest.
        for (const symbol of SYMBOLS) {
          const want = refBars(firstTrades, symbol, 60_000)
            .slice(0, -1)
            .map((x) => [x.startMs, asNumber(x.close), asNumber(x.volume), x.trades]);
          const { body } = await getJson(`${again.url}/api/bars/${symbol}?interval=1m&limit=10000`);
          const got = (
            body as { bars: { startMs: number; close: number; volume: number; trades: number }[] }
          ).bars
            .filter((x) => x.trades > 0)
            .map((x) => [x.startMs, x.close, x.volume, x.trades]);
          expect({ symbol, got }).toEqual({ symbol, got: want });
        }
      } finally {
        await again.stop();
      }
    }, 300_000);
  });
});
