//! One symbol's complete state and its versioned binary export.
//!
//! # Export format
//!
//! `b"TSS1"` + `u16` little-endian format version (currently 3) + a postcard body holding the
//! symbol, its bars (with clocks and configuration), detector, remembered ids, offset
//! watermarks, counters and the trade journal of the correction window. Export is deterministic (ids in FIFO order, watermarks sorted,
//! detector windows oldest first), so export → import → export yields identical bytes, and an
//! imported state behaves exactly like the original for every following trade. A later format
//! gets a new version number and its own body type; import dispatches on the version.

use crate::activity::{ActivityBook, ActivitySpec, ActivitySpecs};
use crate::anomaly::{AnomalyFields, AnyDetector, Detector, DetectorConfig, DetectorError};
use crate::bars::{
    Bar, BarBook, BarConfig, BarError, TradeEffect, TradeKey, MAX_TIME_NS, MIN_TIME_NS,
};
use crate::dedupe::{
    id_hash, DedupeError, IdDedupe, Watermarks, DEFAULT_DEDUPE_CAP, DEFAULT_DEDUPE_WINDOW_NS,
};
use crate::journal::{Lookup, TradeJournal, TradeWindow};
use crate::types::{Correction, CorrectionKind, Order, Trade};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// First four bytes of an exported symbol state.
pub const STATE_MAGIC: [u8; 4] = *b"TSS1";
/// Export format version written by this crate (2: applied-offset ranges instead of
/// watermarks; 3: bar revisions and the trade journal; 4: tick and volume bars). Version 3 is
/// still read (without tick and volume bars).
pub const STATE_VERSION: u16 = 4;
/// Longest accepted symbol, in bytes.
pub const MAX_SYMBOL_LEN: usize = 256;

/// Why a symbol state could not be created, imported or merged.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Fewer bytes than magic + version.
    #[error("state export is too short")]
    TooShort,
    /// The magic is not `TSS1`.
    #[error("not a symbol state export (bad magic)")]
    BadMagic,
    /// A format version this reader does not know.
    #[error("unsupported state format version {0}")]
    UnsupportedVersion(u16),
    /// The body is not valid postcard for the version.
    #[error("undecodable state body: {0}")]
    Decode(#[from] postcard::Error),
    /// Bytes follow the body.
    #[error("{0} unexpected bytes after the state body")]
    TrailingBytes(usize),
    /// Bar configuration or bars are invalid.
    #[error(transparent)]
    Bars(#[from] BarError),
    /// Detector configuration or state is invalid.
    #[error(transparent)]
    Detector(#[from] DetectorError),
    /// Dedupe configuration or state is invalid.
    #[error(transparent)]
    Dedupe(#[from] DedupeError),
    /// The symbol is empty or longer than [`MAX_SYMBOL_LEN`].
    #[error("invalid symbol")]
    BadSymbol,
    /// Another invariant does not hold.
    #[error("invalid state: {0}")]
    Invalid(&'static str),
    /// Two states of different symbols were merged.
    #[error("cannot merge states of different symbols ({0} and {1})")]
    SymbolMismatch(String, String),
}

/// Everything needed to create a fresh [`SymbolState`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateConfig {
    /// Closing and retention of bars.
    pub bars: BarConfig,
    /// The symbol's detector (after per-symbol overrides).
    pub detector: DetectorConfig,
    /// Id dedupe limits.
    pub dedupe: DedupeConfig,
    /// How far back (event time, from the symbol's latest event) a trade may be cancelled or
    /// corrected; its trades are kept for that ([`crate::journal`]). Default 24 h, the default
    /// 1m retention.
    pub correction_window_ns: i64,
    /// Tick and volume bars ([`crate::activity`]); none by default.
    pub activity: ActivitySpecs,
}

/// Default correction window: the default 1m retention.
pub const DEFAULT_CORRECTION_WINDOW_NS: i64 = 86_400 * 1_000_000_000;

/// Limits of the per-symbol id set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeConfig {
    /// Hard cap of remembered ids per symbol; default 65,536.
    pub cap: usize,
    /// Ids older (event time) than this behind the symbol's latest event are forgotten;
    /// default 24 h, the 1m retention.
    pub window_ns: i64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            bars: BarConfig::default(),
            detector: DetectorConfig::default(),
            dedupe: DedupeConfig::default(),
            correction_window_ns: DEFAULT_CORRECTION_WINDOW_NS,
            activity: ActivitySpecs::default(),
        }
    }
}

impl Default for DedupeConfig {
    fn default() -> Self {
        DedupeConfig {
            cap: DEFAULT_DEDUPE_CAP,
            window_ns: DEFAULT_DEDUPE_WINDOW_NS,
        }
    }
}

