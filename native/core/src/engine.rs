//! The aggregation engine: applies packed batches to per-symbol state.
//!
//! Symbols are independent actors: a symbol's trades are applied in batch row order (its
//! arrival order); symbols do not interact, so an owner can be sharded by symbol with
//! [`crate::batch::partition`] and each shard run on its own engine.

use crate::activity::{ActivityBar, ActivitySpec, ActivitySpecs};
use crate::anomaly::{Anomaly, Detector, DetectorError, DetectorSettings};
use crate::bars::TradeKey;
use crate::bars::{Bar, BarConfig, BarError, BarSpec};
use crate::batch::{CorrectionRow, TradeBatchView};
use crate::dedupe::{covered, id_hash, source_hash, DedupeError, IdDedupe};
use crate::state::{
    ApplyOptions, CorrectionStatus, DedupeConfig, OrderStatus, StateConfig, StateError,
    SymbolCounters, SymbolState, TradeStatus, DEFAULT_CORRECTION_WINDOW_NS,
};
use crate::types::{CorrectionKind, Trade};
use ahash::AHashMap;
use std::sync::Arc;

/// Engine-wide configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Grace period and retention of bars.
    pub bars: BarConfig,
    /// Default detector plus per-symbol overrides (applied when a symbol is first seen).
    pub detector: DetectorSettings,
    /// Id dedupe limits per symbol.
    pub dedupe: DedupeConfig,
    /// Maintain bars (when false, only the event clock and `TooLate` are kept).
    pub enable_bars: bool,
    /// Run the anomaly detector.
    pub enable_detector: bool,
    /// How far back a trade may be cancelled or corrected (see [`StateConfig`]); at most the
    /// 1m retention, so that every bar of a correctable trade is still in memory.
    pub correction_window_ns: i64,
    /// Tick and volume bars kept per symbol ([`crate::activity`]).
    pub activity: ActivitySpecs,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            bars: BarConfig::default(),
            detector: DetectorSettings::default(),
            dedupe: DedupeConfig::default(),
            enable_bars: true,
            enable_detector: true,
            correction_window_ns: DEFAULT_CORRECTION_WINDOW_NS,
            activity: ActivitySpecs::default(),
        }
    }
}

/// Invalid engine configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bar settings out of range.
    #[error(transparent)]
    Bars(#[from] BarError),
    /// Detector settings out of range.
    #[error(transparent)]
    Detector(#[from] DetectorError),
    /// Dedupe settings out of range.
    #[error(transparent)]
    Dedupe(#[from] DedupeError),
    /// The correction window is negative or longer than the 1m retention.
    #[error("the correction window must be between 0 and the 1m retention")]
    CorrectionWindow,
}

impl EngineConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bars.validate()?;
        self.detector.validate()?;
        IdDedupe::new(self.dedupe.cap, self.dedupe.window_ns)?;
        if !(0..=self.bars.retention_ns[BarSpec::M1.index()]).contains(&self.correction_window_ns) {
            return Err(ConfigError::CorrectionWindow);
        }
        Ok(())
    }

    fn state_config(&self, symbol: &str) -> StateConfig {
        StateConfig {
            bars: self.bars,
            detector: self.detector.for_symbol(symbol),
            dedupe: self.dedupe,
            correction_window_ns: self.correction_window_ns,
            activity: self.activity,
        }
    }
}

/// Counts of one call (or, in [`Engine::totals`], of the engine's life).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    /// Trade rows seen.
    pub trades: u64,
    /// Trades applied.
    pub applied: u64,
    /// Trades dropped because their id was already applied.
    pub duplicates_id: u64,
    /// Trades dropped because their seq is below the source's watermark.
    pub duplicates_offset: u64,
    /// Applied trades that changed an already closed bar.
    pub revised: u64,
    /// Trades older than every interval's retention (reported in [`ApplyOutcome::too_late`]).
    pub too_late: u64,
    /// Trades with out-of-range values or an unusable symbol.
    pub invalid: u64,
    /// Anomalies flagged.
    pub anomalies: u64,
    /// Order rows seen.
    pub orders: u64,
    /// Orders added to order flow.
    pub orders_applied: u64,
    /// Orders dropped because their seq is below the source's watermark.
    pub orders_duplicates: u64,
    /// Orders older than every interval's retention.
    pub orders_too_late: u64,
    /// Orders with out-of-range values or an unusable symbol.
    pub orders_invalid: u64,
    /// Applied orders that changed an already closed bar.
    pub orders_revised: u64,
    /// Bars closed.
    pub bars_closed: u64,
    /// Cancel and correction rows seen.
    pub corrections: u64,
    /// Trades cancelled.
    pub cancels_applied: u64,
    /// Trades corrected.
    pub corrections_applied: u64,
    /// Cancels and corrections of a trade never applied here.
    pub corrections_unknown: u64,
    /// Cancels and corrections of a trade older than the correction window.
    pub corrections_outside_window: u64,
    /// Cancels and corrections of a trade already cancelled.
    pub corrections_already_cancelled: u64,
    /// Cancels and corrections already applied (by their own id, or by offset).
    pub corrections_duplicate: u64,
    /// Corrections to the values the trade already had.
    pub corrections_unchanged: u64,
}

impl ApplyCounts {
    fn add(&mut self, o: &ApplyCounts) {
        self.trades += o.trades;
        self.applied += o.applied;
        self.duplicates_id += o.duplicates_id;
        self.duplicates_offset += o.duplicates_offset;
        self.revised += o.revised;
        self.too_late += o.too_late;
        self.invalid += o.invalid;
        self.anomalies += o.anomalies;
        self.orders += o.orders;
        self.orders_applied += o.orders_applied;
        self.orders_duplicates += o.orders_duplicates;
        self.orders_too_late += o.orders_too_late;
        self.orders_invalid += o.orders_invalid;
        self.orders_revised += o.orders_revised;
        self.bars_closed += o.bars_closed;
        self.corrections += o.corrections;
        self.cancels_applied += o.cancels_applied;
        self.corrections_applied += o.corrections_applied;
        self.corrections_unknown += o.corrections_unknown;
        self.corrections_outside_window += o.corrections_outside_window;
        self.corrections_already_cancelled += o.corrections_already_cancelled;
        self.corrections_duplicate += o.corrections_duplicate;
        self.corrections_unchanged += o.corrections_unchanged;
    }
}

/// A bar that closed, with its symbol (the interval is `bar.spec()`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedBar {
    /// The symbol.
    pub symbol: Arc<str>,
    /// The bar, closed.
    pub bar: Bar,
}

/// A trade rejected as `TooLate` (reason [`crate::Reason::TooLate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLateRow {
    /// Trade row index in the batch.
    pub row: u32,
    /// Record index of the row.
    pub record: u32,
}

/// A trade a cancel or correction changed.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedCorrection {
    /// The symbol.
    pub symbol: Arc<str>,
    /// Cancel or correct.
    pub kind: CorrectionKind,
    /// The key of the trade (anomalies carry the same key).
    pub trade: TradeKey,
}

/// Everything one [`Engine::apply_batch`] call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyOutcome {
    /// Counts.
    pub counts: ApplyCounts,
    /// Trades rejected as too late, in row order.
    pub too_late: Vec<TooLateRow>,
    /// Anomalies, in row order.
    pub anomalies: Vec<Anomaly>,
    /// Bars that closed during the call (including bars born closed by late trades).
    pub closed: Vec<ClosedBar>,
    /// Symbols with at least one row in the batch, each once: symbols with trades in
    /// symbol-table order, then symbols with corrections or orders only.
    pub touched: Vec<Arc<str>>,
    /// Trades cancelled or corrected, in the order applied.
    pub corrections: Vec<AppliedCorrection>,
}

