//! `Engine`: per-symbol bars and detectors; `partitionBatch` splits a batch between owners.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tickstream_core::activity::{parse_specs, ActivityError, ActivitySpec, ActivitySpecs};
use tickstream_core::anomaly::{Anomaly, DetectorKind, DetectorOverride};
use tickstream_core::bars::{Bar, BarSpec};
use tickstream_core::batch::{partition, BatchError, TradeBatchView};
use tickstream_core::engine::{
    AppliedCorrection, ClosedBar, Engine as CoreEngine, EngineConfig, ImportMode,
};
use tickstream_core::types::{wide_to_decimal, wide_to_f64, SCALE_DIGITS};
use tickstream_core::types::{Arrival, CorrectionKind};

use crate::convert::{iso_ns, ns_to_ms, num};
use crate::error::{Error, ErrorCode, Result};

const NS_PER_MS: i64 = 1_000_000;

/// Options of an engine; every field has the documented default.
#[napi(object)]
pub struct EngineOptions {
    /// Maintain bars (aggregator role).
    pub bars: Option<bool>,
    /// Run the anomaly detector (anomaly role).
    pub detector: Option<bool>,
    pub grace_ms: Option<f64>,
    pub retention_1m_ms: Option<f64>,
    pub retention_5m_ms: Option<f64>,
    pub retention_1h_ms: Option<f64>,
    pub dedupe_capacity: Option<u32>,
    /// How far back a trade may be cancelled or corrected; default (and at most) the 1m retention.
    pub correction_window_ms: Option<f64>,
    /// `zscore`, `ewma` or `mad`.
    pub detector_kind: Option<String>,
    pub window: Option<u32>,
    pub min_samples: Option<u32>,
    pub threshold: Option<f64>,
    pub lambda: Option<f64>,
    /// Per-symbol detector settings as JSON: `{"SYM": {"window": 50, "threshold": 6, …}}`.
    pub overrides: Option<String>,
    /// Tick and volume bars to keep, e.g. `"100t,5000v"` (at most 4; default none).
    pub activity_bars: Option<String>,
}

/// One bar as JS sees it (prices and quantities as numbers).
#[napi(object, js_name = "Bar")]
pub struct BarJs {
    pub start_ms: f64,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    pub volume: f64,
    /// Σ quantity as exact decimal text (what roll-ups sum; `volume` is its nearest number).
    pub volume_exact: String,
    /// Σ price × quantity as exact decimal text: VWAP of a roll-up is Σ notional / Σ volume.
    pub notional: String,
    pub vwap: Option<f64>,
    pub trades: u32,
    pub closed: bool,
    pub revised: bool,
    pub order_count: u32,
    pub buy_qty: f64,
    pub sell_qty: f64,
    /// Event time of the bar's latest trade, epoch ms.
    pub last_event_ms: Option<f64>,
    /// Changes applied to the bar (trades, orders, cancels, corrections); grows within a state.
    pub revision: u32,
    /// Custody epoch of the state the bar came from (`Engine.setGeneration`); 0 when unset.
    /// Versions of a bar order by (generation, revision).
    pub generation: u32,
}

/// A tick or volume bar (`Engine.activityBars`).
#[napi(object)]
pub struct ActivityBarJs {
    /// Bar number within the symbol's state (the first bar of the spec is 0).
    pub number: f64,
    /// Event time of its first and of its last trade, epoch ms.
    pub first_ms: f64,
    pub last_ms: f64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    /// Σ quantity as exact decimal text.
    pub volume_exact: String,
    /// Σ price × quantity as exact decimal text.
    pub notional: String,
    pub trades: u32,
    pub closed: bool,
}

/// A symbol's trades in a span of event time, summed exactly (`Engine.tradeWindow`).
#[napi(object)]
pub struct TradeWindowJs {
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    /// Σ quantity as exact decimal text.
    pub volume_exact: String,
    /// Σ price × quantity as exact decimal text.
    pub notional: String,
    pub trades: u32,
}

/// Numbers per bar in `Engine.latestPacked`.
#[napi]
pub const LATEST_STRIDE: u32 = 17;

/// A bar with its symbol and interval (closed bars, forming-bar updates).
#[napi(object)]
pub struct SymbolBar {
    pub symbol: String,
    pub interval: String,
    pub bar: BarJs,
}

