/**
 * Kafka ingestion against a real KRaft broker (scripts/infra/kafka.ts): records produced by kcat (an
 * independent client) become exactly the bars computed here independently; rejected records land
 * in the dead-letter topic with their reasons; a node killed with SIGKILL mid-stream and restarted
 * serves exactly the right bars; two ingest nodes share a topic's partitions and stay exact.
 * Each test owns its topics, group id and ports.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { encodeFix, fixTimestamp } from "../../src/fix/encode";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { frameRecords, symbolOf } from "../../src/fix/records";
import { native } from "../../src/native";
import { fixFile } from "../support/fix-data";
import { eventually, getJson, startTestNode } from "../support/node";
import { spawnNode, type NodeProcess } from "../support/processes";
import { expectBarsEqualReference } from "../support/bars";
import { mdTrades, type RefTrade } from "../support/reference";

const JSE = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));

function kcat(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("kcat", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kcat ${args.join(" ")}: ${err}`)),
    );
  });
}

/** Compares every bar of the busiest, a quiet and the 17-digit-price symbol, for all intervals. */
async function expectExactBars(url: string, trades: RefTrade[]): Promise<void> {
  const counts = new Map<string, number>();
  for (const t of trades) counts.set(t.symbol, (counts.get(t.symbol) ?? 0) + 1);
  const sorted = [...counts.keys()].sort((a, b) => counts.get(b)! - counts.get(a)!);
  await expectBarsEqualReference(
    url,
    trades,
    new Set([sorted[0]!, sorted[1]!, sorted.at(-1)!, "J200"]),
  );
}

async function appliedPerSymbol(url: string): Promise<Map<string, number>> {
  const { body } = await getJson(`${url}/api/symbols`);
  return new Map(
    (body as { symbols: { symbol: string; trades: number }[] }).symbols.map((s) => [
      s.symbol,
      s.trades,
    ]),
  );
}

function expectedPerSymbol(trades: RefTrade[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of trades) m.set(t.symbol, (m.get(t.symbol) ?? 0) + 1);
  return m;
}

/** Waits until the node has applied exactly the expected trades per symbol (never more). */
async function waitForExactCounts(
  url: string,
  expected: Map<string, number>,
  what: string,
): Promise<void> {
  const total = [...expected.values()].reduce((a, b) => a + b, 0);
  await eventually(
    async () => {
      const got = await appliedPerSymbol(url);
      const sum = [...got.values()].reduce((a, b) => a + b, 0);
      if (sum > total) throw new Error(`applied ${sum} trades, more than the ${total} produced`);
      if (sum < total) throw new Error(`applied ${sum} of the ${total} trades produced so far`);
      return true;
    },
    what,
    90_000,
  );
  expect(await appliedPerSymbol(url)).toEqual(expected);
}

