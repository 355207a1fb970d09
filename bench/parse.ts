/**
 * Parse: decode + validate + extract trades on the JSE corpus, one run, same data, same
 * batches, for every contender:
 *
 * - `rust`: the core alone, from criterion (`benches/decode.rs`).
 * - `node`: `FixDecoder.decodeBatch` with one record per message (how Kafka delivers them),
 *   `nodeStream`: the same batch as one raw stream record.
 * - `fixparser`: npm fixparser@2.9.5 on the batch as a latin1 string (it needs a string; the
 *   conversion is timed), then validity flags and trade extraction from its field objects.
 * - `typescript`: the plain TypeScript parser (`baselines/ts-fix-parser.ts`) on the batch.
 *
 * Every contender gets the corpus in the same batches of `batchSize` messages; every one is
 * first run once untimed to record its counts (messages, valid, trades, rejects), so that a
 * contender doing less than the others shows.
 */
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import { frameStream, TsFixParser, type Trade } from "./baselines/ts-fix-parser";
import {
  measure,
  message,
  throughputResult,
  type BenchOptions,
  type Maybe,
  type Pass,
  type Row,
  type Section,
  type Table,
} from "./harness";
import { nativeCrc, nativeDecoder } from "./native";
import { rustRow } from "./rust";

/** MDEntryType of the JSE index values: they are the corpus's trades. */
export const JSE_MD_ENTRY_TYPES = "3";

/** Issue goals, messages per second per core. */
export const PARSE_GOALS = { rust: 8e6, node: 3e6, nodeOverFixparser: 30, nodeOverTypescript: 3 };

/** Consecutive messages of the corpus, decoded in one call. */
export interface Chunk {
  buf: Buffer;
  /** n + 1 record boundaries, one record per message. */
  offsets: Uint32Array;
  /** Two boundaries: the chunk as one record. */
  streamOffsets: Uint32Array;
  messages: number;
}

export interface Corpus {
  file: string;
  bytes: number;
  messages: number;
  chunks: Chunk[];
}

/** Reads the corpus and cuts it into chunks of `batchSize` messages, framed by BodyLength. */
export function loadCorpus(file: string, batchSize: number): Corpus {
  const data = fs.readFileSync(file);
  const frames = frameStream(data);
  const chunks: Chunk[] = [];
  for (let i = 0; i < frames.length; i += batchSize) {
    const part = frames.slice(i, i + batchSize);
    const start = part[0]!.offset;
    const last = part[part.length - 1]!;
    const buf = data.subarray(start, last.offset + last.len);
    const offsets = new Uint32Array(part.length + 1);
    part.forEach((f, k) => (offsets[k] = f.offset - start));
    offsets[part.length] = buf.length;
    chunks.push({
      buf,
      offsets,
      streamOffsets: Uint32Array.of(0, buf.length),
      messages: part.length,
    });
  }
  return { file, bytes: data.length, messages: frames.length, chunks };
}

/** What one untimed pass of a contender found. */
export interface Counts {
  messages: number;
  valid: number;
  trades: number;
  rejects: number;
}

/** A contender: an untimed verification pass, then timed passes. */
interface Contender {
  verify(): Counts;
  pass(): Pass;
}

/** Times `call` on every chunk. */
function timedPass(chunks: readonly Chunk[], call: (chunk: Chunk) => void): Pass {
  let maxCallMs = 0;
  const started = performance.now();
  for (const chunk of chunks) {
    const t0 = performance.now();
    call(chunk);
    const dt = performance.now() - t0;
    if (dt > maxCallMs) maxCallMs = dt;
  }
  return {
    units: chunks.reduce((n, c) => n + c.messages, 0),
    busyMs: performance.now() - started,
    maxCallMs,
  };
}

