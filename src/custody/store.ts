/**
 * The custody store: one compare-and-set entry per (service, symbol) holding the symbol's lease
 * (epoch and holder) and its latest durable state, written together in one value so that a state
 * write is conditional on the lease by construction.
 *
 * Every write names the revision it expects to replace (`null`: the key must not exist) and
 * fails with `CasConflict` otherwise; the store's revisions are what fences a superseded holder.
 * In a cluster the store is a NATS JetStream key-value bucket (history 1, file storage; replicate
 * it R3 in production); in one process it is a map with the same semantics.
 */
import { connect, type KV, type NatsConnection } from "nats";

/** A process holding leases: node ID plus the broker's instance ID (a restart is another holder). */
export interface Holder {
  nodeID: string;
  instanceID: string;
}

/** One (service, symbol) entry: `holder` null means released (free to claim, state is final). */
export interface Entry {
  revision: number;
  epoch: number;
  holder: Holder | null;
  /** The symbol's state as last written (engine export bytes); empty when it has none yet. */
  state: Buffer;
}

export type EntryValue = Omit<Entry, "revision">;

/** A compare-and-set write found another revision: someone else wrote the entry meanwhile. */
export class CasConflict extends Error {
  constructor(key: string, expected: number | null) {
    super(`custody entry ${key} is no longer at revision ${expected ?? "(absent)"}`);
    this.name = "CasConflict";
  }
}

export interface CustodyStore {
  read(key: string): Promise<Entry | null>;
  /** Writes `value` if the entry is still at `expected` (null: absent); returns the new revision. */
  write(key: string, value: EntryValue, expected: number | null): Promise<number>;
  close(): Promise<void>;
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`: the symbol is base64url-encoded, the service is a prefix. */
export function custodyKey(service: string, symbol: string): string {
  return `${service}.${Buffer.from(symbol, "utf8").toString("base64url")}`;
}

const MAGIC = Buffer.from("TSC1");

/** `TSC1`, epoch (u32 BE), holder length (u16 BE), holder `nodeID\0instanceID`, then the state. */
export function encodeEntry(v: EntryValue): Buffer {
  const holder = v.holder
    ? Buffer.from(`${v.holder.nodeID}\0${v.holder.instanceID}`)
    : Buffer.alloc(0);
  const head = Buffer.allocUnsafe(10);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(v.epoch, 4);
  head.writeUInt16BE(holder.length, 8);
  return Buffer.concat([head, holder, v.state]);
}

export function decodeEntry(revision: number, bytes: Uint8Array): Entry {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 10 || !b.subarray(0, 4).equals(MAGIC))
    throw new Error(`custody entry at revision ${revision} is not a TSC1 value`);
  const epoch = b.readUInt32BE(4);
  const len = b.readUInt16BE(8);
  const text = b.subarray(10, 10 + len).toString();
  const cut = text.indexOf("\0");
  const holder = len === 0 ? null : { nodeID: text.slice(0, cut), instanceID: text.slice(cut + 1) };
  return { revision, epoch, holder, state: Buffer.from(b.subarray(10 + len)) };
}

/** One process's store, or one shared by the in-process brokers of a namespace (Fake transporter). */
export class MemoryCustodyStore implements CustodyStore {
  private static readonly shared = new Map<string, MemoryCustodyStore>();
  private readonly entries = new Map<string, { revision: number; bytes: Buffer }>();
  private revision = 0;

  static named(name: string): MemoryCustodyStore {
    let store = MemoryCustodyStore.shared.get(name);
    if (!store) MemoryCustodyStore.shared.set(name, (store = new MemoryCustodyStore()));
    return store;
  }

  read(key: string): Promise<Entry | null> {
    const e = this.entries.get(key);
    return Promise.resolve(e ? decodeEntry(e.revision, e.bytes) : null);
  }

  write(key: string, value: EntryValue, expected: number | null): Promise<number> {
    const current = this.entries.get(key)?.revision ?? null;
    if (current !== expected) return Promise.reject(new CasConflict(key, expected));
    this.revision += 1;
    this.entries.set(key, { revision: this.revision, bytes: encodeEntry(value) });
    return Promise.resolve(this.revision);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** JetStream's answer to a write whose expected last sequence is not the subject's (10071). */
function isWrongSequence(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e.api_error?.err_code === 10071 || /wrong last sequence/i.test(e.message ?? "");
}

export class JetStreamCustodyStore implements CustodyStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private kv: KV,
  ) {}

  static async open(url: string, bucket: string): Promise<JetStreamCustodyStore> {
    const nc = await connect({
      servers: url,
      name: "tickstream-custody",
      // Keep reconnecting for ever: a nats-server restart must not end custody.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    // Nodes starting together race to create the bucket, and the loser's create can fail
    // ("subjects overlap with an existing stream"): binding again finds the winner's.
    for (let attempt = 1; ; attempt++) {
      try {
        const kv = await nc.jetstream().views.kv(bucket, { history: 1 });
        return new JetStreamCustodyStore(nc, bucket, kv);
      } catch (err) {
        if (attempt >= 5) {
          await nc.close();
          throw new Error(
            `cannot open the custody bucket ${bucket} (does the NATS server run JetStream, -js?): ${(err as Error).message}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  /** Binds the bucket again after a failure (a JetStream server that lost its storage recreates it). */
  private async rebind(): Promise<void> {
    this.kv = await this.nc.jetstream().views.kv(this.bucket, { history: 1 });
  }

  async read(key: string): Promise<Entry | null> {
    let entry;
    try {
      entry = await this.kv.get(key);
    } catch {
      await this.rebind();
      entry = await this.kv.get(key);
    }
    if (entry === null || entry.operation !== "PUT" || entry.value.length === 0) return null;
    return decodeEntry(entry.revision, entry.value);
  }

  async write(key: string, value: EntryValue, expected: number | null): Promise<number> {
    const bytes = encodeEntry(value);
    const once = () =>
      expected === null ? this.kv.create(key, bytes) : this.kv.update(key, bytes, expected);
    try {
      return await once();
    } catch (err) {
      if (isWrongSequence(err)) throw new CasConflict(key, expected);
      // A write that failed for another reason may still have landed; the retry then conflicts,
      // which the caller treats as a lost lease: safe (it only costs a replay).
      await this.rebind();
      try {
        return await once();
      } catch (again) {
        if (isWrongSequence(again)) throw new CasConflict(key, expected);
        throw again;
      }
    }
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}