/// Which parts of the state a trade updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Update bars (the clock, retention and `TooLate` apply regardless).
    pub bars: bool,
    /// Feed the detector.
    pub detector: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            bars: true,
            detector: true,
        }
    }
}

/// The symbol's latest trade by `(time, arrival)` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastTrade {
    /// Its key.
    pub key: TradeKey,
    /// Its price mantissa.
    pub price: i64,
}

/// Per-symbol counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolCounters {
    /// Trades applied.
    pub trades_applied: u64,
    /// Orders applied to order flow.
    pub orders_applied: u64,
    /// Trades dropped as id duplicates.
    pub duplicates_id: u64,
    /// Trades and orders dropped as offset duplicates (below the source's watermark).
    pub duplicates_offset: u64,
    /// Trades and orders older than every interval's retention.
    pub too_late: u64,
    /// Applied trades and orders that changed a closed bar.
    pub revised: u64,
    /// Trades and orders with out-of-range values (price ≤ 0, qty < 0, time out of range).
    pub invalid: u64,
    /// Anomalies flagged.
    pub anomalies: u64,
    /// Trades removed by a cancel.
    pub cancels_applied: u64,
    /// Trades whose price and quantity a correction replaced.
    pub corrections_applied: u64,
    /// Cancels and corrections that changed nothing (unknown trade, outside the window, already
    /// cancelled, redelivered, same values).
    pub corrections_skipped: u64,
    /// The latest trade by key (not by arrival), so that merges are exact.
    pub last: Option<LastTrade>,
}

impl SymbolCounters {
    fn merge(&mut self, o: &SymbolCounters) {
        self.trades_applied = self.trades_applied.saturating_add(o.trades_applied);
        self.orders_applied = self.orders_applied.saturating_add(o.orders_applied);
        self.duplicates_id = self.duplicates_id.saturating_add(o.duplicates_id);
        self.duplicates_offset = self.duplicates_offset.saturating_add(o.duplicates_offset);
        self.too_late = self.too_late.saturating_add(o.too_late);
        self.revised = self.revised.saturating_add(o.revised);
        self.invalid = self.invalid.saturating_add(o.invalid);
        self.anomalies = self.anomalies.saturating_add(o.anomalies);
        self.cancels_applied = self.cancels_applied.saturating_add(o.cancels_applied);
        self.corrections_applied = self
            .corrections_applied
            .saturating_add(o.corrections_applied);
        self.corrections_skipped = self
            .corrections_skipped
            .saturating_add(o.corrections_skipped);
        self.last = later(self.last, o.last);
    }
}

/// Counters saturate: an imported state may carry any value, and no input may panic.
#[inline]
fn bump(counter: &mut u64, by: u64) {
    *counter = counter.saturating_add(by);
}

fn later(a: Option<LastTrade>, b: Option<LastTrade>) -> Option<LastTrade> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if (y.key, y.price) > (x.key, x.price) {
            y
        } else {
            x
        }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// What became of a trade offered to a [`SymbolState`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TradeStatus {
    /// Applied; `revised` when it changed a closed bar; `anomaly` when the detector flagged it.
    Applied {
        /// A closed bar was changed.
        revised: bool,
        /// The detector's statistics if the trade is anomalous.
        anomaly: Option<AnomalyFields>,
    },
    /// Its id was already applied.
    DuplicateId,
    /// Older than every interval's retention (reason `TOO_LATE`).
    TooLate,
    /// Price ≤ 0, quantity < 0 or event time out of range.
    Invalid,
}

/// What became of an order offered to a [`SymbolState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Added to order flow; `revised` when it changed a closed bar.
    Applied {
        /// A closed bar was changed.
        revised: bool,
    },
    /// Older than every interval's retention.
    TooLate,
    /// Quantity < 0 or event time out of range.
    Invalid,
}

/// What became of a cancel or correction offered to a [`SymbolState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionStatus {
    /// The trade was cancelled or corrected and its bars recomputed; `revised` when a closed
    /// bar changed.
    Applied {
        /// Cancel or correct.
        kind: CorrectionKind,
        /// The key of the trade it changed (anomalies it raised are found by it).
        trade: TradeKey,
        /// A closed bar was changed.
        revised: bool,
    },
    /// No trade with that id was applied before it.
    UnknownTrade,
    /// The trade is older than the correction window (or its id was forgotten with it).
    OutsideWindow,
    /// The trade was already cancelled.
    AlreadyCancelled,
    /// This report (by its own id) was already applied.
    Duplicate,
    /// A correction to the values the trade already has.
    Unchanged,
}

/// Bars, detector, dedupe, watermarks, counters and trade journal of one symbol.
#[derive(Debug, Clone)]
pub struct SymbolState {
    symbol: Arc<str>,
    bars: BarBook,
    detector: AnyDetector,
    dedupe: IdDedupe,
    watermarks: Watermarks,
    counters: SymbolCounters,
    journal: TradeJournal,
    activity: ActivityBook,
}

