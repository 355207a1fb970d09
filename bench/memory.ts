/**
 * Memory: resident bytes per active symbol at full retention.
 *
 * A child process (so that nothing else lives in its heap) builds the two engines one node runs
 * (the aggregator's bars and the anomaly service's detector, with the configured defaults) and
 * fills `symbols` symbols to full retention: for every symbol, one trade in every 1h bar of the
 * 1h window, every 5m bar of the 5m window and every 1m bar of the 1m window, with ids (so id
 * dedupe holds what a FIX feed would make it hold). It reports RSS before and after (after a full
 * GC), the engines' own accounting of their state and the split between bars, detector and ids.
 *
 * `bytesPerSymbol` is the growth of RSS outside the V8 heap (RSS − V8 heapTotal) divided by the
 * symbol count: the engines' native memory including allocator overhead, which their own
 * accounting (`stateBytesPerSymbol`) does not see. The V8 heap is left out because what grows there
 * is the generator's and drainClosed's garbage, which V8 keeps committed after collecting it; the
 * raw RSS growth is reported too (`rssGrowthPerSymbol`).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { engineOptions } from "../src/actors/symbol-actors";
import { loadConfig } from "../src/config";
import { mulberry32 } from "../src/feed/synthetic";
import { native } from "../src/native";
import { message, type BenchOptions, type Section, type SectionResult } from "./harness";

/** Issue goal: bytes per symbol with full 1m/5m/1h retention. */
export const MEMORY_GOAL_BYTES = 64 * 1024;

const MINUTE = 60_000;
const TRADES_PER_CALL = 4_000;

