/**
 * Kafka as a trade source: a consumer group (`eachBatch`) over the configured topics, each batch
 * handed to the pipeline in chunks of at most `batchMaxRecords`. No loss, no double counting: a
 * chunk's offset is resolved and committed only after every trade of it is acknowledged and its
 * rejects are dead-lettered; a re-delivered record is skipped by the actors' per-partition
 * applied-offset watermarks (source `topic/partition`, seq = offset). With checkpoints only rounds
 * commit (checkpoints.ts); rewinds.ts re-reads the log after a loss.
 *
 * Backpressure: a partition's next fetch waits for its chunk to be applied; while a chunk fails
 * the partition is paused and the chunk retried with backoff (heartbeating, so the group does not
 * rebalance). Memory is bounded by concurrency × maxBytesPerPartition.
 */
import type { Consumer, EachBatchPayload, Kafka } from "kafkajs";
import type { KafkaConfig } from "../../../../src/config";
import type { BatchHandler, TradeSource } from "../source";
import { Checkpoints, type CheckpointRounds } from "./checkpoints";
import { ensureTopics, kafkaClient, type KafkaLog } from "./client";
import { CommitQueue } from "./commits";
import { DeadLetters } from "./dead-letters";
import { packMessages } from "./pack";
import { partitionKey, Positions, type PartitionLag } from "./positions";
import { Rewinds } from "./rewinds";

export interface KafkaSourceOptions {
  kafka: KafkaConfig;
  batchMaxRecords: number;
  /** Replay window (the 1m bar retention). */
  replayWindowMs: number;
  log: KafkaLog;
  onDeadLetter(reason: string): void;
  /** Consumer lag of each assigned partition, every LAG_INTERVAL_MS. */
  onLag?(lag: PartitionLag[]): void;
  /** Checkpoint rounds: offsets are committed only after `round()` resolved true. */
  checkpoint?: CheckpointRounds;
}

const LAG_INTERVAL_MS = 5000;

export class KafkaSource implements TradeSource {
  readonly name: string;
  private readonly kafka: Kafka;
  private consumer: Consumer | null = null;
  private readonly positions: Positions;
  private readonly commits: CommitQueue;
  private readonly deadLetters: DeadLetters;
  private readonly rewinds: Rewinds;
  private readonly checkpoints: Checkpoints | null;
  private assignment: Promise<void> = Promise.resolve();
  private counts = { records: 0, deadLettered: 0, crcMismatches: 0 };
  private lagTimer: NodeJS.Timeout | null = null;
  private readonly heartbeatIntervalMs: number;

  constructor(private readonly opts: KafkaSourceOptions) {
    const k = opts.kafka;
    this.name = `kafka:${k.topics.join(",")}`;
    this.heartbeatIntervalMs = Math.max(500, Math.floor(k.sessionTimeoutMs / 10));
    this.kafka = kafkaClient(k, opts.log);
    const consumer = () => this.consumer;
    this.positions = new Positions(this.kafka, k, opts.log);
    this.commits = new CommitQueue(consumer, opts.log);
    this.deadLetters = new DeadLetters(this.kafka, k.dlqTopic, (reason) =>
      opts.onDeadLetter(reason),
    );
    this.checkpoints = opts.checkpoint
      ? new Checkpoints(opts.checkpoint, this.positions, this.commits, consumer, opts.log)
      : null;
    this.rewinds = new Rewinds(
      this.kafka,
      { ...k, replayWindowMs: opts.replayWindowMs, checkpoints: this.checkpoints !== null },
      this.positions,
      this.commits,
      consumer,
      opts.log,
    );
  }

  get live(): boolean {
    return this.positions.live;
  }

  stats(): Record<string, number> {
    const p = this.positions;
    return {
      ...this.counts,
      replayRecords: p.replayRecords,
      replayMs: p.replayMs,
      partitions: p.size,
      lag: p.lag,
      lagMeasuredAtMs: p.lagMeasuredAt,
    };
  }

