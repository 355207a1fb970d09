/**
 * Checkpoint rounds (a cluster with a custody store): the only commits of the source. Every
 * interval a round notes, per assigned partition, the offset below which every chunk is applied,
 * has the actor processes write their states (`round()`, see the ingest service and
 * src/custody/), and commits those offsets once all of them have — so the committed offset is
 * always covered by the store. A round during which a rewind started never commits, and no round
 * starts while a rewind has not reset the positions yet.
 */
import type { Consumer } from "kafkajs";
import type { KafkaLog } from "./client";
import type { CommitQueue } from "./commits";
import type { PartitionKey, Positions } from "./positions";

export interface CheckpointRounds {
  intervalMs: number;
  /** Has every actor node write its changed states; true when all of them did. */
  round(): Promise<boolean>;
  onRound?(result: "ok" | "failed" | "idle", ms: number): void;
}

export class Checkpoints {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** Offsets committed by the last successful round, per partition. */
  private readonly checkpointed = new Map<PartitionKey, number>();
  /** Incremented when an actor node is lost: a round that spans a loss must not commit. */
  private lossEpoch = 0;
  /** Rewinds under way: their positions are not reset yet. */
  private rewindsPending = 0;

  constructor(
    private readonly rounds: CheckpointRounds,
    private readonly positions: Positions,
    private readonly commits: CommitQueue,
    private readonly consumer: () => Consumer | null,
    private readonly log: KafkaLog,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.rounds.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Runs a rewind (`reset` moves the positions back): rounds wait for it, and one under way fails. */
  async rewind(reset: () => Promise<void>): Promise<void> {
    this.lossEpoch += 1;
    this.rewindsPending += 1;
    try {
      await reset();
    } finally {
      this.rewindsPending -= 1;
    }
  }

  /**
   * One checkpoint round: note how far each partition is acknowledged, have every actor node
   * write its changed states, then commit those offsets — unless the round failed or an actor
   * node was lost meanwhile (its uncheckpointed changes must be replayed from the last commit).
   */
  private async tick(): Promise<void> {
    if (this.running || this.rewindsPending > 0 || !this.consumer()) return;
    this.running = true;
    const rounds = this.rounds;
    const started = Date.now();
    try {
      const epoch = this.lossEpoch;
      const offsets = [...this.positions.all()]
        .filter((p) => p.next > (this.checkpointed.get(p.key) ?? -1))
        .map((p) => ({ key: p.key, topic: p.topic, partition: p.partition, offset: p.next }));
      if (offsets.length === 0) {
        rounds.onRound?.("idle", 0);
        return;
      }
      const ok = await rounds.round();
      if (!ok || epoch !== this.lossEpoch) {
        rounds.onRound?.("failed", Date.now() - started);
        return;
      }
      await this.commits.commit(offsets);
      for (const { key, offset } of offsets) this.checkpointed.set(key, offset);
      rounds.onRound?.("ok", Date.now() - started);
    } catch (err: unknown) {
      rounds.onRound?.("failed", Date.now() - started);
      this.log.warn({ err: (err as Error).message }, "checkpoint round failed");
    } finally {
      this.running = false;
    }
  }
}
