/**
 * A cluster of Tickstream processes (./processes.ts) over a real nats-server and Kafka broker, on a
 * topic, dead-letter topic, consumer group and namespace of its own: the set-up of the multi-process
 * integration tests. Node `a` of cluster `natsfault` has the node ID `a-natsfault-<pid>-<time>`;
 * spawning a name again restarts that node under the same ID.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import type { KafkaHandle } from "../../scripts/infra/kafka";
import type { NatsHandle } from "../../scripts/infra/nats";
import { symbolOf } from "../../src/fix/records";
import { spawnNode, type NodeProcess } from "./processes";

export interface ClusterOptions {
  kafka: KafkaHandle;
  nats: NatsHandle;
  /** Starts the topic, namespace and node IDs, and names the saved logs. */
  name: string;
  /** Partitions of the topic (the dead-letter topic has one). */
  partitions: number;
  /** Settings of every node, over the cluster's own. */
  env?: Record<string, string>;
}

export interface ProcessCluster {
  /** The topic; also the namespace, and `g-<topic>` is the consumer group. */
  topic: string;
  dlq: string;
  client: Kafka;
  /** The current process of each node, by name, in the order they were first spawned. */
  nodes: Map<string, NodeProcess>;
  /** Spawns node `name` with the cluster's settings and `env`; does not wait until it is ready. */
  spawn(name: string, env?: Record<string, string>): Promise<NodeProcess>;
  /** Sends `records` to the topic in order, keyed by symbol, through one idempotent producer. */
  producer(records: Buffer[]): RecordProducer;
  /**
   * Writes each node's output to $TMPDIR/tickstream-<name>-<node>.log; the output of a node's
   * earlier processes (before a restart) to tickstream-<name>-<node>-<1, 2, ...>.log.
   */
  saveLogs(): void;
  /** SIGKILLs every process, and waits until they are gone. */
  kill(): Promise<void>;
}

export interface RecordProducer {
  /** How many records have been sent: the first `sent` of them. */
  readonly sent: number;
  connect(): Promise<void>;
  /** Sends the next `n` records (fewer when fewer are left) in one request, acked by all replicas. */
  send(n: number): Promise<void>;
  disconnect(): Promise<void>;
}

/** Creates the cluster's topics; nodes are spawned with `spawn`. */
export async function processCluster(opts: ClusterOptions): Promise<ProcessCluster> {
  const topic = `${opts.name}-${process.pid}-${Date.now().toString(36)}`;
  const dlq = `${topic}.dlq`;
  const client = new Kafka({
    clientId: `${opts.name}-test`,
    brokers: [opts.kafka.brokers],
    logLevel: logLevel.NOTHING,
  });
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: opts.partitions },
      { topic: dlq, numPartitions: 1 },
    ],
  });
  await admin.disconnect();
  const env = {
    TRANSPORTER: opts.nats.url,
    NAMESPACE: topic,
    KAFKA_BROKERS: opts.kafka.brokers,
    KAFKA_TOPICS: topic,
    KAFKA_DLQ_TOPIC: dlq,
    KAFKA_GROUP_ID: `g-${topic}`,
    KAFKA_MAX_WAIT_MS: "50",
    // A lost node or consumer is noticed within seconds.
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    HEARTBEAT_INTERVAL_S: "1",
    HEARTBEAT_TIMEOUT_S: "3",
    // The tests read the nodes' logs: who connected, who was lost, what was dropped.
    LOG_LEVEL: "info",
    ...opts.env,
  };
  const nodes = new Map<string, NodeProcess>();
  const earlier: [string, NodeProcess][] = [];

  return {
    topic,
    dlq,
    client,
    nodes,
    async spawn(name, extra = {}) {
      const node = await spawnNode(`${name}-${topic}`, { ...env, ...extra });
      const before = nodes.get(name);
      if (before) earlier.push([name, before]);
      nodes.set(name, node);
      return node;
    },
    producer: (records) => recordProducer(client, topic, records),
    saveLogs() {
      const file = (name: string) => path.join(tmpdir(), `tickstream-${opts.name}-${name}.log`);
      for (const [name, node] of nodes) writeFileSync(file(name), node.output());
      const count = new Map<string, number>();
      for (const [name, node] of earlier) {
        const k = (count.get(name) ?? 0) + 1;
        count.set(name, k);
        writeFileSync(file(`${name}-${k}`), node.output());
      }
    },
    async kill() {
      await Promise.all([...earlier.map(([, n]) => n), ...nodes.values()].map((n) => n.kill()));
    },
  };
}

function recordProducer(client: Kafka, topic: string, records: Buffer[]): RecordProducer {
  const producer = client.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  let sent = 0;
  return {
    get sent() {
      return sent;
    },
    connect: () => producer.connect(),
    async send(n) {
      const chunk = records.slice(sent, sent + n);
      if (chunk.length === 0) return;
      await producer.send({
        topic,
        acks: -1,
        messages: chunk.map((v) => ({ key: symbolOf(v), value: v })),
      });
      sent += chunk.length;
    },
    disconnect: () => producer.disconnect(),
  };
}
