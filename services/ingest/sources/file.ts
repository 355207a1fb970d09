import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { readFixFile } from "../../../src/fix/file";
import { frameRecords } from "../../../src/fix/records";
import { packRecords, type BatchHandler, type TradeSource } from "./source";

export interface FileSourceOptions {
  file: string;
  /** Messages per second; 0 replays as fast as the pipeline takes them. */
  rate: number;
  batchMaxRecords: number;
}

/**
 * Replays a FIX file through the same path as live data. The file is framed by BodyLength in the
 * Rust core (never by searching for `8=FIX`); each message becomes one record whose sequence is
 * its index in the file, so a replay is idempotent and ties break exactly as in a live run.
 */
export class FileSource implements TradeSource {
  readonly name: string;
  private running: Promise<void> | null = null;
  private stopping = false;
  private done = false;
  private sent = 0;
  private total = 0;

  constructor(private readonly opts: FileSourceOptions) {
    this.name = `file:${path.basename(opts.file)}`;
  }

  get live(): boolean {
    return this.done;
  }

  /** Splits the file into one record per framed message (or per run of skipped bytes). */
  records(): Buffer[] {
    return readFixFile(this.opts.file).flatMap(({ bytes }) => frameRecords(bytes));
  }

  start(handler: BatchHandler): Promise<void> {
    const records = this.records();
    this.total = records.length;
    this.stopping = false;
    this.running = this.replay(records, handler);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  stats(): Record<string, number> {
    return { sent: this.sent, total: this.total };
  }

  private async replay(records: Buffer[], handler: BatchHandler): Promise<void> {
    const started = Date.now();
    const batch =
      this.opts.rate > 0
        ? Math.max(1, Math.min(this.opts.batchMaxRecords, Math.ceil(this.opts.rate / 20)))
        : this.opts.batchMaxRecords;
    for (let i = 0; i < records.length && !this.stopping; i += batch) {
      const slice = records.slice(i, i + batch);
      const now = Date.now();
      const seqs = slice.map((_, k) => i + k);
      await handler(
        packRecords(
          this.name,
          slice,
          seqs,
          slice.map(() => now),
        ),
      );
      this.sent += slice.length;
      if (this.opts.rate > 0) {
        const due = started + (this.sent / this.opts.rate) * 1000;
        if (due > Date.now()) await delay(due - Date.now());
      }
    }
    this.done = !this.stopping || this.sent === records.length;
  }
}
