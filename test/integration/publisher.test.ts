/**
 * The transactional publisher against a real broker: what it commits is read once by a
 * `read_committed` consumer, and a producer that another one with the same transactional id
 * superseded (a paused or partitioned publisher) has its transaction refused by the broker.
 */
import { Kafka, logLevel } from "kafkajs";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { ensureCompactedTopics } from "../../services/publisher/topics";
import { Fenced, TransactionalPublisher } from "../../services/publisher/transactional";
import { eventually } from "../support/node";

describe("transactional publisher", () => {
  let broker: KafkaHandle;
  let kafka: Kafka;

  beforeAll(async () => {
    broker = await startKafka();
    kafka = new Kafka({
      clientId: "publisher-test",
      brokers: [broker.brokers],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: "bars-t", numPartitions: 3 }],
    });
    await admin.disconnect();
  }, 180_000);
  afterAll(async () => {
    await broker?.stop();
  });

  it("fences a superseded publisher: read_committed sees only what the current one committed", async () => {
    const zombie = new TransactionalPublisher(kafka, "test.bars-out");
    await zombie.start();
    await zombie.publish([{ topic: "bars-t", key: "AAPL/1m/0", value: "1" }]);

    const current = new TransactionalPublisher(kafka, "test.bars-out");
    await current.start();
    await current.publish([
      { topic: "bars-t", key: "AAPL/1m/0", value: "2" },
      { topic: "bars-t", key: "MSFT/1m/0", value: "1" },
    ]);
    await expect(
      zombie.publish([{ topic: "bars-t", key: "AAPL/1m/0", value: "zombie" }]),
    ).rejects.toBeInstanceOf(Fenced);
    await current.publish([{ topic: "bars-t", key: "AAPL/1m/0", value: "3" }]);

    const seen: string[] = [];
    const consumer = kafka.consumer({ groupId: "publisher-test-rc", readUncommitted: false });
    await consumer.connect();
    await consumer.subscribe({ topic: "bars-t", fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        seen.push(`${message.key!.toString()}=${message.value!.toString()}`);
        return Promise.resolve();
      },
    });
    try {
      await eventually(() => (seen.length >= 4 ? true : undefined), "four committed records");
      const aapl = seen.filter((s) => s.startsWith("AAPL/"));
      expect(aapl).toEqual(["AAPL/1m/0=1", "AAPL/1m/0=2", "AAPL/1m/0=3"]);
      expect(seen.filter((s) => s.startsWith("MSFT/"))).toEqual(["MSFT/1m/0=1"]);
    } finally {
      await consumer.disconnect();
      await current.stop();
    }
  }, 120_000);

  it("creates output topics compacted and refuses an existing one that deletes by age", async () => {
    await ensureCompactedTopics(kafka, ["bars-c"], 3);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: "bars-c", configNames: ["cleanup.policy"] }],
      });
      expect(resources[0]!.configEntries[0]!.configValue).toBe("compact");
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: "bars-d", numPartitions: 1 }],
      });
    } finally {
      await admin.disconnect();
    }
    await expect(ensureCompactedTopics(kafka, ["bars-c", "bars-d"], 3)).rejects.toThrow(
      /bars-d has cleanup.policy=delete/,
    );
  }, 60_000);
});
