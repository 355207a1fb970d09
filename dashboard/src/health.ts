/**
 * Pipeline health from successive /api/stats samples: rates are differences of the cluster-wide
 * counters over the time between two samples (counters of a node that restarted may go down: such
 * a difference is not a rate and shows as unknown until the next sample).
 */
import type { NodeStats } from "./types";

export interface Health {
  messagesPerSec: number | null;
  tradesPerSec: number | null;
  rejectsPerSec: number | null;
  rejected: number;
  nodes: number;
  liveSources: number;
}

interface Sample {
  atMs: number;
  received: number;
  applied: number;
  rejected: number;
}

const sum = (values: Iterable<number>) => {
  let s = 0;
  for (const v of values) s += v;
  return s;
};

export class HealthMeter {
  private previous: Sample | null = null;

  add(nodes: readonly NodeStats[], atMs: number): Health {
    const sample: Sample = {
      atMs,
      received: sum(nodes.map((n) => n.messages.received)),
      applied: sum(nodes.map((n) => n.trades.applied)),
      rejected: sum(nodes.flatMap((n) => Object.values(n.messages.rejected))),
    };
    const prev = this.previous;
    this.previous = sample;
    const rate = (key: keyof Omit<Sample, "atMs">) => {
      if (!prev || sample.atMs <= prev.atMs || sample[key] < prev[key]) return null;
      return ((sample[key] - prev[key]) * 1000) / (sample.atMs - prev.atMs);
    };
    return {
      messagesPerSec: rate("received"),
      tradesPerSec: rate("applied"),
      rejectsPerSec: rate("rejected"),
      rejected: sample.rejected,
      nodes: nodes.length,
      liveSources: nodes.filter((n) => n.source?.live).length,
    };
  }
}
