/**
 * A cluster of separate OS processes over a real nats-server and Kafka: two nodes stream the JSE
 * corpus, a third joins mid-stream, one leaves gracefully, another is killed with SIGKILL; at the
 * end every bar equals the independent computation, and the moves are reported.
 */
import { readFileSync } from "node:fs";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { ownerOf } from "../../src/cluster/rendezvous";
import { frameRecords } from "../../src/fix/records";
import { processCluster, type ProcessCluster } from "../support/cluster";
import { fixFile } from "../support/fix-data";
import { eventually, getJson } from "../support/node";
import type { NodeProcess } from "../support/processes";
import { expectBarsEqualReference } from "../support/bars";
import { mdTrades } from "../support/reference";

const JSE = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));

describe("a cluster of Tickstream processes", () => {
  let kafka: KafkaHandle;
  let nats: NatsHandle;
  let cluster: ProcessCluster;

  beforeAll(async () => {
    [kafka, nats] = await Promise.all([startKafka(), startNats({ jetstream: true })]);
    cluster = await processCluster({
      kafka,
      nats,
      name: "cluster",
      partitions: 6,
      env: { FIX_MD_ENTRY_TYPES: "2,3", BATCH_MAX_RECORDS: "500" },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.kill();
    await Promise.all([kafka?.stop(), nats?.stop()]);
  });

  it("stays exact through a join, a graceful leave and a SIGKILL", async () => {
    const a = await cluster.spawn("a");
    const b = await cluster.spawn("b");
    await Promise.all([a.ready(), b.ready()]);

    const all = frameRecords(JSE);
    const producer = cluster.producer(all);
    await producer.connect();
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
        cluster.saveLogs();
        throw err;
      });

    await producer.send(3000);
    await exactly(a, producer.sent, "the first trades");

    // A third node joins mid-stream.
    const c = await cluster.spawn("c");
    await c.ready();
    // A joining node serves before every other node has processed its INFO; a membership change
    // (b leaving) while a and b do not know c yet leaves the nodes with different views of who
    // owns what. Known weakness (README, Durability): wait until the join is known everywhere.
    await eventually(
      () => [a, b].every((n) => n.output().includes(`Node '${c.nodeID}' connected`)) || undefined,
      "a and b to know c",
    );
    await producer.send(3000);
    await exactly(c, producer.sent, "trades after the join (asked through the new node)");

    // b leaves gracefully (SIGTERM) while records keep coming: it hands its symbols over before
    // going. Moleculer withdraws b's services first, so for a moment b is no member yet still
    // holds states; their new owners must not load them from the checkpoints meanwhile.
    let exited = false;
    const stopping = b.stop().then(() => (exited = true));
    let during = 0;
    while (!exited && during < 3000) {
      await producer.send(100);
      during += 100;
    }
    await stopping;
    await producer.send(3000 - during);
    await exactly(
      a,
      producer.sent,
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
    await producer.send(all.length - producer.sent);
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
      cluster.saveLogs();
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