/// How [`Engine::import_symbol`] treats an existing state of the symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Replace it.
    Replace,
    /// Merge with it ([`SymbolState::merge`], existing state first).
    Merge,
}

/// One line of [`Engine::symbol_summaries`].
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolSummary {
    /// The symbol.
    pub symbol: Arc<str>,
    /// Trades applied.
    pub trades_applied: u64,
    /// Price mantissa of the latest trade by (time, arrival).
    pub last_price: Option<i64>,
    /// Event time of that trade.
    pub last_trade_ns: Option<i64>,
    /// All counters.
    pub counters: SymbolCounters,
}

/// Approximate heap use, from [`Engine::memory_estimate`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Symbols held.
    pub symbols: usize,
    /// Bars held, all intervals.
    pub bars: usize,
    /// Trade ids remembered.
    pub ids: usize,
    /// Trades held for cancels and corrections.
    pub journal_trades: usize,
    /// Bytes of all symbol states (bars, detectors, id sets, watermarks).
    pub state_bytes: usize,
    /// Bytes of the engine's symbol index.
    pub index_bytes: usize,
}

const UNRESOLVED: u32 = u32::MAX;
const INVALID_SYMBOL: u32 = u32::MAX - 1;

/// Per-batch working memory, kept between calls to avoid allocation.
#[derive(Debug, Default)]
struct Scratch {
    /// Batch symbol index → state slot (or UNRESOLVED / INVALID_SYMBOL).
    slots: Vec<u32>,
    /// Batch symbol index → (start, len) in `ranges` of the source's applied ranges at the start
    /// of the batch.
    applied: Vec<(u32, u32)>,
    /// The applied ranges of every resolved symbol, back to back.
    ranges: Vec<(u64, u64)>,
    /// `(min seq, max seq + 1)` of the batch's rows, marked applied for every symbol with
    /// rows (see [`TradeBatchView::seq_span`]); `None` for a batch without rows.
    span: Option<(u64, u64)>,
    /// [`source_hash`] of the batch's source.
    source_hash: u64,
    /// Batch symbol index → first position of its rows in `order` (counting sort).
    group_start: Vec<u32>,
    /// Trade row indices grouped by symbol, row order within a symbol.
    order: Vec<u32>,
    /// (batch symbol index, state slot) of every symbol with trades, in symbol order.
    groups: Vec<(u32, u32)>,
    /// Batch counter, and per state slot the last batch that listed it as touched: a
    /// foreign symbol table may name a symbol twice, and it must be reported once.
    batch: u64,
    touched_mark: Vec<u64>,
    closed: Vec<Bar>,
    /// Correction rows grouped by symbol index (row order within a symbol).
    corrections: Vec<(u32, u32)>,
    /// Outputs tagged with their row, restored to row order at the end.
    anomalies: Vec<(u32, Anomaly)>,
    closed_bars: Vec<(u32, ClosedBar)>,
}

/// Prefetch distances of the apply loop's pipeline, in rows (see `Engine::apply_batch`).
const ROW_AHEAD: usize = 16;
const ID_STRING_AHEAD: usize = 8;
const ID_AHEAD: usize = 4;

/// Asks the CPU to start loading the cache lines of `len` bytes at `start` (a hint only).
///
/// The apply loop works through one symbol's rows at a time. Prefetching the next symbols'
/// states, their detector windows and the rows a few positions ahead hides most of the cache
/// misses of switching symbols and of reading rows out of order, which dominated the profile
/// with 1,000 interleaved symbols.
#[inline(always)]
fn prefetch_lines(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for offset in (0..len).step_by(64) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: PREFETCHT0 is a hint; it never faults, whatever the address, and has no
        // architectural effect. The addresses lie within live values anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

/// Prefetches the memory of a value (not what it points to).
#[inline(always)]
fn prefetch_value<T>(value: &T) {
    prefetch_lines((value as *const T).cast::<u8>(), std::mem::size_of::<T>());
}

/// Prefetches the memory of a slice.
#[inline(always)]
fn prefetch_slice<T>(slice: &[T]) {
    prefetch_lines(slice.as_ptr().cast::<u8>(), std::mem::size_of_val(slice));
}

/// The per-group inputs of [`apply_group`].
#[derive(Clone, Copy)]
struct GroupContext<'r> {
    /// The source's applied ranges for the symbol at the start of the batch.
    applied: &'r [(u64, u64)],
    /// The symbol's cancels and corrections, in row (arrival) order.
    corrections: &'r [CorrectionRow<'r>],
    /// Wall clock for bars' ts_init.
    now_ns: i64,
    options: ApplyOptions,
}

/// Where [`apply_group`] reports, tagging outputs with their row for the final re-ordering.
struct GroupOut<'a> {
    counts: &'a mut ApplyCounts,
    too_late: &'a mut Vec<TooLateRow>,
    anomalies: &'a mut Vec<(u32, Anomaly)>,
    closed_bars: &'a mut Vec<(u32, ClosedBar)>,
    /// Working buffer for the bars a trade closes.
    closed: &'a mut Vec<Bar>,
    corrections: &'a mut Vec<AppliedCorrection>,
}

/// Applies one cancel or correction row (after the offset check) and counts it.
fn apply_correction_row(
    state: &mut SymbolState,
    row: &CorrectionRow<'_>,
    ctx: &GroupContext<'_>,
    out: &mut GroupOut<'_>,
) {
    let c = &mut *out.counts;
    c.corrections += 1;
    if covered(ctx.applied, row.correction.arrival.seq) {
        c.corrections_duplicate += 1;
        return;
    }
    match state.apply_correction(&row.correction, ctx.now_ns, ctx.options) {
        CorrectionStatus::Applied {
            kind,
            trade,
            revised,
        } => {
            match kind {
                CorrectionKind::Cancel => c.cancels_applied += 1,
                CorrectionKind::Correct => c.corrections_applied += 1,
            }
            c.revised += u64::from(revised);
            out.corrections.push(AppliedCorrection {
                symbol: state.symbol_arc().clone(),
                kind,
                trade,
            });
        }
        CorrectionStatus::UnknownTrade => c.corrections_unknown += 1,
        CorrectionStatus::OutsideWindow => c.corrections_outside_window += 1,
        CorrectionStatus::AlreadyCancelled => c.corrections_already_cancelled += 1,
        CorrectionStatus::Duplicate => c.corrections_duplicate += 1,
        CorrectionStatus::Unchanged => c.corrections_unchanged += 1,
    }
}