/** The plain TypeScript parser; trades are collected per batch as a consumer would. */
export function typescriptContender(corpus: Corpus): Contender {
  const parser = new TsFixParser({ mdEntryTypes: JSE_MD_ENTRY_TYPES });
  const run = (chunk: Chunk): Counts => {
    const trades: Trade[] = [];
    const r = parser.parse(chunk.buf, (t) => trades.push(t));
    return {
      messages: r.messages,
      valid: r.valid,
      trades: trades.length,
      rejects: r.rejects.length,
    };
  };
  return {
    verify: () => sumCounts(corpus.chunks.map(run)),
    pass: () => timedPass(corpus.chunks, run),
  };
}

/** The Rust decoder through the Node batch API, records per message or one stream per batch. */
export function nodeContender(
  corpus: Corpus,
  root: string,
  mode: "records" | "stream",
): Maybe<Contender> {
  const decoder = nativeDecoder(root, JSE_MD_ENTRY_TYPES);
  if (!decoder.ok) return decoder;
  const d = decoder.value;
  const run = (chunk: Chunk): Counts => {
    const r = d.decodeBatch(
      chunk.buf,
      mode === "records" ? chunk.offsets : chunk.streamOffsets,
      null,
      "bench",
    );
    return { messages: r.messages, valid: r.valid, trades: r.trades, rejects: r.rejects.length };
  };
  try {
    run(corpus.chunks[0]!);
  } catch (error) {
    return { ok: false, reason: `decodeBatch failed: ${message(error)}` };
  }
  return {
    ok: true,
    value: {
      verify: () => sumCounts(corpus.chunks.map(run)),
      pass: () => timedPass(corpus.chunks, run),
    },
  };
}

/** The parts of fixparser's API used here (fixparser@2.9.5 ships no typings for its bundle). */
interface FixparserField {
  tag: number;
  value: unknown;
}
interface FixparserMessage {
  messageType: string;
  checksumValid: boolean;
  bodyLengthValid: boolean;
  data: FixparserField[];
}
interface FixparserInstance {
  parse(data: string): FixparserMessage[];
}

/** A fixparser trade, extracted as a fixparser user would write it. */
interface FixparserTrade {
  symbol: string;
  price: number;
  qty: number;
  timeMs: number;
}

/** "YYYYMMDD-HH:MM:SS.sss" → epoch ms, the string way. */
function fixTimeMs(text: string): number {
  return Date.UTC(
    Number(text.slice(0, 4)),
    Number(text.slice(4, 6)) - 1,
    Number(text.slice(6, 8)),
    Number(text.slice(9, 11)),
    Number(text.slice(12, 14)),
    Number(text.slice(15, 17)),
    text.length > 18 ? Number(text.slice(18, 21)) : 0,
  );
}

/**
 * MarketDataIncrementalRefresh trades from fixparser's fields, same rules as the other parsers
 * (entries delimited by the first tag after 268, 279=0/absent, 269 in the set, 270 > 0).
 */
function fixparserMdTrades(
  m: FixparserMessage,
  types: ReadonlySet<string>,
  out: FixparserTrade[],
): void {
  let sending = "";
  let msgSymbol = "";
  let inGroup = false;
  let delimiter = 0;
  let entries = 0;
  let type = "";
  let action = "";
  let price = 0;
  let qty = 0;
  let symbol = "";
  const finish = () => {
    if ((action === "" || action === "0") && types.has(type) && price > 0) {
      out.push({
        symbol: symbol || msgSymbol,
        price: Math.round(price * 1e9),
        qty: Math.round(qty * 1e9),
        timeMs: 0,
      });
    }
  };
  const first = out.length;
  for (const f of m.data) {
    if (f.tag === 52 && sending === "") sending = String(f.value);
    if (!inGroup) {
      if (f.tag === 55) msgSymbol = String(f.value);
      else if (f.tag === 268) inGroup = Number(f.value) > 0;
      continue;
    }
    if (f.tag === 10) break;
    if (delimiter === 0) delimiter = f.tag;
    if (f.tag === delimiter) {
      if (entries > 0) finish();
      entries++;
      type = action = symbol = "";
      price = qty = 0;
    }
    if (f.tag === 269) type = String(f.value);
    else if (f.tag === 279) action = String(f.value);
    else if (f.tag === 270) price = Number(f.value);
    else if (f.tag === 271) qty = Number(f.value);
    else if (f.tag === 55) symbol = String(f.value);
  }
  if (entries > 0) finish();
  const timeMs = fixTimeMs(sending);
  for (let i = first; i < out.length; i++) out[i]!.timeMs = timeMs;
}