impl SymbolState {
    /// Creates the empty state of `symbol`.
    ///
    /// # Errors
    /// [`StateError::BadSymbol`] for an empty or overlong symbol; a configuration error of
    /// the bars, detector or dedupe.
    pub fn new(symbol: &str, config: &StateConfig) -> Result<SymbolState, StateError> {
        if symbol.is_empty() || symbol.len() > MAX_SYMBOL_LEN {
            return Err(StateError::BadSymbol);
        }
        Ok(SymbolState {
            symbol: symbol.into(),
            bars: BarBook::new(config.bars)?,
            detector: AnyDetector::new(&config.detector)?,
            dedupe: IdDedupe::new(config.dedupe.cap, config.dedupe.window_ns)?,
            watermarks: Watermarks::default(),
            counters: SymbolCounters::default(),
            journal: TradeJournal::new(config.correction_window_ns),
            activity: ActivityBook::new(&config.activity.to_vec()),
        })
    }

    /// The tick and volume bars.
    pub fn activity(&self) -> &ActivityBook {
        &self.activity
    }

    /// Starts the tick and volume bars afresh when `specs` are not the ones the state has (an
    /// imported state made under another configuration).
    pub fn ensure_activity(&mut self, specs: &[ActivitySpec]) {
        if !self.activity.has_specs(specs) {
            self.activity = ActivityBook::new(specs);
        }
    }

    /// The symbol.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The symbol as a shared string (cheap to clone into events).
    pub fn symbol_arc(&self) -> &Arc<str> {
        &self.symbol
    }

    /// The bar series.
    pub fn bars(&self) -> &BarBook {
        &self.bars
    }

    /// The bar series, for wall-clock closing.
    pub fn bars_mut(&mut self) -> &mut BarBook {
        &mut self.bars
    }

    /// The anomaly detector.
    pub fn detector(&self) -> &AnyDetector {
        &self.detector
    }

    /// The remembered trade ids.
    pub fn dedupe(&self) -> &IdDedupe {
        &self.dedupe
    }

    /// The trades kept for cancels and corrections.
    pub fn journal(&self) -> &TradeJournal {
        &self.journal
    }

    /// The journal's newest entry, as a slice (for prefetching).
    pub fn journal_tail(&self) -> &[crate::journal::JournalEntry] {
        self.journal.tail()
    }

    /// The symbol's trades with an event time in `[from_ns, to_ns)`, exactly, from its journal;
    /// `None` when the journal may not hold all of them.
    pub fn trade_window(&self, from_ns: i64, to_ns: i64) -> Option<TradeWindow> {
        match self.bars.latest_event_ns() {
            Some(latest) => self.journal.window(from_ns, to_ns, latest),
            // Nothing applied yet: no trades anywhere, if trades are journaled at all.
            None => (self.journal.window_ns() > 0).then(TradeWindow::default),
        }
    }

    /// The per-source offset watermarks.
    pub fn watermarks(&self) -> &Watermarks {
        &self.watermarks
    }

    /// Marks everything below `next_seq` of `source` as applied.
    pub fn advance_watermark(&mut self, source: &str, next_seq: u64) {
        self.watermarks.advance(source, next_seq);
    }

    /// Marks `[first, next)` of `source` as applied (after a batch: its rows' seq span).
    pub fn mark_applied(&mut self, source: &str, first: u64, next: u64) {
        self.watermarks.mark(source, first, next);
    }

    /// [`SymbolState::mark_applied`] with the source's [`crate::dedupe::source_hash`].
    pub fn mark_applied_hashed(&mut self, source: &str, hash: u64, first: u64, next: u64) {
        self.watermarks.mark_hashed(source, hash, first, next);
    }

    /// The counters.
    pub fn counters(&self) -> &SymbolCounters {
        &self.counters
    }

    pub(crate) fn count_duplicate_offset(&mut self) {
        self.counters.duplicates_offset = self.counters.duplicates_offset.saturating_add(1);
    }

    /// Applies one trade: id dedupe, retention, bars, detector, counters.
    ///
    /// Offset watermarks are the caller's business (they have batch semantics); see
    /// [`crate::engine::Engine::apply_batch`]. Bars closed as a consequence go to `closed`.
    #[inline]
    pub fn apply_trade(
        &mut self,
        trade: &Trade<'_>,
        now_ns: i64,
        options: ApplyOptions,
        closed: &mut Vec<Bar>,
    ) -> TradeStatus {
        self.apply_trade_hashed(trade, trade.id.map(id_hash), now_ns, options, closed)
    }