  async start(handler: BatchHandler): Promise<void> {
    const k = this.opts.kafka;
    await ensureTopics(this.kafka, [...k.topics, k.dlqTopic], k.partitions);
    await this.deadLetters.connect();
    const consumer = this.kafka.consumer({
      groupId: k.groupId,
      maxBytesPerPartition: k.maxBytesPerPartition,
      maxBytes: k.maxBytesPerPartition * Math.max(1, k.concurrency),
      maxWaitTimeInMs: k.maxWaitMs,
      sessionTimeout: k.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatIntervalMs,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.assignment = this.positions
        .assign(e.payload.memberAssignment)
        // The lag of a new assignment is known at once, not LAG_INTERVAL_MS later.
        .then(() => this.measureLag())
        .catch((err: unknown) =>
          this.opts.log.warn(
            { err: (err as Error).message },
            "cannot read the assigned partitions' offsets",
          ),
        );
    });
    await consumer.connect();
    await consumer.subscribe({ topics: k.topics, fromBeginning: true });
    this.positions.startCatchUp();
    this.lagTimer = setInterval(() => this.measureLag(), LAG_INTERVAL_MS);
    this.checkpoints?.start();
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: k.concurrency,
      eachBatch: (payload) => this.onBatch(payload, handler),
    });
  }

  async stop(): Promise<void> {
    if (this.lagTimer) clearInterval(this.lagTimer);
    this.checkpoints?.stop();
    // What was applied is committed before the group is left (batches finishing during the
    // disconnect flush their own, see onBatch).
    await this.commits.flush();
    await this.consumer?.disconnect();
    await this.deadLetters.disconnect();
    this.consumer = null;
  }

  /**
   * Re-reads the log after an actor node was lost: its symbols' new owners rebuild them while the
   * others skip what they already hold. The node reports not-live until it has caught up again.
   */
  async rewind(): Promise<void> {
    if (this.checkpoints) return this.checkpoints.rewind(() => this.rewinds.toCheckpoint());
    await this.rewinds.toReplayPoints();
  }

  private measureLag(): void {
    this.positions
      .measureLag()
      .then((lag) => this.opts.onLag?.(lag))
      .catch((err: unknown) =>
        this.opts.log.warn({ err: (err as Error).message }, "cannot measure consumer lag"),
      );
  }

  private async onBatch(payload: EachBatchPayload, handler: BatchHandler): Promise<void> {
    const { batch } = payload;
    const { resolveOffset, heartbeat, isRunning, isStale, pause } = {
      resolveOffset: (o: string) => payload.resolveOffset(o),
      heartbeat: () => payload.heartbeat(),
      isRunning: () => payload.isRunning(),
      isStale: () => payload.isStale(),
      pause: () => payload.pause(),
    };
    const { topic, partition } = batch;
    const key = partitionKey(topic, partition);
    await this.assignment;
    const first = batch.messages[0];
    if (first && (await this.rewinds.replayFirst(topic, partition, Number(first.offset)))) return;
    const max = this.opts.batchMaxRecords;
    for (let i = 0; i < batch.messages.length; i += max) {
      if (!isRunning() || isStale()) return;
      const messages = batch.messages.slice(i, i + max);
      const { raw, crcRejects } = packMessages(key, messages);
      this.counts.crcMismatches += crcRejects.length;
      // While a chunk is retried its partition is paused, and it is resumed however the chunk
      // ends: a chunk cut short by a rebalance (a heartbeat throws) would otherwise leave the
      // partition paused in kafkajs for good, across the rejoin.
      let resume: (() => void) | null = null;
      try {
        // A call may wait up to the request timeout (e.g. a request lost while NATS reconnects):
        // keep the group session alive meanwhile, or the group evicts this node and its
        // partitions move to another node, which replays them, for nothing. A heartbeat that
        // fails here (the group is rebalancing) is ignored: the one after the chunk reports it.
        const beat = setInterval(() => {
          heartbeat().catch(() => undefined);
        }, this.heartbeatIntervalMs);
        let delivery: Awaited<ReturnType<BatchHandler>>;
        try {
          delivery = await handler(raw, {
            onRetry: async () => {
              resume ??= pause();
              await heartbeat();
            },
          });
        } finally {
          clearInterval(beat);
        }
        if (delivery === null) return; // stopping: leave the offsets uncommitted
        const rejects = [...crcRejects, ...delivery.rejects];
        if (rejects.length > 0)
          this.counts.deadLettered += await this.deadLetters.write(
            topic,
            partition,
            messages,
            rejects,
          );
        const last = messages[messages.length - 1]!;
        const next = Number(last.offset) + 1;
        // A seek (rewind) while the chunk was applied: its commit would undo the rewind. The
        // chunk is re-read from the new position and skipped as already applied.
        if (isStale()) return;
        resolveOffset(last.offset);
        // With checkpoints only rounds commit (the committed offset must be checkpoint-covered).
        if (!this.checkpoints) {
          this.commits.queue({ topic, partition, offset: next });
          // Stopping: kafkajs leaves the group once this batch returns.
          if (!isRunning()) await this.commits.flush();
        }
        this.positions.consumed(key, next, messages.length);
        this.counts.records += messages.length;
      } finally {
        (resume as (() => void) | null)?.();
      }
      await heartbeat();
    }
  }
}
