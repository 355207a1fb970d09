/**
 * The kafkajs client, its admin and producers, as every Kafka user here sets them up (the source,
 * `npm run feed`, the benchmarks). Admin use goes through `withAdmin`, which always disconnects.
 */
import {
  Kafka,
  logLevel,
  Partitioners,
  type Admin,
  type Producer,
  type SASLOptions,
} from "kafkajs";
import type { KafkaConfig } from "../../../../src/config";

/** Where kafkajs writes its own log lines (JSON through the node's logger). */
export interface KafkaLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Sends kafkajs's log to ours: its ERRORs are mostly retried transient conditions, so they are warnings. */
function logCreator(log: KafkaLog) {
  return () =>
    ({
      level,
      log: entry,
    }: {
      level: logLevel;
      log: { message: string } & Record<string, unknown>;
    }) => {
      const { message, timestamp: _t, logger: _l, ...rest } = entry;
      if (level <= logLevel.WARN) log.warn({ kafkajs: rest }, message);
      else log.info({ kafkajs: rest }, message);
    };
}

export function kafkaClient(k: KafkaConfig, log?: KafkaLog): Kafka {
  return new Kafka({
    ...(log ? { logCreator: logCreator(log) } : {}),
    clientId: k.clientId,
    brokers: k.brokers,
    ssl: k.ssl,
    ...(k.sasl
      ? {
          sasl: {
            mechanism: k.sasl.mechanism,
            username: k.sasl.username,
            password: k.sasl.password,
          } as SASLOptions,
        }
      : {}),
    logLevel: logLevel.WARN,
    // Rides out a broker restart (about 23 s of retries) instead of crashing the consumer: a
    // crashed consumer rejoins the group as a new member, the join waits for the old member's
    // session to expire, and partitions that move are replayed. A retry waits at most 2 s, so
    // consumption resumes within 2 s of the broker's return. Every field is given: kafkajs has
    // other defaults under NODE_ENV=test.
    retry: { initialRetryTime: 100, maxRetryTime: 2000, multiplier: 2, factor: 0.2, retries: 15 },
  });
}

/** Runs `use` with a connected admin client, and disconnects it however `use` ends. */
export async function withAdmin<T>(kafka: Kafka, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Creates the topics (and the dead-letter topic) that do not exist yet. */
export async function ensureTopics(
  kafka: Kafka,
  topics: string[],
  partitions: number,
): Promise<void> {
  await withAdmin(kafka, async (admin) => {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions })),
      });
    }
  });
}

/**
 * An idempotent producer (no duplicates from its own retries) that keeps retrying for up to 30 s:
 * a dead letter must be written before its batch's offsets are committed, and the feed tool must
 * not lose what it was asked to send.
 */
export function reliableProducer(kafka: Kafka): Producer {
  return kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 30_000 },
  });
}