/// Applies the trade rows `order[range]` (all of one symbol, in row order) to `state`, each
/// cancel or correction of the symbol before the first trade that arrived after it.
///
/// The rows are scattered over a multi-megabyte batch, so the loop is a software pipeline:
/// the row 16 positions ahead is prefetched; 8 ahead (its row now cached) its id string; 4
/// ahead (its id now cached) the id is hashed and the id table's bucket for it, and for the
/// id the insertion will evict, prefetched. Each miss then overlaps earlier rows' work
/// instead of stalling its own. Positions past the range belong to the next symbol, whose
/// rows are worth fetching too.
fn apply_group(
    state: &mut SymbolState,
    view: &TradeBatchView<'_>,
    order: &[u32],
    range: std::ops::Range<usize>,
    ctx: GroupContext<'_>,
    out: &mut GroupOut<'_>,
) {
    let GroupContext {
        applied,
        corrections,
        now_ns,
        options,
    } = ctx;
    let mut pending = corrections;
    let (lo, hi) = (range.start, range.end);
    let row_at = |q: usize| {
        order
            .get(q)
            .and_then(|&j| view.trade_row_bytes_at(j as usize))
    };
    let id_hash_at = |q: usize| row_at(q).and_then(|r| view.trade_id(r)).map(id_hash);
    let mut hashes: [Option<u64>; 8] = [None; 8];
    for q in lo..hi.min(lo + ID_AHEAD) {
        hashes[q % 8] = id_hash_at(q);
    }
    for p in lo..hi {
        if let Some(r) = row_at(p + ROW_AHEAD) {
            prefetch_slice(r);
        }
        if let Some(id) = row_at(p + ID_STRING_AHEAD).and_then(|r| view.trade_id_span(r)) {
            prefetch_slice(id);
        }
        if p + ID_AHEAD < hi {
            let h = id_hash_at(p + ID_AHEAD);
            if let Some(bucket) = h.and_then(|h| state.dedupe().probe_start(h)) {
                prefetch_slice(bucket);
                if let Some(victim) = state.dedupe().victim_bucket(ID_AHEAD) {
                    prefetch_slice(victim);
                }
            }
            hashes[(p + ID_AHEAD) % 8] = h;
        }
        let hash = hashes[p % 8];
        let Some((i, r)) = order
            .get(p)
            .and_then(|&i| Some((i, view.trade_row_bytes_at(i as usize)?)))
        else {
            continue;
        };
        let row = view.decode_trade(r);
        let t = &row.trade;
        while let Some((k, rest)) = pending.split_first() {
            if k.correction.arrival >= t.arrival {
                break;
            }
            apply_correction_row(state, k, &ctx, out);
            pending = rest;
        }
        let c = &mut *out.counts;
        c.trades += 1;
        if covered(applied, t.arrival.seq) {
            c.duplicates_offset += 1;
            state.count_duplicate_offset();
            continue;
        }
        match state.apply_trade_hashed(t, hash, now_ns, options, out.closed) {
            TradeStatus::Applied { revised, anomaly } => {
                c.applied += 1;
                c.revised += u64::from(revised);
                if let Some(f) = anomaly {
                    c.anomalies += 1;
                    let symbol = state.symbol_arc().clone();
                    let name = state.detector().name();
                    out.anomalies
                        .push((i, Anomaly::new(symbol, t.time_ns, t.arrival, name, f)));
                }
            }
            TradeStatus::DuplicateId => c.duplicates_id += 1,
            TradeStatus::TooLate => {
                c.too_late += 1;
                out.too_late.push(TooLateRow {
                    row: i,
                    record: row.record,
                });
            }
            TradeStatus::Invalid => c.invalid += 1,
        }
        if !out.closed.is_empty() {
            c.bars_closed += out.closed.len() as u64;
            let symbol = state.symbol_arc();
            out.closed_bars.extend(out.closed.drain(..).map(|bar| {
                let symbol = symbol.clone();
                (i, ClosedBar { symbol, bar })
            }));
        }
    }
    for k in pending {
        apply_correction_row(state, k, &ctx, out);
    }
}

/// Marks the batch's seq span applied for a symbol that had rows in it.
#[inline]
fn mark_span(state: &mut SymbolState, source: &str, hash: u64, span: Option<(u64, u64)>) {
    if let Some((lo, hi)) = span {
        state.mark_applied_hashed(source, hash, lo, hi);
    }
}

/// Counting sort of the trade rows by symbol index: `start[si]..start[si + 1]` indexes the
/// row numbers of symbol `si` in `order`, in row order.
fn group_rows(view: &TradeBatchView<'_>, start: &mut Vec<u32>, order: &mut Vec<u32>) {
    let n = view.symbols().len();
    start.clear();
    start.resize(n + 1, 0);
    for si in view.trade_symbol_indices() {
        if let Some(c) = start.get_mut(si as usize + 1) {
            *c += 1;
        }
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    // Every position below trade_count is written below, so the buffer is only grown.
    let rows = view.trade_count();
    if order.len() < rows {
        order.resize(rows, 0);
    }
    // `start[si]` serves as the insertion cursor and ends at the next group's start; the
    // shift below restores it.
    for (i, si) in view.trade_symbol_indices().enumerate() {
        let Some(pos) = start.get_mut(si as usize) else {
            continue;
        };
        if let Some(o) = order.get_mut(*pos as usize) {
            *o = i as u32;
        }
        *pos += 1;
    }
    start.rotate_right(1);
    if let Some(first) = start.first_mut() {
        *first = 0;
    }
}

/// Per-symbol bars, detectors and dedupe for every symbol an owner is responsible for.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    /// States in a slab so that a batch can map its symbol indices to slots once and then
    /// index directly, instead of hashing the symbol per trade.
    states: Vec<SymbolState>,
    index: AHashMap<Arc<str>, u32>,
    totals: ApplyCounts,
    scratch: Scratch,
}