describe("Kafka ingestion", () => {
  let kafka: KafkaHandle;
  let client: Kafka;
  const trades = mdTrades(JSE, ["2", "3"]);
  const records = frameRecords(JSE);
  const run = `${process.pid}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    kafka = await startKafka();
    client = new Kafka({
      clientId: "kafka-test",
      brokers: [kafka.brokers],
      logLevel: logLevel.NOTHING,
    });
  }, 120_000);
  afterAll(async () => {
    await kafka?.stop();
  });

  async function createTopic(topic: string, partitions: number): Promise<void> {
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: partitions },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ],
    });
    await admin.disconnect();
  }

  async function produce(topic: string, values: Buffer[], paceMs = 0): Promise<void> {
    const producer = client.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    for (let i = 0; i < values.length; i += 500) {
      const chunk = values.slice(i, i + 500);
      await producer.send({
        topic,
        messages: chunk.map((v) => ({
          key: symbolOf(v) ?? "none",
          value: v,
          headers: { crc32: String(native.crc32(v)) },
        })),
        acks: -1,
      });
      if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
    }
    await producer.disconnect();
  }

  function kafkaEnv(topic: string, group: string): Record<string, string> {
    return {
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_TOPICS: topic,
      KAFKA_DLQ_TOPIC: `${topic}.dlq`,
      KAFKA_GROUP_ID: group,
      KAFKA_PARTITIONS: "3",
      KAFKA_MAX_WAIT_MS: "50",
      FIX_MD_ENTRY_TYPES: "2,3",
      BATCH_MAX_RECORDS: "1000",
    };
  }

  it("aggregates records produced by kcat exactly and dead-letters the malformed ones with their reasons", async () => {
    const topic = `kcat-${run}`;
    await createTopic(topic, 3);
    const at = fixTimestamp(Date.UTC(2011, 10, 24, 7, 0, 0));
    const broken: [Buffer, string][] = [
      [
        (() => {
          const b = Buffer.from(encodeFix("FIX.4.4", "0", [[52, at]]));
          b[b.length - 2] = b[b.length - 2] === 0x30 ? 0x31 : 0x30;
          return b;
        })(),
        "CHECKSUM",
      ],
      [
        encodeFix("FIX.4.4", "8", [
          [17, "E1"],
          [31, "0"],
          [32, "5"],
          [55, "J200"],
          [60, at],
          [150, "F"],
        ]),
        "BAD_PRICE",
      ],
      [
        encodeFix("FIX.4.4", "8", [
          [17, "E2"],
          [31, "10"],
          [32, "5"],
          [55, "J200"],
          [150, "F"],
          [60, "20111324-07:00:00"],
        ]),
        "BAD_TIMESTAMP",
      ],
      [Buffer.from("not fix at all"), "GARBLED"],
      [encodeFix("FIX.4.4", "0", [[52, at]]).subarray(0, 30), "TRUNCATED"],
    ];
    const dir = mkdtempSync(path.join(tmpdir(), "tickstream-kcat-"));
    const file = path.join(dir, "records.tsv");
    const lines = [...records, ...broken.map(([b]) => b)].map(
      (v) => `${symbolOf(v) ?? "none"}\t${v.toString("latin1")}`,
    );
    writeFileSync(file, lines.join("\n") + "\n", "latin1");
    await kcat(["-P", "-b", kafka.brokers, "-t", topic, "-K", "\t", "-l", file]);
    // One record whose crc32 header does not match its (valid) payload.
    const crcFile = path.join(dir, "crc.tsv");
    writeFileSync(
      crcFile,
      `J200\t${encodeFix("FIX.4.4", "0", [[52, at]]).toString("latin1")}\n`,
      "latin1",
    );
    await kcat([
      "-P",
      "-b",
      kafka.brokers,
      "-t",
      topic,
      "-K",
      "\t",
      "-H",
      "crc32=12345",
      "-l",
      crcFile,
    ]);

    const node = await startTestNode(kafkaEnv(topic, `g-kcat-${run}`));
    try {
      await waitForExactCounts(node.url, expectedPerSymbol(trades), "all trades to be applied");
      await expectExactBars(node.url, trades);
      // Consumer lag is measured (every 5 s) and is nothing once everything is applied.
      await eventually(async () => {
        const { body } = await getJson(`${node.url}/api/stats`);
        const source = (body as { nodes: { source: { lag: number; lagMeasuredAtMs: number } }[] })
          .nodes[0]!.source;
        return source.lagMeasuredAtMs > 0 && source.lag === 0 ? true : undefined;
      }, "lag to be measured as 0");
      const dlq = await eventually(async () => {
        const out = await kcat([
          "-C",
          "-b",
          kafka.brokers,
          "-t",
          `${topic}.dlq`,
          "-o",
          "beginning",
          "-e",
          "-q",
          "-f",
          "%h\t%s\n",
        ]);
        const rows = out.split("\n").filter((l) => l.includes("reason="));
        return rows.length >= broken.length + 1 ? rows : undefined;
      }, "the dead letters");
      const reasons = dlq.map((r) => /(?:^|,)reason=([A-Z_0-9]+)/.exec(r)?.[1]).sort();
      expect(reasons).toEqual([...broken.map(([, r]) => r), "CRC32"].sort());
      for (const row of dlq)
        expect(row).toMatch(
          new RegExp(`source\\.topic=${topic},source\\.partition=\\d,source\\.offset=\\d+`),
        );
      // Payloads are unchanged.
      const bad = dlq.find((r) => r.includes("reason=GARBLED"))!;
      expect(bad.slice(bad.indexOf("\t") + 1)).toBe("not fix at all");
    } finally {
      await node.stop();
    }
  }, 180_000);

  it("serves exact bars after a SIGKILL mid-stream and a restart: nothing lost, nothing counted twice", async () => {
    const topic = `kill-${run}`;
    await createTopic(topic, 3);
    const env = kafkaEnv(topic, `g-kill-${run}`);
    let node: NodeProcess = await spawnNode(`kill-a-${run}`, env);
    const producing = produce(topic, records, 150);
    try {
      await node.ready();
      await eventually(async () => {
        const applied = [...(await appliedPerSymbol(node.url)).values()].reduce((a, b) => a + b, 0);
        return applied > 2000 ? true : undefined;
      }, "the node to be mid-stream");
      await node.kill();
      node = await spawnNode(`kill-a-${run}`, env);
      await producing;
      await node.ready();
      await waitForExactCounts(
        node.url,
        expectedPerSymbol(trades),
        "the restarted node to apply every trade exactly once",
      );
      await expectExactBars(node.url, trades);
    } finally {
      await producing.catch(() => undefined);
      await node.kill();
    }
  }, 240_000);

  it("keeps memory bounded while a producer runs far ahead of the consumer", async () => {
    const topic = `flood-${run}`;
    await createTopic(topic, 3);
    const { SyntheticMarket } = await import("../../src/feed/synthetic");
    const market = new SyntheticMarket({
      symbols: 500,
      seed: 3,
      malformedRatio: 0,
      jumpProbability: 0,
    });
    const TOTAL = 500_000;
    // Everything is in Kafka before the node starts: the backlog is the whole topic.
    const values: Buffer[] = [];
    for (let i = 0; i < TOTAL; i += 5000) values.push(...market.next(5000, Date.now()));
    const backlogMb = values.reduce((n, v) => n + v.length, 0) / 1e6;
    await produce(topic, values);
    values.length = 0;
    const node = await spawnNode(`flood-${run}`, {
      ...kafkaEnv(topic, `g-flood-${run}`),
      KAFKA_MAX_BYTES_PER_PARTITION: "262144",
      LOG_LEVEL: "info",
      // State is bounded by its own settings (ids per symbol × symbols); keep it small so that what
      // the test measures is buffering, which must not grow with the backlog.
      DEDUPE_CAPACITY: "256",
      // A V8 heap far smaller than the backlog: if anything queued records, the node would die.
      NODE_OPTIONS: "--max-old-space-size=96",
    });
    const rssMb = () => {
      const status = readFileSync(`/proc/${node.child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    };
    try {
      let maxLag = 0;
      const received = async () => {
        const { body } = await getJson(`${node.url}/api/stats`);
        const n = (body as { nodes: { messages: { received: number }; source: { lag: number } }[] })
          .nodes[0];
        maxLag = Math.max(maxLag, n?.source.lag ?? 0);
        return n?.messages.received ?? 0;
      };
      // Once a fifth is consumed, the heap and the 500 symbols' state have warmed up; the rest of the
      // backlog must drain within the same small heap.
      await eventually(
        async () => ((await received()) > TOTAL / 5 ? true : undefined),
        "a fifth of the backlog",
        120_000,
      );
      const warm = rssMb();
      const remaining = TOTAL - (await received());
      let peak = warm;
      await eventually(
        async () => {
          peak = Math.max(peak, rssMb());
          const { body } = await getJson(`${node.url}/api/stats`);
          const n = (
            body as { nodes: { messages: { received: number }; source: { lag: number } }[] }
          ).nodes[0]!;
          maxLag = Math.max(maxLag, n.source.lag);
          return n.messages.received >= TOTAL ? true : undefined;
        },
        "the backlog to drain",
        180_000,
      );
      const caughtUp = await eventually(
        () =>
          /"replayRecords":(\d+),"replayMs":(\d+),"recordsPerSec":(\d+)/.exec(node.output()) ??
          undefined,
        "the catch-up log line",
      );
      console.log(
        `backlog ${TOTAL} records (${backlogMb.toFixed(0)} MB in Kafka): RSS ${warm.toFixed(0)} MB with ${remaining} records still to go, peak ${peak.toFixed(0)} MB; lag seen up to ${maxLag}; replayed ${caughtUp[1]} records in ${caughtUp[2]} ms (${caughtUp[3]} records/s)`,
      );
      expect(remaining).toBeGreaterThan(TOTAL / 2);
      expect(node.child.exitCode).toBeNull();
      expect(maxLag).toBeGreaterThan(0); // the lag gauge saw the backlog
      // Fetches are bounded (3 partitions × 256 KB): draining the rest adds no memory worth the name.
      expect(peak - warm).toBeLessThan(64);
    } finally {
      await node.kill();
    }
  }, 240_000);

  it("produces keyed FIX records with crc32 headers with `npm run feed`", async () => {
    const topic = `feed-${run}`;
    const { spawnSync } = await import("node:child_process");
    const res = spawnSync(
      path.join(__dirname, "..", "..", "node_modules", ".bin", "node"),
      [
        path.join(__dirname, "..", "..", "dist", "scripts", "feed.js"),
        "--brokers",
        kafka.brokers,
        "--synthetic",
        "--count",
        "3000",
        "--rate",
        "0",
        "--symbols",
        "5",
        "--topic",
        topic,
        "--partitions",
        "3",
      ],
      { encoding: "utf8" },
    );
    expect(res.status).toBe(0);
    expect(JSON.parse(res.stderr.trim().split("\n").at(-1)!)).toMatchObject({
      topic,
      sent: 3000,
      errors: 0,
    });
    const out = await kcat([
      "-C",
      "-b",
      kafka.brokers,
      "-t",
      topic,
      "-o",
      "beginning",
      "-e",
      "-q",
      "-f",
      "%k\t%h\t%s\n",
    ]);
    const rows = out.split("\n").filter((l) => l !== "");
    expect(rows).toHaveLength(3000);
    for (const row of rows.slice(0, 200)) {
      const [key, headers, value] = row.split("\t");
      const crc = /crc32=(\d+)/.exec(headers!)?.[1];
      expect(Number(crc)).toBe(native.crc32(Buffer.from(value!, "latin1")));
      if (value!.includes("\x0155=")) expect(value).toContain(`\x0155=${key}\x01`);
    }
    expect(
      spawnSync(
        path.join(__dirname, "..", "..", "node_modules", ".bin", "node"),
        [path.join(__dirname, "..", "..", "dist", "scripts", "feed.js"), "--synthetic"],
        { encoding: "utf8" },
      ).status,
    ).toBe(2);
  }, 60_000);

  describe("with two ingest nodes over NATS", () => {
    let nats: NatsHandle;
    beforeAll(async () => {
      nats = await startNats({ jetstream: true });
    });
    afterAll(() => nats?.stop());

    it("splits a 3-partition topic between them and stays exact", async () => {
      const topic = `split-${run}`;
      await createTopic(topic, 3);
      const env = {
        ...kafkaEnv(topic, `g-split-${run}`),
        TRANSPORTER: nats.url,
        NAMESPACE: `split-${run}`,
      };
      const a = await spawnNode(`split-a-${run}`, env);
      const b = await spawnNode(`split-b-${run}`, { ...env, SERVICES: "ingest,parser,api" });
      try {
        await Promise.all([a.ready(), b.ready()]);
        await produce(topic, records);
        try {
          await waitForExactCounts(
            a.url,
            expectedPerSymbol(trades),
            "both nodes' partitions to be applied",
          );
        } catch (e) {
          // What the nodes said is what explains a shortfall (a crash, a stuck retry).
          console.log(`node a:\n${a.output().slice(-6000)}\nnode b:\n${b.output().slice(-6000)}`);
          throw e;
        }
        await expectExactBars(b.url, trades); // asked through the other node's gateway
        const { body } = await getJson(`${a.url}/api/stats`);
        const ingest = (body as { nodes: { nodeID: string; messages: { received: number } }[] })
          .nodes;
        const received = new Map(ingest.map((n) => [n.nodeID, n.messages.received]));
        expect(received.get(a.nodeID)).toBeGreaterThan(0);
        expect(received.get(b.nodeID)).toBeGreaterThan(0);
      } finally {
        await Promise.all([a.kill(), b.kill()]);
      }
    }, 240_000);
  });
});
