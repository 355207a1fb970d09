/**
 * Chaos: separate OS processes over a real nats-server (JetStream) and Kafka stream the JSE corpus
 * while, in a seeded random order, nodes are SIGKILLed and restarted under their IDs, paused with
 * SIGSTOP for less and for more than the heartbeat (3 s) and Kafka session (6 s) timeouts and
 * resumed, and the nats-server is restarted once. Checkpoints run every second. No symbol may ever
 * show more trades than exist (every poll checks it), and at the end every symbol's 1m, 5m and 1h
 * bars equal the independent computation over the whole stream. A second run starves one node's
 * event loop for 8 s (a synchronous busy loop, through the STARVE_ON_SIGUSR2_MS hook).
 *
 * CHAOS_SEED picks the order; CHAOS_RUNS repeats the first run with seeds SEED, SEED+1, ...
 */
import { readFileSync } from "node:fs";
import { custodyKey, JetStreamCustodyStore } from "../../src/custody/store";
import { mulberry32 } from "../../src/feed/synthetic";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { frameRecords } from "../../src/fix/records";
import { processCluster } from "../support/cluster";
import { fixFile } from "../support/fix-data";
import { eventually, getJson } from "../support/node";
import { expectBarsEqualReference } from "../support/bars";
import { mdTrades } from "../support/reference";

const JSE = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));
const SEED = Number(process.env.CHAOS_SEED ?? 20261203);
const RUNS = Number(process.env.CHAOS_RUNS ?? 1);
const ALL = frameRecords(JSE);
const TRADES = mdTrades(JSE, ["2", "3"]);
const EXPECTED = new Map<string, number>();
for (const t of TRADES) EXPECTED.set(t.symbol, (EXPECTED.get(t.symbol) ?? 0) + 1);

/** Two ingest nodes (one also holding actors), an actors-only node, a gateway; all serve REST. */
const ROLES: Record<string, string> = {
  ingest: "ingest,parser,api",
  mixed: "ingest,parser,aggregator,anomaly,api",
  actors1: "aggregator,anomaly,api",
  actors2: "aggregator,anomaly,api",
};

type Fault =
  | { kind: "kill"; node: string }
  | { kind: "pause"; node: string; ms: number }
  | { kind: "starve"; node: string }
  | { kind: "nats" };

function describeFault(f: Fault): string {
  if (f.kind === "nats") return "nats-server restart";
  return f.kind === "pause" ? `pause ${f.node} ${f.ms} ms` : `${f.kind} ${f.node}`;
}

