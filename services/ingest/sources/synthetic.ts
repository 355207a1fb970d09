import { setTimeout as delay } from "node:timers/promises";
import { SyntheticMarket, type SyntheticOptions } from "../../../src/feed/synthetic";
import { packRecords, type BatchHandler, type TradeSource } from "./source";

export interface SyntheticSourceOptions extends SyntheticOptions {
  /** Messages per second. */
  rate: number;
  batchMaxRecords: number;
  /** Wall clock, injectable for tests. */
  now?: () => number;
}

const TICK_MS = 50;

/**
 * The built-in feed: writes `rate` messages a second in small batches. When the pipeline falls
 * behind, the feed does not queue: it writes at most one batch per acknowledgement and counts
 * the messages it could not write as `behind`.
 */
export class SyntheticSource implements TradeSource {
  readonly name = "synthetic";
  private readonly market: SyntheticMarket;
  private readonly now: () => number;
  private running: Promise<void> | null = null;
  private stopping = false;
  private seq = 0;
  private sent = 0;
  private behind = 0;

  constructor(private readonly opts: SyntheticSourceOptions) {
    this.market = new SyntheticMarket(opts);
    this.now = opts.now ?? Date.now;
  }

  get live(): boolean {
    return this.running !== null;
  }

  get symbols(): string[] {
    return this.market.symbols;
  }

  start(handler: BatchHandler): Promise<void> {
    this.stopping = false;
    this.running = this.loop(handler);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = null;
  }

  stats(): Record<string, number> {
    return { sent: this.sent, behind: this.behind };
  }

  private async loop(handler: BatchHandler): Promise<void> {
    let last = this.now();
    let owed = 0;
    while (!this.stopping) {
      const now = this.now();
      owed += ((now - last) * this.opts.rate) / 1000;
      last = now;
      const n = Math.min(Math.floor(owed), this.opts.batchMaxRecords);
      if (n > 0) {
        owed -= n;
        if (owed > this.opts.batchMaxRecords) {
          this.behind += Math.floor(owed);
          owed = 0;
        }
        const records = this.market.next(n, now);
        const seqs = records.map(() => this.seq++);
        await handler(
          packRecords(
            "synthetic",
            records,
            seqs,
            records.map(() => now),
          ),
        );
        this.sent += n;
      }
      if (!this.stopping) await delay(TICK_MS);
    }
  }
}
