/** The publisher's call (`publisher.publish`): one actor service's durable records, per symbol. */
import type { Release } from "../publish/outbox";

/** Every call goes to the one publisher that rendezvous hashing picks for this key. */
export const PUBLISHER_SHARD = "publisher";

export interface PublishParams {
  service: string;
  releases: Release[];
}

/** Per symbol, the sequence through which its records are committed (or were already). */
export interface PublishReply {
  acked: { symbol: string; through: number }[];
}
