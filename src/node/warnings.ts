/** Process warnings a command line shows, without the one kafkajs causes on every run. */

/** kafkajs 2.2.4 schedules timers with negative delays on Node ≥ 23; the warning is noise. */
export function quietKnownWarnings(): void {
  process.removeAllListeners("warning");
  process.on("warning", (w) => {
    if (w.name !== "TimeoutNegativeWarning") process.stderr.write(`${w.name}: ${w.message}\n`);
  });
}