/// An anomalous trade.
#[napi(object, js_name = "Anomaly")]
pub struct AnomalyJs {
    pub symbol: String,
    pub time_ms: f64,
    /// Event time, ISO-8601 UTC with full precision.
    pub time: String,
    pub price: f64,
    pub prev_price: f64,
    pub ret: f64,
    pub zscore: f64,
    pub mean: f64,
    pub std: f64,
    pub detector: String,
    /// The trade's key `timeNs/seq/ord`: a cancel of the trade names the same key.
    pub trade_key: String,
}

/// A trade that a cancel or correction changed.
#[napi(object)]
pub struct CorrectedTrade {
    pub symbol: String,
    /// `cancel` or `correct`.
    pub kind: String,
    /// `timeNs/seq/ord`, as in `Anomaly.tradeKey`.
    pub trade_key: String,
}

/// Cancels and corrections that changed nothing, by reason.
#[napi(object)]
pub struct CorrectionsSkipped {
    /// No trade with the referenced id among those remembered.
    pub unknown_trade: u32,
    /// The trade is older than the correction window (while its id is still remembered).
    pub outside_window: u32,
    /// The trade was already cancelled.
    pub already_cancelled: u32,
    /// The report was already applied (its own id, or its offset).
    pub duplicate: u32,
    /// A correction to the values the trade already had.
    pub unchanged: u32,
}

/// What one `applyBatch` call did. Closed bars and touched symbols are not returned here: they
/// queue inside the engine and are taken by `drainClosed` / `drainTouched` on the service's own
/// (throttled) schedule, which keeps per-bar JS objects off the hot path.
#[napi(object)]
pub struct ApplyResult {
    pub trades: u32,
    pub applied: u32,
    pub duplicates_id: u32,
    pub duplicates_offset: u32,
    pub revised: u32,
    pub too_late: u32,
    /// Record indices (of the decode call) of the too-late trades.
    pub too_late_records: Vec<u32>,
    pub invalid: u32,
    pub orders: u32,
    pub anomalies: Vec<AnomalyJs>,
    /// Bars closed by this call (queued for `drainClosed`).
    pub closed: u32,
    /// Trades cancelled.
    pub cancels: u32,
    /// Trades corrected.
    pub corrections: u32,
    pub corrections_skipped: CorrectionsSkipped,
    /// The trades cancelled or corrected, in the order applied.
    pub corrected: Vec<CorrectedTrade>,
}

/// One symbol held by the engine.
#[napi(object, js_name = "SymbolSummary")]
pub struct SymbolSummaryJs {
    pub symbol: String,
    pub trades: f64,
    pub last_price: Option<f64>,
    pub last_trade_ms: Option<f64>,
}

/// Engine-wide counters.
#[napi(object)]
pub struct EngineStats {
    pub symbols: u32,
    pub bars: f64,
    pub ids: f64,
    pub state_bytes: f64,
    pub applied: f64,
    pub duplicates: f64,
    pub revised: f64,
    pub too_late: f64,
    pub anomalies: f64,
    pub orders: f64,
    pub cancels: f64,
    pub corrections: f64,
    /// Cancels and corrections that changed nothing (all reasons).
    pub corrections_skipped: f64,
    /// Trades held for cancels and corrections, all symbols.
    pub journal_trades: f64,
}

/// `ms` in nanoseconds; out of range it is an error with `code`, naming the argument `name`.
fn ms_to_ns(ms: f64, name: &str, code: ErrorCode) -> Result<i64> {
    if !ms.is_finite() || !(0.0..=9.0e12).contains(&ms) {
        return Err(Error::new(
            code,
            format!("{name} must be a non-negative number of ms"),
        ));
    }
    Ok((ms * NS_PER_MS as f64) as i64)
}

