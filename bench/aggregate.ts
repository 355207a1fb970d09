/**
 * Aggregate + detect: 1m/5m/1h bars and the z-score detector over the same synthetic trades,
 * in the same batches, for every contender:
 *
 * - `rust`: the engine alone, from criterion (`benches/engine.rs`).
 * - `node`: `Engine.applyBatch` on batches packed once, before timing, by `FixDecoder.decodeBatch`
 *   from JSON trade records; only applyBatch is timed.
 * - `typescript`: the plain TypeScript implementation (`baselines/ts-aggregator.ts`) with
 *   `number` sums; `typescriptBigint`: the same with exact BigInt volume and notional, as the
 *   Rust bars keep them.
 *
 * Steady state, as criterion measures the engine: every pass builds a new engine or aggregator
 * and feeds it the first `warmTrades` untimed (every symbol exists, windows are full, bars
 * roll), then times the following trades. A fresh start per pass means no contender ever sees
 * replayed trades as duplicates or late arrivals. The cost of starting from empty shows
 * separately as the longest call of the untimed verification run (`maxCallMsFromEmpty`).
 */
import { performance } from "node:perf_hooks";
import { mulberry32 } from "../src/feed/synthetic";
import { TsAggregator, type AggTrade } from "./baselines/ts-aggregator";
import {
  measure,
  message,
  throughputResult,
  type BenchOptions,
  type Maybe,
  type Pass,
  type Row,
  type Section,
} from "./harness";
import { nativeDecoder, nativeEngine } from "./native";
import { rustRow } from "./rust";

/** Trades per batch of the criterion variant `bars+zscore/no_ids/batch_2000`. */
const CRITERION_NODE_BATCH = 2_000;

/** Issue goals, trades per second per core. */
export const AGGREGATE_GOALS = { rust: 20e6, node: 5e6 };

export interface SyntheticOptions {
  /** Trades generated in all: the warm-up prefix, then the timed ones. */
  trades: number;
  /** Trades applied untimed at the start of every pass. */
  warmTrades: number;
  symbols: number;
  seed: number;
  /** Event time of the first trade, epoch ms. */
  startMs: number;
}

export const DEFAULT_SYNTHETIC: SyntheticOptions = {
  trades: 200_000,
  warmTrades: 100_000,
  symbols: 1_000,
  seed: 20_240_101,
  startMs: 1_700_000_000_000,
};

/**
 * Random-walk trades: symbols `S0`…, prices in cents from 20 to 500 moving ~0.1% per trade with
 * rare ±3% jumps (the anomalies), quantities 1–999, event times rising 0–9 ms per trade.
 */
export function syntheticTrades(options: SyntheticOptions = DEFAULT_SYNTHETIC): AggTrade[] {
  const rand = mulberry32(options.seed);
  const walk = Array.from({ length: options.symbols }, () => 20 + rand() * 480);
  const trades: AggTrade[] = [];
  let timeMs = options.startMs;
  for (let i = 0; i < options.trades; i++) {
    const s = Math.floor(rand() * options.symbols);
    const gauss = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const jump = rand() < 0.0005 ? (rand() < 0.5 ? -0.03 : 0.03) : 0;
    const price = Math.max(0.01, walk[s]! * (1 + 0.001 * gauss + jump));
    walk[s] = price;
    const cents = Math.max(1, Math.round(price * 100));
    trades.push({
      symbol: `S${s}`,
      price: cents * 1e7,
      qty: (1 + Math.floor(rand() * 999)) * 1e9,
      timeMs,
      subMsNs: 0,
    });
    timeMs += Math.floor(rand() * 10);
  }
  return trades;
}

/** A trade as a JSON record the decoder accepts (price and qty as exact decimal strings). */
export function tradeJson(t: AggTrade): string {
  const cents = Math.round(t.price / 1e7);
  const price = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
  return `{"symbol":"${t.symbol}","price":"${price}","qty":"${t.qty / 1e9}","ts":${t.timeMs}}`;
}

