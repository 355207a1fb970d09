/**
 * The publisher: commits the actors' durable records (bar versions, anomalies) to Kafka, exactly
 * once for a `read_committed` consumer.
 *
 * One node publishes: the one rendezvous hashing picks among the nodes running this service (a
 * call that reaches another is refused, retryably). Safety does not rest on that view: every
 * candidate uses the same transactional id, so one that still believes it publishes after
 * another started (a paused node) has its transaction refused by the broker. Each transaction
 * carries the records and, on the progress topic, each symbol's last (epoch, sequence)
 * published; a publisher reads that topic before its first transaction and drops records it
 * already has, so an actor's resend after a lost acknowledgement is never published twice.
 * Calls wait in a queue and go out together, one transaction at a time.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Kafka } from "kafkajs";
import { members } from "../../src/cluster/membership";
import { ownerOf } from "../../src/cluster/rendezvous";
import type { Config } from "../../src/config";
import {
  PUBLISHER_SHARD,
  type PublishParams,
  type PublishReply,
} from "../../src/contracts/publish";
import { wrongOwner } from "../../src/errors";
import type { OutEntry } from "../../src/publish/outbox";
import { kafkaClient } from "../ingest/sources/kafka/client";
import { readProgress, SYNC_KEY } from "./progress";
import { ensureCompactedTopics } from "./topics";
import { Fenced, TransactionalPublisher, type OutRecord } from "./transactional";

interface Progress {
  epoch: number;
  seq: number;
}

interface Waiting {
  params: PublishParams;
  resolve(reply: PublishReply): void;
  reject(err: Error): void;
}

interface Vars {
  kafka: Kafka;
  producer: TransactionalPublisher | null;
  /** Last (epoch, seq) published per `service/symbol`, as the progress topic holds it. */
  progress: Map<string, Progress>;
  ready: Promise<TransactionalPublisher> | null;
  queue: Waiting[];
  flushing: Promise<void> | null;
}

interface Methods {
  kick(): void;
  flush(): Promise<void>;
  leader(): Promise<TransactionalPublisher>;
}

type This = Service & Vars & Methods;

const newer = (e: OutEntry, p: Progress | undefined): boolean =>
  p === undefined || e.epoch > p.epoch || (e.epoch === p.epoch && e.seq > p.seq);

export function publisherService(config: Config): ServiceSchema {
  const publish = config.publish!;
  const transactionalId = `${config.namespace}.publisher`;
  const progressTopic = `${config.namespace}.publish-progress`;
  const outputs = [publish.barsTopic, publish.anomaliesTopic].filter((t): t is string => !!t);

  const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
    name: "publisher",

    actions: {
      publish: {
        strategy: "Rendezvous",
        params: { service: "string", releases: { type: "array" } },
        handler(this: This, ctx: Context<PublishParams>): Promise<PublishReply> {
          const owner = ownerOf(PUBLISHER_SHARD, members(this.broker, "publisher"));
          if (owner !== this.broker.nodeID)
            throw wrongOwner(PUBLISHER_SHARD, owner, `${this.broker.nodeID} is not the publisher`);
          return new Promise((resolve, reject) => {
            this.queue.push({ params: ctx.params, resolve, reject });
            this.kick();
          });
        },
      },
    },

    methods: {
      kick(this: This) {
        this.flushing ??= this.flush().finally(() => {
          this.flushing = null;
          if (this.queue.length > 0) this.kick();
        });
      },

      async flush(this: This) {
        const batch = this.queue.splice(0);
        try {
          const producer = await this.leader();
          const records: OutRecord[] = [];
          const updates = new Map<string, Progress>();
          const replies = batch.map(({ params }) => ({
            acked: params.releases.map(({ symbol, entries }) => {
              const key = `${params.service}/${symbol}`;
              let last = updates.get(key) ?? this.progress.get(key);
              for (const e of entries) {
                if (!newer(e, last)) continue;
                records.push({ topic: e.topic, key: e.key, value: e.value });
                last = { epoch: e.epoch, seq: e.seq };
                updates.set(key, last);
              }
              return { symbol, through: entries.at(-1)?.seq ?? 0 };
            }),
          }));
          if (records.length > 0) {
            for (const [key, p] of updates)
              records.push({ topic: progressTopic, key, value: JSON.stringify(p) });
            await producer.publish(records);
            for (const [key, p] of updates) this.progress.set(key, p);
          }
          batch.forEach((w, i) => w.resolve(replies[i]!));
        } catch (err: unknown) {
          // Superseded, or the broker failed mid-transaction: the next call starts over (a new
          // producer aborts whatever this one left open, and progress is read again).
          if (err instanceof Fenced)
            this.logger.warn({ transactionalId }, "publisher superseded by another node");
          const producer = this.producer;
          this.producer = null;
          this.ready = null;
          this.progress.clear();
          await producer?.stop().catch(() => undefined);
          const e = err instanceof Error ? err : new Error(String(err));
          for (const w of batch) w.reject(e);
        }
      },

      /** Starts publishing here: topics, the transactional id (fencing the previous holder), progress. */
      leader(this: This): Promise<TransactionalPublisher> {
        this.ready ??= (async () => {
          await ensureCompactedTopics(this.kafka, outputs, config.kafka!.partitions);
          await ensureCompactedTopics(this.kafka, [progressTopic], 1);
          const producer = new TransactionalPublisher(this.kafka, transactionalId);
          await producer.start();
          const token = `${this.broker.nodeID}/${this.broker.instanceID}/${Date.now()}`;
          await producer.publish([{ topic: progressTopic, key: SYNC_KEY, value: token }]);
          const progress = await readProgress(this.kafka, progressTopic, token);
          this.progress = new Map(
            [...progress].map(([k, v]) => [k, JSON.parse(v) as Progress] as const),
          );
          this.producer = producer;
          this.logger.info({ transactionalId, symbols: this.progress.size }, "publishing to Kafka");
          return producer;
        })().catch((err: unknown) => {
          this.ready = null;
          throw err;
        });
        return this.ready;
      },
    },

    created(this: This) {
      this.kafka = kafkaClient(config.kafka!, this.logger);
      this.producer = null;
      this.progress = new Map();
      this.ready = null;
      this.queue = [];
      this.flushing = null;
    },

    async stopped(this: This) {
      await this.flushing;
      await this.producer?.stop();
    },
  };
  return schema as unknown as ServiceSchema;
}
