/** Resolves the configured trade source: a file replay when FEED_FILE is set, else the synthetic feed. */
import type { Config } from "../../../src/config";
import { FileSource } from "./file";
import type { TradeSource } from "./source";
import { SyntheticSource } from "./synthetic";

export function createSource(config: Config): TradeSource {
  const feed = config.feed;
  if (feed.file !== null)
    return new FileSource({
      file: feed.file,
      rate: feed.rate,
      batchMaxRecords: feed.batchMaxRecords,
    });
  return new SyntheticSource({
    symbols: feed.symbols,
    seed: feed.seed,
    malformedRatio: feed.malformedRatio,
    jumpProbability: feed.jumpProbability,
    rate: feed.rate,
    batchMaxRecords: feed.batchMaxRecords,
  });
}

export type { TradeSource, RawBatch, BatchHandler } from "./source";