    /// [`SymbolState::apply_trade`] with the id hash computed by the caller (the engine
    /// computes it a few rows ahead to prefetch the id table).
    // Always inlined into the engine's row loop: as a call, its large status return and
    // argument spills cost ~10 ns per trade in profiles.
    #[inline(always)]
    pub(crate) fn apply_trade_hashed(
        &mut self,
        trade: &Trade<'_>,
        hash: Option<u64>,
        now_ns: i64,
        options: ApplyOptions,
        closed: &mut Vec<Bar>,
    ) -> TradeStatus {
        if trade.price <= 0
            || trade.qty < 0
            || !(MIN_TIME_NS..=MAX_TIME_NS).contains(&trade.time_ns)
        {
            bump(&mut self.counters.invalid, 1);
            return TradeStatus::Invalid;
        }
        if let Some(h) = hash {
            if self.dedupe.contains(h) {
                bump(&mut self.counters.duplicates_id, 1);
                return TradeStatus::DuplicateId;
            }
        }
        let key = TradeKey::new(trade.time_ns, trade.arrival);
        let revised =
            match self
                .bars
                .apply_trade(trade.price, trade.qty, key, now_ns, options.bars, closed)
            {
                TradeEffect::Applied { revised } => revised,
                TradeEffect::TooLate => {
                    bump(&mut self.counters.too_late, 1);
                    return TradeStatus::TooLate;
                }
                TradeEffect::OutOfRange => {
                    bump(&mut self.counters.invalid, 1);
                    return TradeStatus::Invalid;
                }
            };
        let anomaly = if options.detector {
            self.detector
                .observe(trade.price, trade.time_ns, trade.arrival)
        } else {
            None
        };
        let latest = self.bars.latest_event_ns().unwrap_or(trade.time_ns);
        if let Some(h) = hash {
            self.dedupe.insert(h, trade.time_ns, latest);
        }
        self.journal
            .record(key, trade.price, trade.qty, hash, latest);
        if !self.activity.is_empty() {
            self.activity.apply(trade.price, trade.qty, trade.time_ns);
        }
        let c = &mut self.counters;
        bump(&mut c.trades_applied, 1);
        bump(&mut c.revised, u64::from(revised));
        bump(&mut c.anomalies, u64::from(anomaly.is_some()));
        let newer = match &c.last {
            Some(l) => (key, trade.price) > (l.key, l.price),
            None => true,
        };
        if newer {
            c.last = Some(LastTrade {
                key,
                price: trade.price,
            });
        }
        TradeStatus::Applied { revised, anomaly }
    }

    /// Applies a cancel or correction of an earlier trade (found by `ref_id` in the journal):
    /// the trade is cancelled or takes the new price and quantity, keeping its time, and every
    /// bar holding it is recomputed from the journal. The report's own id is remembered, so a
    /// redelivered report applies once. The detector's window is not rewound.
    pub fn apply_correction(
        &mut self,
        c: &Correction<'_>,
        now_ns: i64,
        options: ApplyOptions,
    ) -> CorrectionStatus {
        let status = self.correction_status(c, now_ns, options);
        let counters = &mut self.counters;
        match status {
            CorrectionStatus::Applied { kind, .. } => match kind {
                CorrectionKind::Cancel => bump(&mut counters.cancels_applied, 1),
                CorrectionKind::Correct => bump(&mut counters.corrections_applied, 1),
            },
            _ => bump(&mut counters.corrections_skipped, 1),
        }
        status
    }

