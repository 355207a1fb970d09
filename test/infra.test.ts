/**
 * The real local infrastructure works: a KRaft Kafka broker (scripts/infra/kafka.ts) spoken to by two
 * independent clients (kcat/librdkafka and kafkajs), surviving a graceful restart and a SIGKILL, and a
 * NATS server with JetStream. Needs java, mvn, kcat and nats-server (scripts/infra/install-system-deps.sh).
 */
import { spawn } from "node:child_process";
import { Kafka, logLevel, type Admin, type EachMessagePayload } from "kafkajs";
import { connect, StringCodec } from "nats";
import { startKafka, type KafkaHandle } from "../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../scripts/infra/nats";
import { waitFor } from "../scripts/infra/processes";

const TOPIC = "infra-test-trades";
const PARTITIONS = 3;
// Keyed lines as kcat reads them with -K '\t'.
const RECORDS = Array.from({ length: 30 }, (_, i) => ({ key: `SYM${i % 7}`, value: `trade-${i}` }));

function runKcat(args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("kcat", args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`kcat ${args.join(" ")} exited ${String(code)}: ${err}`)),
    );
    child.stdin.end(stdin ?? "");
  });
}

/** Every record of TOPIC, read by kcat (-e: stop at the end of all partitions). */
async function dumpWithKcat(
  brokers: string,
): Promise<Array<{ key: string; value: string; partition: number }>> {
  const out = await runKcat([
    "-C",
    "-b",
    brokers,
    "-t",
    TOPIC,
    "-o",
    "beginning",
    "-e",
    "-q",
    "-f",
    "%k\t%s\t%p\n",
  ]);
  return out
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => {
      const [key = "", value = "", partition = "-1"] = l.split("\t");
      return { key, value, partition: Number(partition) };
    });
}

async function totalHighWatermark(admin: Admin): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(TOPIC);
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

describe("local infrastructure (real Kafka + NATS)", () => {
  let kafka: KafkaHandle;
  let nats: NatsHandle;
  let client: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    const [k, n] = await Promise.allSettled([startKafka(), startNats({ jetstream: true })]);
    if (k.status === "fulfilled") kafka = k.value;
    if (n.status === "fulfilled") nats = n.value;
    if (k.status === "rejected") throw k.reason;
    if (n.status === "rejected") throw n.reason;
    client = new Kafka({
      clientId: "infra-test",
      brokers: [kafka.brokers],
      logLevel: logLevel.ERROR,
    });
    admin = client.admin();
    await admin.connect();
  }, 300_000); // first run ever includes the Maven download of the broker jars

  afterAll(async () => {
    await admin?.disconnect();
    await Promise.all([kafka?.stop(), nats?.stop()]);
  });

  test("kcat produces keyed records into a 3-partition topic, kafkajs consumes them", async () => {
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: PARTITIONS }],
      waitForLeaders: true,
    });
    const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    expect(meta.topics[0]?.partitions).toHaveLength(PARTITIONS);

    await runKcat(
      ["-P", "-b", kafka.brokers, "-t", TOPIC, "-K", "\t"],
      RECORDS.map((r) => `${r.key}\t${r.value}\n`).join(""),
    );

    const received: Array<{ key: string; value: string; partition: number }> = [];
    const consumer = client.consumer({ groupId: `infra-test-${Date.now()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message, partition }: EachMessagePayload) => {
          received.push({
            key: message.key?.toString() ?? "",
            value: message.value?.toString() ?? "",
            partition,
          });
          return Promise.resolve();
        },
      });
      await waitFor(() => received.length >= RECORDS.length, {
        timeoutMs: 30_000,
        what: `${RECORDS.length} records via kafkajs`,
      });
    } finally {
      await consumer.disconnect();
    }

    expect(received.map((r) => r.value).sort()).toEqual(RECORDS.map((r) => r.value).sort());
    for (const r of received) expect(r.key).toBe(RECORDS.find((x) => x.value === r.value)?.key);
    // Keyed: one key, one partition; 7 keys spread over more than one of the 3 partitions.
    const partitionOfKey = new Map<string, Set<number>>();
    for (const r of received)
      partitionOfKey.set(r.key, (partitionOfKey.get(r.key) ?? new Set()).add(r.partition));
    for (const parts of partitionOfKey.values()) expect(parts.size).toBe(1);
    expect(new Set(received.map((r) => r.partition)).size).toBeGreaterThan(1);
  });

  test("Kafka 4.x rejects records stamped more than an hour in the future", async () => {
    // A quiet client: the rejection is expected, kafkajs would log it as an ERROR.
    const quiet = new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
    const producer = quiet.producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      await expect(
        producer.send({
          topic: TOPIC,
          messages: [
            {
              key: "SYM0",
              value: "from-the-future",
              timestamp: String(Date.now() + 2 * 3_600_000),
            },
          ],
        }),
      ).rejects.toThrow(/timestamp/i);
    } finally {
      await producer.disconnect();
    }
    expect(await totalHighWatermark(admin)).toBe(RECORDS.length);
  });

  test("restart() keeps the topic and its records; so does recovery after kill()", async () => {
    await kafka.restart();
    await waitFor(async () => (await totalHighWatermark(admin)) === RECORDS.length, {
      timeoutMs: 30_000,
      what: "the topic's offsets after a graceful restart",
    });
    expect((await dumpWithKcat(kafka.brokers)).map((r) => r.value).sort()).toEqual(
      RECORDS.map((r) => r.value).sort(),
    );

    kafka.kill(); // SIGKILL: no controlled shutdown, log recovery on the next start
    await kafka.restart();
    await waitFor(async () => (await totalHighWatermark(admin)) === RECORDS.length, {
      timeoutMs: 30_000,
      what: "the topic's offsets after SIGKILL + restart",
    });
    expect(await dumpWithKcat(kafka.brokers)).toHaveLength(RECORDS.length);
  });

  test("NATS: publish/subscribe, and a JetStream stream that survives restart()", async () => {
    const sc = StringCodec();
    let nc = await connect({ servers: nats.url });
    try {
      const sub = nc.subscribe("infra.test.>");
      const got: string[] = [];
      const done = (async () => {
        for await (const m of sub) {
          got.push(`${m.subject}=${sc.decode(m.data)}`);
          if (got.length === 2) break;
        }
      })();
      nc.publish("infra.test.a", sc.encode("1"));
      nc.publish("infra.test.b", sc.encode("2"));
      await nc.flush();
      await done;
      expect(got).toEqual(["infra.test.a=1", "infra.test.b=2"]);

      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: "INFRA_TEST", subjects: ["infra.js.>"] });
      const ack = await nc.jetstream().publish("infra.js.x", sc.encode("persisted"));
      expect(ack.seq).toBe(1);
    } finally {
      await nc.close();
    }

    await nats.restart();
    nc = await connect({ servers: nats.url });
    try {
      const info = await (await nc.jetstreamManager()).streams.info("INFRA_TEST");
      expect(info.state.messages).toBe(1);
    } finally {
      await nc.close();
    }
  });
});
