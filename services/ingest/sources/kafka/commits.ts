/**
 * Every offset commit of the source goes through here. Invariants: a committed offset is at or
 * behind what is applied (with checkpoints, what is checkpointed); applied offsets are committed
 * one request at a time, without holding up the next fetch, and those applied meanwhile go together
 * in the next request; no queued commit of a position from before a rewind lands after the
 * rewind's own commits (`exclusive`). A queued commit that fails (rebalance, broker away) only
 * means re-delivered records, which the actors skip as duplicates.
 */
import type { Consumer } from "kafkajs";
import type { KafkaLog } from "./client";
import { partitionKey, type PartitionKey } from "./positions";

/** The next offset to consume in a partition: what a commit records. */
export interface Offset {
  topic: string;
  partition: number;
  offset: number;
}

export class CommitQueue {
  private readonly queued = new Map<PartitionKey, Offset>();
  private draining: Promise<void> | null = null;
  private held = false;

  constructor(
    private readonly consumer: () => Consumer | null,
    private readonly log: KafkaLog,
  ) {}

  /** Queues the commit of an applied offset (dropped while a rewind holds the queue). */
  queue(applied: Offset): void {
    if (this.held) return;
    this.queued.set(partitionKey(applied.topic, applied.partition), applied);
    this.draining ??= this.drain().finally(() => (this.draining = null));
  }

  /** Resolves once every queued offset is committed (or its commit failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Commits now, past the queue; rejects when the commit fails. */
  async commit(offsets: Offset[]): Promise<void> {
    const consumer = this.consumer();
    if (!consumer) throw new Error("cannot commit offsets: the consumer is stopped");
    await consumer.commitOffsets(offsets.map(toKafka));
  }

  /**
   * Runs `rewind` with the queue emptied and flushed first, and new offsets dropped until it is
   * done: its commits are the last word on the positions it sets.
   */
  async exclusive(rewind: () => Promise<void>): Promise<void> {
    this.held = true;
    try {
      this.queued.clear();
      await this.flush();
      await rewind();
    } finally {
      this.held = false;
    }
  }

  private async drain(): Promise<void> {
    while (this.queued.size > 0) {
      const consumer = this.consumer();
      if (!consumer) return;
      const offsets = [...this.queued.values()];
      this.queued.clear();
      try {
        await consumer.commitOffsets(offsets.map(toKafka));
      } catch (err: unknown) {
        this.log.warn(
          { err: (err as Error).message, partitions: offsets.length },
          "offset commit failed; those records will be re-delivered and skipped as duplicates",
        );
      }
    }
  }
}

function toKafka({ topic, partition, offset }: Offset) {
  return { topic, partition, offset: String(offset) };
}
