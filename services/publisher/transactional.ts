/**
 * A transactional producer under one fixed `transactional.id`. Connecting one fences every earlier
 * producer of that id at the broker: its open transaction is aborted and its next request refused
 * (`INVALID_PRODUCER_EPOCH` / `PRODUCER_FENCED`). So however long a process was paused, and
 * whatever it still believes, at most one process commits under the id, and a `read_committed`
 * consumer sees a transaction's records all together or not at all.
 */
import type { Kafka, Message, Producer } from "kafkajs";

/** This producer was superseded by a newer one with the same transactional id; it publishes no more. */
export class Fenced extends Error {
  constructor(transactionalId: string, cause: unknown) {
    super(`transactional id "${transactionalId}" was taken over by a newer producer`);
    this.name = "Fenced";
    (this as Error).cause = cause;
  }
}

export interface OutRecord {
  topic: string;
  key: string;
  /** null: a tombstone (compaction removes the key). */
  value: string | null;
}

const FENCING_ERRORS = new Set(["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED"]);

/** kafkajs reports the broker's code as `type`, sometimes on a retry error's `originalError`. */
function isFencing(err: unknown): boolean {
  for (let e = err as { type?: string; originalError?: unknown } | undefined; e;) {
    if (e.type !== undefined && FENCING_ERRORS.has(e.type)) return true;
    e = e.originalError as typeof e;
  }
  return false;
}

export class TransactionalPublisher {
  private producer: Producer | null = null;
  private fenced = false;

  constructor(
    private readonly kafka: Kafka,
    readonly transactionalId: string,
  ) {}

  /** Connects and initialises the transactional id, fencing every earlier producer of it. */
  async start(): Promise<void> {
    const producer = this.kafka.producer({
      transactionalId: this.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    this.producer = producer;
  }

  /**
   * Publishes `records` in one transaction, in order per topic and key. Throws `Fenced` when a
   * newer producer took the id over (nothing of this call is visible then); any other failure
   * aborts the transaction and may be retried.
   */
  async publish(records: readonly OutRecord[]): Promise<void> {
    const producer = this.producer;
    if (producer === null || this.fenced) throw new Error(`${this.transactionalId} is not started`);
    const byTopic = new Map<string, Message[]>();
    for (const r of records) {
      let messages = byTopic.get(r.topic);
      if (messages === undefined) byTopic.set(r.topic, (messages = []));
      messages.push({ key: r.key, value: r.value });
    }
    const txn = await producer.transaction().catch((err: unknown) => this.fail(err));
    try {
      await txn.sendBatch({
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      await txn.commit();
    } catch (err: unknown) {
      if (!isFencing(err)) await txn.abort().catch(() => undefined);
      return this.fail(err);
    }
  }

  async stop(): Promise<void> {
    const producer = this.producer;
    this.producer = null;
    await producer?.disconnect();
  }

  private async fail(err: unknown): Promise<never> {
    if (!isFencing(err)) throw err;
    this.fenced = true;
    await this.stop().catch(() => undefined);
    throw new Fenced(this.transactionalId, err);
  }
}
