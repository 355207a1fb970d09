/**
 * Checkpoint store: the latest state of every symbol, per actor service, in a NATS JetStream
 * key-value bucket.
 *
 * Why JetStream KV rather than a compacted Kafka topic: recovery needs one symbol's latest state
 * at a time (the new owner of a lost symbol loads it before applying its next record), and a KV
 * bucket answers `get(key)` directly, while a compacted topic can only be read whole (or cached
 * whole on every node). The bucket keeps one revision per key (history 1), on file storage, on the
 * NATS servers the cluster already runs for its transport. A state's value carries its
 * applied-offset ranges (state format TSS1 v2), so the bytes and the Kafka offsets they reflect are
 * written together, atomically, as one message.
 */
import { connect, type KV, type NatsConnection } from "nats";
import type { SymbolState } from "../../mixins/symbol-actors.mixin";

export interface CheckpointStore {
  /** The latest checkpointed state of `symbol` for `service`, or null when there is none. */
  get(service: string, symbol: string): Promise<Buffer | null>;
  /** Writes the states (each one atomically; resolves once the server has stored all of them). */
  put(service: string, states: readonly SymbolState[]): Promise<void>;
  close(): Promise<void>;
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`: the symbol is base64url-encoded, the service is a prefix. */
export function checkpointKey(service: string, symbol: string): string {
  return `${service}.${Buffer.from(symbol, "utf8").toString("base64url")}`;
}

/** Parallel puts per call: enough to hide the round trip, few enough not to flood the server. */
const PUT_CONCURRENCY = 32;

export class JetStreamCheckpointStore implements CheckpointStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private kv: KV,
  ) {}

  static async open(url: string, bucket: string): Promise<JetStreamCheckpointStore> {
    const nc = await connect({
      servers: url,
      name: "tickstream-checkpoints",
      // Keep reconnecting for ever: a nats-server restart must not end checkpointing.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    // Nodes starting together race to create the bucket, and the loser's create can fail
    // ("subjects overlap with an existing stream"): binding again finds the winner's.
    for (let attempt = 1; ; attempt++) {
      try {
        const kv = await nc.jetstream().views.kv(bucket, { history: 1 });
        return new JetStreamCheckpointStore(nc, bucket, kv);
      } catch (err) {
        if (attempt >= 5) {
          await nc.close();
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  /**
   * Runs `op` on the bucket; on failure binds the bucket again (creating it if a JetStream server
   * lost its storage) and retries once, so a recreated server does not end checkpointing.
   */
  private async withBucket<T>(op: (kv: KV) => Promise<T>): Promise<T> {
    try {
      return await op(this.kv);
    } catch {
      this.kv = await this.nc.jetstream().views.kv(this.bucket, { history: 1 });
      return op(this.kv);
    }
  }

  async get(service: string, symbol: string): Promise<Buffer | null> {
    const entry = await this.withBucket((kv) => kv.get(checkpointKey(service, symbol)));
    if (entry === null || entry.operation !== "PUT" || entry.value.length === 0) return null;
    return Buffer.from(entry.value);
  }

  async put(service: string, states: readonly SymbolState[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < states.length) {
        const { symbol, state } = states[next++]!;
        await this.withBucket((kv) => kv.put(checkpointKey(service, symbol), state));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PUT_CONCURRENCY, states.length) }, worker));
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}
