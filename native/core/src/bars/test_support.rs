//! Shared fixtures for the aggregation engine's unit tests: owned trades, batch building,
//! random walks, proptest strategies and a naive, independent bar computation.

use crate::bars::{Bar, BarSpec};
use crate::batch::{BatchBuilder, TradeBatchView};
use crate::types::{Arrival, Order, Side, Trade, SCALE};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// One second in ns.
pub(crate) const SEC: i64 = 1_000_000_000;
/// One minute in ns.
pub(crate) const MIN: i64 = 60 * SEC;
/// A realistic epoch time (2024-03-01T00:00:00Z) aligned to the hour.
pub(crate) const T0: i64 = 1_709_251_200 * SEC;

/// A trade that owns its strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OwnedTrade {
    pub symbol: String,
    pub price: i64,
    pub qty: i64,
    pub time_ns: i64,
    pub seq: u64,
    pub ord: u32,
    pub id: Option<String>,
    pub side: Side,
}

impl OwnedTrade {
    pub fn as_trade(&self) -> Trade<'_> {
        Trade {
            symbol: &self.symbol,
            price: self.price,
            qty: self.qty,
            time_ns: self.time_ns,
            arrival: Arrival {
                seq: self.seq,
                ord: self.ord,
            },
            id: self.id.as_deref(),
            side: self.side,
        }
    }
}

/// An order that owns its strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OwnedOrder {
    pub symbol: String,
    pub side: Side,
    pub qty: i64,
    pub price: Option<i64>,
    pub time_ns: i64,
    pub seq: u64,
}

impl OwnedOrder {
    pub fn as_order(&self) -> Order<'_> {
        Order {
            symbol: &self.symbol,
            side: self.side,
            qty: self.qty,
            price: self.price,
            time_ns: self.time_ns,
            arrival: Arrival {
                seq: self.seq,
                ord: 0,
            },
            cl_ord_id: None,
        }
    }
}

/// A trade of `symbol` at `price` units (×1e9) for 1 unit, without id.
pub(crate) fn tr(symbol: &str, price: f64, time_ns: i64, seq: u64) -> OwnedTrade {
    OwnedTrade {
        symbol: symbol.to_owned(),
        price: (price * SCALE as f64).round() as i64,
        qty: SCALE,
        time_ns,
        seq,
        ord: 0,
        id: None,
        side: Side::Buy,
    }
}

/// Packs trades and orders into a batch (record index = position in `trades`).
pub(crate) fn batch(source: &str, trades: &[OwnedTrade], orders: &[OwnedOrder]) -> Vec<u8> {
    let mut b = BatchBuilder::new(source).expect("source");
    for (i, t) in trades.iter().enumerate() {
        b.begin_record(i as u32);
        b.push_trade(&t.as_trade());
    }
    for o in orders {
        b.push_order(&o.as_order());
    }
    b.finish().expect("batch").bytes
}

/// Parses a batch built by [`batch`].
pub(crate) fn view(bytes: &[u8]) -> TradeBatchView<'_> {
    TradeBatchView::parse(bytes).expect("valid batch")
}

/// Deterministic xorshift generator (tests must not depend on ambient randomness).
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeds through splitmix64 so that small seeds still start well mixed.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately standard normal (sum of 12 uniforms).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// A random-walk price path of `n` trades of one symbol, 1 s apart, with ids.
pub(crate) fn random_walk(symbol: &str, n: usize, seed: u64, vol: f64) -> Vec<OwnedTrade> {
    let mut rng = Rng::new(seed);
    let mut price = 100.0;
    (0..n)
        .map(|i| {
            price *= (vol * rng.normal()).exp();
            let mut t = tr(symbol, price, T0 + i as i64 * SEC, i as u64);
            t.id = Some(format!("{symbol}-{i}"));
            t
        })
        .collect()
}

/// Independent reference values of one bar, computed from a trade list.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NaiveBar {
    pub start: i64,
    pub ohlc: Option<(i64, i64, i64, i64)>,
    pub volume: i128,
    pub notional: i128,
    pub trades: u32,
    pub orders: u32,
    pub buy_qty: i128,
    pub sell_qty: i128,
    pub last_event: Option<i64>,
}