describe("chaos: kills, pauses and a NATS restart during a stream", () => {
  let kafka: KafkaHandle;
  let nats: NatsHandle;

  beforeAll(async () => {
    [kafka, nats] = await Promise.all([startKafka(), startNats({ jetstream: true })]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([kafka?.stop(), nats?.stop()]);
  });

  /** Streams the corpus through a fresh cluster while `faults` happen one after another. */
  async function run(label: string, faults: Fault[]): Promise<void> {
    const cluster = await processCluster({
      kafka,
      nats,
      name: label,
      partitions: 6,
      env: {
        CHECKPOINT_INTERVAL_MS: "1000",
        STARVE_ON_SIGUSR2_MS: "8000",
        FIX_MD_ENTRY_TYPES: "2,3",
        BATCH_MAX_RECORDS: "200",
      },
    });
    const paused = new Set<string>();
    const start = (name: string) => cluster.spawn(name, { SERVICES: ROLES[name]! });
    const producer = cluster.producer(ALL);
    const log: string[] = [];
    let lastSeen: { symbol: string; trades: number }[] = [];
    const tradesIn = (n: number) =>
      ALL.slice(0, n).filter((r) => r.includes("\x0135=X\x01")).length;
    /** Trades per symbol as one answering gateway sees them; fails on any double count. */
    const applied = async (): Promise<number | undefined> => {
      for (const [name, n] of cluster.nodes) {
        if (paused.has(name)) continue;
        const res = await getJson(`${n.url}/api/symbols`, {}, 5000).catch(() => null);
        if (res?.status !== 200) continue;
        lastSeen = (res.body as { symbols: { symbol: string; trades: number }[] }).symbols;
        for (const s of lastSeen)
          if (s.trades > (EXPECTED.get(s.symbol) ?? 0))
            throw new Error(
              `${s.symbol}: ${s.trades} trades applied, only ${EXPECTED.get(s.symbol) ?? 0} exist`,
            );
        return lastSeen.reduce((sum, s) => sum + s.trades, 0);
      }
      return undefined;
    };
    const caughtUp = (what: string) =>
      eventually(
        async () => ((await applied()) === tradesIn(producer.sent) ? true : undefined),
        what,
        120_000,
      );
    const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    try {
      await Promise.all(Object.keys(ROLES).map(start));
      await Promise.all([...cluster.nodes.values()].map((n) => n.ready()));
      await producer.connect();
      const chunk = Math.floor(ALL.length / (faults.length + 1));
      for (const fault of faults) {
        await producer.send(Math.ceil(chunk / 2));
        const began = Date.now();
        // Each fault lands while the first half of a chunk is being consumed, and the second
        // half is produced during it.
        if (fault.kind === "kill") {
          await cluster.nodes.get(fault.node)!.kill();
          await producer.send(Math.floor(chunk / 2));
          await (await start(fault.node)).ready(120_000);
        } else if (fault.kind === "pause") {
          const victim = cluster.nodes.get(fault.node)!;
          paused.add(fault.node);
          victim.child.kill("SIGSTOP");
          await producer.send(Math.floor(chunk / 2));
          await hold(Math.max(0, fault.ms - (Date.now() - began)));
          victim.child.kill("SIGCONT");
          paused.delete(fault.node);
        } else if (fault.kind === "starve") {
          cluster.nodes.get(fault.node)!.child.kill("SIGUSR2");
          await producer.send(Math.floor(chunk / 2));
        } else {
          await nats.restart();
          await producer.send(Math.floor(chunk / 2));
        }
        await caughtUp(`all trades after ${describeFault(fault)}`);
        log.push(`${describeFault(fault)}: exact again after ${Date.now() - began} ms`);
      }
      await producer.send(ALL.length - producer.sent);
      await caughtUp("every trade of the corpus, exactly once");
      // Every bar of every symbol in every interval, asked through a gateway.
      await expectBarsEqualReference(cluster.nodes.get("ingest")!.url, TRADES, EXPECTED.keys());
      const outputs = [...cluster.nodes.values()].map((n) => n.output()).join("\n");
      const dropped = (outputs.match(/state superseded by a newer epoch/g) ?? []).length;
      console.log(
        `${label}: ${log.join("; ")}; ${EXPECTED.size} symbols exact (1m, 5m, 1h); ` +
          `superseded states dropped by the live nodes: ${dropped}`,
      );
    } catch (err) {
      cluster.saveLogs();
      const want = new Map<string, number>();
      for (const t of mdTrades(Buffer.concat(ALL.slice(0, producer.sent)), ["2", "3"]))
        want.set(t.symbol, (want.get(t.symbol) ?? 0) + 1);
      const got = new Map(lastSeen.map((s) => [s.symbol, s.trades]));
      const diff = [...want]
        .filter(([s, n]) => got.get(s) !== n)
        .map(([s, n]) => `${s}:${got.get(s) ?? "-"}/${n}`);
      const stats = await Promise.all(
        [...cluster.nodes].map(async ([name, n]) => {
          const res = await getJson(`${n.url}/api/stats`, {}, 5000).catch(() => null);
          const nodes = (res?.body as { nodes?: { nodeID: string; source: unknown }[] })?.nodes;
          return `${name}: ${JSON.stringify(nodes?.map((x) => [x.nodeID.split("-")[0], x.source]))}`;
        }),
      );
      const store = await JetStreamCustodyStore.open(
        nats.url,
        `tickstream-checkpoints-${cluster.topic}`,
      );
      const entries = await Promise.all(
        [...want]
          .filter(([s, n]) => got.get(s) !== n)
          .map(async ([s]) => {
            const e = await store.read(custodyKey("aggregator", s));
            return `${s}: epoch ${e?.epoch} holder ${e?.holder?.nodeID ?? "none"}`;
          }),
      );
      await store.close();
      console.log(
        `${label}; custody: ${entries.join(", ")}; ${log.join("; ")}; sent ${producer.sent} records, ${tradesIn(producer.sent)} trades, ` +
          `applied ${lastSeen.reduce((n, s) => n + s.trades, 0)}; differing: ${diff.join(" ")}; ` +
          `sources: ${stats[0] ?? ""}`,
      );
      throw err;
    } finally {
      await producer.disconnect().catch(() => undefined);
      for (const n of cluster.nodes.values()) n.child.kill("SIGCONT");
      await cluster.kill();
    }
  }

  /**
   * Every node killed once and paused once (below and above the timeouts, in turn), the
   * nats-server restarted once, in a seeded random order.
   */
  function faultsFor(seed: number): Fault[] {
    const rand = mulberry32(seed);
    const names = Object.keys(ROLES);
    const pauses = [1500, 4500, 9000, 12000];
    const faults: Fault[] = [
      ...names.map((node): Fault => ({ kind: "kill", node })),
      ...names.map((node, i): Fault => ({ kind: "pause", node, ms: pauses[i % pauses.length]! })),
      { kind: "nats" },
    ];
    return faults
      .map((f) => ({ f, k: rand() }))
      .sort((a, b) => a.k - b.k)
      .map(({ f }) => f);
  }

  for (let i = 0; i < RUNS; i++) {
    it(`keeps every bar exact through kills, pauses and a NATS restart (seed ${SEED + i})`, async () => {
      await run(`chaos-${SEED + i}`, faultsFor(SEED + i));
    }, 900_000);
  }

  it("keeps every bar exact when a node's event loop is blocked for 8 s", async () => {
    await run("starved", [
      { kind: "starve", node: "mixed" },
      { kind: "starve", node: "actors1" },
    ]);
  }, 600_000);
});
