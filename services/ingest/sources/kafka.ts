/**
 * Kafka as a trade source: a consumer group (`eachBatch`) over the configured topics.
 *
 * No loss, no double counting:
 * - offsets are committed only after every trade of a batch is acknowledged by its actors, and
 *   after its rejected records are in the dead-letter topic;
 * - a re-delivered record (after a crash or a rebalance) is recognised by the actors' per-partition
 *   applied-offset watermarks (source `topic/partition`, seq = offset) and by trade id.
 *
 * Recovery with checkpoints (a NATS transporter: a cluster): offsets are committed only by
 * checkpoint rounds. Every interval the source notes, per assigned partition, the offset below
 * which every batch is acknowledged, has the actor processes that applied its records write their
 * states to the custody store (`checkpoint` round, see the ingest service and src/custody/), and
 * commits those offsets once all of them have. The committed offset is thus always covered by the
 * store: a restarted consumer, or a rewind after an actor process was lost or superseded, resumes
 * there, and the new holders of its symbols take the states from the store before replaying the
 * log after them. A round during which a rewind started never commits.
 *
 * Recovery without checkpoints (one process): state is a cache of the log. On its first assignment of a
 * partition, a node replays it from the start of the 1m retention window (found by record
 * timestamp), idempotently. Either way the node reports itself live once every assigned partition
 * has reached the end it saw at assignment.
 *
 * Backpressure: a partition's next fetch waits for its batch to be applied; while a batch fails
 * the partition is paused and the batch retried with backoff (heartbeating, so the group does not
 * rebalance). Memory is bounded by concurrency × maxBytesPerPartition.
 */
import {
  Kafka,
  logLevel,
  Partitioners,
  type Consumer,
  type EachBatchPayload,
  type KafkaMessage,
  type Producer,
  type SASLOptions,
} from "kafkajs";
import type { KafkaConfig } from "../../../src/config";
import { native } from "../../../src/native";
import type { BatchHandler, RawBatch, TradeSource } from "./source";

export interface KafkaSourceOptions {
  kafka: KafkaConfig;
  batchMaxRecords: number;
  /** Replay window (the 1m bar retention). */
  replayWindowMs: number;
  log: KafkaLog;
  onDeadLetter(reason: string): void;
  /** Consumer lag of each assigned partition, every LAG_INTERVAL_MS. */
  onLag?(lag: { topic: string; partition: number; records: number }[]): void;
  /** Checkpoint rounds: offsets are committed only after `round()` resolved true. */
  checkpoint?: CheckpointRounds;
}

export interface CheckpointRounds {
  intervalMs: number;
  /** Has every actor node write its changed states; true when all of them did. */
  round(): Promise<boolean>;
  onRound?(result: "ok" | "failed" | "idle", ms: number): void;
}

const LAG_INTERVAL_MS = 5000;

interface PartitionProgress {
  /** Offset to reach (the end of the partition when it was assigned) to be caught up. */
  target: number;
  /** Next offset to consume. */
  next: number;
}

const CRC_HEADER = "crc32";
const EMPTY = Buffer.alloc(0);

function headerText(message: KafkaMessage, name: string): Buffer | undefined {
  const v = message.headers?.[name];
  if (v === undefined || v === null) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : Buffer.isBuffer(first) ? first : Buffer.from(first);
}

/**
 * Removes the bytes of the records listed in `empty` (ascending) from a packed payload, leaving
 * them as empty records; moves the later records down and fixes the offsets. Returns the new end.
 */
export function leaveEmpty(payload: Buffer, offsets: Uint32Array, empty: Uint32Array): number {
  let write = 0;
  let next = 0;
  for (let i = 0; i + 1 < offsets.length; i++) {
    const from = offsets[i]!;
    const to = offsets[i + 1]!;
    offsets[i] = write;
    if (next < empty.length && empty[next] === i) {
      next += 1;
      continue;
    }
    payload.copyWithin(write, from, to);
    write += to - from;
  }
  offsets[offsets.length - 1] = write;
  return write;
}

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