/** Consecutive trades applied in one call. */
export interface TradeBatch {
  trades: AggTrade[];
  /** JSON records, one per trade, delimited by `offsets` (n + 1 boundaries). */
  payload: Buffer;
  offsets: Uint32Array;
  /** Arrival sequence of each record (its index in the whole stream). */
  seqs: Float64Array;
  /** Event time of the batch's last trade: the `nowMs` passed to applyBatch. */
  lastMs: number;
}

export function tradeBatches(trades: readonly AggTrade[], batchSize: number): TradeBatch[] {
  const batches: TradeBatch[] = [];
  for (let i = 0; i < trades.length; i += batchSize) {
    const part = trades.slice(i, i + batchSize);
    const records = part.map((t) => Buffer.from(tradeJson(t), "latin1"));
    const offsets = new Uint32Array(part.length + 1);
    records.forEach((r, k) => (offsets[k + 1] = offsets[k]! + r.length));
    batches.push({
      trades: part,
      payload: Buffer.concat(records),
      offsets,
      seqs: Float64Array.from(part, (_, k) => i + k),
      lastMs: part[part.length - 1]!.timeMs,
    });
  }
  return batches;
}

/** What the untimed verification run (all batches from empty state) found. */
interface Counts {
  applied: number;
  anomalies: number;
  closed: number;
  /** Longest call from empty state, ms (the first batches create every symbol). */
  maxCallMsFromEmpty: number;
}

interface Contender {
  verify(): Counts;
  pass(): Pass;
}

/** What one apply call reported. */
interface Applied {
  applied: number;
  anomalies: number;
  closed: number;
}

/**
 * A contender from its state factory and apply call: a pass is fresh state, the `warm` first
 * batches untimed, then the rest timed.
 */
function contender<S>(
  batches: readonly TradeBatch[],
  warm: number,
  fresh: () => S,
  apply: (state: S, i: number) => Applied,
): Contender {
  return {
    verify() {
      const state = fresh();
      const counts: Counts = { applied: 0, anomalies: 0, closed: 0, maxCallMsFromEmpty: 0 };
      for (let i = 0; i < batches.length; i++) {
        const t0 = performance.now();
        const r = apply(state, i);
        counts.maxCallMsFromEmpty = Math.max(counts.maxCallMsFromEmpty, performance.now() - t0);
        counts.applied += r.applied;
        counts.anomalies += r.anomalies;
        counts.closed += r.closed;
      }
      return counts;
    },
    pass() {
      const state = fresh();
      for (let i = 0; i < warm; i++) apply(state, i);
      let maxCallMs = 0;
      let units = 0;
      const started = performance.now();
      for (let i = warm; i < batches.length; i++) {
        const t0 = performance.now();
        apply(state, i);
        const dt = performance.now() - t0;
        if (dt > maxCallMs) maxCallMs = dt;
        units += batches[i]!.trades.length;
      }
      return { units, busyMs: performance.now() - started, maxCallMs };
    },
  };
}

export function typescriptContender(
  batches: readonly TradeBatch[],
  warm: number,
  exactSums: boolean,
): Contender {
  return contender(
    batches,
    warm,
    () => new TsAggregator({ exactSums }),
    (agg, i) => {
      const r = agg.applyBatch(batches[i]!.trades);
      return { applied: r.applied, anomalies: r.anomalies.length, closed: r.closed.length };
    },
  );
}

