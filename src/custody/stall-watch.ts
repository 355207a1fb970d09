/**
 * Notices that this process did not run for a while (SIGSTOP, a VM paused, a blocked event loop):
 * a tick every `tickMs` records when the loop last ran, and `gapMs()` is how long ago that was.
 * After a stall longer than a heartbeat interval the others may have taken this process's
 * symbols, so custody re-reads its leases before anything else is applied or answered.
 */
export class StallWatch {
  private last = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(tickMs: number) {
    this.timer = setInterval(() => (this.last = performance.now()), tickMs);
    this.timer.unref();
  }

  /** Milliseconds since the loop last ran a tick; resets, so one stall is reported once. */
  takeGapMs(): number {
    const now = performance.now();
    const gap = now - this.last;
    this.last = now;
    return gap;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