    fn correction_status(
        &mut self,
        c: &Correction<'_>,
        now_ns: i64,
        options: ApplyOptions,
    ) -> CorrectionStatus {
        let own = c.id.map(id_hash);
        if own.is_some_and(|h| self.dedupe.contains(h)) {
            return CorrectionStatus::Duplicate;
        }
        let Some(reference) = c.ref_id.map(id_hash) else {
            return CorrectionStatus::UnknownTrade;
        };
        // Every journaled id is in the id set unless the set overflowed its cap: an id it does not
        // hold then needs no journal scan.
        let remembered = self.dedupe.contains(reference);
        if !remembered && self.dedupe.evicted_by_cap() == 0 {
            return CorrectionStatus::UnknownTrade;
        }
        let at = match self.journal.find(reference) {
            Lookup::Found(at) => at,
            // The id set outlives the journal when the window is shorter than the 1m retention.
            Lookup::Missing if remembered => return CorrectionStatus::OutsideWindow,
            Lookup::Missing => return CorrectionStatus::UnknownTrade,
        };
        let Some(entry) = self.journal.get(at).copied() else {
            return CorrectionStatus::UnknownTrade;
        };
        let latest = self.bars.latest_event_ns().unwrap_or(entry.time_ns);
        if entry.time_ns < self.journal.correctable_from_ns(latest) {
            return CorrectionStatus::OutsideWindow;
        }
        if entry.is_cancelled() {
            return CorrectionStatus::AlreadyCancelled;
        }
        match (c.kind, c.price, c.qty) {
            (CorrectionKind::Cancel, _, _) => self.journal.cancel(at),
            (CorrectionKind::Correct, Some(price), Some(qty)) if price > 0 && qty >= 0 => {
                if (price, qty) == (entry.price, entry.qty) {
                    return CorrectionStatus::Unchanged;
                }
                self.journal.correct(at, price, qty);
            }
            // Batches are validated, so a correction always carries values.
            (CorrectionKind::Correct, _, _) => return CorrectionStatus::Unchanged,
        }
        let revised = options.bars
            && self.bars.rebuild_at(entry.time_ns, now_ns, |from, to| {
                self.journal
                    .live_between(from, to)
                    .map(|e| (e.price, e.qty, e.key()))
            });
        if let Some(h) = own {
            self.dedupe.insert(h, latest, latest);
        }
        if self.counters.last.is_some_and(|l| l.key == entry.key()) {
            self.counters.last = self.journal.latest_live().map(|e| LastTrade {
                key: e.key(),
                price: e.price,
            });
        }
        CorrectionStatus::Applied {
            kind: c.kind,
            trade: entry.key(),
            revised,
        }
    }

    /// Adds one order to its bars' order flow.
    pub fn apply_order(
        &mut self,
        order: &Order<'_>,
        now_ns: i64,
        update_bars: bool,
        closed: &mut Vec<Bar>,
    ) -> OrderStatus {
        if order.qty < 0 {
            bump(&mut self.counters.invalid, 1);
            return OrderStatus::Invalid;
        }
        match self.bars.apply_order(
            order.side,
            order.qty,
            order.time_ns,
            now_ns,
            update_bars,
            closed,
        ) {
            TradeEffect::Applied { revised } => {
                bump(&mut self.counters.orders_applied, 1);
                bump(&mut self.counters.revised, u64::from(revised));
                OrderStatus::Applied { revised }
            }
            TradeEffect::TooLate => {
                bump(&mut self.counters.too_late, 1);
                OrderStatus::TooLate
            }
            TradeEffect::OutOfRange => {
                bump(&mut self.counters.invalid, 1);
                OrderStatus::Invalid
            }
        }
    }

