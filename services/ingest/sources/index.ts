/**
 * Resolves the configured trade source: Kafka when KAFKA_BROKERS is set, else a file replay when
 * FEED_FILE is set, else the built-in synthetic feed.
 */
import type { Config } from "../../../src/config";
import { FileSource } from "./file";
import { KafkaSource, type KafkaSourceOptions } from "./kafka/kafka-source";
import type { TradeSource } from "./source";
import { SyntheticSource } from "./synthetic";

export type SourceDeps = Pick<KafkaSourceOptions, "log" | "onDeadLetter" | "onLag" | "checkpoint">;

export function createSource(config: Config, deps: SourceDeps): TradeSource {
  const feed = config.feed;
  if (config.kafka !== null)
    return new KafkaSource({
      kafka: config.kafka,
      batchMaxRecords: feed.batchMaxRecords,
      replayWindowMs: config.bars.retentionMs["1m"],
      ...deps,
    });
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

export type { TradeSource, RawBatch, BatchHandler, Delivery, DeliveryHooks } from "./source";