/// Interval start by i128 floor division (deliberately not the engine's `div_euclid`).
pub(crate) fn naive_start(t: i64, width: i64) -> i64 {
    let (t, w) = (i128::from(t), i128::from(width));
    let mut q = t / w;
    if t % w != 0 && t < 0 {
        q -= 1;
    }
    (q * w) as i64
}

/// Reference bars of `spec` by start, from all `trades` and `orders`.
pub(crate) fn naive_bars(
    trades: &[OwnedTrade],
    orders: &[OwnedOrder],
    spec: BarSpec,
) -> BTreeMap<i64, NaiveBar> {
    let w = spec.width_ns();
    let mut groups: BTreeMap<i64, Vec<&OwnedTrade>> = BTreeMap::new();
    for t in trades {
        groups.entry(naive_start(t.time_ns, w)).or_default().push(t);
    }
    let mut out: BTreeMap<i64, NaiveBar> = groups
        .into_iter()
        .map(|(start, ts)| {
            let key = |t: &&OwnedTrade| (t.time_ns, t.seq, t.ord, t.price);
            let first = ts.iter().copied().min_by_key(key).expect("non-empty");
            let last = ts.iter().copied().max_by_key(key).expect("non-empty");
            let high = ts.iter().map(|t| t.price).max().expect("non-empty");
            let low = ts.iter().map(|t| t.price).min().expect("non-empty");
            let bar = NaiveBar {
                start,
                ohlc: Some((first.price, high, low, last.price)),
                volume: ts.iter().map(|t| i128::from(t.qty)).sum(),
                notional: ts
                    .iter()
                    .map(|t| i128::from(t.price) * i128::from(t.qty))
                    .sum(),
                trades: ts.len() as u32,
                last_event: ts.iter().map(|t| t.time_ns).max(),
                ..NaiveBar::default()
            };
            (start, bar)
        })
        .collect();
    for o in orders {
        let start = naive_start(o.time_ns, w);
        let b = out.entry(start).or_insert_with(|| NaiveBar {
            start,
            ..NaiveBar::default()
        });
        b.orders += 1;
        match o.side {
            Side::Buy => b.buy_qty += i128::from(o.qty),
            Side::Sell => b.sell_qty += i128::from(o.qty),
            Side::Unknown => {}
        }
    }
    out
}

/// The values of a bar in the form of [`NaiveBar`].
pub(crate) fn bar_values(b: &Bar) -> NaiveBar {
    let flow = b.order_flow();
    NaiveBar {
        start: b.start_ns(),
        ohlc: b.open().map(|o| {
            (
                o,
                b.high().unwrap_or(0),
                b.low().unwrap_or(0),
                b.close().unwrap_or(0),
            )
        }),
        volume: b.volume(),
        notional: b.notional(),
        trades: b.trades(),
        orders: flow.count,
        buy_qty: flow.buy_qty,
        sell_qty: flow.sell_qty,
        last_event: b.last_event_ns(),
    }
}

/// Trades of one symbol with unique `(seq, ord)`, times within a few hours of [`T0`] (some
/// late and out of order), prices in a narrow band, optional ids.
pub(crate) fn arb_trades(max: usize) -> impl Strategy<Value = Vec<OwnedTrade>> {
    prop::collection::vec(
        (
            0i64..4 * 3_600 * SEC,
            1i64..1_000,
            0i64..5_000,
            0u32..3,
            any::<bool>(),
            prop::sample::select(vec![Side::Buy, Side::Sell, Side::Unknown]),
        ),
        1..max,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (dt, px, qty, ord, with_id, side))| OwnedTrade {
                symbol: "SYM".to_owned(),
                price: 100 * SCALE + px * 1_000_000,
                qty: qty * 1_000_000,
                // Coarse times so that equal times (ties broken by arrival) are common.
                time_ns: T0 + dt / (7 * SEC) * (7 * SEC),
                seq: i as u64 / 3,
                ord: (i % 3) as u32 + ord * 3,
                id: with_id.then(|| format!("id-{i}")),
                side,
            })
            .collect()
    })
}