export interface MemoryReport {
  symbols: number;
  trades: number;
  retentionMs: { "1m": number; "5m": number; "1h": number };
  dedupeCapacity: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** RSS growth outside the V8 heap (the engines' native memory), per symbol. */
  bytesPerSymbol: number;
  /** Raw RSS growth per symbol, including the V8 heap the generator's garbage left committed. */
  rssGrowthPerSymbol: number;
  /** The engines' own accounting (bars + detector + ids + watermarks), per symbol. */
  stateBytesPerSymbol: number;
  barsPerSymbol: number;
  idsPerSymbol: number;
  barBytesPerSymbol: number;
  idBytesPerSymbol: number;
  /** Trades held for cancels and corrections (`CORRECTION_WINDOW`), both engines. */
  journalTradesPerSymbol: number;
  fillSeconds: number;
}

/**
 * Event times (ms) of one symbol's trades: one per 1h bar back to the 1h retention, one per 5m bar
 * within the 5m retention, one per 1m bar within the 1m retention, oldest first, ending at `endMs`.
 */
export function fullRetentionTimes(
  endMs: number,
  retentionMs: { "1m": number; "5m": number; "1h": number },
): number[] {
  const times = new Set<number>();
  const fill = (width: number, span: number): void => {
    const last = Math.floor(endMs / width) * width;
    for (let start = last; start > endMs - span; start -= width) times.add(start + width / 2);
  };
  fill(60 * MINUTE, retentionMs["1h"]);
  fill(5 * MINUTE, retentionMs["5m"]);
  fill(MINUTE, retentionMs["1m"]);
  return [...times].filter((t) => t <= endMs).sort((a, b) => a - b);
}

function rss(): number {
  return process.memoryUsage.rss();
}

/** Runs in the child: fills the engines and prints a MemoryReport as JSON. */
function child(symbols: number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc");
  const config = loadConfig(process.env);
  const endMs = Date.UTC(2026, 0, 5, 16, 0, 0);
  const times = fullRetentionTimes(endMs, config.bars.retentionMs);
  const decoder = new native.FixDecoder({});
  const bars = new native.Engine(engineOptions(config, { bars: true, detector: false }));
  const detector = new native.Engine(engineOptions(config, { bars: false, detector: true }));
  gc();
  const before = rss();
  const heapBefore = process.memoryUsage().heapTotal;
  const rand = mulberry32(7);
  const started = process.hrtime.bigint();
  // One reused payload buffer: the generator's own garbage must not show up as the engines' RSS.
  const payload = Buffer.alloc(TRADES_PER_CALL * 128);
  const offsets = new Uint32Array(TRADES_PER_CALL + 1);
  const seqs = new Float64Array(TRADES_PER_CALL);
  let n = 0;
  let seq = 0;
  let nowMs = 0;
  const flush = (): void => {
    if (n === 0) return;
    const decoded = decoder.decodeBatch(
      payload.subarray(0, offsets[n]),
      offsets.subarray(0, n + 1),
      seqs.subarray(0, n),
      "memory/0",
    );
    if (decoded.rejects.length > 0) throw new Error(`rejected: ${decoded.rejects[0]!.reason}`);
    bars.applyBatch(decoded.batch, nowMs);
    detector.applyBatch(decoded.batch, nowMs);
    bars.drainClosed();
    bars.drainTouched();
    detector.drainTouched();
    n = 0;
  };
  // Time-major order, as a live feed delivers: every symbol trades in a bar before the next bar.
  const prices = Array.from({ length: symbols }, () => 20 + rand() * 480);
  for (const t of times) {
    nowMs = t;
    for (let s = 0; s < symbols; s++) {
      prices[s] = prices[s]! * (1 + 0.002 * (rand() - 0.5));
      const qty = 1 + Math.floor(rand() * 999);
      const record = `{"symbol":"S${s}","price":"${prices[s]!.toFixed(2)}","qty":"${qty}","ts":${t},"id":"E${seq}"}`;
      offsets[n + 1] = offsets[n]! + payload.write(record, offsets[n]!, "latin1");
      seqs[n] = seq;
      n++;
      seq++;
      if (n === TRADES_PER_CALL) flush();
    }
  }
  flush();
  const fillSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  gc();
  gc();
  const after = rss();
  const heapAfter = process.memoryUsage().heapTotal;
  const sb = bars.stats();
  const sd = detector.stats();
  // Ids are 32 B each in the accounting (8 B hash + 8 B time in the FIFO, two 8 B slots at ≤ 1/2 load).
  const idBytes = (sb.ids + sd.ids) * 32;
  const report: MemoryReport = {
    symbols,
    trades: seq,
    retentionMs: config.bars.retentionMs,
    dedupeCapacity: config.bars.dedupeCapacity,
    rssBeforeBytes: before,
    rssAfterBytes: after,
    bytesPerSymbol: Math.round((after - heapAfter - (before - heapBefore)) / symbols),
    rssGrowthPerSymbol: Math.round((after - before) / symbols),
    stateBytesPerSymbol: Math.round((sb.stateBytes + sd.stateBytes) / symbols),
    barsPerSymbol: Math.round(sb.bars / symbols),
    idsPerSymbol: Math.round((sb.ids + sd.ids) / symbols),
    barBytesPerSymbol: Math.round((sb.stateBytes - sb.ids * 32) / symbols),
    idBytesPerSymbol: Math.round(idBytes / symbols),
    journalTradesPerSymbol: Math.round((sb.journalTrades + sd.journalTrades) / symbols),
    fillSeconds: Math.round(fillSeconds * 10) / 10,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** Runs the child and parses its report. */
export function measureMemory(
  root: string,
  symbols: number,
  env: Record<string, string> = {},
): MemoryReport {
  const res = spawnSync(
    path.join(root, "node_modules", ".bin", "node"),
    ["--expose-gc", __filename, "--child", String(symbols)],
    { encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 1 << 20 },
  );
  if (res.status !== 0) throw new Error(`memory child failed: ${res.stderr || res.stdout}`);
  const line = res.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as MemoryReport;
}

const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;

export const memorySection: Section = {
  key: "memory",
  title: "Memory per active symbol at full retention",
  run(options: BenchOptions): Promise<SectionResult> {
    const symbols = options.quick ? 2_000 : 10_000;
    // The goal is for bars, detectors and ids; the correction window's trades are measured apart,
    // as the difference of a second run with the default window.
    let r: MemoryReport;
    let w: MemoryReport;
    try {
      r = measureMemory(options.root, symbols, { CORRECTION_WINDOW: "0" });
      w = measureMemory(options.root, symbols);
    } catch (error) {
      return Promise.reject(new Error(message(error)));
    }
    const windowBytes = w.bytesPerSymbol - r.bytesPerSymbol;
    const days = (ms: number): string =>
      ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : `${ms / 3_600_000}h`;
    const retention = `1m ${days(r.retentionMs["1m"])}, 5m ${days(r.retentionMs["5m"])}, 1h ${days(r.retentionMs["1h"])}`;
    return Promise.resolve({
      json: {
        bytesPerSymbol: r.bytesPerSymbol,
        goalBytes: MEMORY_GOAL_BYTES,
        met: r.bytesPerSymbol <= MEMORY_GOAL_BYTES,
        rssGrowthPerSymbol: r.rssGrowthPerSymbol,
        stateBytesPerSymbol: r.stateBytesPerSymbol,
        barBytesPerSymbol: r.barBytesPerSymbol,
        idBytesPerSymbol: r.idBytesPerSymbol,
        barsPerSymbol: r.barsPerSymbol,
        idsPerSymbol: r.idsPerSymbol,
        correctionWindow: {
          bytesPerSymbol: windowBytes,
          tradesPerSymbol: w.journalTradesPerSymbol,
          bytesPerTrade:
            w.journalTradesPerSymbol > 0
              ? Math.round(windowBytes / w.journalTradesPerSymbol)
              : null,
        },
        symbols: r.symbols,
        trades: r.trades,
        retentionMs: r.retentionMs,
        rssBeforeBytes: r.rssBeforeBytes,
        rssAfterBytes: r.rssAfterBytes,
      },
      tables: [
        {
          title: `Memory at ${symbols.toLocaleString("en-US")} symbols, full retention (${retention}), bars + detector engines`,
          header: ["measure", "per symbol", "goal"],
          rows: [
            ["RSS growth outside the V8 heap", kib(r.bytesPerSymbol), kib(MEMORY_GOAL_BYTES)],
            ["RSS growth (raw)", kib(r.rssGrowthPerSymbol), ""],
            ["engine accounting", kib(r.stateBytesPerSymbol), ""],
            [`  bars (${r.barsPerSymbol})`, kib(r.barBytesPerSymbol), ""],
            [`  ids (${r.idsPerSymbol}, both engines)`, kib(r.idBytesPerSymbol), ""],
            [
              `correction window (RETENTION_1M): ${w.journalTradesPerSymbol} trades held, both engines`,
              `+${kib(windowBytes)}`,
              "stated apart",
            ],
          ],
        },
      ],
      ratios: [],
      notes: [
        `${r.trades.toLocaleString("en-US")} trades filled ${symbols} symbols in ${r.fillSeconds} s; RSS ${kib(r.rssBeforeBytes)} → ${kib(r.rssAfterBytes)}`,
        "the goal row is measured with CORRECTION_WINDOW=0; the window costs 48 B per trade held (per engine), so it scales with each symbol's trade rate (this fill: one trade per 1m bar)",
      ],
    });
  },
};

if (require.main === module && process.argv[2] === "--child") {
  child(Number(process.argv[3]));
}