impl Engine {
    /// Creates an empty engine.
    ///
    /// # Errors
    /// [`ConfigError`] when a setting is out of range.
    pub fn new(config: EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine {
            config,
            states: Vec::new(),
            index: AHashMap::new(),
            totals: ApplyCounts::default(),
            scratch: Scratch::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Counts accumulated over every call.
    pub fn totals(&self) -> &ApplyCounts {
        &self.totals
    }

    /// Number of symbols held.
    pub fn symbol_count(&self) -> usize {
        self.states.len()
    }

    /// The state of `symbol`.
    pub fn state(&self, symbol: &str) -> Option<&SymbolState> {
        let slot = *self.index.get(symbol)?;
        self.states.get(slot as usize)
    }

    fn slot_or_create(&mut self, symbol: &str) -> Option<u32> {
        if let Some(&slot) = self.index.get(symbol) {
            return Some(slot);
        }
        let slot = u32::try_from(self.states.len())
            .ok()
            .filter(|&s| s < INVALID_SYMBOL)?;
        let state = SymbolState::new(symbol, &self.config.state_config(symbol)).ok()?;
        self.index.insert(state.symbol_arc().clone(), slot);
        self.states.push(state);
        Some(slot)
    }

    fn options(&self) -> ApplyOptions {
        ApplyOptions {
            bars: self.config.enable_bars,
            detector: self.config.enable_detector,
        }
    }

    /// Applies a batch: trades then orders, each symbol's rows in row order.
    ///
    /// Per row: offset watermark of (symbol, batch source) → id dedupe → retention
    /// (`TooLate`) → bars → detector. Each symbol with rows then has the batch's seq span
    /// marked applied for the source (so all trades of a record in the batch apply, and a
    /// redelivered batch is dropped). `now_ns` is the wall clock stamped as bars' ts_init.
    ///
    /// Symbols are independent, so trades are processed grouped by symbol (a counting sort of
    /// the rows, stable within a symbol): one symbol's state then stays in cache for all its
    /// rows instead of every row missing on a different symbol. Outputs are put back in row
    /// order, so the grouping is invisible.
    pub fn apply_batch(&mut self, view: &TradeBatchView<'_>, now_ns: i64) -> ApplyOutcome {
        let mut s = std::mem::take(&mut self.scratch);
        let n = view.symbols().len();
        s.slots.clear();
        s.slots.resize(n, UNRESOLVED);
        s.applied.clear();
        s.applied.resize(n, (0, 0));
        s.ranges.clear();
        s.span = view.seq_span();
        s.source_hash = source_hash(view.source());
        s.batch += 1;
        let options = self.options();
        let mut out = ApplyOutcome::default();

        group_rows(view, &mut s.group_start, &mut s.order);
        s.corrections.clear();
        s.corrections.extend(
            view.correction_rows()
                .enumerate()
                .map(|(k, r)| (r.symbol_index, k as u32)),
        );
        s.corrections.sort_unstable();
        let rows: Vec<CorrectionRow<'_>> = view.correction_rows().collect();
        let corrections: Vec<CorrectionRow<'_>> = s
            .corrections
            .iter()
            .filter_map(|&(_, k)| rows.get(k as usize).copied())
            .collect();
        // Resolve every symbol with trades first, so that the loop below knows which state
        // comes next and can prefetch it; then symbols with corrections only.
        s.groups.clear();
        for si in 0..n {
            if s.group_start.get(si) != s.group_start.get(si + 1) {
                let slot = self.resolve(&mut s, view, si as u32, &mut out.touched);
                s.groups.push((si as u32, slot));
            }
        }
        for k in 0..s.corrections.len() {
            let si = s.corrections[k].0;
            let first_of_symbol = k == 0 || s.corrections[k - 1].0 != si;
            let has_trades = s.group_start.get(si as usize) != s.group_start.get(si as usize + 1);
            if first_of_symbol && !has_trades {
                let slot = self.resolve(&mut s, view, si, &mut out.touched);
                s.groups.push((si, slot));
            }
        }
        for g in 0..s.groups.len() {
            let Some(&(si, slot)) = s.groups.get(g) else {
                continue;
            };
            // Two groups ahead: the state itself; one group ahead: its detector window, whose
            // address is read from the (by now cached) state.
            if let Some(st) = s
                .groups
                .get(g + 2)
                .and_then(|&(_, slot)| self.states.get(slot as usize))
            {
                prefetch_value(st);
            }
            if let Some(st) = s
                .groups
                .get(g + 1)
                .and_then(|&(_, slot)| self.states.get(slot as usize))
            {
                prefetch_slice(st.detector().hot_window());
                // The heap ends a trade writes: the journal's newest entry (the next one is
                // appended beside it) and the last applied range.
                prefetch_slice(st.journal_tail());
                prefetch_slice(st.watermarks().hinted_tail());
            }
            let si = si as usize;
            let (Some(&lo), Some(&hi)) = (s.group_start.get(si), s.group_start.get(si + 1)) else {
                continue;
            };
            let (a0, alen) = s.applied.get(si).copied().unwrap_or((0, 0));
            let applied = s
                .ranges
                .get(a0 as usize..(a0 + alen) as usize)
                .unwrap_or(&[]);
            let (lo, hi) = (lo as usize, hi as usize);
            let c_lo = s.corrections.partition_point(|&(x, _)| (x as usize) < si);
            let c_hi = s.corrections.partition_point(|&(x, _)| (x as usize) <= si);
            let symbol_corrections = corrections.get(c_lo..c_hi).unwrap_or(&[]);
            let Some(state) = self.states.get_mut(slot as usize) else {
                out.counts.trades += (hi - lo) as u64;
                out.counts.invalid += (hi - lo) as u64;
                out.counts.corrections += symbol_corrections.len() as u64;
                out.counts.corrections_unknown += symbol_corrections.len() as u64;
                continue;
            };
            apply_group(
                state,
                view,
                &s.order,
                lo..hi,
                GroupContext {
                    applied,
                    corrections: symbol_corrections,
                    now_ns,
                    options,
                },
                &mut GroupOut {
                    counts: &mut out.counts,
                    too_late: &mut out.too_late,
                    anomalies: &mut s.anomalies,
                    closed_bars: &mut s.closed_bars,
                    closed: &mut s.closed,
                    corrections: &mut out.corrections,
                },
            );
            // Marked now, while the state is in cache (the rows were checked against the
            // ranges copied when the symbol was resolved).
            mark_span(state, view.source(), s.source_hash, s.span);
        }

        // Orders are few: row order, with the symbol → slot map of the batch. Closed bars they
        // cause sort after every trade's.
        for row in view.order_rows() {
            let slot = self.resolve(&mut s, view, row.symbol_index, &mut out.touched);
            let o = &row.order;
            let si = row.symbol_index as usize;
            let c = &mut out.counts;
            c.orders += 1;
            let (a0, alen) = s.applied.get(si).copied().unwrap_or((0, 0));
            let applied = s
                .ranges
                .get(a0 as usize..(a0 + alen) as usize)
                .unwrap_or(&[]);
            let duplicate = covered(applied, o.arrival.seq);
            let Some(state) = self.states.get_mut(slot as usize) else {
                c.orders_invalid += 1;
                continue;
            };
            mark_span(state, view.source(), s.source_hash, s.span);
            if duplicate {
                c.orders_duplicates += 1;
                state.count_duplicate_offset();
                continue;
            }
            match state.apply_order(o, now_ns, options.bars, &mut s.closed) {
                OrderStatus::Applied { revised } => {
                    c.orders_applied += 1;
                    c.orders_revised += u64::from(revised);
                }
                OrderStatus::TooLate => c.orders_too_late += 1,
                OrderStatus::Invalid => c.orders_invalid += 1,
            }
            if !s.closed.is_empty() {
                c.bars_closed += s.closed.len() as u64;
                let symbol = state.symbol_arc();
                s.closed_bars.extend(s.closed.drain(..).map(|bar| {
                    let symbol = symbol.clone();
                    (u32::MAX, ClosedBar { symbol, bar })
                }));
            }
        }

        // Back to row order (stable: a row's closed bars keep their 1m, 5m, 1h order).
        out.too_late.sort_unstable_by_key(|r| r.row);
        s.anomalies.sort_by_key(|(row, _)| *row);
        out.anomalies = s.anomalies.drain(..).map(|(_, a)| a).collect();
        // Closed bars are many and large: sort (row, position) keys, not the bars. The
        // position keeps a row's bars in their 1m, 5m, 1h order.
        let mut keys: Vec<(u32, u32)> = (s.closed_bars.iter().enumerate())
            .map(|(k, (row, _))| (*row, k as u32))
            .collect();
        keys.sort_unstable();
        out.closed = keys
            .iter()
            .filter_map(|&(_, k)| s.closed_bars.get(k as usize).map(|(_, b)| b.clone()))
            .collect();
        s.closed_bars.clear();
        self.totals.add(&out.counts);
        self.scratch = s;
        out
    }

    /// Maps a batch symbol index to its state slot, creating the state on first sight.
    fn resolve(
        &mut self,
        s: &mut Scratch,
        view: &TradeBatchView<'_>,
        si: u32,
        touched: &mut Vec<Arc<str>>,
    ) -> u32 {
        let Some(&cached) = s.slots.get(si as usize) else {
            return INVALID_SYMBOL;
        };
        if cached != UNRESOLVED {
            return cached;
        }
        let symbol = view.symbols().get(si as usize).copied().unwrap_or("");
        let slot = self.slot_or_create(symbol).unwrap_or(INVALID_SYMBOL);
        if let Some(state) = self.states.get(slot as usize) {
            // Rows are checked against a copy of the ranges, taken only when one of them may
            // reach the batch (a redelivery, a replay): usually the hint says none does.
            let watermarks = state.watermarks();
            let fresh = (s.span.zip(watermarks.next_seq_hint(s.source_hash)))
                .is_some_and(|((lo, _), next)| next <= lo);
            let ranges = if fresh {
                &[][..]
            } else {
                watermarks.ranges(view.source())
            };
            let start = s.ranges.len() as u32;
            s.ranges.extend_from_slice(ranges);
            if let Some(w) = s.applied.get_mut(si as usize) {
                *w = (start, ranges.len() as u32);
            }
            let mark = s.touched_mark.get(slot as usize).copied();
            if mark != Some(s.batch) {
                if s.touched_mark.len() <= slot as usize {
                    s.touched_mark.resize(slot as usize + 1, 0);
                }
                if let Some(m) = s.touched_mark.get_mut(slot as usize) {
                    *m = s.batch;
                }
                touched.push(state.symbol_arc().clone());
            }
        }
        if let Some(x) = s.slots.get_mut(si as usize) {
            *x = slot;
        }
        slot
    }

    /// Applies one trade from `source` as a batch of one (for tests and tools).
    pub fn apply_trade(&mut self, source: &str, trade: &Trade<'_>, now_ns: i64) -> ApplyOutcome {
        let mut out = ApplyOutcome::default();
        let options = self.options();
        let c = &mut out.counts;
        c.trades = 1;
        let Some(slot) = self.slot_or_create(trade.symbol) else {
            c.invalid = 1;
            self.totals.add(c);
            return out;
        };
        let Some(state) = self.states.get_mut(slot as usize) else {
            c.invalid = 1;
            self.totals.add(c);
            return out;
        };
        out.touched.push(state.symbol_arc().clone());
        if state.watermarks().covers(source, trade.arrival.seq) {
            c.duplicates_offset = 1;
            state.count_duplicate_offset();
        } else {
            let mut closed = Vec::new();
            match state.apply_trade(trade, now_ns, options, &mut closed) {
                TradeStatus::Applied { revised, anomaly } => {
                    c.applied = 1;
                    c.revised = u64::from(revised);
                    if let Some(f) = anomaly {
                        c.anomalies = 1;
                        out.anomalies.push(Anomaly::new(
                            state.symbol_arc().clone(),
                            trade.time_ns,
                            trade.arrival,
                            state.detector().name(),
                            f,
                        ));
                    }
                }
                TradeStatus::DuplicateId => c.duplicates_id = 1,
                TradeStatus::TooLate => {
                    c.too_late = 1;
                    out.too_late.push(TooLateRow { row: 0, record: 0 });
                }
                TradeStatus::Invalid => c.invalid = 1,
            }
            c.bars_closed = closed.len() as u64;
            let symbol = state.symbol_arc();
            out.closed.extend(closed.into_iter().map(|bar| ClosedBar {
                symbol: symbol.clone(),
                bar,
            }));
            state.mark_applied(
                source,
                trade.arrival.seq,
                trade.arrival.seq.saturating_add(1),
            );
        }
        self.totals.add(&out.counts);
        out
    }

    /// Closes, in every symbol, the bars whose end + grace ≤ `now_ns` (live feeds only).
    pub fn close_by_wall_clock(&mut self, now_ns: i64) -> Vec<ClosedBar> {
        let mut out = Vec::new();
        let mut closed = Vec::new();
        for state in &mut self.states {
            state.bars_mut().close_by_wall_clock(now_ns, &mut closed);
            let symbol = state.symbol_arc();
            out.extend(closed.drain(..).map(|bar| ClosedBar {
                symbol: symbol.clone(),
                bar,
            }));
        }
        self.totals.bars_closed += out.len() as u64;
        out
    }

    /// Bars of `symbol` and `spec` starting in `[from_ns, to_ns)`, oldest first, at most the
    /// newest `limit`; `None` for an unknown symbol.
    pub fn bars(
        &self,
        symbol: &str,
        spec: BarSpec,
        from_ns: i64,
        to_ns: i64,
        limit: usize,
    ) -> Option<Vec<Bar>> {
        Some(self.state(symbol)?.bars().bars(spec, from_ns, to_ns, limit))
    }

    /// The newest `limit` tick or volume bars of `spec`, oldest first; `None` when the symbol is
    /// not held or `spec` is not configured.
    pub fn activity_bars(
        &self,
        symbol: &str,
        spec: ActivitySpec,
        limit: usize,
    ) -> Option<Vec<ActivityBar>> {
        self.state(symbol)?.activity().bars(spec, limit)
    }

    /// A symbol's trades with an event time in `[from_ns, to_ns)` from its trade journal; `None`
    /// when the symbol is not held or its journal may not hold all of them.
    pub fn trade_window(
        &self,
        symbol: &str,
        from_ns: i64,
        to_ns: i64,
    ) -> Option<crate::journal::TradeWindow> {
        self.state(symbol)?.trade_window(from_ns, to_ns)
    }

    /// One summary per symbol, sorted by symbol.
    pub fn symbol_summaries(&self) -> Vec<SymbolSummary> {
        let mut v: Vec<SymbolSummary> = self
            .states
            .iter()
            .map(|s| {
                let c = *s.counters();
                SymbolSummary {
                    symbol: s.symbol_arc().clone(),
                    trades_applied: c.trades_applied,
                    last_price: c.last.map(|l| l.price),
                    last_trade_ns: c.last.map(|l| l.key.time_ns),
                    counters: c,
                }
            })
            .collect();
        v.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        v
    }

    /// Exports the state of `symbol` ([`SymbolState::export`]); `None` when unknown.
    pub fn export_symbol(&self, symbol: &str) -> Option<Vec<u8>> {
        Some(self.state(symbol)?.export())
    }

    /// Imports an exported state, replacing or merging with the existing one; returns the symbol.
    ///
    /// The imported state keeps the configuration it was exported with (bars, detector,
    /// dedupe); a merge keeps the existing state's configuration.
    ///
    /// # Errors
    /// Any [`StateError`] of [`SymbolState::import`] or [`SymbolState::merge`].
    pub fn import_symbol(
        &mut self,
        bytes: &[u8],
        mode: ImportMode,
    ) -> Result<Arc<str>, StateError> {
        let mut imported = SymbolState::import(bytes)?;
        imported.ensure_activity(&self.config.activity.to_vec());
        let symbol = imported.symbol_arc().clone();
        match self.index.get(&*symbol).copied() {
            Some(slot) => {
                let existing = self
                    .states
                    .get_mut(slot as usize)
                    .ok_or(StateError::Invalid("engine index out of sync"))?;
                *existing = match mode {
                    ImportMode::Replace => imported,
                    ImportMode::Merge => SymbolState::merge(existing, &imported)?,
                };
                Ok(existing.symbol_arc().clone())
            }
            None => {
                let slot = u32::try_from(self.states.len())
                    .ok()
                    .filter(|&s| s < INVALID_SYMBOL)
                    .ok_or(StateError::Invalid("too many symbols"))?;
                self.index.insert(symbol.clone(), slot);
                self.states.push(imported);
                Ok(symbol)
            }
        }
    }

    /// Removes a symbol and returns its state.
    pub fn remove_symbol(&mut self, symbol: &str) -> Option<SymbolState> {
        let slot = self.index.remove(symbol)? as usize;
        if slot >= self.states.len() {
            return None;
        }
        let removed = self.states.swap_remove(slot);
        if let Some(moved) = self.states.get(slot) {
            if let Some(s) = self.index.get_mut(moved.symbol()) {
                *s = slot as u32;
            }
        }
        Some(removed)
    }

    /// Approximate memory held by the engine.
    pub fn memory_estimate(&self) -> MemoryEstimate {
        MemoryEstimate {
            symbols: self.states.len(),
            bars: self.states.iter().map(|s| s.bars().bar_count()).sum(),
            ids: self.states.iter().map(|s| s.dedupe().len()).sum(),
            journal_trades: self.states.iter().map(|s| s.journal().len()).sum(),
            state_bytes: self.states.iter().map(SymbolState::memory_bytes).sum(),
            index_bytes: self.index.capacity() * (std::mem::size_of::<(Arc<str>, u32)>() + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::{DetectorKind, DetectorOverride};
    use crate::bars::test_support::*;
    use crate::batch::partition;
    use crate::types::{Side, SCALE};
    use proptest::prelude::*;

    fn engine() -> Engine {
        Engine::new(EngineConfig::default()).unwrap()
    }

    fn run(e: &mut Engine, source: &str, trades: &[OwnedTrade]) -> ApplyOutcome {
        let bytes = batch(source, trades, &[]);
        e.apply_batch(&view(&bytes), 0)
    }

    /// One record of a mixed feed: a trade, or a cancel / correction referring to a trade id.
    #[derive(Debug, Clone)]
    enum Rec {
        Trade(OwnedTrade),
        Fix {
            kind: CorrectionKind,
            id: Option<String>,
            ref_id: String,
            price: i64,
            qty: i64,
        },
    }

    /// Packs `recs` (seq = position + `first_seq`) into one batch, as the decoder would.
    fn mixed_batch(recs: &[Rec], first_seq: u64) -> Vec<u8> {
        use crate::decode::DecodeSink;
        use crate::types::{Arrival, Correction};
        let mut b = crate::batch::BatchBuilder::new("trades/0").unwrap();
        for (i, r) in recs.iter().enumerate() {
            let seq = first_seq + i as u64;
            b.begin_record(i as u32);
            match r {
                Rec::Trade(t) => b.push_trade(&OwnedTrade { seq, ..t.clone() }.as_trade()),
                Rec::Fix {
                    kind,
                    id,
                    ref_id,
                    price,
                    qty,
                } => {
                    let values = *kind == CorrectionKind::Correct;
                    b.correction(&Correction {
                        kind: *kind,
                        symbol: Some("S"),
                        id: id.as_deref(),
                        ref_id: Some(ref_id),
                        price: values.then_some(*price),
                        qty: values.then_some(*qty),
                        arrival: Arrival { seq, ord: 0 },
                    });
                }
            }
        }
        b.finish().unwrap().bytes
    }

    /// The trades in effect after `recs`, computed directly: a cancel or correction applies to
    /// a trade applied before it (by id), once per report id; a cancelled trade stays cancelled.
    fn effective(recs: &[Rec]) -> Vec<OwnedTrade> {
        let mut trades: Vec<(OwnedTrade, bool)> = Vec::new();
        let mut reports = std::collections::HashSet::new();
        for (i, r) in recs.iter().enumerate() {
            match r {
                Rec::Trade(t) => {
                    if !trades.iter().any(|(x, _)| x.id == t.id) {
                        trades.push((
                            OwnedTrade {
                                seq: i as u64,
                                ..t.clone()
                            },
                            false,
                        ));
                    }
                }
                Rec::Fix {
                    kind,
                    id,
                    ref_id,
                    price,
                    qty,
                } => {
                    if id.as_ref().is_some_and(|id| reports.contains(id)) {
                        continue;
                    }
                    let Some((t, cancelled)) = trades
                        .iter_mut()
                        .find(|(t, _)| t.id.as_deref() == Some(ref_id.as_str()))
                    else {
                        continue;
                    };
                    if *cancelled
                        || (*kind == CorrectionKind::Correct && (t.price, t.qty) == (*price, *qty))
                    {
                        continue;
                    }
                    match kind {
                        CorrectionKind::Cancel => *cancelled = true,
                        CorrectionKind::Correct => (t.price, t.qty) = (*price, *qty),
                    }
                    if let Some(id) = id {
                        reports.insert(id.clone());
                    }
                }
            }
        }
        trades
            .into_iter()
            .filter(|(_, c)| !c)
            .map(|(t, _)| t)
            .collect()
    }

    fn arb_feed() -> impl Strategy<Value = Vec<Rec>> {
        prop::collection::vec(
            (
                0u8..10,
                0u64..40,
                1i64..50,
                0i64..5,
                0i64..(3 * 3_600),
                any::<bool>(),
            ),
            1..160,
        )
        .prop_map(|picks| {
            picks
                .into_iter()
                .enumerate()
                .map(|(i, (what, r, px, q, secs, with_id))| match what {
                    0..=5 => Rec::Trade(OwnedTrade {
                        symbol: "S".into(),
                        price: px * SCALE,
                        qty: q * SCALE,
                        time_ns: T0 + secs * SEC,
                        seq: 0,
                        ord: 0,
                        id: Some(format!("t{i}")),
                        side: Side::Buy,
                    }),
                    _ => Rec::Fix {
                        kind: if what < 8 {
                            CorrectionKind::Cancel
                        } else {
                            CorrectionKind::Correct
                        },
                        // Some reports repeat an id (redelivery); some refer to no trade.
                        id: with_id.then(|| format!("c{}", r % 7)),
                        ref_id: format!("t{}", (i as u64).saturating_sub(r)),
                        price: px * SCALE,
                        qty: q * SCALE,
                    },
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Bars after cancels and corrections equal the bars of the trades in effect, whatever
        /// the batching, and a state exported and imported mid-feed carries on the same.
        #[test]
        fn cancels_and_corrections_equal_the_bars_of_the_effective_trades(
            recs in arb_feed(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(recs.len() + 1)).collect();
            cuts.extend([0, recs.len()]);
            cuts.sort_unstable();
            let mut e = engine();
            for (k, w) in cuts.windows(2).enumerate() {
                e.apply_batch(&view(&mixed_batch(&recs[w[0]..w[1]], w[0] as u64)), 0);
                if k == 0 {
                    let bytes = e.export_symbol("S");
                    let mut fresh = engine();
                    if let Some(b) = bytes {
                        fresh.import_symbol(&b, ImportMode::Replace).unwrap();
                    }
                    e = fresh;
                }
            }
            let expected_trades = effective(&recs);
            for spec in BarSpec::ALL {
                let expected: Vec<NaiveBar> =
                    naive_bars(&expected_trades, &[], spec).into_values().collect();
                let got: Vec<NaiveBar> = e
                    .bars("S", spec, i64::MIN, i64::MAX, usize::MAX)
                    .unwrap_or_default()
                    .iter()
                    .filter(|b| b.trades() > 0)
                    .map(bar_values)
                    .collect();
                prop_assert_eq!(got, expected, "{}", spec);
            }
        }
    }

    #[test]
    fn correction_outcomes_are_counted_by_reason() {
        let mut e = engine();
        let t = |id: &str, secs: i64| {
            Rec::Trade(OwnedTrade {
                id: Some(id.into()),
                ..tr("S", 10.0, T0 + secs * SEC, 0)
            })
        };
        let fix = |kind, id: Option<&str>, r: &str, px: f64| Rec::Fix {
            kind,
            id: id.map(str::to_owned),
            ref_id: r.into(),
            price: (px * SCALE as f64) as i64,
            qty: SCALE,
        };
        use CorrectionKind::{Cancel, Correct};
        let recs = vec![
            t("a", 0),
            t("b", 30),
            fix(Correct, Some("x1"), "a", 12.0),
            fix(Correct, Some("x1"), "a", 13.0), // same report again
            fix(Correct, None, "a", 12.0),       // same values
            fix(Cancel, Some("x2"), "b", 0.0),
            fix(Cancel, Some("x3"), "b", 0.0), // already cancelled
            fix(Cancel, None, "nope", 0.0),
        ];
        let out = e.apply_batch(&view(&mixed_batch(&recs, 0)), 0);
        let c = out.counts;
        assert_eq!(
            (
                c.corrections,
                c.corrections_applied,
                c.cancels_applied,
                c.corrections_duplicate,
                c.corrections_unchanged,
                c.corrections_already_cancelled,
                c.corrections_unknown
            ),
            (6, 1, 1, 1, 1, 1, 1)
        );
        assert_eq!(out.corrections.len(), 2);
        let bar = e.bars("S", BarSpec::M1, i64::MIN, i64::MAX, 10).unwrap()[0];
        assert_eq!(
            (bar.trades(), bar.high(), bar.revision()),
            (1, Some(12 * SCALE), 4)
        );
        // The same batch again is covered by offset.
        let again = e.apply_batch(&view(&mixed_batch(&recs, 0)), 0);
        assert_eq!(again.counts.corrections_duplicate, 6);
        // With a 1 h window, a trade 2 h later moves it past "a", whose id is still remembered:
        // outside the window. Two days later its id is forgotten too: unknown.
        let mut e = Engine::new(EngineConfig {
            correction_window_ns: 3_600 * SEC,
            ..EngineConfig::default()
        })
        .unwrap();
        e.apply_batch(&view(&mixed_batch(&recs[..2], 0)), 0);
        e.apply_batch(
            &view(&mixed_batch(
                &[t("y", 2 * 3_600), fix(Cancel, None, "a", 0.0)],
                100,
            )),
            0,
        );
        e.apply_batch(
            &view(&mixed_batch(
                &[t("z", 2 * 86_400), fix(Cancel, None, "b", 0.0)],
                200,
            )),
            0,
        );
        let c = e.totals();
        assert_eq!(
            (c.corrections_outside_window, c.corrections_unknown),
            (1, 1)
        );
        assert!(
            Engine::new(EngineConfig {
                correction_window_ns: 2 * 86_400 * SEC,
                ..EngineConfig::default()
            })
            .is_err(),
            "a window beyond the 1m retention is refused"
        );
    }

    #[test]
    fn duplicates_by_id_within_and_across_batches() {
        let mut e = engine();
        let mut a = tr("X", 1.0, T0, 1);
        a.id = Some("E1".into());
        let mut b = tr("X", 1.0, T0, 2);
        b.id = Some("E1".into());
        let out = run(&mut e, "trades/0", &[a.clone(), b.clone()]);
        assert_eq!((out.counts.applied, out.counts.duplicates_id), (1, 1));
        // Same id from another source / later offset: still a duplicate.
        b.seq = 50;
        let out = run(&mut e, "trades/1", &[b]);
        assert_eq!(out.counts.duplicates_id, 1);
        // Trades without ids are never id duplicates.
        let out = run(
            &mut e,
            "trades/0",
            &[tr("X", 1.0, T0, 7), tr("X", 1.0, T0, 7)],
        );
        assert_eq!(out.counts.applied, 2);
        assert_eq!(e.totals().duplicates_id, 2);
    }

    #[test]
    fn a_state_rebuilt_after_a_loss_takes_older_offsets_on_replay_once() {
        let mut e = engine();
        // After the loss the new owner first sees live records 100..105 …
        let live: Vec<OwnedTrade> = (100..105)
            .map(|q| tr("X", 2.0, T0 + q as i64 * SEC, q))
            .collect();
        assert_eq!(run(&mut e, "trades/0", &live).counts.applied, 5);
        // … then the replay of the partition from its start: 0..100 are new, 100..105 are not.
        let replay: Vec<OwnedTrade> = (0..105)
            .map(|q| tr("X", 1.0 + q as f64 / 100.0, T0 + q as i64 * SEC, q))
            .collect();
        let out = run(&mut e, "trades/0", &replay);
        assert_eq!((out.counts.applied, out.counts.duplicates_offset), (100, 5));
        assert_eq!(
            e.state("X").unwrap().watermarks().ranges("trades/0"),
            &[(0, 105)]
        );
        // A second replay changes nothing.
        let out = run(&mut e, "trades/0", &replay);
        assert_eq!((out.counts.applied, out.counts.duplicates_offset), (0, 105));
        assert_eq!(e.state("X").unwrap().counters().trades_applied, 105);
    }

    #[test]
    fn duplicates_by_offset_watermark() {
        let mut e = engine();
        // Three trades of one record (same seq) and one of the next record.
        let mut rows: Vec<OwnedTrade> = (0..3)
            .map(|ord| OwnedTrade {
                ord,
                ..tr("X", 1.0, T0, 10)
            })
            .collect();
        rows.push(tr("X", 1.0, T0 + SEC, 11));
        let out = run(&mut e, "trades/3", &rows);
        assert_eq!((out.counts.applied, out.counts.duplicates_offset), (4, 0));
        assert_eq!(e.state("X").unwrap().watermarks().get("trades/3"), 12);
        // Redelivery of the whole batch: every row is an offset duplicate.
        let out = run(&mut e, "trades/3", &rows);
        assert_eq!((out.counts.applied, out.counts.duplicates_offset), (0, 4));
        // Overlapping redelivery: seq 11 is old, 12 is new.
        let out = run(
            &mut e,
            "trades/3",
            &[tr("X", 1.0, T0 + SEC, 11), tr("X", 1.0, T0 + 2 * SEC, 12)],
        );
        assert_eq!((out.counts.applied, out.counts.duplicates_offset), (1, 1));
        // Another source has its own watermark.
        let out = run(&mut e, "trades/4", &[tr("X", 1.0, T0 + 3 * SEC, 0)]);
        assert_eq!(out.counts.applied, 1);
        assert_eq!(e.state("X").unwrap().counters().duplicates_offset, 5);
        // The single-trade path follows the same rule.
        let t = tr("X", 1.0, T0 + 4 * SEC, 12);
        assert_eq!(
            e.apply_trade("trades/3", &t.as_trade(), 0)
                .counts
                .duplicates_offset,
            1
        );
        let t = tr("X", 1.0, T0 + 4 * SEC, 13);
        assert_eq!(
            e.apply_trade("trades/3", &t.as_trade(), 0).counts.applied,
            1
        );
        assert_eq!(e.state("X").unwrap().watermarks().get("trades/3"), 14);
    }

    #[test]
    fn too_late_rows_are_reported_with_their_index() {
        let mut e = engine();
        let day = 86_400 * SEC;
        let rows = [
            tr("X", 1.0, T0 + 40 * day, 0),
            tr("Y", 1.0, T0, 1),
            tr("X", 1.0, T0, 2),
            tr("X", 1.0, T0 + 20 * day, 3),
        ];
        let out = run(&mut e, "t", &rows);
        assert_eq!(out.counts.too_late, 1);
        assert_eq!(out.too_late, vec![TooLateRow { row: 2, record: 2 }]);
        assert_eq!(out.counts.applied, 3);
        // The 20-day-old trade is only within the 1h retention; its hour bar is born closed,
        // which counts as a revision and is reported as a closed bar.
        assert_eq!(out.counts.revised, 1);
        assert_eq!(out.closed.len(), 1);
        assert_eq!(
            (out.closed[0].bar.spec(), out.closed[0].bar.start_ns()),
            (BarSpec::H1, T0 + 20 * day)
        );
        assert!(out.closed[0].bar.is_revised());
        let touched: Vec<&str> = out.touched.iter().map(|s| &**s).collect();
        assert_eq!(touched, vec!["X", "Y"]);
    }

    #[test]
    fn a_symbol_named_twice_in_the_table_is_one_state() {
        let mut bytes = batch("t", &[tr("A", 1.0, T0, 0), tr("B", 2.0, T0 + SEC, 1)], &[]);
        // Point symbol entry 1 at entry 0's string.
        let (e0, e1) = (crate::batch::HEADER_LEN, crate::batch::HEADER_LEN + 8);
        let entry0: [u8; 8] = bytes[e0..e0 + 8].try_into().unwrap();
        bytes[e1..e1 + 8].copy_from_slice(&entry0);
        let v = view(&bytes);
        assert_eq!(v.symbols(), &["A", "A"]);
        let mut e = engine();
        let out = e.apply_batch(&v, 0);
        assert_eq!(out.counts.applied, 2);
        assert_eq!(out.touched.len(), 1);
        assert_eq!(e.symbol_count(), 1);
        assert_eq!(e.state("A").unwrap().counters().trades_applied, 2);
    }

    #[test]
    fn orders_feed_order_flow_and_are_deduplicated_by_offset() {
        let mut e = engine();
        run(&mut e, "trades/0", &[tr("X", 1.0, T0, 0)]);
        let orders = vec![
            OwnedOrder {
                symbol: "X".into(),
                side: Side::Buy,
                qty: 2 * SCALE,
                price: Some(SCALE),
                time_ns: T0 + SEC,
                seq: 5,
            },
            OwnedOrder {
                symbol: "X".into(),
                side: Side::Sell,
                qty: 3 * SCALE,
                price: None,
                time_ns: T0 + 2 * SEC,
                seq: 6,
            },
        ];
        let bytes = batch("orders/0", &[], &orders);
        let out = e.apply_batch(&view(&bytes), 0);
        assert_eq!(out.counts.orders_applied, 2);
        let out = e.apply_batch(&view(&bytes), 0);
        assert_eq!(out.counts.orders_duplicates, 2);
        let bar = e.bars("X", BarSpec::M1, T0, T0 + MIN, 10).unwrap()[0];
        assert_eq!(bar.order_flow().count, 2);
        assert_eq!(
            (bar.order_flow().buy_qty, bar.order_flow().sell_qty),
            (2 * i128::from(SCALE), 3 * i128::from(SCALE))
        );
        assert_eq!(bar.trades(), 1);
    }

    #[test]
    fn per_symbol_detector_overrides() {
        let mut config = EngineConfig::default();
        config.detector.default.min_samples = 10;
        config.detector.overrides.insert(
            "JUMPY".into(),
            DetectorOverride {
                threshold: Some(1.0),
                kind: Some(DetectorKind::Ewma),
                ..DetectorOverride::default()
            },
        );
        let mut e = Engine::new(config).unwrap();
        let mut rows = random_walk("JUMPY", 300, 1, 0.001);
        rows.extend(random_walk("CALM", 300, 1, 0.001));
        let out = run(&mut e, "t", &rows);
        assert!(out
            .anomalies
            .iter()
            .all(|a| &*a.symbol == "JUMPY" && a.detector == "ewma"));
        assert!(
            out.anomalies.len() > 10,
            "|z| ≥ 1 is common: {}",
            out.anomalies.len()
        );
        assert_eq!(e.state("CALM").unwrap().detector().name(), "zscore");
        assert_eq!(e.state("JUMPY").unwrap().detector().config().threshold, 1.0);
    }

    #[test]
    fn switches_disable_bars_or_detector() {
        let config = EngineConfig {
            enable_bars: false,
            ..EngineConfig::default()
        };
        let mut e = Engine::new(config).unwrap();
        let out = run(&mut e, "t", &random_walk("X", 100, 2, 0.001));
        assert_eq!(out.counts.applied, 100);
        assert_eq!(e.memory_estimate().bars, 0);
        assert_eq!(e.state("X").unwrap().detector().samples(), 99);
        let config = EngineConfig {
            enable_detector: false,
            ..EngineConfig::default()
        };
        let mut e = Engine::new(config).unwrap();
        run(&mut e, "t", &random_walk("X", 100, 2, 0.001));
        assert_eq!(e.state("X").unwrap().detector().samples(), 0);
        assert!(e.memory_estimate().bars > 0);
        assert!(Engine::new(EngineConfig {
            dedupe: DedupeConfig {
                cap: 0,
                ..DedupeConfig::default()
            },
            ..EngineConfig::default()
        })
        .is_err());
    }

    #[test]
    fn wall_clock_closing_summaries_export_import_and_removal() {
        let mut e = engine();
        run(
            &mut e,
            "t",
            &[
                tr("A", 2.0, T0, 0),
                tr("B", 3.0, T0 + SEC, 1),
                tr("A", 2.5, T0 + 2 * SEC, 2),
            ],
        );
        assert!(e.close_by_wall_clock(T0 + MIN).is_empty());
        let closed = e.close_by_wall_clock(T0 + MIN + 2 * SEC);
        assert_eq!(closed.len(), 2);
        assert_eq!(e.totals().bars_closed, 2);
        let s = e.symbol_summaries();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (
                &*s[0].symbol,
                s[0].trades_applied,
                s[0].last_price,
                s[0].last_trade_ns
            ),
            ("A", 2, Some(2_500_000_000), Some(T0 + 2 * SEC))
        );

        let a = e.export_symbol("A").unwrap();
        assert!(e.export_symbol("nope").is_none());
        assert!(e.remove_symbol("A").is_some());
        assert!(e.remove_symbol("A").is_none());
        assert_eq!(e.symbol_count(), 1);
        assert!(e.state("B").is_some(), "the moved slot is re-indexed");
        assert_eq!(&*e.import_symbol(&a, ImportMode::Replace).unwrap(), "A");
        assert_eq!(e.export_symbol("A").unwrap(), a);
        // Merge: another shard's trades of A.
        let mut other = engine();
        run(&mut other, "t2", &[tr("A", 9.0, T0 + 3 * SEC, 0)]);
        e.import_symbol(&other.export_symbol("A").unwrap(), ImportMode::Merge)
            .unwrap();
        let bar = e.bars("A", BarSpec::M1, T0, T0 + MIN, 1).unwrap()[0];
        assert_eq!(
            (bar.trades(), bar.high(), bar.close()),
            (3, Some(9 * SCALE), Some(9 * SCALE))
        );
        assert!(e.import_symbol(b"garbage", ImportMode::Merge).is_err());
        assert!(e.bars("nope", BarSpec::M1, 0, 1, 1).is_none());
    }

    #[test]
    fn sharding_by_partition_gives_the_same_bars() {
        let mut rows: Vec<OwnedTrade> = Vec::new();
        for (k, sym) in ["A", "B", "C", "D", "E"].iter().enumerate() {
            rows.extend(random_walk(sym, 200, k as u64, 0.002));
        }
        rows.sort_by_key(|t| (t.time_ns, t.symbol.clone()));
        let bytes = batch("t", &rows, &[]);
        let v = view(&bytes);
        let mut whole = engine();
        let all = whole.apply_batch(&v, 0);
        let owners: Vec<u32> = (0..v.symbols().len() as u32).map(|i| i % 3).collect();
        let mut shards: Vec<Engine> = (0..3).map(|_| engine()).collect();
        let mut anomalies = 0;
        for (shard, part) in shards.iter_mut().zip(partition(&v, &owners, 3).unwrap()) {
            anomalies += shard.apply_batch(&view(&part), 0).anomalies.len();
        }
        assert_eq!(anomalies, all.anomalies.len());
        for sym in v.symbols() {
            let shard = shards.iter().find(|s| s.state(sym).is_some()).unwrap();
            assert_eq!(shard.export_symbol(sym), whole.export_symbol(sym));
        }
    }

    #[test]
    fn memory_at_full_retention() {
        let mut e = engine();
        // One trade a minute for 30 days fills all three retentions.
        let rows: Vec<OwnedTrade> = (0..30 * 1_440)
            .map(|m| tr("X", 1.0, T0 + m * MIN, m as u64))
            .collect();
        run(&mut e, "t", &rows);
        let m = e.memory_estimate();
        assert_eq!(m.bars, 1_440 + 2_016 + 720);
        let bars = e.state("X").unwrap().bars().memory_bytes();
        eprintln!(
            "bars {bars} B, state {} B, SymbolState struct {} B",
            e.state("X").unwrap().memory_bytes(),
            std::mem::size_of::<SymbolState>()
        );
        assert!(bars <= 4_176 * 168 + 1_024, "{bars}");
    }
}