fn config(o: Option<EngineOptions>) -> Result<EngineConfig> {
    let mut c = EngineConfig::default();
    let Some(o) = o else { return Ok(c) };
    if let Some(b) = o.bars {
        c.enable_bars = b;
    }
    if let Some(d) = o.detector {
        c.enable_detector = d;
    }
    if let Some(ms) = o.grace_ms {
        c.bars.grace_ns = ms_to_ns(ms, "graceMs", ErrorCode::BadConfig)?;
    }
    for (i, v) in [o.retention_1m_ms, o.retention_5m_ms, o.retention_1h_ms]
        .into_iter()
        .enumerate()
    {
        if let Some(ms) = v {
            c.bars.retention_ns[i] = ms_to_ns(ms, "retention", ErrorCode::BadConfig)?;
        }
    }
    // Ids are remembered as long as 1m bars are kept; trades as long as they can be corrected.
    c.dedupe.window_ns = c.bars.retention_ns[0];
    c.correction_window_ns = match o.correction_window_ms {
        Some(ms) => ms_to_ns(ms, "correctionWindowMs", ErrorCode::BadConfig)?,
        None => c.bars.retention_ns[0],
    };
    if let Some(cap) = o.dedupe_capacity {
        c.dedupe.cap = cap as usize;
    }
    if let Some(text) = o.activity_bars.as_deref() {
        let invalid = |e: ActivityError| Error::new(ErrorCode::BadConfig, e.to_string());
        c.activity = ActivitySpecs::new(&parse_specs(text).map_err(invalid)?).map_err(invalid)?;
    }
    let d = &mut c.detector.default;
    if let Some(kind) = o.detector_kind.as_deref() {
        d.kind = DetectorKind::parse(kind)
            .map_err(|e| Error::new(ErrorCode::BadConfig, e.to_string()))?;
    }
    if let Some(w) = o.window {
        d.window = w as usize;
    }
    if let Some(m) = o.min_samples {
        d.min_samples = m as usize;
    }
    if let Some(t) = o.threshold {
        d.threshold = t;
    }
    if let Some(l) = o.lambda {
        d.lambda = l;
    }
    if let Some(json) = o.overrides.as_deref().filter(|s| !s.trim().is_empty()) {
        c.detector.overrides = parse_overrides(json)?;
    }
    c.validate()
        .map_err(|e| Error::new(ErrorCode::BadConfig, e.to_string()))?;
    Ok(c)
}

fn parse_overrides(json: &str) -> Result<HashMap<String, DetectorOverride>> {
    let bad = |m: String| Error::new(ErrorCode::BadConfig, format!("overrides: {m}"));
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("expected an object".into()))?;
    let mut out = HashMap::new();
    for (symbol, v) in obj {
        let fields = v
            .as_object()
            .ok_or_else(|| bad(format!("{symbol}: expected an object")))?;
        let mut o = DetectorOverride::default();
        for (k, x) in fields {
            let n = || {
                x.as_f64()
                    .ok_or_else(|| bad(format!("{symbol}.{k}: expected a number")))
            };
            match k.as_str() {
                "window" => o.window = Some(n()? as usize),
                "minSamples" => o.min_samples = Some(n()? as usize),
                "threshold" => o.threshold = Some(n()?),
                "lambda" => o.lambda = Some(n()?),
                "kind" => {
                    let s = x
                        .as_str()
                        .ok_or_else(|| bad(format!("{symbol}.kind: expected a string")))?;
                    o.kind = Some(DetectorKind::parse(s).map_err(|e| bad(e.to_string()))?);
                }
                _ => return Err(bad(format!("{symbol}.{k}: unknown setting"))),
            }
        }
        out.insert(symbol.clone(), o);
    }
    Ok(out)
}

fn bar_js(b: &Bar, generation: u32) -> BarJs {
    let flow = b.order_flow();
    BarJs {
        start_ms: ns_to_ms(b.start_ns()),
        open: b.open().map(num),
        high: b.high().map(num),
        low: b.low().map(num),
        close: b.close().map(num),
        volume: wide_to_f64(b.volume()),
        volume_exact: wide_to_decimal(b.volume(), SCALE_DIGITS),
        notional: wide_to_decimal(b.notional(), 2 * SCALE_DIGITS),
        vwap: b.vwap(),
        trades: b.trades(),
        closed: b.is_closed(),
        revised: b.is_revised(),
        order_count: flow.count,
        buy_qty: wide_to_f64(flow.buy_qty),
        sell_qty: wide_to_f64(flow.sell_qty),
        last_event_ms: b.last_event_ns().map(ns_to_ms),
        revision: b.revision(),
        generation,
    }
}

