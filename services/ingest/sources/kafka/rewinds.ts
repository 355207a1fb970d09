/**
 * Re-reading the log to rebuild the state of actors. The actors' per-partition applied-offset
 * watermarks skip what they already hold, so a replay only has to be in order from its start.
 * - Without checkpoints (one process: state is a cache of the log), replay is from the start of the
 *   replay window (found by record timestamp): before the first chunk of a partition this process
 *   has not consumed since it was assigned, and for every assigned partition on a rewind (the
 *   seek is committed too, or a rebalance would forget it).
 * - With checkpoints, a rewind goes back to the committed offsets (the last checkpoint); the lost
 *   symbols' new holders load their checkpoints and take the log after them.
 * Why and when to rewind is the ingest service's and src/custody/'s decision.
 */
import type { Consumer, Kafka } from "kafkajs";
import type { KafkaConfig } from "../../../../src/config";
import { withAdmin, type KafkaLog } from "./client";
import type { CommitQueue } from "./commits";
import { partitionKey, seekBack, type PartitionKey, type Positions } from "./positions";

export interface RewindOptions extends Pick<KafkaConfig, "groupId" | "topics" | "replay"> {
  /** Replay window (the 1m bar retention). */
  replayWindowMs: number;
  /** Offsets are committed by checkpoint rounds: the committed offset is where states end. */
  checkpoints: boolean;
}

export class Rewinds {
  constructor(
    private readonly kafka: Kafka,
    private readonly opts: RewindOptions,
    private readonly positions: Positions,
    private readonly commits: CommitQueue,
    private readonly consumer: () => Consumer | null,
    private readonly log: KafkaLog,
  ) {}

  /**
   * Before the first chunk of a partition this process has not consumed since it was assigned:
   * when replay is on and the chunk starts after the replay point, seeks back to it. True when it
   * did: the batch is dropped, so that the actors see the partition's records in order from there.
   */
  async replayFirst(topic: string, partition: number, firstOffset: number): Promise<boolean> {
    const key = partitionKey(topic, partition);
    if (this.opts.checkpoints || !this.opts.replay || this.positions.replayed.has(key))
      return false;
    this.positions.replayed.add(key);
    const offset = await this.replayOffset(topic, partition);
    if (offset >= firstOffset) return false;
    const position = this.positions.get(key);
    if (position) position.next = offset;
    this.log.info(
      { topic, partition, from: offset, committed: firstOffset },
      "replaying partition to rebuild state",
    );
    this.consumer()?.seek({ topic, partition, offset: String(offset) });
    return true;
  }

  /** Without checkpoints: every assigned partition back to its replay point, committed. */
  async toReplayPoints(): Promise<void> {
    const consumer = this.consumer();
    if (!this.opts.replay || !consumer) return;
    await this.commits.exclusive(async () => {
      this.positions.startCatchUp();
      for (const position of this.positions.all()) {
        const offset = await this.replayOffset(position.topic, position.partition);
        this.positions.replayed.add(position.key);
        seekBack(consumer, position, offset);
        // Committed too: a rebalance (the lost node's partitions coming to us) resumes from the
        // committed offsets and would otherwise forget the seek.
        await this.commits.commit([
          { topic: position.topic, partition: position.partition, offset },
        ]);
      }
      this.log.info(
        { partitions: this.positions.size },
        "rewound to rebuild the state of a lost node",
      );
    });
  }

  /** With checkpoints: every assigned partition back to its committed offset. */
  async toCheckpoint(): Promise<void> {
    const committed = await this.committedOffsetsRetried();
    const consumer = this.consumer();
    if (!consumer || committed === null) return;
    this.positions.startCatchUp();
    for (const position of this.positions.all()) {
      const offset = committed.get(position.key);
      if (offset === undefined) continue;
      seekBack(consumer, position, offset);
    }
    this.log.info(
      { partitions: this.positions.size, offsets: Object.fromEntries(committed) },
      "rewound to the last checkpoint to rebuild the state of a lost node",
    );
  }

  /** The first offset of a partition inside the replay window (by record timestamp). */
  private async replayOffset(topic: string, partition: number): Promise<number> {
    return withAdmin(this.kafka, async (admin) => {
      const byTime = await admin.fetchTopicOffsetsByTimestamp(
        topic,
        Date.now() - this.opts.replayWindowMs,
      );
      const low = (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition);
      const at = byTime.find((o) => o.partition === partition);
      return Math.max(Number(low?.low ?? 0), at ? Number(at.offset) : 0);
    });
  }

  /**
   * `committedOffsets`, retried until the broker answers: a rewind cannot be skipped (the positions
   * would still cover the lost node's changes). Null once the source is stopping.
   */
  private async committedOffsetsRetried(): Promise<Map<PartitionKey, number> | null> {
    for (let attempt = 0; this.consumer(); attempt++) {
      try {
        return await this.committedOffsets();
      } catch (err: unknown) {
        const wait = Math.min(5000, 200 * 2 ** attempt);
        this.log.warn(
          { err: (err as Error).message, wait },
          "cannot read the committed offsets to rewind; retrying",
        );
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
    return null;
  }

  /** The group's committed offset of every partition (the earliest offset when none). */
  private async committedOffsets(): Promise<Map<PartitionKey, number>> {
    return withAdmin(this.kafka, async (admin) => {
      const out = new Map<PartitionKey, number>();
      for (const topic of this.opts.topics) {
        const low = new Map(
          (await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.low)]),
        );
        const [committed] = await admin.fetchOffsets({
          groupId: this.opts.groupId,
          topics: [topic],
        });
        for (const p of committed?.partitions ?? []) {
          const offset = Number(p.offset);
          out.set(
            partitionKey(topic, p.partition),
            offset >= 0 ? offset : (low.get(p.partition) ?? 0),
          );
        }
      }
      return out;
    });
  }
}
