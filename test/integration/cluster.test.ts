/**
 * A cluster of separate OS processes over a real nats-server and Kafka: two nodes stream the JSE
 * corpus, a third joins mid-stream, one leaves gracefully, another is killed with SIGKILL; at the
 * end every bar equals the independent computation, and the moves are reported.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { ownerOf } from "../../src/cluster/rendezvous";
import { frameRecords, symbolOf } from "../../src/fix/records";
import { fixFile } from "../support/fix-data";
import { eventually, getJson } from "../support/node";
import { spawnNode, type NodeProcess } from "../support/processes";
import { expectBarsEqualReference } from "../support/bars";
import { mdTrades } from "../support/reference";

const JSE = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));

describe("a cluster of Tickstream processes", () => {
  let kafka: KafkaHandle;
  let nats: NatsHandle;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const nodes: NodeProcess[] = [];

  beforeAll(async () => {
    [kafka, nats] = await Promise.all([startKafka(), startNats({ jetstream: true })]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await Promise.all([kafka?.stop(), nats?.stop()]);
  });

  it("stays exact through a join, a graceful leave and a SIGKILL", async () => {
    const topic = `cluster-${run}`;
    const client = new Kafka({
      clientId: "cluster-test",
      brokers: [kafka.brokers],
      logLevel: logLevel.NOTHING,
    });
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: 6 },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ],
    });
    await admin.disconnect();

    const env = {
      TRANSPORTER: nats.url,
      NAMESPACE: `cluster-${run}`,
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_TOPICS: topic,
      KAFKA_DLQ_TOPIC: `${topic}.dlq`,
      KAFKA_GROUP_ID: `g-${run}`,
      KAFKA_MAX_WAIT_MS: "50",
      KAFKA_SESSION_TIMEOUT_MS: "6000",
      HEARTBEAT_INTERVAL_S: "1",
      HEARTBEAT_TIMEOUT_S: "3",
      LOG_LEVEL: "info",
      FIX_MD_ENTRY_TYPES: "2,3",
      BATCH_MAX_RECORDS: "500",
    };
    const spawn = async (name: string) => {
      const n = await spawnNode(`${name}-${run}`, env);
      nodes.push(n);
      return n;
    };
    const a = await spawn("a");
    const b = await spawn("b");
    await Promise.all([a.ready(), b.ready()]);

    const all = frameRecords(JSE);
    const producer = client.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    let sent = 0;
    const produceSome = async (n: number) => {
      const chunk = all.slice(sent, sent + n);
      await producer.send({
        topic,
        acks: -1,
        messages: chunk.map((v) => ({ key: symbolOf(v), value: v })),
      });
      sent += chunk.length;
    };
    const applied = async (via: NodeProcess) => {
      const { body } = await getJson(`${via.url}/api/symbols`);
      return (body as { symbols: { trades: number }[] }).symbols.reduce((s, x) => s + x.trades, 0);
    };

    // Each MarketDataIncrementalRefresh of the corpus carries one trade: after n records, the
    // cluster must hold exactly the trades of their X messages.
    const tradesIn = (n: number) =>
      all.slice(0, n).filter((r) => r.includes("\x0135=X\x01")).length;
    const exactly = (via: NodeProcess, n: number, what: string) =>
      eventually(
        async () => ((await applied(via)) === tradesIn(n) ? true : undefined),
        what,
        90_000,
      ).catch((err: unknown) => {
        for (const node of nodes)
          writeFileSync(
            path.join(tmpdir(), `tickstream-cluster-${node.nodeID}.log`),
            node.output(),
          );
        throw err;
      });

    await produceSome(3000);
    await exactly(a, sent, "the first trades");

    // A third node joins mid-stream.
    const c = await spawn("c");
    await c.ready();
    // A joining node serves before every other node has processed its INFO; a membership change
    // (b leaving) while a and b do not know c yet leaves the nodes with different views of who
    // owns what. Known weakness (README, Durability): wait until the join is known everywhere.
    await eventually(
      () => [a, b].every((n) => n.output().includes(`Node '${c.nodeID}' connected`)) || undefined,
      "a and b to know c",
    );
    await produceSome(3000);
    await exactly(c, sent, "trades after the join (asked through the new node)");

    // b leaves gracefully (SIGTERM) while records keep coming: it hands its symbols over before
    // going. Moleculer withdraws b's services first, so for a moment b is no member yet still
    // holds states; their new owners must not load them from the checkpoints meanwhile.
    let exited = false;
    const stopping = b.stop().then(() => (exited = true));
    let during = 0;
    while (!exited && during < 3000) {
      await produceSome(100);
      during += 100;
    }
    await stopping;
    await produceSome(3000 - during);
    await exactly(
      a,
      sent,
      `trades after the graceful leave (${during} records produced while b was stopping)`,
    );

    // c is killed: its symbols are rebuilt from the log on their new owner.
    const killedAt = Date.now();
    await c.kill();
    const detected = await eventually(async () => {
      const { body } = await getJson(`${a.url}/api/stats`);
      const ids = (body as { nodes: { nodeID: string }[] }).nodes.map((n) => n.nodeID);
      return ids.includes(c.nodeID) ? undefined : Date.now() - killedAt;
    }, "the loss to be detected");
    await produceSome(all.length - sent);
    await producer.disconnect();

    const trades = mdTrades(JSE, ["2", "3"]);
    let lastSeen: unknown = null;
    const expected = new Map<string, number>();
    for (const t of trades) expected.set(t.symbol, (expected.get(t.symbol) ?? 0) + 1);
    await eventually(
      async () => {
        const { body } = await getJson(`${a.url}/api/symbols`);
        lastSeen = body;
        const got = new Map(
          (body as { symbols: { symbol: string; trades: number }[] }).symbols.map((s) => [
            s.symbol,
            s.trades,
          ]),
        );
        for (const [s, n] of got)
          if (n > (expected.get(s) ?? 0))
            throw new Error(`${s}: ${n} trades applied, ${expected.get(s) ?? 0} produced`);
        return [...expected].every(([s, n]) => got.get(s) === n) ? true : undefined;
      },
      "every trade applied exactly once",
      60_000,
    ).catch((err: unknown) => {
      const got = new Map(
        (lastSeen as { symbols: { symbol: string; trades: number }[] }).symbols.map((s) => [
          s.symbol,
          s.trades,
        ]),
      );
      const diff = [...expected]
        .filter(([s, n]) => got.get(s) !== n)
        .map(([s, n]) => `${s}:${got.get(s) ?? "-"}/${n}`);
      writeFileSync(path.join(tmpdir(), "tickstream-cluster-a.log"), a.output());
      console.log(`missing: ${diff.join(" ")}`);
      throw err;
    });
    await expectBarsEqualReference(a.url, trades, expected.keys());
    const symbols = [...expected.keys()];
    const moved = (before: string[], after: string[]) =>
      symbols.filter((s) => ownerOf(s, before) !== ownerOf(s, after)).length;
    const ids = [a, b, c].map((n) => n.nodeID);
    console.log(
      `${symbols.length} symbols; join (2 → 3 nodes) moved ${moved(ids.slice(0, 2), ids)}, graceful leave moved ${moved(ids, [ids[0]!, ids[2]!])}, ` +
        `SIGKILL moved ${moved([ids[0]!, ids[2]!], [ids[0]!])} (rebuilt from the log); loss detected after ${detected} ms (heartbeat 1 s, timeout 3 s)`,
    );
  }, 300_000);
});