/** Creates the topics (and the dead-letter topic) that do not exist yet. */
export async function ensureTopics(
  kafka: Kafka,
  topics: string[],
  partitions: number,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions })),
      });
    }
  } finally {
    await admin.disconnect();
  }
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

export class KafkaSource implements TradeSource {
  readonly name: string;
  private readonly kafka: Kafka;
  private consumer: Consumer | null = null;
  private producer: Producer | null = null;
  private readonly progress = new Map<string, PartitionProgress>();
  private readonly replayed = new Set<string>();
  private assigned = false;
  private assignment: Promise<void> = Promise.resolve();
  private counts = { records: 0, deadLettered: 0, crcMismatches: 0, replayRecords: 0, replayMs: 0 };
  private lag = 0;
  private lagMeasuredAt = 0;
  private lagTimer: NodeJS.Timeout | null = null;
  private replayStartedAt = 0;
  private wasLive = false;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private checkpointRunning = false;
  /** Offsets committed by the last successful round, per partition key. */
  private readonly checkpointed = new Map<string, number>();
  /** Incremented when an actor node is lost: a round that spans a loss must not commit. */
  private lossEpoch = 0;
  /** Rewinds under way: their positions are not reset yet (see `rewind`). */
  private rewindsPending = 0;
  private readonly heartbeatIntervalMs: number;
  /** Applied offsets not yet committed, by `topic/partition` (see `commitApplied`). */
  private readonly toCommit = new Map<
    string,
    { topic: string; partition: number; offset: string }
  >();
  private committing: Promise<void> | null = null;
  private rewinding = false;

  constructor(private readonly opts: KafkaSourceOptions) {
    this.name = `kafka:${opts.kafka.topics.join(",")}`;
    this.heartbeatIntervalMs = Math.max(500, Math.floor(opts.kafka.sessionTimeoutMs / 10));
    this.kafka = kafkaClient(opts.kafka, opts.log);
  }

  /** Live once the group assigned us partitions and we reached, on each, the end seen at assignment. */
  get live(): boolean {
    if (!this.assigned) return false;
    for (const p of this.progress.values()) if (p.next < p.target) return false;
    if (!this.wasLive) {
      this.wasLive = true;
      this.counts.replayMs = Date.now() - this.replayStartedAt;
      this.opts.log.info(
        {
          replayRecords: this.counts.replayRecords,
          replayMs: this.counts.replayMs,
          recordsPerSec: Math.round(
            (this.counts.replayRecords * 1000) / Math.max(1, this.counts.replayMs),
          ),
        },
        "caught up with the log",
      );
    }
    return true;
  }

  stats(): Record<string, number> {
    return {
      ...this.counts,
      partitions: this.progress.size,
      lag: this.lag,
      lagMeasuredAtMs: this.lagMeasuredAt,
    };
  }

