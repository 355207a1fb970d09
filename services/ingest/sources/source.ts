/**
 * A trade source hands batches of raw records to the pipeline and waits for each batch to be
 * acknowledged (applied to bars) before it considers the batch done — the synthetic feed before
 * it writes more, Kafka before it commits offsets.
 */

/** Raw records of one source, in order: record i is `payload[offsets[i] .. offsets[i+1])`. */
export interface RawBatch {
  /** Names the ordered stream the records come from, e.g. `trades/3` or `file:day1.fix`. */
  source: string;
  payload: Buffer;
  /** n + 1 boundaries of the n records. */
  offsets: Uint32Array;
  /** Position of each record in its source (Kafka offset, message index): dedupe watermarks. */
  seqs: Float64Array;
  /** Wall-clock ms when each record was produced (Kafka timestamp, feed time), for latency. */
  producedAtMs: Float64Array;
}

/** What the pipeline could not apply, by record index, for the source to dead-letter. */
export interface Delivery {
  rejects: { record: number; reason: string; offset: number }[];
}

export interface DeliveryHooks {
  /** Called while a failing batch waits to be retried (keep the consumer's session alive). */
  onRetry?: () => Promise<void>;
}

/** Called with each batch; resolves once every trade of it is applied (null: the node is stopping). */
export type BatchHandler = (batch: RawBatch, hooks?: DeliveryHooks) => Promise<Delivery | null>;

export interface TradeSource {
  readonly name: string;
  /** Starts producing; returns once the source is running. */
  start(handler: BatchHandler): Promise<void>;
  /** Stops producing and waits for the batch in flight. */
  stop(): Promise<void>;
  /** True once the source consumes live data (replay done, caught up with the log). */
  readonly live: boolean;
  /** Counters for /api/stats. */
  stats(): Record<string, number>;
  /** Re-reads the log's replay window (sources that can), to rebuild the state of a lost node. */
  rewind?(): Promise<void>;
}

/** Packs records into one buffer with their boundaries. */
export function packRecords(
  source: string,
  records: readonly Buffer[],
  seqs: readonly number[],
  producedAtMs: readonly number[],
): RawBatch {
  const offsets = new Uint32Array(records.length + 1);
  let total = 0;
  records.forEach((r, i) => {
    offsets[i] = total;
    total += r.length;
  });
  offsets[records.length] = total;
  return {
    source,
    payload: Buffer.concat(records, total),
    offsets,
    seqs: Float64Array.from(seqs),
    producedAtMs: Float64Array.from(producedAtMs),
  };
}