fn symbol_bar(c: &ClosedBar, generation: u32) -> SymbolBar {
    SymbolBar {
        symbol: c.symbol.to_string(),
        interval: c.bar.spec().as_str().to_owned(),
        bar: bar_js(&c.bar, generation),
    }
}

fn trade_key(time_ns: i64, arrival: Arrival) -> String {
    format!("{time_ns}/{}/{}", arrival.seq, arrival.ord)
}

fn corrected_trade(c: &AppliedCorrection) -> CorrectedTrade {
    CorrectedTrade {
        symbol: c.symbol.to_string(),
        kind: match c.kind {
            CorrectionKind::Cancel => "cancel",
            CorrectionKind::Correct => "correct",
        }
        .to_owned(),
        trade_key: trade_key(c.trade.time_ns, c.trade.arrival),
    }
}

fn anomaly_js(a: &Anomaly) -> AnomalyJs {
    AnomalyJs {
        symbol: a.symbol.to_string(),
        time_ms: ns_to_ms(a.time_ns),
        time: iso_ns(a.time_ns),
        price: a.price,
        prev_price: a.prev_price,
        ret: a.ret,
        zscore: a.zscore,
        mean: a.mean,
        std: a.std,
        detector: a.detector.to_owned(),
        trade_key: trade_key(a.time_ns, a.arrival),
    }
}

/// A batch that does not parse or split; an owner table that does not fit the batch is the
/// caller's argument, not the batch, at fault.
fn bad_batch(e: BatchError) -> Error {
    let code = match e {
        BatchError::Owner(_) => ErrorCode::BadArgument,
        _ => ErrorCode::BadBatch,
    };
    Error::new(code, format!("bad batch: {e}"))
}