  /** Records behind the end of each assigned partition (end fetched now, position = next offset). */
  private async measureLag(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const out: { topic: string; partition: number; records: number }[] = [];
      for (const topic of this.opts.kafka.topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        for (const e of ends) {
          const p = this.progress.get(`${topic}/${e.partition}`);
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
      this.opts.onLag?.(out);
    } finally {
      await admin.disconnect();
    }
  }

  async start(handler: BatchHandler): Promise<void> {
    const k = this.opts.kafka;
    await ensureTopics(this.kafka, [...k.topics, k.dlqTopic], k.partitions);
    this.producer = reliableProducer(this.kafka);
    await this.producer.connect();
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
      this.assignment = this.onAssignment(e.payload.memberAssignment).catch((err: unknown) =>
        this.opts.log.warn(
          { err: (err as Error).message },
          "cannot read the assigned partitions' offsets",
        ),
      );
    });
    await consumer.connect();
    await consumer.subscribe({ topics: k.topics, fromBeginning: true });
    this.replayStartedAt = Date.now();
    this.lagTimer = setInterval(() => {
      this.measureLag().catch((err: unknown) =>
        this.opts.log.warn({ err: (err as Error).message }, "cannot measure consumer lag"),
      );
    }, LAG_INTERVAL_MS);
    const rounds = this.opts.checkpoint;
    if (rounds)
      this.checkpointTimer = setInterval(() => void this.checkpointTick(rounds), rounds.intervalMs);
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: k.concurrency,
      eachBatch: (payload) => this.onBatch(payload, handler),
    });
  }

  async stop(): Promise<void> {
    if (this.lagTimer) clearInterval(this.lagTimer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    // What was applied is committed before the group is left (batches finishing during the
    // disconnect flush their own, see onBatch).
    await this.flushCommits();
    await this.consumer?.disconnect();
    await this.producer?.disconnect();
    this.consumer = null;
    this.producer = null;
  }

  /**
   * Records what "caught up" means for a new assignment: for each partition, the end offset now,
   * and where the group will resume (its committed offset).
   */
  private async onAssignment(assignment: Record<string, number[]>): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const next = new Map<string, PartitionProgress>();
      for (const [topic, partitions] of Object.entries(assignment)) {
        const ends = new Map(
          (await admin.fetchTopicOffsets(topic)).map((o) => [
            o.partition,
            { low: Number(o.low), high: Number(o.high) },
          ]),
        );
        const [committed] = await admin.fetchOffsets({
          groupId: this.opts.kafka.groupId,
          topics: [topic],
        });
        const resume = new Map(
          (committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
        );
        for (const partition of partitions) {
          const key = `${topic}/${partition}`;
          const end = ends.get(partition) ?? { low: 0, high: 0 };
          const from = resume.get(partition) ?? -1;
          next.set(key, {
            target: end.high,
            next: this.progress.get(key)?.next ?? (from >= 0 ? from : end.low),
          });
        }
      }
      this.progress.clear();
      for (const [k, v] of next) this.progress.set(k, v);
      // A partition that went to another node and comes back later is replayed again: its
      // symbols' owners may have been lost meanwhile (replaying is idempotent).
      for (const key of [...this.replayed]) if (!next.has(key)) this.replayed.delete(key);
      this.assigned = true;
    } finally {
      await admin.disconnect();
    }
    // The lag of a new assignment is known at once, not LAG_INTERVAL_MS later.
    this.measureLag().catch((err: unknown) =>
      this.opts.log.warn({ err: (err as Error).message }, "cannot measure consumer lag"),
    );
  }

  /**
   * Before the first batch of a partition this process has never consumed: when replay is on and
   * the batch starts after the replay point, seek back to it and drop the batch, so that the actors
   * see the partition's records in order from the replay point (their offset watermarks rely on it).
   */
  private async replayPoint(
    topic: string,
    partition: number,
    firstOffset: number,
  ): Promise<number | null> {
    const key = `${topic}/${partition}`;
    // With checkpoints the committed offset is where the checkpointed states end: resume there.
    if (this.opts.checkpoint || !this.opts.kafka.replay || this.replayed.has(key)) return null;
    this.replayed.add(key);
    const offset = await this.replayOffset(topic, partition);
    if (offset >= firstOffset) return null;
    const progress = this.progress.get(key);
    if (progress) progress.next = offset;
    return offset;
  }

  /** The first offset of a partition inside the replay window (by record timestamp). */
  private async replayOffset(topic: string, partition: number): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const byTime = await admin.fetchTopicOffsetsByTimestamp(
        topic,
        Date.now() - this.opts.replayWindowMs,
      );
      const low = (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition);
      const at = byTime.find((o) => o.partition === partition);
      return Math.max(Number(low?.low ?? 0), at ? Number(at.offset) : 0);
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Replays every assigned partition from the replay point: after an actor node was lost, its
   * symbols' new owners rebuild them from the log while the others skip what they already hold
   * (applied-offset ranges). The node reports not-live until it has caught up again.
   */
  async rewind(): Promise<void> {
    this.lossEpoch += 1;
    if (this.opts.checkpoint) {
      // Until the positions are reset they cover what the lost node lost: no round may start.
      this.rewindsPending += 1;
      try {
        return await this.rewindToCheckpoint();
      } finally {
        this.rewindsPending -= 1;
      }
    }
    if (!this.opts.kafka.replay || !this.consumer) return;
    // No commit of a position before the rewind may land after the rewind's own commits.
    this.rewinding = true;
    try {
      this.toCommit.clear();
      await this.flushCommits();
      await this.seekToReplayPoints(this.consumer);
    } finally {
      this.rewinding = false;
    }
  }

  private async seekToReplayPoints(consumer: Consumer): Promise<void> {
    this.wasLive = false;
    this.replayStartedAt = Date.now();
    this.counts.replayRecords = 0;
    for (const [key, progress] of this.progress) {
      const cut = key.lastIndexOf("/");
      const topic = key.slice(0, cut);
      const partition = Number(key.slice(cut + 1));
      const offset = await this.replayOffset(topic, partition);
      this.replayed.add(key);
      progress.target = Math.max(progress.target, progress.next);
      progress.next = Math.min(progress.next, offset);
      consumer.seek({ topic, partition, offset: String(offset) });
      // Committed too: a rebalance (the lost node's partitions coming to us) resumes from the
      // committed offsets and would otherwise forget the seek.
      await consumer.commitOffsets([{ topic, partition, offset: String(offset) }]);
    }
    this.opts.log.info(
      { partitions: this.progress.size },
      "rewound to rebuild the state of a lost node",
    );
  }

  /**
   * After an actor node was lost: every assigned partition goes back to its committed offset (the
   * last checkpoint). The lost symbols' new owners load their checkpoints on their next record and
   * take the log after them; the others skip what they hold.
   */
  private async rewindToCheckpoint(): Promise<void> {
    const committed = await this.committedOffsetsRetried();
    if (!this.consumer || committed === null) return;
    this.wasLive = false;
    this.replayStartedAt = Date.now();
    this.counts.replayRecords = 0;
    for (const [key, progress] of this.progress) {
      const cut = key.lastIndexOf("/");
      const topic = key.slice(0, cut);
      const partition = Number(key.slice(cut + 1));
      const offset = committed.get(key);
      if (offset === undefined) continue;
      progress.target = Math.max(progress.target, progress.next);
      progress.next = Math.min(progress.next, offset);
      this.consumer.seek({ topic, partition, offset: String(offset) });
    }
    this.opts.log.info(
      { partitions: this.progress.size, offsets: Object.fromEntries(committed) },
      "rewound to the last checkpoint to rebuild the state of a lost node",
    );
  }

  /**
   * `committedOffsets`, retried until the broker answers: a rewind cannot be skipped (the positions
   * would still cover the lost node's changes). Null once the source is stopping.
   */
  private async committedOffsetsRetried(): Promise<Map<string, number> | null> {
    for (let attempt = 0; this.consumer; attempt++) {
      try {
        return await this.committedOffsets();
      } catch (err: unknown) {
        const wait = Math.min(5000, 200 * 2 ** attempt);
        this.opts.log.warn(
          { err: (err as Error).message, wait },
          "cannot read the committed offsets to rewind; retrying",
        );
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
    return null;
  }

  /** The group's committed offset of every assigned partition (the earliest offset when none). */
  private async committedOffsets(): Promise<Map<string, number>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const out = new Map<string, number>();
      for (const topic of this.opts.kafka.topics) {
        const low = new Map(
          (await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.low)]),
        );
        const [committed] = await admin.fetchOffsets({
          groupId: this.opts.kafka.groupId,
          topics: [topic],
        });
        for (const p of committed?.partitions ?? []) {
          const offset = Number(p.offset);
          out.set(`${topic}/${p.partition}`, offset >= 0 ? offset : (low.get(p.partition) ?? 0));
        }
      }
      return out;
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * One checkpoint round: note how far each partition is acknowledged, have every actor node
   * write its changed states, then commit those offsets — unless the round failed or an actor
   * node was lost meanwhile (its uncheckpointed changes must be replayed from the last commit).
   */
  private async checkpointTick(rounds: CheckpointRounds): Promise<void> {
    if (this.checkpointRunning || this.rewindsPending > 0 || !this.consumer) return;
    this.checkpointRunning = true;
    const started = Date.now();
    try {
      const epoch = this.lossEpoch;
      const positions = [...this.progress]
        .filter(([key, p]) => p.next > (this.checkpointed.get(key) ?? -1))
        .map(([key, p]) => ({ key, offset: p.next }));
      if (positions.length === 0) {
        rounds.onRound?.("idle", 0);
        return;
      }
      const ok = await rounds.round();
      if (!ok || epoch !== this.lossEpoch) {
        rounds.onRound?.("failed", Date.now() - started);
        return;
      }
      await this.consumer.commitOffsets(
        positions.map(({ key, offset }) => {
          const cut = key.lastIndexOf("/");
          return {
            topic: key.slice(0, cut),
            partition: Number(key.slice(cut + 1)),
            offset: String(offset),
          };
        }),
      );
      for (const { key, offset } of positions) this.checkpointed.set(key, offset);
      rounds.onRound?.("ok", Date.now() - started);
    } catch (err: unknown) {
      rounds.onRound?.("failed", Date.now() - started);
      this.opts.log.warn({ err: (err as Error).message }, "checkpoint round failed");
    } finally {
      this.checkpointRunning = false;
    }
  }

  /**
   * Commits an applied offset without holding up the partition's next fetch: one commit request
   * is in flight at a time, and offsets applied meanwhile go together in the next one. Awaiting
   * every commit in the batch loop put a broker round trip between every batch and the next fetch
   * (kafkajs fetches again only once the batches of a fetch are done): at 20k records/s it was
   * most of produce → applied (p50 54–219 ms → 7–14 ms, bench/README.md). Committed offsets stay
   * at or behind what is applied; a commit that fails (rebalance, broker away) only means
   * re-delivered records, which the actors skip as duplicates.
   */
  private commitApplied(topic: string, partition: number, offset: string): void {
    if (this.rewinding) return;
    this.toCommit.set(`${topic}/${partition}`, { topic, partition, offset });
    this.committing ??= this.drainCommits().finally(() => (this.committing = null));
  }

  private async drainCommits(): Promise<void> {
    while (this.toCommit.size > 0 && this.consumer) {
      const offsets = [...this.toCommit.values()];
      this.toCommit.clear();
      try {
        await this.consumer.commitOffsets(offsets);
      } catch (err: unknown) {
        this.opts.log.warn(
          { err: (err as Error).message, partitions: offsets.length },
          "offset commit failed; those records will be re-delivered and skipped as duplicates",
        );
      }
    }
  }

  /** Resolves once every offset applied so far is committed (or its commit failed). */
  private async flushCommits(): Promise<void> {
    while (this.committing) await this.committing;
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
    const key = `${batch.topic}/${batch.partition}`;
    await this.assignment;
    const first = batch.messages[0];
    if (first) {
      const replayFrom = await this.replayPoint(batch.topic, batch.partition, Number(first.offset));
      if (replayFrom !== null) {
        this.opts.log.info(
          {
            topic: batch.topic,
            partition: batch.partition,
            from: replayFrom,
            committed: Number(first.offset),
          },
          "replaying partition to rebuild state",
        );
        this.consumer?.seek({
          topic: batch.topic,
          partition: batch.partition,
          offset: String(replayFrom),
        });
        return;
      }
    }
    const max = this.opts.batchMaxRecords;
    for (let i = 0; i < batch.messages.length; i += max) {
      if (!isRunning() || isStale()) return;
      const messages = batch.messages.slice(i, i + max);
      const { raw, crcRejects } = this.pack(key, messages);
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
          await this.deadLetter(batch.topic, batch.partition, messages, rejects);
        const last = messages[messages.length - 1]!;
        // A seek (rewind) while the chunk was applied: its commit would undo the rewind. The
        // chunk is re-read from the new position and skipped as already applied.
        if (isStale()) return;
        resolveOffset(last.offset);
        // With checkpoints only rounds commit (the committed offset must be checkpoint-covered).
        if (!this.opts.checkpoint) {
          this.commitApplied(batch.topic, batch.partition, String(Number(last.offset) + 1));
          // Stopping: kafkajs leaves the group once this batch returns.
          if (!isRunning()) await this.flushCommits();
        }
        const progress = this.progress.get(key);
        if (progress) {
          progress.next = Number(last.offset) + 1;
          if (!this.wasLive) this.counts.replayRecords += messages.length;
        }
        this.counts.records += messages.length;
      } finally {
        (resume as (() => void) | null)?.();
      }
      await heartbeat();
    }
  }

  /** Packs messages into a raw batch; records whose crc32 header does not match are left empty. */
  private pack(
    source: string,
    messages: KafkaMessage[],
  ): { raw: RawBatch; crcRejects: { record: number; reason: string; offset: number }[] } {
    // One pass into one buffer, no per-record closures or intermediate arrays, and one native
    // call for every crc32 header of the batch: this runs for every record (bench/README.md,
    // "e2e: what limits it").
    const n = messages.length;
    const crcs: (Buffer | undefined)[] = new Array<Buffer | undefined>(n);
    let total = 0;
    let headerTotal = 0;
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      total += m.value?.length ?? 0;
      const crc = headerText(m, CRC_HEADER);
      crcs[i] = crc;
      headerTotal += crc?.length ?? 0;
    }
    const payload = Buffer.allocUnsafe(total);
    const offsets = new Uint32Array(n + 1);
    const headers = Buffer.allocUnsafe(headerTotal);
    const headerOffsets = new Uint32Array(n + 1);
    const seqs = new Float64Array(n);
    const producedAtMs = new Float64Array(n);
    let at = 0;
    let headerAt = 0;
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      offsets[i] = at;
      headerOffsets[i] = headerAt;
      seqs[i] = Number(m.offset);
      producedAtMs[i] = Number(m.timestamp);
      const value = m.value ?? EMPTY;
      payload.set(value, at);
      at += value.length;
      const crc = crcs[i];
      if (crc !== undefined) {
        headers.set(crc, headerAt);
        headerAt += crc.length;
      }
    }
    offsets[n] = at;
    headerOffsets[n] = headerAt;
    const crcRejects: { record: number; reason: string; offset: number }[] = [];
    if (headerTotal > 0) {
      const bad = native.verifyCrc32Batch(payload, offsets, headers, headerOffsets);
      if (bad.length > 0) at = leaveEmpty(payload, offsets, bad);
      for (const record of bad) crcRejects.push({ record, reason: "CRC32", offset: 0 });
      this.counts.crcMismatches += bad.length;
    }
    return {
      raw: { source, payload: payload.subarray(0, at), offsets, seqs, producedAtMs },
      crcRejects,
    };
  }

  /** Writes each rejected record, unchanged, to the dead-letter topic with why and where it came from. */
  private async deadLetter(
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    rejects: { record: number; reason: string; offset: number }[],
  ): Promise<void> {
    const byRecord = new Map<number, string[]>();
    for (const r of rejects) byRecord.set(r.record, [...(byRecord.get(r.record) ?? []), r.reason]);
    const records = [...byRecord.entries()].map(([i, reasons]) => {
      const m = messages[i]!;
      return {
        key: m.key,
        value: m.value,
        headers: {
          ...(m.headers ?? {}),
          reason: reasons[0]!,
          reasons: reasons.join(","),
          "source.topic": topic,
          "source.partition": String(partition),
          "source.offset": m.offset,
          "source.timestamp": m.timestamp,
        },
      };
    });
    await this.producer!.send({ topic: this.opts.kafka.dlqTopic, messages: records, acks: -1 });
    for (const reasons of byRecord.values()) this.opts.onDeadLetter(reasons[0]!);
    this.counts.deadLettered += records.length;
  }
}
