/**
 * Per-symbol actors on the Rust engine: the state the aggregator and the anomaly service own.
 *
 * Each symbol's state lives in exactly one engine and its updates are applied in order, one batch
 * at a time: `apply` is a single synchronous native call on the event loop, so no two batches ever
 * interleave on a symbol (actor semantics without a mailbox per symbol). Re-delivered batches are
 * recognised by the engine's per-source offset watermarks and trade ids, so `apply` is idempotent
 * and callers may retry it freely.
 */
import type { Config } from "../config";
import { SKIP_REASONS, type CorrectionCounts } from "../contracts/stats";
import { ERR_BAD_BATCH, badBatch, nativeFailure } from "../errors";
import { isNativeError, native, type Binding } from "../native";

export interface ActorRole {
  bars: boolean;
  detector: boolean;
}

/** What became of one batch's trades. */
export interface ApplyCounts {
  applied: number;
  duplicates: number;
  revised: number;
  tooLate: number;
  /** Record indices (of the decode call) whose trades fell before every retention window. */
  tooLateRecords: number[];
  orders: number;
}

/** The binding's skip counters, each with the reason the stats name it by (the same set). */
const SKIPPED: Record<keyof Binding.CorrectionsSkipped, string> = SKIP_REASONS;

export function noCorrections(): CorrectionCounts {
  return {
    cancelled: 0,
    corrected: 0,
    skipped: { unknownTrade: 0, outsideWindow: 0, alreadyCancelled: 0, duplicate: 0, unchanged: 0 },
  };
}

/** Adds one batch's outcome to `into`. */
export function countCorrections(into: CorrectionCounts, result: Binding.ApplyResult): void {
  into.cancelled += result.cancels;
  into.corrected += result.corrections;
  for (const k of Object.keys(SKIPPED) as (keyof Binding.CorrectionsSkipped)[])
    into.skipped[k] += result.correctionsSkipped[k];
}

export function engineOptions(config: Config, role: ActorRole): Binding.EngineOptions {
  return {
    bars: role.bars,
    detector: role.detector,
    graceMs: config.bars.graceMs,
    retention1MMs: config.bars.retentionMs["1m"],
    retention5MMs: config.bars.retentionMs["5m"],
    retention1HMs: config.bars.retentionMs["1h"],
    correctionWindowMs: config.bars.correctionWindowMs,
    dedupeCapacity: config.bars.dedupeCapacity,
    detectorKind: config.detector.kind,
    window: config.detector.window,
    minSamples: config.detector.minSamples,
    threshold: config.detector.threshold,
    lambda: config.detector.lambda,
    overrides: JSON.stringify(config.detector.overrides),
    // Tick and volume bars are the aggregator's (the anomaly engine keeps none).
    activityBars: role.bars ? config.bars.activity.join(",") : "",
  };
}

export class SymbolActors {
  readonly engine: Binding.Engine;

  constructor(config: Config, role: ActorRole) {
    this.engine = new native.Engine(engineOptions(config, role));
  }

  /** Applies one packed batch; bad bytes are the caller's fault (4xx), a caught panic is ours. */
  apply(batch: Buffer, nowMs: number): Binding.ApplyResult {
    let result: Binding.ApplyResult;
    try {
      result = this.engine.applyBatch(batch, nowMs);
    } catch (err: unknown) {
      if (isNativeError(err, ERR_BAD_BATCH)) throw badBatch(err.message, err);
      throw nativeFailure(err);
    }
    return result;
  }

  static counts(result: Binding.ApplyResult): ApplyCounts {
    return {
      applied: result.applied,
      duplicates: result.duplicatesId + result.duplicatesOffset,
      revised: result.revised,
      tooLate: result.tooLate,
      tooLateRecords: result.tooLateRecords,
      orders: result.orders,
    };
  }
}
