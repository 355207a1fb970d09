/**
 * The Kafka sections' data: FIX 4.4 ExecutionReports (fills, about 180 bytes each) over 1,000
 * symbols, keyed by symbol, with the `crc32` header `npm run feed` writes, so Tickstream does
 * the integrity check it does in production. Deterministic for a seed.
 *
 * `preload` writes them once into a topic as fast as the producer can (big batches, several in
 * flight, acks from the leader); `ExecutionReports` also feeds the latency run, one record at a
 * time, stamped with the produce time.
 */
import { CompressionTypes, Partitioners, type Kafka, type Message } from "kafkajs";
import { performance } from "node:perf_hooks";
import { encodeFix, fixTimestamp } from "../src/fix/encode";
import { mulberry32, symbolNames } from "../src/feed/synthetic";
import { native } from "../src/native";
import { refDecimal, type RefTrade } from "../test/support/reference";
import { ensureTopics } from "../services/ingest/sources/kafka/client";

export const E2E_SYMBOLS = 1_000;
export const E2E_PARTITIONS = 6;
const SEED = 20_250_909;

/** One ExecutionReport fill and the trade it carries. */
export interface Fill {
  symbol: string;
  price: string;
  qty: string;
  eventMs: number;
  value: Buffer;
}

/** Fills with random-walk prices (cents, ~1 bp a step), quantities 1–999, unique ExecIDs. */
export class ExecutionReports {
  readonly symbols: string[];
  private readonly rand: () => number;
  private readonly cents: number[];
  private seq = 0;

  constructor(symbols = E2E_SYMBOLS, seed = SEED) {
    this.symbols = symbolNames(symbols);
    this.rand = mulberry32(seed);
    this.cents = this.symbols.map(() => 2_000 + Math.floor(this.rand() * 48_000));
  }

  /** The next fill, of a random symbol, with TransactTime (event time) `eventMs`. */
  next(eventMs: number): Fill {
    const s = Math.floor(this.rand() * this.symbols.length);
    const symbol = this.symbols[s]!;
    const step = Math.round((this.rand() - 0.5) * 2 * Math.max(1, this.cents[s]! / 10_000));
    const cents = Math.max(1, this.cents[s]! + step);
    this.cents[s] = cents;
    const price = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
    const qty = String(1 + Math.floor(this.rand() * 999));
    this.seq += 1;
    const id = String(this.seq);
    const time = fixTimestamp(eventMs);
    const value = encodeFix("FIX.4.4", "8", [
      [34, id],
      [49, "B"],
      [52, time],
      [56, "TS"],
      [11, `C${id}`],
      [17, `E${id}`],
      [31, price],
      [32, qty],
      [37, `O${id}`],
      [39, "2"],
      [54, this.rand() < 0.5 ? "1" : "2"],
      [55, symbol],
      [60, time],
      [150, "F"],
      [151, "0"],
    ]);
    return { symbol, price, qty, eventMs, value };
  }
}

/** A fill as a Kafka record: keyed by symbol, `crc32` header, produce time as its timestamp. */
export function fillRecord(fill: Fill, producedAtMs: number): Message {
  return {
    key: fill.symbol,
    value: fill.value,
    timestamp: String(producedAtMs),
    headers: { crc32: String(native.crc32(fill.value)) },
  };
}

export interface Preloaded {
  topic: string;
  records: number;
  bytes: number;
  seconds: number;
  perSec: number;
  /** Every trade of the `checked` symbols, for the reference bars. */
  checked: Map<string, RefTrade[]>;
}

/**
 * Writes `count` fills to `topic` (created with E2E_PARTITIONS partitions). Event times step
 * 1 ms per record and end a minute before now, so bars roll and close by event time as in a
 * replay of history; every record is inside the node's replay window.
 */
export async function preload(
  kafka: Kafka,
  topic: string,
  count: number,
  checkSymbols: number,
  log: (line: string) => void,
): Promise<Preloaded> {
  await ensureTopics(kafka, [topic], E2E_PARTITIONS);
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const gen = new ExecutionReports();
  const checked = new Map(gen.symbols.slice(0, checkSymbols).map((s) => [s, [] as RefTrade[]]));
  const firstEventMs = Date.now() - 60_000 - count;
  const CHUNK = 4_000;
  const IN_FLIGHT = 4;
  const inFlight = new Set<Promise<void>>();
  let bytes = 0;
  let lastLog = performance.now();
  const started = performance.now();
  try {
    for (let i = 0; i < count; i += CHUNK) {
      const n = Math.min(CHUNK, count - i);
      const now = Date.now();
      const messages: Message[] = new Array<Message>(n);
      for (let k = 0; k < n; k++) {
        const fill = gen.next(firstEventMs + i + k);
        bytes += fill.value.length;
        checked.get(fill.symbol)?.push({
          symbol: fill.symbol,
          price: refDecimal(fill.price),
          qty: refDecimal(fill.qty),
          timeMs: fill.eventMs,
          seq: i + k,
        });
        messages[k] = fillRecord(fill, now);
      }
      const sent = producer
        .send({ topic, messages, acks: 1, compression: CompressionTypes.None })
        .then(() => {
          inFlight.delete(sent);
        });
      // Awaited below (race, all); this only keeps a failure after an earlier one from being
      // reported as unhandled.
      sent.catch(() => undefined);
      inFlight.add(sent);
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      if (performance.now() - lastLog > 5_000) {
        lastLog = performance.now();
        log(`preload: ${i + n} / ${count} records`);
      }
    }
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;
  return { topic, records: count, bytes, seconds, perSec: count / seconds, checked };
}