    /// Approximate heap bytes held by the state.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<SymbolState>()
            + self.symbol.len()
            + self.bars.memory_bytes()
            + self.detector.memory_bytes()
            + self.dedupe.memory_bytes()
            + self.journal.memory_bytes()
            + self.activity.memory_bytes()
            + self
                .watermarks
                .iter()
                .map(|(s, _)| s.len() + 48)
                .sum::<usize>()
    }

    /// Serialises the complete state (see the module documentation for the format).
    ///
    /// Serialisation of these types cannot fail; if it ever did, the result would be an empty
    /// vector, which [`SymbolState::import`] rejects, rather than a panic.
    pub fn export(&self) -> Vec<u8> {
        let body = BodyRef {
            symbol: &self.symbol,
            bars: self.bars.to_parts(),
            detector: &self.detector,
            dedupe: self.dedupe.to_parts(),
            watermarks: &self.watermarks,
            counters: &self.counters,
            journal: self.journal.to_parts(),
            activity: &self.activity,
        };
        let mut out = Vec::with_capacity(64 + self.bars.bar_count() * 96 + self.dedupe.len() * 12);
        out.extend_from_slice(&STATE_MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        postcard::to_extend(&body, out).unwrap_or_default()
    }

    /// Restores a state written by [`SymbolState::export`].
    ///
    /// # Errors
    /// [`StateError`] for short input, bad magic, unknown version, undecodable or trailing
    /// bytes, or any violated invariant. Never panics, whatever the bytes.
    pub fn import(bytes: &[u8]) -> Result<SymbolState, StateError> {
        let (magic, rest) = bytes.split_first_chunk::<4>().ok_or(StateError::TooShort)?;
        if *magic != STATE_MAGIC {
            return Err(StateError::BadMagic);
        }
        let (version, body) = rest.split_first_chunk::<2>().ok_or(StateError::TooShort)?;
        let version = u16::from_le_bytes(*version);
        let (body, trailing): (Body, _) = match version {
            STATE_VERSION => postcard::take_from_bytes(body)?,
            3 => {
                let (b, rest): (Body3, _) = postcard::take_from_bytes(body)?;
                (b.into(), rest)
            }
            _ => return Err(StateError::UnsupportedVersion(version)),
        };
        if !trailing.is_empty() {
            return Err(StateError::TrailingBytes(trailing.len()));
        }
        if body.symbol.is_empty() || body.symbol.len() > MAX_SYMBOL_LEN {
            return Err(StateError::BadSymbol);
        }
        body.detector.validate()?;
        if !body.watermarks.is_valid() {
            return Err(StateError::Invalid("watermarks not sorted"));
        }
        let bars = BarBook::from_parts(body.bars)?;
        body.activity.validate().map_err(StateError::Invalid)?;
        if let Some(l) = &body.counters.last {
            if !(MIN_TIME_NS..=MAX_TIME_NS).contains(&l.key.time_ns) || l.price <= 0 {
                return Err(StateError::Invalid("last trade out of range"));
            }
        }
        Ok(SymbolState {
            symbol: body.symbol.into(),
            bars,
            detector: body.detector,
            dedupe: IdDedupe::from_parts(body.dedupe)?,
            watermarks: body.watermarks,
            counters: body.counters,
            journal: TradeJournal::from_parts(body.journal).map_err(StateError::Invalid)?,
            activity: body.activity,
        })
    }

    /// Merges two states of the same symbol built from disjoint trades.
    ///
    /// Two states whose records overlap are not disjoint: when the applied-offset ranges of one
    /// contain the other's (both non-empty), the containing state already holds every trade of the
    /// other, and it is the result, unchanged. That is the case of a symbol rebuilt from its
    /// checkpoint and the log on a new owner while the node thought lost still held it: summing
    /// the two would count the shared trades twice. (Records are routed to owners by whole
    /// batches, so disjoint states have disjoint ranges.)
    ///
    /// Otherwise bars merge exactly ([`BarBook::merge`], `a`'s configuration kept), ids are united,
    /// watermarks take the per-source maximum, counters are summed (the last trade is the
    /// later by key). A detector window is inherently sequential and cannot be merged, so the
    /// detector of the state whose last trade has the later `(time, arrival)` key is kept (`a`'s
    /// on a tie or when neither has trades).
    ///
    /// # Errors
    /// [`StateError::SymbolMismatch`] when the symbols differ.
    pub fn merge(a: &SymbolState, b: &SymbolState) -> Result<SymbolState, StateError> {
        if a.symbol != b.symbol {
            return Err(StateError::SymbolMismatch(
                a.symbol.to_string(),
                b.symbol.to_string(),
            ));
        }
        if !a.watermarks.is_empty() && !b.watermarks.is_empty() {
            if a.watermarks.contains(&b.watermarks) {
                return Ok(a.clone());
            }
            if b.watermarks.contains(&a.watermarks) {
                return Ok(b.clone());
            }
        }
        let mut out = a.clone();
        out.bars.merge(&b.bars);
        let b_later = match (&a.counters.last, &b.counters.last) {
            (Some(x), Some(y)) => (y.key, y.price) > (x.key, x.price),
            (None, Some(_)) => true,
            _ => false,
        };
        // Detector windows and tick and volume bars are sequential: the later state's are kept.
        if b_later {
            out.detector = b.detector.clone();
            out.activity = b.activity.clone();
        }
        out.dedupe.merge(&b.dedupe);
        out.journal.merge(&b.journal);
        out.watermarks.merge(&b.watermarks);
        out.counters.merge(&b.counters);
        Ok(out)
    }
}

/// Merges two exported states of the same symbol (see [`SymbolState::merge`]).
///
/// # Errors
/// Any import error of either input, or [`StateError::SymbolMismatch`].
pub fn merge_exports(a: &[u8], b: &[u8]) -> Result<Vec<u8>, StateError> {
    let a = SymbolState::import(a)?;
    let b = SymbolState::import(b)?;
    Ok(SymbolState::merge(&a, &b)?.export())
}

/// Borrowed export body; field order must match [`Body`].
#[derive(Serialize)]
struct BodyRef<'a> {
    symbol: &'a str,
    bars: crate::bars::BookPartsRef<'a>,
    detector: &'a AnyDetector,
    dedupe: crate::dedupe::IdDedupePartsRef<'a>,
    watermarks: &'a Watermarks,
    counters: &'a SymbolCounters,
    journal: crate::journal::JournalPartsRef<'a>,
    activity: &'a ActivityBook,
}

/// Owned import body of the current format version.
#[derive(Deserialize)]
struct Body {
    symbol: String,
    bars: crate::bars::BookParts,
    detector: AnyDetector,
    dedupe: crate::dedupe::IdDedupeParts,
    watermarks: Watermarks,
    counters: SymbolCounters,
    journal: crate::journal::JournalParts,
    activity: ActivityBook,
}

/// Import body of format version 3 (before tick and volume bars).
#[derive(Deserialize)]
struct Body3 {
    symbol: String,
    bars: crate::bars::BookParts,
    detector: AnyDetector,
    dedupe: crate::dedupe::IdDedupeParts,
    watermarks: Watermarks,
    counters: SymbolCounters,
    journal: crate::journal::JournalParts,
}

