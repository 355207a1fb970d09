//! Engine throughput: `apply_batch` on packed batches of 100k trades over 1,000 symbols, and on
//! batches of 2,000 (the size `npm run bench` feeds `Engine.applyBatch` through Node, where the
//! per-symbol work of a batch weighs as much as the per-trade work).
//!
//! Every iteration applies a fresh batch (built untimed) that continues the previous one in
//! event time and offsets, so the engine runs in steady state: watermarks never flag the
//! rows, bars roll forward, retention evicts. Prices follow per-symbol random walks; the row
//! order interleaves symbols randomly (consecutive rows rarely share a symbol).
//!
//! Run: `cargo bench -p tickstream-core --bench engine`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::fmt::Write;
use std::hint::black_box;
use tickstream_core::batch::{BatchBuilder, TradeBatchView};
use tickstream_core::engine::{Engine, EngineConfig};
use tickstream_core::{Arrival, Side, Trade, SCALE};

const SYMBOLS: usize = 1_000;
const TRADES: usize = 100_000;
/// Trades per batch of the Node bench (`npm run bench`, `--batch`).
const NODE_BATCH: usize = 2_000;
/// Event time between consecutive trades (1 ms: a batch covers 100 s).
const STEP_NS: i64 = 1_000_000;
const T0: i64 = 1_709_251_200_000_000_000;

/// Deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn normal(&mut self) -> f64 {
        (0..4)
            .map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64)
            .sum::<f64>()
            * 1.732
            - 3.464
    }
}

/// Generates consecutive batches of one continuous market.
struct Feed {
    symbols: Vec<String>,
    prices: Vec<f64>,
    rng: Rng,
    time: i64,
    seq: u64,
    with_ids: bool,
    id: String,
    trades: usize,
}

impl Feed {
    fn new(with_ids: bool, trades: usize) -> Feed {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        Feed {
            symbols: (0..SYMBOLS).map(|i| format!("SYM{i:04}")).collect(),
            prices: (0..SYMBOLS)
                .map(|_| 10.0 + (rng.next() % 1_000) as f64)
                .collect(),
            rng,
            time: T0,
            seq: 0,
            with_ids,
            id: String::new(),
            trades,
        }
    }

    fn next_batch(&mut self) -> Vec<u8> {
        let mut b = BatchBuilder::new("trades/3").expect("source");
        // Consecutive records of the source, as the decoder declares a Kafka fetch.
        b.set_span(self.seq + 1, self.seq + 1 + self.trades as u64);
        for i in 0..self.trades {
            let s = (self.rng.next() % SYMBOLS as u64) as usize;
            self.prices[s] *= (0.0005 * self.rng.normal()).exp();
            self.time += STEP_NS;
            self.seq += 1;
            self.id.clear();
            if self.with_ids {
                let _ = write!(self.id, "X{}-{}", self.seq, i);
            }
            b.begin_record(i as u32);
            b.push_trade(&Trade {
                symbol: &self.symbols[s],
                price: (self.prices[s] * SCALE as f64) as i64,
                qty: (1 + self.rng.next() % 500) as i64 * SCALE / 100,
                time_ns: self.time,
                arrival: Arrival {
                    seq: self.seq,
                    ord: 0,
                },
                id: self.with_ids.then_some(self.id.as_str()),
                side: if self.rng.next() & 1 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                },
            });
        }
        b.finish().expect("batch").bytes
    }
}

fn bench_apply(c: &mut Criterion, name: &str, config: EngineConfig, with_ids: bool) {
    bench_apply_sized(c, name, config, with_ids, TRADES);
}

fn bench_apply_sized(
    c: &mut Criterion,
    name: &str,
    config: EngineConfig,
    with_ids: bool,
    trades: usize,
) {
    let mut engine = Engine::new(config).expect("config");
    let mut feed = Feed::new(with_ids, trades);
    // Warm up into steady state: every symbol has bars and a full detector window.
    for _ in 0..(20 * TRADES / trades) {
        let bytes = feed.next_batch();
        engine.apply_batch(&TradeBatchView::parse(&bytes).expect("batch"), 0);
    }
    let mut group = c.benchmark_group("apply_batch");
    group.throughput(Throughput::Elements(trades as u64));
    group.sample_size(20);
    group.bench_function(name, |b| {
        b.iter_batched(
            || feed.next_batch(),
            |bytes| {
                let view = TradeBatchView::parse(&bytes).expect("batch");
                let out = engine.apply_batch(&view, 0);
                assert_eq!(out.counts.applied, trades as u64);
                black_box(out)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn engine_benches(c: &mut Criterion) {
    let full = EngineConfig::default();
    bench_apply(c, "bars+zscore/no_ids", full.clone(), false);
    bench_apply_sized(
        c,
        "bars+zscore/no_ids/batch_2000",
        full.clone(),
        false,
        NODE_BATCH,
    );
    bench_apply(c, "bars+zscore/ids", full.clone(), true);
    // The correction window's cost: the same without a trade journal.
    bench_apply(
        c,
        "bars+zscore/ids/no_corrections",
        EngineConfig {
            correction_window_ns: 0,
            ..full.clone()
        },
        true,
    );
    // Steady state of the id set: at its cap every insertion also evicts. A small cap gets
    // there within the warm-up (the default 65,536 would need 65M trades).
    let mut at_cap = full.clone();
    at_cap.dedupe.cap = 1_024;
    bench_apply(c, "bars+zscore/ids_at_cap_1024", at_cap, true);
    bench_apply(
        c,
        "bars_only/no_ids",
        EngineConfig {
            enable_detector: false,
            ..full.clone()
        },
        false,
    );
    bench_apply(
        c,
        "zscore_only/no_ids",
        EngineConfig {
            enable_bars: false,
            ..full.clone()
        },
        false,
    );

    let bytes = Feed::new(true, TRADES).next_batch();
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(TRADES as u64));
    group.bench_function("parse+iterate/ids", |b| {
        b.iter(|| {
            let v = TradeBatchView::parse(black_box(&bytes)).expect("batch");
            black_box(v.trades().map(|t| t.price).sum::<i64>())
        });
    });
    group.finish();
}

criterion_group!(benches, engine_benches);
criterion_main!(benches);
