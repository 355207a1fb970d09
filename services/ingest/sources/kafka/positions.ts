/**
 * Where the source stands in each assigned partition: the next offset to consume, and the offset
 * to reach to be caught up (the partition's end when it was assigned). The node is live once every
 * assigned partition reached its target. Invariant: a position goes back only through `seekBack`,
 * which also keeps its target at or past where it was, so a rewound node is live again only once it
 * re-read what it had read before.
 */
import type { Consumer, Kafka } from "kafkajs";
import type { KafkaConfig } from "../../../../src/config";
import { withAdmin, type KafkaLog } from "./client";

/** `topic/partition`: also the `source` of the partition's raw batches (the actors' watermark key). */
export type PartitionKey = `${string}/${number}`;

export function partitionKey(topic: string, partition: number): PartitionKey {
  return `${topic}/${partition}`;
}

export interface Position {
  readonly key: PartitionKey;
  readonly topic: string;
  readonly partition: number;
  /** Offset to reach (the end of the partition when it was assigned) to be caught up. */
  target: number;
  /** Next offset to consume. */
  next: number;
}

/** Records behind the end of one assigned partition. */
export interface PartitionLag {
  topic: string;
  partition: number;
  records: number;
}

/**
 * Moves a partition back to `offset` for a rewind: the consumer fetches from there, and the
 * partition is caught up again once it is past where it was.
 */
export function seekBack(consumer: Consumer, position: Position, offset: number): void {
  position.target = Math.max(position.target, position.next);
  position.next = Math.min(position.next, offset);
  consumer.seek({ topic: position.topic, partition: position.partition, offset: String(offset) });
}

export class Positions {
  private readonly byKey = new Map<PartitionKey, Position>();
  /** Partitions replayed since they were assigned (see rewinds.ts). */
  readonly replayed = new Set<PartitionKey>();
  private assigned = false;
  private caughtUp = false;
  private catchUpStartedAt = 0;
  /** Records consumed, and time taken, by the last catch-up. */
  replayRecords = 0;
  replayMs = 0;
  lag = 0;
  lagMeasuredAt = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Pick<KafkaConfig, "groupId" | "topics">,
    private readonly log: KafkaLog,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  get(key: PartitionKey): Position | undefined {
    return this.byKey.get(key);
  }

  /** The positions of the assigned partitions (a live view: it sees a new assignment). */
  all(): IterableIterator<Position> {
    return this.byKey.values();
  }

  /** Live once the group assigned us partitions and we reached, on each, the end seen at assignment. */
  get live(): boolean {
    if (!this.assigned) return false;
    for (const p of this.byKey.values()) if (p.next < p.target) return false;
    if (!this.caughtUp) {
      this.caughtUp = true;
      this.replayMs = Date.now() - this.catchUpStartedAt;
      this.log.info(
        {
          replayRecords: this.replayRecords,
          replayMs: this.replayMs,
          recordsPerSec: Math.round((this.replayRecords * 1000) / Math.max(1, this.replayMs)),
        },
        "caught up with the log",
      );
    }
    return true;
  }

  /** Starts a catch-up (at start and on a rewind): its records and time are counted from now. */
  startCatchUp(): void {
    this.caughtUp = false;
    this.catchUpStartedAt = Date.now();
    this.replayRecords = 0;
  }

  /** A chunk of a partition is applied: `next` is the offset after its last record. */
  consumed(key: PartitionKey, next: number, records: number): void {
    const position = this.byKey.get(key);
    if (!position) return;
    position.next = next;
    if (!this.caughtUp) this.replayRecords += records;
  }

  /**
   * Records what "caught up" means for a new assignment: for each partition, the end offset now,
   * and where the group will resume (its committed offset).
   */
  async assign(assignment: Record<string, number[]>): Promise<void> {
    await withAdmin(this.kafka, async (admin) => {
      const next = new Map<PartitionKey, Position>();
      for (const [topic, partitions] of Object.entries(assignment)) {
        const ends = new Map(
          (await admin.fetchTopicOffsets(topic)).map((o) => [
            o.partition,
            { low: Number(o.low), high: Number(o.high) },
          ]),
        );
        const [committed] = await admin.fetchOffsets({
          groupId: this.config.groupId,
          topics: [topic],
        });
        const resume = new Map(
          (committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
        );
        for (const partition of partitions) {
          const key = partitionKey(topic, partition);
          const end = ends.get(partition) ?? { low: 0, high: 0 };
          const from = resume.get(partition) ?? -1;
          next.set(key, {
            key,
            topic,
            partition,
            target: end.high,
            next: this.byKey.get(key)?.next ?? (from >= 0 ? from : end.low),
          });
        }
      }
      this.byKey.clear();
      for (const [k, v] of next) this.byKey.set(k, v);
      // A partition that went to another node and comes back later is replayed again: its
      // symbols' owners may have been lost meanwhile (replaying is idempotent).
      for (const key of [...this.replayed]) if (!next.has(key)) this.replayed.delete(key);
      this.assigned = true;
    });
  }

  /** Records behind the end of each assigned partition (end fetched now, position = next offset). */
  async measureLag(): Promise<PartitionLag[]> {
    return withAdmin(this.kafka, async (admin) => {
      const out: PartitionLag[] = [];
      for (const topic of this.config.topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        for (const e of ends) {
          const p = this.byKey.get(partitionKey(topic, e.partition));
          if (p)
            out.push({
              topic,
              partition: e.partition,
              records: Math.max(0, Number(e.high) - p.next),
            });
        }
      }
      this.lag = out.reduce((n, l) => n + l.records, 0);
      this.lagMeasuredAt = Date.now();
      return out;
    });
  }
}