/** npm fixparser@2.9.5: split on "8=FIX", fields as objects, validity flags per message. */
export function fixparserContender(corpus: Corpus): Maybe<Contender> {
  let parser: FixparserInstance;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require("fixparser") as { default: new () => FixparserInstance };
    parser = new mod.default();
  } catch (error) {
    return { ok: false, reason: `cannot load fixparser: ${message(error)}` };
  }
  const types = new Set([JSE_MD_ENTRY_TYPES]);
  const run = (chunk: Chunk): Counts => {
    const messages = parser.parse(chunk.buf.toString("latin1"));
    const trades: FixparserTrade[] = [];
    let valid = 0;
    for (const m of messages) {
      if (!m.checksumValid || !m.bodyLengthValid) continue;
      valid++;
      if (m.messageType === "X") fixparserMdTrades(m, types, trades);
    }
    return {
      messages: messages.length,
      valid,
      trades: trades.length,
      rejects: messages.length - valid,
    };
  };
  return {
    ok: true,
    value: {
      verify: () => sumCounts(corpus.chunks.map(run)),
      pass: () => timedPass(corpus.chunks, run),
    },
  };
}

function sumCounts(all: Counts[]): Counts {
  return all.reduce(
    (a, c) => ({
      messages: a.messages + c.messages,
      valid: a.valid + c.valid,
      trades: a.trades + c.trades,
      rejects: a.rejects + c.rejects,
    }),
    { messages: 0, valid: 0, trades: 0, rejects: 0 },
  );
}

/** Verifies, then measures one contender into a row. */
function benchRow(
  name: string,
  contender: Maybe<Contender>,
  options: BenchOptions,
  goal?: number,
): Row {
  const base = { name, ...(goal !== undefined && { goal }) };
  if (!contender.ok) return { ...base, perSec: null, note: `unavailable: ${contender.reason}` };
  try {
    const counts = contender.value.verify();
    options.log(`parse/${name}: ${JSON.stringify(counts)}; measuring…`);
    const m = measure(() => contender.value.pass(), options);
    return { ...base, perSec: m.perSec, measurement: m, detail: { ...counts } };
  } catch (error) {
    return { ...base, perSec: null, note: `failed: ${message(error)}` };
  }
}

/** Notes on contenders whose counts differ from the TypeScript parser's. */
function countNotes(rows: Row[]): string[] {
  const reference = rows.find((r) => r.name === "typescript")?.detail;
  if (reference === undefined) return [];
  const notes: string[] = [];
  for (const r of rows) {
    if (r.detail === undefined || r.name === "typescript" || r.name === "rust") continue;
    for (const key of ["messages", "valid", "trades", "rejects"]) {
      if (r.detail[key] !== reference[key]) {
        notes.push(
          `${r.name} counts ${key}=${String(r.detail[key])}, typescript ${String(reference[key])}`,
        );
      }
    }
  }
  return notes;
}

/**
 * The Kafka source's crc32 header check (every record carries one in the benchmark's data): one
 * native call per record, as the source first did, against one call per batch (`verifyCrc32Batch`,
 * what it does now). Same records, same headers (all valid, decimal), best of 5 passes each.
 */
