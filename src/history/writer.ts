/**
 * Batches closed bars into the history store, off the live path.
 *
 * `add` never blocks and never fails: bars wait in a bounded buffer (one entry per bar key, so a
 * bar revised before it was written is written once, in its latest version) and are written every
 * `flushMs`, or at once when a batch is full. While the store is down, writes are retried with
 * exponential backoff; when the buffer is full, the oldest bars are dropped and counted. Live bars
 * never wait for history.
 */
import { barKey, newer, rangeBounds, type HistoryStore, type StoredBar } from "./store";

export interface HistoryWriterOptions {
  flushMs: number;
  batchSize: number;
  bufferMax: number;
  retryMaxMs: number;
}

/** What the writer reports (to metrics and logs); every hook is optional. */
export interface HistoryWriterEvents {
  written?(bars: number): void;
  failed?(err: Error, attempt: number, retryInMs: number): void;
  recovered?(afterAttempts: number): void;
  dropped?(bars: number): void;
  buffered?(bars: number): void;
}

export interface HistoryWriterStats {
  written: number;
  failures: number;
  dropped: number;
  buffered: number;
}

export class HistoryWriter {
  private readonly pending = new Map<string, StoredBar>();
  /** The keys of `pending` by symbol and interval, so REST can read what is not written yet. */
  private readonly pendingBySeries = new Map<string, Set<string>>();
  private readonly timer: NodeJS.Timeout;
  private inFlight: Promise<void> | null = null;
  /** Consecutive failed writes; 0 while the store works. */
  private failures = 0;
  private retryAt = 0;
  private closed = false;
  private readonly counts = { written: 0, failures: 0, dropped: 0 };

  constructor(
    readonly store: HistoryStore,
    private readonly options: HistoryWriterOptions,
    private readonly events: HistoryWriterEvents = {},
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  /** Queues bars for writing. Never throws, never waits. After `close`, bars are only counted as dropped. */
  add(bars: readonly StoredBar[]): void {
    if (bars.length === 0) return;
    if (this.closed) {
      this.counts.dropped += bars.length;
      this.events.dropped?.(bars.length);
      return;
    }
    for (const b of bars) {
      const key = barKey(b);
      const held = this.pending.get(key);
      if (held !== undefined && newer(held, b)) continue;
      // Re-inserting moves a re-queued bar to the back: it is as new as its latest version.
      this.pending.delete(key);
      this.pending.set(key, b);
      const series = seriesKey(b);
      let keys = this.pendingBySeries.get(series);
      if (keys === undefined) this.pendingBySeries.set(series, (keys = new Set()));
      keys.add(key);
    }
    let dropped = 0;
    for (const key of this.pending.keys()) {
      if (this.pending.size <= this.options.bufferMax) break;
      this.remove(key);
      dropped++;
    }
    if (dropped > 0) {
      this.counts.dropped += dropped;
      this.events.dropped?.(dropped);
    }
    this.events.buffered?.(this.pending.size);
    if (this.pending.size >= this.options.batchSize) void this.flush();
  }

  /** Writes what is buffered, batch by batch; resolves when done or when a write failed. */
  flush(): Promise<void> {
    if (this.inFlight !== null) return this.inFlight;
    if (this.pending.size === 0 || Date.now() < this.retryAt) return Promise.resolve();
    this.inFlight = this.drain().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** Bars waiting to be written whose start lies in [fromMs, toMs), in no particular order. */
  pendingBars(
    symbol: string,
    interval: string,
    fromMs: number | undefined,
    toMs: number | undefined,
  ): StoredBar[] {
    const keys = this.pendingBySeries.get(seriesKey({ symbol, interval }));
    if (keys === undefined) return [];
    const { from, to } = rangeBounds(fromMs, toMs);
    const out: StoredBar[] = [];
    for (const key of keys) {
      const b = this.pending.get(key);
      if (b !== undefined && b.startMs >= from && b.startMs < to) out.push(b);
    }
    return out;
  }

  get stats(): HistoryWriterStats {
    return { ...this.counts, buffered: this.pending.size };
  }

  /** Whether the last write failed (history is behind, and may be unavailable). */
  get failing(): boolean {
    return this.failures > 0;
  }

  /**
   * Stops the timer and keeps writing what is buffered until it is written or `timeoutMs` has
   * passed, then closes the store. Returns the number of bars it could not write.
   */
  async close(timeoutMs: number): Promise<number> {
    clearInterval(this.timer);
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      if (this.inFlight !== null) {
        await this.inFlight;
        continue;
      }
      const wait = Math.min(this.retryAt - Date.now(), deadline - Date.now());
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.retryAt = 0;
      await this.flush();
    }
    this.closed = true;
    const lost = this.pending.size;
    await this.store.close().catch(() => undefined);
    return lost;
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0) {
      const batch: [string, StoredBar][] = [];
      for (const entry of this.pending) {
        batch.push(entry);
        if (batch.length >= this.options.batchSize) break;
      }
      try {
        await this.store.writeBars(batch.map(([, b]) => b));
      } catch (err: unknown) {
        this.failures++;
        this.counts.failures++;
        const delay = Math.min(
          this.options.retryMaxMs,
          this.options.flushMs * 2 ** Math.min(this.failures - 1, 20),
        );
        this.retryAt = Date.now() + delay;
        this.events.failed?.(
          err instanceof Error ? err : new Error(String(err)),
          this.failures,
          delay,
        );
        return;
      }
      // A bar re-queued meanwhile (a newer version) stays for the next batch.
      for (const [key, bar] of batch) if (this.pending.get(key) === bar) this.remove(key);
      if (this.failures > 0) this.events.recovered?.(this.failures);
      this.failures = 0;
      this.retryAt = 0;
      this.counts.written += batch.length;
      this.events.written?.(batch.length);
      this.events.buffered?.(this.pending.size);
    }
  }

  private remove(key: string): void {
    const b = this.pending.get(key);
    if (b === undefined) return;
    this.pending.delete(key);
    const series = seriesKey(b);
    const keys = this.pendingBySeries.get(series);
    keys?.delete(key);
    if (keys?.size === 0) this.pendingBySeries.delete(series);
  }
}

const seriesKey = (b: { symbol: string; interval: string }) => `${b.symbol}\u0000${b.interval}`;
