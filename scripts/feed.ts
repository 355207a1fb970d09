/**
 * `npm run feed -- --brokers 127.0.0.1:9092 [--file F | --synthetic] [--rate N] [--symbols N]
 *  [--topic T] [--count N]`
 *
 * Produces FIX records to Kafka: one message per record, keyed by symbol (so a symbol's trades
 * stay in order on one partition), with a `crc32` header. Shows a live progress line (sent, rate,
 * errors) and prints a summary. A file is sent once; the synthetic market runs until --count
 * messages or Ctrl-C.
 */
import { parseArgs } from "node:util";
import { CompressionTypes, Kafka, logLevel, type Message } from "kafkajs";
import { reliableProducer, ensureTopics } from "../services/ingest/sources/kafka/client";
import { readFixFile } from "../src/fix/file";
import { frameRecords, symbolOf } from "../src/fix/records";
import { SyntheticMarket } from "../src/feed/synthetic";
import { native } from "../src/native";

const USAGE = `usage: npm run feed -- --brokers HOST:PORT [--file F | --synthetic] [--rate N] [--symbols N] [--topic T] [--count N] [--partitions N]
  --rate N      messages per second (default: as fast as possible for a file, 2000 synthetic)
  --count N     stop the synthetic market after N messages`;

export function toRecord(value: Buffer, timestamp: number): Message {
  return {
    key: symbolOf(value),
    value,
    timestamp: String(timestamp),
    headers: { crc32: String(native.crc32(value)) },
  };
}

function fail(message: string): never {
  process.stderr.write(`feed: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        brokers: { type: "string" },
        file: { type: "string" },
        synthetic: { type: "boolean", default: false },
        rate: { type: "string" },
        symbols: { type: "string", default: "20" },
        topic: { type: "string", default: "trades" },
        count: { type: "string" },
        partitions: { type: "string", default: "6" },
        seed: { type: "string", default: "42" },
      },
    }).values;
  } catch (err: unknown) {
    fail((err as Error).message);
  }
  if (!args.brokers) fail("--brokers is required");
  if ((args.file === undefined) === !args.synthetic)
    fail("give exactly one of --file F or --synthetic");
  const num = (v: string | undefined, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) fail(`--${name} must be a non-negative number`);
    return n;
  };
  const rate = num(args.rate, "rate", args.synthetic ? 2000 : 0);
  const count = num(args.count, "count", Infinity);

  const kafka = new Kafka({
    clientId: "tickstream-feed",
    brokers: args.brokers.split(","),
    logLevel: logLevel.WARN,
  });
  await ensureTopics(kafka, [args.topic], num(args.partitions, "partitions", 6));
  const producer = reliableProducer(kafka);
  await producer.connect();

  let sent = 0;
  let errors = 0;
  const started = Date.now();
  let stopping = false;
  process.once("SIGINT", () => (stopping = true));
  const progress = () => {
    const secs = (Date.now() - started) / 1000;
    process.stderr.write(
      `\rsent ${sent}  rate ${Math.round(sent / Math.max(secs, 0.001))}/s  errors ${errors}   `,
    );
  };
  const timer = setInterval(progress, 250);

  const send = async (values: Buffer[]) => {
    const now = Date.now();
    try {
      await producer.send({
        topic: args.topic,
        messages: values.map((v) => toRecord(v, now)),
        acks: -1,
        compression: CompressionTypes.None,
      });
      sent += values.length;
    } catch (err: unknown) {
      errors += values.length;
      process.stderr.write(`\nsend failed: ${(err as Error).message}\n`);
    }
  };
  const pace = async () => {
    if (rate <= 0) return;
    const due = started + (sent / rate) * 1000;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  };

  const CHUNK = 500;
  if (args.file !== undefined) {
    const records: Buffer[] = [];
    for (const { bytes } of readFixFile(args.file)) records.push(...frameRecords(bytes));
    for (let i = 0; i < records.length && !stopping; i += CHUNK) {
      await send(records.slice(i, i + CHUNK));
      await pace();
    }
  } else {
    const market = new SyntheticMarket({
      symbols: num(args.symbols, "symbols", 20),
      seed: num(args.seed, "seed", 42),
      malformedRatio: 0.005,
      jumpProbability: 0.0005,
    });
    const chunk = rate > 0 ? Math.max(1, Math.min(CHUNK, Math.round(rate / 20))) : CHUNK;
    while (!stopping && sent + errors < count) {
      await send(market.next(Math.min(chunk, count - sent - errors), Date.now()));
      await pace();
    }
  }
  clearInterval(timer);
  progress();
  await producer.disconnect();
  const secs = (Date.now() - started) / 1000;
  process.stderr.write(
    `\n${JSON.stringify({ topic: args.topic, sent, errors, seconds: Number(secs.toFixed(2)), perSecond: Math.round(sent / Math.max(secs, 0.001)) })}\n`,
  );
  process.exit(errors > 0 ? 1 : 0);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`feed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