fn clamp(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

/// Most closed bars kept for `drainClosed`; beyond it the oldest are dropped (they are best-effort
/// live events; the bars themselves stay in the engine).
const CLOSED_QUEUE_MAX: usize = 100_000;

/// Per-symbol bars, detectors, dedupe and watermarks of the symbols this node owns.
#[napi]
pub struct Engine {
    inner: CoreEngine,
    /// Closed bars with the generation of their state when they closed.
    closed: std::collections::VecDeque<(ClosedBar, u32)>,
    closed_dropped: u64,
    touched: HashSet<Arc<str>>,
    /// Custody epoch of each symbol's state (`setGeneration`).
    generations: HashMap<String, u32>,
}

#[napi]
impl Engine {
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<EngineOptions>) -> Result<Self> {
        let inner = CoreEngine::new(config(options)?)
            .map_err(|e| Error::new(ErrorCode::BadConfig, e.to_string()))?;
        Ok(Engine {
            inner,
            closed: Default::default(),
            closed_dropped: 0,
            touched: HashSet::new(),
            generations: HashMap::new(),
        })
    }

    /// Applies a packed trade batch (from `FixDecoder.decodeBatch` or `partitionBatch`).
    #[napi(catch_unwind)]
    pub fn apply_batch(&mut self, batch: &[u8], now_ms: f64) -> Result<ApplyResult> {
        let view = TradeBatchView::parse(batch).map_err(bad_batch)?;
        let now_ns = ms_to_ns(now_ms, "nowMs", ErrorCode::BadArgument)?;
        let out = self.inner.apply_batch(&view, now_ns);
        let c = &out.counts;
        let result = ApplyResult {
            trades: clamp(c.trades),
            applied: clamp(c.applied),
            duplicates_id: clamp(c.duplicates_id),
            duplicates_offset: clamp(c.duplicates_offset + c.orders_duplicates),
            revised: clamp(c.revised + c.orders_revised),
            too_late: clamp(c.too_late + c.orders_too_late),
            too_late_records: out.too_late.iter().map(|r| r.record).collect(),
            invalid: clamp(c.invalid + c.orders_invalid),
            orders: clamp(c.orders_applied),
            anomalies: out.anomalies.iter().map(anomaly_js).collect(),
            closed: out.closed.len() as u32,
            cancels: clamp(c.cancels_applied),
            corrections: clamp(c.corrections_applied),
            corrections_skipped: CorrectionsSkipped {
                unknown_trade: clamp(c.corrections_unknown),
                outside_window: clamp(c.corrections_outside_window),
                already_cancelled: clamp(c.corrections_already_cancelled),
                duplicate: clamp(c.corrections_duplicate),
                unchanged: clamp(c.corrections_unchanged),
            },
            corrected: out.corrections.iter().map(corrected_trade).collect(),
        };
        self.touched.extend(out.touched);
        self.queue_closed(out.closed);
        Ok(result)
    }

    fn generation(&self, symbol: &str) -> u32 {
        self.generations.get(symbol).copied().unwrap_or(0)
    }

    fn queue_closed(&mut self, closed: Vec<ClosedBar>) {
        for c in closed {
            let generation = self.generation(&c.symbol);
            self.closed.push_back((c, generation));
        }
        while self.closed.len() > CLOSED_QUEUE_MAX {
            self.closed.pop_front();
            self.closed_dropped += 1;
        }
    }

    /// Takes the bars closed since the last call (oldest first).
    #[napi(catch_unwind)]
    pub fn drain_closed(&mut self) -> Vec<SymbolBar> {
        self.closed
            .drain(..)
            .map(|(c, generation)| symbol_bar(&c, generation))
            .collect()
    }

    /// Takes the symbols that received rows since the last call.
    #[napi(catch_unwind)]
    pub fn drain_touched(&mut self) -> Vec<String> {
        self.touched.drain().map(|s| s.to_string()).collect()
    }

    /// Closes bars whose end plus grace has passed on the wall clock (while the feed is live);
    /// returns how many (queued for `drainClosed`).
    #[napi(catch_unwind)]
    pub fn close_by_wall_clock(&mut self, now_ms: f64) -> Result<u32> {
        let now_ns = ms_to_ns(now_ms, "nowMs", ErrorCode::BadArgument)?;
        let closed = self.inner.close_by_wall_clock(now_ns);
        let n = closed.len() as u32;
        self.queue_closed(closed);
        Ok(n)
    }

    /// Bars of a symbol, oldest first (the newest `limit` within [from, to] by start);
    /// `null` when the engine does not hold the symbol.
    #[napi(catch_unwind)]
    pub fn bars(
        &self,
        symbol: String,
        interval: String,
        from_ms: Option<f64>,
        to_ms: Option<f64>,
        limit: Option<u32>,
    ) -> Result<Option<Vec<BarJs>>> {
        let spec = BarSpec::parse(&interval)
            .map_err(|e| Error::new(ErrorCode::BadArgument, e.to_string()))?;
        let to_ns = |ms: Option<f64>, default: i64| match ms {
            Some(v) if v.is_finite() => (v.clamp(-9.2e12, 9.2e12) * NS_PER_MS as f64) as i64,
            _ => default,
        };
        let bars = self.inner.bars(
            &symbol,
            spec,
            to_ns(from_ms, i64::MIN),
            to_ns(to_ms, i64::MAX),
            limit.unwrap_or(500) as usize,
        );
        let generation = self.generation(&symbol);
        Ok(bars.map(|v| v.iter().map(|b| bar_js(b, generation)).collect()))
    }

    /// The newest `limit` bars of a tick or volume spec (`"100t"`, `"5000v"`), oldest first, the
    /// forming one last; `null` when the engine does not hold the symbol or keeps no such bars.
    #[napi(catch_unwind)]
    pub fn activity_bars(
        &self,
        symbol: String,
        interval: String,
        limit: Option<u32>,
    ) -> Result<Option<Vec<ActivityBarJs>>> {
        let spec = ActivitySpec::parse(&interval)
            .map_err(|e| Error::new(ErrorCode::BadArgument, e.to_string()))?;
        let bars = self
            .inner
            .activity_bars(&symbol, spec, limit.unwrap_or(500) as usize);
        Ok(bars.map(|v| {
            v.iter()
                .map(|b| ActivityBarJs {
                    number: b.number as f64,
                    first_ms: ns_to_ms(b.first_ns),
                    last_ms: ns_to_ms(b.last_ns),
                    open: num(b.open),
                    high: num(b.high),
                    low: num(b.low),
                    close: num(b.close),
                    volume: wide_to_f64(b.volume),
                    volume_exact: wide_to_decimal(b.volume, SCALE_DIGITS),
                    notional: wide_to_decimal(b.notional, 2 * SCALE_DIGITS),
                    trades: b.trades,
                    closed: b.closed,
                })
                .collect()
        }))
    }

    /// A symbol's trades with an event time in `[fromMs, toMs)`, summed exactly from its trade
    /// journal (the correction window); `null` when the engine does not hold the symbol or its
    /// journal may not hold every such trade (a span older than the window).
    #[napi(catch_unwind)]
    pub fn trade_window(
        &self,
        symbol: String,
        from_ms: f64,
        to_ms: f64,
    ) -> Result<Option<TradeWindowJs>> {
        if !from_ms.is_finite() || !to_ms.is_finite() {
            return Err(Error::new(ErrorCode::BadArgument, "times must be finite"));
        }
        let ns = |ms: f64| (ms.clamp(-9.2e12, 9.2e12) * NS_PER_MS as f64) as i64;
        Ok(self
            .inner
            .trade_window(&symbol, ns(from_ms), ns(to_ms))
            .map(|w| TradeWindowJs {
                open: w.open.map(num),
                high: w.high.map(num),
                low: w.low.map(num),
                close: w.close.map(num),
                volume_exact: wide_to_decimal(w.volume, SCALE_DIGITS),
                notional: wide_to_decimal(w.notional, 2 * SCALE_DIGITS),
                trades: w.trades,
            }))
    }

    /// The newest bar of every interval of each given symbol (forming-bar updates), packed: one
    /// row of `LATEST_STRIDE` numbers per bar, in the order of `symbols` and `BarSpec::ALL` — symbol
    /// index, interval index (0 = 1m, 1 = 5m, 2 = 1h), start ms, open, high,
    /// low, close, volume, vwap, trades, closed (0/1), revised (0/1), order count, buy qty, sell qty,
    /// revision, generation; NaN for no value. Returning 3,000 bar objects through napi took ~10 ms a tick with 1,000
    /// active symbols (the event loop held that long every 250 ms); one typed array read in
    /// JavaScript takes a fraction of it (bench/README.md, "latency").
    #[napi(catch_unwind)]
    pub fn latest_packed(&self, symbols: Vec<String>) -> Float64Array {
        let mut out =
            Vec::with_capacity(symbols.len() * BarSpec::ALL.len() * LATEST_STRIDE as usize);
        for (i, symbol) in symbols.iter().enumerate() {
            let generation = f64::from(self.generation(symbol));
            for (k, spec) in BarSpec::ALL.iter().enumerate() {
                let Some(b) = self
                    .inner
                    .bars(symbol, *spec, i64::MIN, i64::MAX, 1)
                    .and_then(|v| v.last().copied())
                else {
                    continue;
                };
                let flow = b.order_flow();
                let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
                out.extend_from_slice(&[
                    i as f64,
                    k as f64,
                    ns_to_ms(b.start_ns()),
                    opt(b.open().map(num)),
                    opt(b.high().map(num)),
                    opt(b.low().map(num)),
                    opt(b.close().map(num)),
                    wide_to_f64(b.volume()),
                    opt(b.vwap()),
                    f64::from(b.trades()),
                    f64::from(u8::from(b.is_closed())),
                    f64::from(u8::from(b.is_revised())),
                    f64::from(flow.count),
                    wide_to_f64(flow.buy_qty),
                    wide_to_f64(flow.sell_qty),
                    f64::from(b.revision()),
                    generation,
                ]);
            }
        }
        Float64Array::new(out)
    }

    /// The closed bars of `symbol`, every interval, that a late trade or order changed after they
    /// closed (`revised`): what history must write again. Filtered here, so that only those cross
    /// into JavaScript — reading every bar (309 at the default retention) as objects to find them
    /// cost ~3 µs a bar.
    #[napi(catch_unwind)]
    pub fn revised_bars(&self, symbol: String) -> Vec<SymbolBar> {
        let mut out = Vec::new();
        let generation = self.generation(&symbol);
        for spec in BarSpec::ALL {
            let Some(bars) = self
                .inner
                .bars(&symbol, spec, i64::MIN, i64::MAX, usize::MAX)
            else {
                return out;
            };
            for b in bars.iter().filter(|b| b.is_closed() && b.is_revised()) {
                out.push(SymbolBar {
                    symbol: symbol.clone(),
                    interval: spec.as_str().to_owned(),
                    bar: bar_js(b, generation),
                });
            }
        }
        out
    }

    /// Every symbol held, with its trade count and latest trade.
    #[napi(catch_unwind)]
    pub fn symbols(&self) -> Vec<SymbolSummaryJs> {
        self.inner
            .symbol_summaries()
            .into_iter()
            .map(|s| SymbolSummaryJs {
                symbol: s.symbol.to_string(),
                trades: s.trades_applied as f64,
                last_price: s.last_price.map(num),
                last_trade_ms: s.last_trade_ns.map(ns_to_ms),
            })
            .collect()
    }

    #[napi(catch_unwind)]
    pub fn symbol_count(&self) -> u32 {
        self.inner.symbol_count() as u32
    }

    /// Engine-wide counters and memory estimate.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> EngineStats {
        let t = self.inner.totals();
        let m = self.inner.memory_estimate();
        EngineStats {
            symbols: m.symbols as u32,
            bars: m.bars as f64,
            ids: m.ids as f64,
            state_bytes: (m.state_bytes + m.index_bytes) as f64,
            applied: t.applied as f64,
            duplicates: (t.duplicates_id + t.duplicates_offset + t.orders_duplicates) as f64,
            revised: (t.revised + t.orders_revised) as f64,
            too_late: (t.too_late + t.orders_too_late) as f64,
            anomalies: t.anomalies as f64,
            orders: t.orders_applied as f64,
            cancels: t.cancels_applied as f64,
            corrections: t.corrections_applied as f64,
            corrections_skipped: (t.corrections_unknown
                + t.corrections_outside_window
                + t.corrections_already_cancelled
                + t.corrections_duplicate
                + t.corrections_unchanged) as f64,
            journal_trades: m.journal_trades as f64,
        }
    }

    /// A symbol's whole state (bars, detector, dedupe, watermarks) as versioned bytes.
    #[napi(catch_unwind)]
    pub fn export_symbol(&self, symbol: String) -> Option<Buffer> {
        self.inner.export_symbol(&symbol).map(Buffer::from)
    }

    /// Installs an exported state, replacing or merging with the held one; returns the symbol.
    #[napi(catch_unwind)]
    pub fn import_symbol(&mut self, state: &[u8], merge: bool) -> Result<String> {
        let mode = if merge {
            ImportMode::Merge
        } else {
            ImportMode::Replace
        };
        self.inner
            .import_symbol(state, mode)
            .map(|s| s.to_string())
            .map_err(|e| Error::new(ErrorCode::BadState, format!("bad state: {e}")))
    }

    /// Forgets a symbol (after handing it to its new owner); true when it was held.
    #[napi(catch_unwind)]
    pub fn remove_symbol(&mut self, symbol: String) -> bool {
        self.generations.remove(&symbol);
        self.inner.remove_symbol(&symbol).is_some()
    }

    /// Sets the generation (custody epoch) the bars of `symbol` are stamped with from now on.
    #[napi(catch_unwind)]
    pub fn set_generation(&mut self, symbol: String, generation: u32) {
        self.generations.insert(symbol, generation);
    }
}

/// Splits a batch between owners: `ownerOfSymbol[i]` is the owner of the batch's symbol i.
/// Returns one batch per owner (empty owners get an empty batch), row order kept.
#[napi(catch_unwind)]
pub fn partition_batch(
    batch: &[u8],
    owner_of_symbol: Uint32Array,
    owners: u32,
) -> Result<Vec<Buffer>> {
    let view = TradeBatchView::parse(batch).map_err(bad_batch)?;
    let parts = partition(&view, &owner_of_symbol, owners as usize).map_err(bad_batch)?;
    Ok(parts.into_iter().map(Buffer::from).collect())
}

/// The distinct symbols of a packed batch, by batch symbol index.
#[napi(catch_unwind)]
pub fn batch_symbols(batch: &[u8]) -> Result<Vec<String>> {
    let view = TradeBatchView::parse(batch).map_err(bad_batch)?;
    Ok(view.symbols().iter().map(|s| (*s).to_owned()).collect())
}