/** The Rust engine through Node, on batches packed once by the Rust decoder. */
export function nodeContender(
  batches: readonly TradeBatch[],
  warm: number,
  root: string,
): Maybe<Contender> {
  const decoder = nativeDecoder(root, "2");
  if (!decoder.ok) return decoder;
  const probe = nativeEngine(root);
  if (!probe.ok) return probe;
  const packed: Buffer[] = [];
  try {
    for (const b of batches) {
      const r = decoder.value.decodeBatch(b.payload, b.offsets, b.seqs, "bench");
      if (r.trades !== b.trades.length || r.rejects.length > 0) {
        const first = r.rejects[0];
        return {
          ok: false,
          reason: `decodeBatch gave ${r.trades}/${b.trades.length} trades${first ? `, first reject ${first.reason}` : ""}`,
        };
      }
      packed.push(r.batch);
    }
  } catch (error) {
    return { ok: false, reason: `decodeBatch failed: ${message(error)}` };
  }
  const fresh = () => {
    const engine = nativeEngine(root);
    if (!engine.ok) throw new Error(engine.reason);
    return engine.value;
  };
  return {
    ok: true,
    value: contender(batches, warm, fresh, (engine, i) => {
      const r = engine.applyBatch(packed[i]!, batches[i]!.lastMs);
      return {
        applied: r.applied ?? 0,
        anomalies: r.anomalies?.length ?? 0,
        closed: r.closed ?? 0,
      };
    }),
  };
}

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
    options.log(`aggregate/${name}: ${JSON.stringify(counts)}; measuring…`);
    const m = measure(() => contender.value.pass(), options);
    return { ...base, perSec: m.perSec, measurement: m, detail: { ...counts } };
  } catch (error) {
    return { ...base, perSec: null, note: `failed: ${message(error)}` };
  }
}

export const aggregateSection: Section = {
  key: "aggregate",
  title: "Aggregate + detect: 1m/5m/1h bars + z-score (synthetic trades)",
  run(options) {
    const synthetic = DEFAULT_SYNTHETIC;
    const trades = syntheticTrades(synthetic);
    const batches = tradeBatches(trades, options.batchSize);
    const warm = Math.ceil(synthetic.warmTrades / options.batchSize);
    const timed = trades.length - Math.min(trades.length, warm * options.batchSize);
    options.log(
      `synthetic: ${trades.length} trades, ${synthetic.symbols} symbols, ${batches.length} batches (${warm} warm)`,
    );
    const rows: Row[] = [
      // The criterion figure on batches of the same size as Node's, when there is one.
      rustRow(
        options,
        "engine",
        ["apply_batch", "engine"],
        [
          ...(options.batchSize === CRITERION_NODE_BATCH ? [/bars\+zscore\/no_ids\/batch_/] : []),
          /bars\+zscore\/no_ids$/,
          /bars\+zscore/,
        ],
        AGGREGATE_GOALS.rust,
      ),
      benchRow("node", nodeContender(batches, warm, options.root), options, AGGREGATE_GOALS.node),
      benchRow(
        "typescript",
        { ok: true, value: typescriptContender(batches, warm, false) },
        options,
      ),
      benchRow(
        "typescriptBigint",
        { ok: true, value: typescriptContender(batches, warm, true) },
        options,
      ),
    ];
    const verified = rows.filter((r) => r.detail?.anomalies !== undefined);
    const notes = [
      `same trades for all: ${synthetic.symbols} symbols, batches of ${options.batchSize}; per pass ${trades.length - timed} warm-up trades untimed from empty state, then ${timed} timed (steady state)`,
      "node: batches packed once by decodeBatch from JSON records, only applyBatch is timed; it returns counts and anomalies (closed bars queue in the engine for the service to drain on its own schedule), typescript returns its live bar objects",
      `from empty over all ${trades.length} trades: ${verified
        .map(
          (r) =>
            `${r.name} ${String(r.detail?.anomalies)} anomalies, ${String(r.detail?.closed)} closed bars`,
        )
        .join("; ")}`,
    ];
    const result = throughputResult(
      this.title,
      "tradesPerSec",
      "trades/s",
      rows,
      [
        { of: "node", over: "typescript", goal: 3 },
        { of: "node", over: "typescriptBigint" },
        { of: "node", over: "rust", goal: 0.8 },
        { of: "rust", over: "typescript" },
      ],
      notes,
    );
    result.meta = {
      ...synthetic,
      timedTrades: timed,
      batches: batches.length,
      batchSize: options.batchSize,
    };
    return Promise.resolve(result);
  },
};