function crcCheck(
  corpus: Corpus,
  root: string,
): { table: Table; json: Record<string, number> } | string {
  const crc = nativeCrc(root);
  if (!crc.ok) return crc.reason;
  const { crc32, verifyCrc32, verifyCrc32Batch } = crc.value;
  const batches = corpus.chunks.map((c) => {
    const records = Array.from({ length: c.messages }, (_, i) =>
      c.buf.subarray(c.offsets[i], c.offsets[i + 1]),
    );
    const headers = records.map((r) => Buffer.from(String(crc32(r))));
    const headerOffsets = new Uint32Array(headers.length + 1);
    headers.forEach((h, i) => (headerOffsets[i + 1] = headerOffsets[i]! + h.length));
    return { c, records, headers, packed: Buffer.concat(headers), headerOffsets };
  });
  const best = (pass: () => number): number => {
    let ms = Infinity;
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      if (pass() !== 0) throw new Error("a valid crc32 header was reported as a mismatch");
      ms = Math.min(ms, performance.now() - t0);
    }
    return (ms * 1e6) / corpus.messages;
  };
  const perRecord = best(() => {
    let bad = 0;
    for (const b of batches)
      for (let i = 0; i < b.records.length; i++)
        if (!verifyCrc32(b.records[i]!, b.headers[i]!)) bad += 1;
    return bad;
  });
  const perBatch = best(() => {
    let bad = 0;
    for (const b of batches)
      bad += verifyCrc32Batch(b.c.buf, b.c.offsets, b.packed, b.headerOffsets).length;
    return bad;
  });
  return {
    table: {
      title: "crc32 header check on the ingest path (same records and headers)",
      header: ["check", "ns/record", "ratio"],
      rows: [
        ["one native call per record (before)", perRecord.toFixed(1), "1.0×"],
        [
          "one native call per batch (now)",
          perBatch.toFixed(1),
          `${(perRecord / perBatch).toFixed(1)}×`,
        ],
      ],
    },
    json: {
      perRecordNsPerRecord: perRecord,
      perBatchNsPerRecord: perBatch,
      ratio: perRecord / perBatch,
    },
  };
}

export const parseSection: Section = {
  key: "parse",
  title: "Parse: decode + validate + extract trades (JSE corpus)",
  run(options) {
    const corpus = loadCorpus(options.dataFile, options.batchSize);
    options.log(
      `corpus ${corpus.file}: ${corpus.messages} messages, ${corpus.bytes} bytes, ${corpus.chunks.length} batches of ≤ ${options.batchSize}`,
    );
    const rows: Row[] = [
      rustRow(options, "decode", ["jse", "decode"], [/decode\/msgs/, /decode/], PARSE_GOALS.rust),
      benchRow("node", nodeContender(corpus, options.root, "records"), options, PARSE_GOALS.node),
      benchRow("nodeStream", nodeContender(corpus, options.root, "stream"), options),
      benchRow("fixparser", fixparserContender(corpus), options),
      benchRow("typescript", { ok: true, value: typescriptContender(corpus) }, options),
    ];
    const notes = [
      `same data for all: ${corpus.messages} messages in batches of ${options.batchSize}; MDEntryType ${JSE_MD_ENTRY_TYPES} entries are trades`,
      "node = one record per message (Kafka-like); nodeStream = each batch as one raw stream record",
      "fixparser's time includes Buffer → latin1 string conversion (it only parses strings)",
      ...countNotes(rows),
    ];
    const result = throughputResult(
      this.title,
      "msgsPerSec",
      "msgs/s",
      rows,
      [
        { of: "node", over: "fixparser", goal: PARSE_GOALS.nodeOverFixparser },
        { of: "node", over: "typescript", goal: PARSE_GOALS.nodeOverTypescript },
        { of: "nodeStream", over: "typescript" },
        { of: "typescript", over: "fixparser" },
        { of: "rust", over: "node" },
      ],
      notes,
    );
    const crc = crcCheck(corpus, options.root);
    if (typeof crc === "string") result.notes.push(`crc32 check not measured: ${crc}`);
    else result.tables.push(crc.table);
    result.meta = {
      ...(typeof crc === "string" ? {} : { crcCheck: crc.json }),
      file: corpus.file,
      bytes: corpus.bytes,
      messages: corpus.messages,
      batchSize: options.batchSize,
    };
    return Promise.resolve(result);
  },
};
