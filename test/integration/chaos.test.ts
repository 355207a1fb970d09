/**
 * Chaos: separate OS processes over a real nats-server (JetStream) and Kafka stream the JSE corpus
 * while nodes are SIGKILLed one after another — ingest nodes, actor nodes, gateways, in a seeded
 * random order that hits every node — and restarted under the same node ID. Checkpoints run every
 * second. Nothing may be counted twice at any moment (every poll checks it), and at the end every
 * symbol's 1m, 5m and 1h bars equal the independent computation over the whole stream.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { mulberry32 } from "../../src/feed/synthetic";
import { startKafka, startNats, type KafkaHandle, type NatsHandle } from "../../src/infra/local";
import { frameRecords, symbolOf } from "../../src/fix/records";
import { fixFile } from "../support/fix-data";
import { eventually, getJson } from "../support/node";
import { spawnNode, type NodeProcess } from "../support/processes";
import { expectBarsEqualReference } from "../support/bars";
import { mdTrades } from "../support/reference";

const JSE = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));
const SEED = Number(process.env.CHAOS_SEED ?? 20261125);

interface SymbolRow {
  symbol: string;
  trades: number;
}

describe("chaos: random SIGKILLs during a stream", () => {
  let kafka: KafkaHandle;
  let nats: NatsHandle;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const live = new Map<string, NodeProcess>();
  const dead: [string, NodeProcess][] = [];

  beforeAll(async () => {
    [kafka, nats] = await Promise.all([startKafka(), startNats({ jetstream: true })]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([...live.values()].map((n) => n.kill()));
    await Promise.all([kafka?.stop(), nats?.stop()]);
  });

  it("keeps every bar exact while random nodes are killed and restarted", async () => {
    const topic = `chaos-${run}`;
    const client = new Kafka({
      clientId: "chaos-test",
      brokers: [kafka.brokers],
      logLevel: logLevel.NOTHING,
    });
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: 4 },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ],
    });
    await admin.disconnect();

    const env = {
      TRANSPORTER: nats.url,
      NAMESPACE: `chaos-${run}`,
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_TOPICS: topic,
      KAFKA_DLQ_TOPIC: `${topic}.dlq`,
      KAFKA_GROUP_ID: `g-${run}`,
      KAFKA_MAX_WAIT_MS: "50",
      KAFKA_SESSION_TIMEOUT_MS: "6000",
      HEARTBEAT_INTERVAL_S: "1",
      HEARTBEAT_TIMEOUT_S: "3",
      CHECKPOINT_INTERVAL_MS: "1000",
      LOG_LEVEL: "info",
      FIX_MD_ENTRY_TYPES: "2,3",
      BATCH_MAX_RECORDS: "200",
    };
    // Two ingest nodes (one also a gateway only, one also holding actors), two actor nodes; every
    // node serves REST so that the test can ask any survivor.
    const roles: Record<string, string> = {
      ingest: "ingest,parser,api",
      mixed: "ingest,parser,aggregator,anomaly,api",
      actors1: "aggregator,anomaly,api",
      actors2: "aggregator,anomaly,api",
    };
    const logs: string[] = [];
    const start = async (name: string) => {
      const n = await spawnNode(`${name}-${run}`, { ...env, SERVICES: roles[name]! });
      live.set(name, n);
      return n;
    };
    const names = Object.keys(roles);
    await Promise.all(names.map(start));
    await Promise.all([...live.values()].map((n) => n.ready()));

    const all = frameRecords(JSE);
    const trades = mdTrades(JSE, ["2", "3"]);
    const expected = new Map<string, number>();
    for (const t of trades) expected.set(t.symbol, (expected.get(t.symbol) ?? 0) + 1);
    const producer = client.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    let sent = 0;
    const produce = async (n: number) => {
      const chunk = all.slice(sent, sent + n);
      if (chunk.length === 0) return;
      await producer.send({
        topic,
        acks: -1,
        messages: chunk.map((v) => ({ key: symbolOf(v), value: v })),
      });
      sent += chunk.length;
    };
    const tradesIn = (n: number) =>
      all.slice(0, n).filter((r) => r.includes("\x0135=X\x01")).length;

    /** Trades per symbol as one surviving gateway sees them; fails on any double count. */
    let lastSeen: SymbolRow[] = [];
    const applied = async (): Promise<number | undefined> => {
      for (const n of live.values()) {
        const res = await getJson(`${n.url}/api/symbols`).catch(() => null);
        if (res?.status !== 200) continue;
        lastSeen = (res.body as { symbols: SymbolRow[] }).symbols;
        for (const s of lastSeen)
          if (s.trades > (expected.get(s.symbol) ?? 0))
            throw new Error(
              `${s.symbol}: ${s.trades} trades applied, only ${expected.get(s.symbol) ?? 0} exist`,
            );
        return lastSeen.reduce((sum, s) => sum + s.trades, 0);
      }
      return undefined;
    };
    const caughtUp = (what: string, timeoutMs = 120_000) =>
      eventually(
        async () => ((await applied()) === tradesIn(sent) ? true : undefined),
        what,
        timeoutMs,
      );

    // Every node is killed at least once, in a seeded random order, then two more at random.
    const rand = mulberry32(SEED);
    const order = [...names].sort(() => rand() - 0.5);
    order.push(
      names[Math.floor(rand() * names.length)]!,
      names[Math.floor(rand() * names.length)]!,
    );
    const rounds = order.length;
    const chunk = Math.floor(all.length / (rounds + 1));
    const recoveries: string[] = [];
    try {
      for (const victim of order) {
        await produce(Math.ceil(chunk / 2));
        // Killed while the chunk is being consumed: mid-stream, not at a quiet moment.
        await live.get(victim)!.kill();
        dead.push([victim, live.get(victim)!]);
        logs.push(`killed ${victim} after ${sent} records`);
        await produce(Math.floor(chunk / 2));
        const restartedAt = Date.now();
        const back = await start(victim);
        await back.ready(120_000);
        await caughtUp(`all trades after killing ${victim}`);
        recoveries.push(`${victim} ${Date.now() - restartedAt} ms`);
      }
      await produce(all.length - sent);
      await producer.disconnect();
      await caughtUp("every trade of the corpus, exactly once");
    } catch (err) {
      for (const [name, n] of live)
        writeFileSync(path.join(tmpdir(), `tickstream-chaos-${name}.log`), n.output());
      dead.forEach(([name, n], i) =>
        writeFileSync(path.join(tmpdir(), `tickstream-chaos-${name}-killed-${i}.log`), n.output()),
      );
      console.log(`applied ${await applied().catch(() => "?")} of ${tradesIn(sent)} sent`);
      const got = new Map(lastSeen.map((s) => [s.symbol, s.trades]));
      const diff = [...expected]
        .filter(([s, n]) => got.get(s) !== n)
        .map(([s, n]) => `${s}:${got.get(s) ?? "-"}/${n}`);
      console.log(`seed ${SEED}; ${logs.join("; ")}; differing: ${diff.join(" ")}`);
      throw err;
    }

    // Every bar of every symbol in every interval, asked through a gateway.
    await expectBarsEqualReference(live.get("ingest")!.url, trades, expected.keys());
    const outputs = [...live.values()].map((n) => n.output()).join("\n");
    const restored = (outputs.match(/restored from the checkpoint store/g) ?? []).length;
    console.log(
      `chaos seed ${SEED}: ${logs.join("; ")}; back and caught up after: ${recoveries.join(", ")}; ` +
        `${expected.size} symbols exact (1m, 5m, 1h); restores from checkpoints logged by the live nodes: ${restored}`,
    );
  }, 600_000);
});