impl From<Body3> for Body {
    fn from(b: Body3) -> Body {
        Body {
            symbol: b.symbol,
            bars: b.bars,
            detector: b.detector,
            dedupe: b.dedupe,
            watermarks: b.watermarks,
            counters: b.counters,
            journal: b.journal,
            activity: ActivityBook::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::DetectorKind;
    use crate::bars::test_support::*;
    use crate::bars::BarSpec;
    use proptest::prelude::*;

    fn config(kind: DetectorKind) -> StateConfig {
        StateConfig {
            detector: DetectorConfig {
                kind,
                min_samples: 5,
                window: 20,
                ..DetectorConfig::default()
            },
            ..StateConfig::default()
        }
    }

    fn feed(state: &mut SymbolState, trades: &[OwnedTrade]) -> Vec<TradeStatus> {
        let mut closed = Vec::new();
        trades
            .iter()
            .map(|t| state.apply_trade(&t.as_trade(), 0, ApplyOptions::default(), &mut closed))
            .collect()
    }

    fn built(trades: &[OwnedTrade], kind: DetectorKind) -> SymbolState {
        let mut s = SymbolState::new("SYM", &config(kind)).unwrap();
        feed(&mut s, trades);
        s.advance_watermark("trades/1", 17);
        s
    }

    #[test]
    fn keeps_tick_and_volume_bars_through_export_and_reads_version_3() {
        let specs = crate::activity::parse_specs("7t,50v").unwrap();
        let config = StateConfig {
            activity: ActivitySpecs::new(&specs).unwrap(),
            ..config(DetectorKind::ZScore)
        };
        let trades = random_walk("SYM", 60, 1, 0.01);
        let mut s = SymbolState::new("SYM", &config).unwrap();
        feed(&mut s, &trades);
        let ticks = s.activity().bars(specs[0], 100).unwrap();
        assert_eq!(ticks.len(), 9);
        assert_eq!(ticks.iter().map(|b| b.trades).sum::<u32>(), 60);
        assert!(ticks[..8].iter().all(|b| b.closed && b.trades == 7) && !ticks[8].closed);
        let back = SymbolState::import(&s.export()).unwrap();
        assert_eq!(back.activity(), s.activity());
        assert_eq!(back.export(), s.export());
        // Duplicates (a replay) change nothing.
        let mut again = back.clone();
        feed(&mut again, &trades);
        assert_eq!(again.activity(), s.activity());
        // A version 3 export is the same body without the book (an empty book is one byte).
        let plain = built(&trades, DetectorKind::ZScore);
        let mut v3 = plain.export();
        assert_eq!(v3.pop(), Some(0));
        v3[4..6].copy_from_slice(&3u16.to_le_bytes());
        let old = SymbolState::import(&v3).unwrap();
        assert!(old.activity().is_empty());
        assert_eq!(old.export(), plain.export());
    }

    #[test]
    fn header_errors() {
        let bytes = built(&random_walk("SYM", 50, 1, 0.01), DetectorKind::ZScore).export();
        assert!(matches!(
            SymbolState::import(&bytes[..3]),
            Err(StateError::TooShort)
        ));
        assert!(matches!(
            SymbolState::import(b"TSS2\x01\x00"),
            Err(StateError::BadMagic)
        ));
        let mut v9 = bytes.clone();
        v9[4] = 9;
        assert!(matches!(
            SymbolState::import(&v9),
            Err(StateError::UnsupportedVersion(9))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            SymbolState::import(&long),
            Err(StateError::TrailingBytes(1))
        ));
        for cut in 0..bytes.len() {
            assert!(
                SymbolState::import(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
        assert!(SymbolState::import(&bytes).is_ok());
    }

    #[test]
    fn merge_of_overlapping_states_keeps_the_one_that_holds_the_other() {
        let trades = random_walk("SYM", 300, 3, 0.001);
        let state = |n: usize| {
            let mut s = SymbolState::new("SYM", &config(DetectorKind::ZScore)).unwrap();
            feed(&mut s, &trades[..n]);
            s.mark_applied("trades/0", 0, n as u64);
            s
        };
        let (part, whole) = (state(200), state(300));
        // The same state twice, or a prefix of it: nothing is counted twice, in either order.
        for (a, b) in [(&whole, &whole), (&part, &whole), (&whole, &part)] {
            let m = SymbolState::merge(a, b).unwrap();
            assert_eq!(m.export(), whole.export());
            assert_eq!(m.counters().trades_applied, 300);
        }
        // Neither contains the other: records 200..300 on one side, 0..200 on the other.
        let mut tail = SymbolState::new("SYM", &config(DetectorKind::ZScore)).unwrap();
        feed(&mut tail, &trades[200..]);
        tail.mark_applied("trades/0", 200, 300);
        let m = SymbolState::merge(&part, &tail).unwrap();
        assert_eq!(m.counters().trades_applied, 300);
        for spec in BarSpec::ALL {
            let got: Vec<NaiveBar> = m.bars().iter(spec).map(bar_values).collect();
            let expected: Vec<NaiveBar> = naive_bars(&trades, &[], spec).into_values().collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn merge_combines_every_part() {
        let trades = random_walk("SYM", 400, 5, 0.001);
        let (first, second): (Vec<OwnedTrade>, Vec<OwnedTrade>) =
            trades.iter().cloned().partition(|t| t.seq % 2 == 0);
        let mut a = built(&first, DetectorKind::ZScore);
        // Disjoint records have disjoint applied ranges.
        let mut b = SymbolState::new("SYM", &config(DetectorKind::ZScore)).unwrap();
        feed(&mut b, &second);
        b.mark_applied("trades/1", 17, 30);
        a.advance_watermark("orders/0", 3);
        let m = SymbolState::merge(&a, &b).unwrap();
        for spec in BarSpec::ALL {
            let expected: Vec<NaiveBar> = naive_bars(&trades, &[], spec).into_values().collect();
            let got: Vec<NaiveBar> = m.bars().iter(spec).map(bar_values).collect();
            assert_eq!(got, expected);
        }
        // The last trade (seq 399) is in `b`, so b's detector is kept.
        assert_eq!(m.counters().last.unwrap().key.arrival.seq, 399);
        assert_eq!(
            m.detector().export_state().unwrap(),
            b.detector().export_state().unwrap()
        );
        assert_eq!(m.counters().trades_applied, 400);
        assert_eq!(m.dedupe().len(), 400);
        assert_eq!(
            m.watermarks().iter().collect::<Vec<_>>(),
            vec![("orders/0", 3), ("trades/1", 30)]
        );
        assert_eq!(merge_exports(&a.export(), &b.export()).unwrap(), m.export());
        // Replaying a duplicate from either side is now caught by id.
        let mut m = m;
        assert_eq!(feed(&mut m, &trades[..1]), vec![TradeStatus::DuplicateId]);
        let other = SymbolState::new("OTHER", &StateConfig::default()).unwrap();
        assert!(matches!(
            SymbolState::merge(&a, &other),
            Err(StateError::SymbolMismatch(..))
        ));
    }

    #[test]
    fn too_late_and_invalid_trades_are_counted_not_applied() {
        let mut s = SymbolState::new("SYM", &StateConfig::default()).unwrap();
        let day = 86_400 * SEC;
        let mut late = tr("SYM", 1.0, T0, 1);
        late.id = Some("late".into());
        let statuses = feed(
            &mut s,
            &[
                tr("SYM", 1.0, T0 + 40 * day, 0),
                late.clone(),
                tr("SYM", -1.0, T0, 2),
            ],
        );
        assert_eq!(statuses[1], TradeStatus::TooLate);
        assert_eq!(statuses[2], TradeStatus::Invalid);
        assert_eq!(
            (
                s.counters().too_late,
                s.counters().invalid,
                s.counters().trades_applied
            ),
            (1, 1, 1)
        );
        assert!(
            !s.dedupe().contains(crate::dedupe::id_hash("late")),
            "a rejected trade's id is not remembered"
        );
        assert!(SymbolState::new("", &StateConfig::default()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn export_import_round_trip_and_identical_behaviour(
            trades in arb_trades(200),
            kind in prop::sample::select(vec![DetectorKind::ZScore, DetectorKind::Ewma, DetectorKind::Mad]),
            split in any::<prop::sample::Index>(),
        ) {
            let at = split.index(trades.len());
            let original = built(&trades[..at], kind);
            let bytes = original.export();
            let mut imported = SymbolState::import(&bytes).unwrap();
            prop_assert_eq!(imported.export(), bytes);
            let mut original = original;
            let a = feed(&mut original, &trades[at..]);
            let b = feed(&mut imported, &trades[at..]);
            prop_assert_eq!(a, b);
            prop_assert_eq!(original.export(), imported.export());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut with_header = b"TSS1\x01\x00".to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = SymbolState::import(&bytes);
            let _ = SymbolState::import(&with_header);
        }

        #[test]
        fn corrupted_exports_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = built(&random_walk("SYM", 120, 9, 0.01), DetectorKind::Mad).export();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(mut s) = SymbolState::import(&bytes) {
                // Whatever was accepted must keep working.
                feed(&mut s, &random_walk("SYM", 20, 4, 0.01));
                let _ = s.export();
            }
        }
    }
}
