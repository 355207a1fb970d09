//! Per-symbol bar series: sparse storage, event-time closing, retention and merges.

use super::bar::Bar;
use super::seq::BarSeq;
use super::{BarConfig, BarError, BarSpec, TradeKey, MAX_TIME_NS, MIN_TIME_NS};
use crate::types::Side;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::VecDeque;

/// What became of a trade offered to a [`BarBook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeEffect {
    /// Applied to every interval whose retention covers it; `revised` when at least one of
    /// the bars it changed had already closed.
    Applied {
        /// A closed bar was changed.
        revised: bool,
    },
    /// Older than the retention of every interval: not applied.
    TooLate,
    /// Event time outside [`MIN_TIME_NS`, `MAX_TIME_NS`]: not applied.
    OutOfRange,
}

/// What became of an order offered to a [`BarBook`].
pub type OrderEffect = TradeEffect;

/// One interval's bars, sorted by start, only intervals that saw a trade or an order.
#[derive(Debug, Clone)]
struct Series {
    spec: BarSpec,
    /// Number of intervals retained (`ceil(retention / width)`).
    keep: i64,
    bars: BarSeq,
    /// Bars `[0, first_open)` are closed, the rest open: closing is a prefix because a bar
    /// closes when `end ≤ horizon` and the horizon only grows.
    first_open: usize,
    /// Start of the oldest retained interval (`i64::MIN` before the first event).
    cutoff_ns: i64,
    /// End of the interval holding the latest event: the cutoff only moves once the clock
    /// passes it, which keeps the division off the per-trade path.
    clock_end_ns: i64,
}

impl Series {
    fn new(spec: BarSpec, keep: i64) -> Series {
        Series {
            spec,
            keep,
            bars: BarSeq::default(),
            first_open: 0,
            cutoff_ns: i64::MIN,
            clock_end_ns: i64::MIN,
        }
    }

    /// Applies `f` to the bar of the interval holding `t`, creating the bar if needed.
    ///
    /// A bar created for an interval already past the horizon is born closed (and, being a
    /// change to a closed interval, revised); it is reported in `out` once, after the update.
    /// Returns whether a closed bar was changed.
    fn update_at(
        &mut self,
        t: i64,
        now_ns: i64,
        horizon: i64,
        out: &mut Vec<Bar>,
        f: impl FnOnce(&mut Bar),
    ) -> bool {
        let w = self.spec.width_ns();
        // t is within MIN_TIME_NS..=MAX_TIME_NS, so the interval number fits i32 (|n| < 2^27).
        let index = t.div_euclid(w) as i32;
        // The search checks the newest bar first: new intervals usually come after it, and
        // the binary search's probes would touch cold bars.
        let (pos, born_closed) = match self.bars.binary_search_index(index) {
            Ok(pos) => (pos, false),
            Err(pos) => {
                let mut bar = Bar::empty(self.spec, index, now_ns);
                let closed = (i64::from(index) + 1) * w <= horizon;
                if closed {
                    // Everything before a closed bar is closed, so pos ≤ first_open here.
                    bar.set_closed();
                    self.first_open += 1;
                }
                let max_older = usize::try_from(self.keep)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(1);
                self.bars.insert(pos, bar, max_older);
                (pos, closed)
            }
        };
        let Some(bar) = self.bars.get_mut(pos) else {
            return false;
        };
        let revised = touch(bar, f);
        if born_closed {
            out.push(*bar);
        }
        revised
    }

    /// End of the oldest open bar (`i64::MAX` when every bar is closed).
    fn next_close_end(&self) -> i64 {
        self.bars.get(self.first_open).map_or(i64::MAX, |b| {
            (i64::from(b.index()) + 1) * self.spec.width_ns()
        })
    }

    fn close_through(&mut self, horizon: i64, out: &mut Vec<Bar>) {
        let w = self.spec.width_ns();
        while let Some(b) = self.bars.get_mut(self.first_open) {
            if (i64::from(b.index()) + 1) * w > horizon {
                break;
            }
            b.set_closed();
            out.push(*b);
            self.first_open += 1;
        }
    }

    /// Moves the retention window for a new latest event `t`.
    fn advance(&mut self, t: i64, out: &mut Vec<Bar>) {
        if t < self.clock_end_ns {
            return;
        }
        let w = self.spec.width_ns();
        let index = t.div_euclid(w);
        self.clock_end_ns = (index + 1) * w;
        self.cutoff_ns = (index - self.keep + 1) * w;
        self.evict_before(self.cutoff_ns, out);
    }

    fn evict_before(&mut self, cutoff: i64, out: &mut Vec<Bar>) {
        let w = self.spec.width_ns();
        while let Some(index) = self.bars.front_index() {
            if i64::from(index) * w >= cutoff {
                break;
            }
            let Some(mut b) = self.bars.pop_front() else {
                break;
            };
            if b.is_closed() {
                self.first_open = self.first_open.saturating_sub(1);
            } else {
                // Only reachable when grace exceeds retention; never drop a bar unannounced.
                b.set_closed();
                out.push(b);
            }
        }
    }
}

/// Applies `f` to a bar and marks it revised if it was closed; returns whether it was.
#[inline]
fn touch(bar: &mut Bar, f: impl FnOnce(&mut Bar)) -> bool {
    let was_closed = bar.is_closed();
    f(bar);
    if was_closed {
        bar.set_revised();
    }
    was_closed
}

/// All bar series of one symbol.
///
/// * Each trade updates the bar of every interval whose retention covers it, so 5m and 1h
///   bars are exact roll-ups of 1m bars.
/// * The book's clock is the latest event time of its trades **and orders**: it drives
///   retention, eviction and `TooLate` (orders count so that an order-only symbol cannot grow
///   without bound). Closing uses the latest **trade** time only, so an orders feed running
///   ahead of the trades feed does not close bars early.
/// * A bar closes when the latest trade time ≥ end + grace, or, if the caller opts in with
///   [`BarBook::close_by_wall_clock`], when end + grace ≤ now.
/// * Retention keeps the `ceil(retention / width)` most recent intervals up to the one holding
///   the latest event; older bars are evicted and older trades are not applied to that
///   interval. A trade older than every interval's retention is [`TradeEffect::TooLate`].
///
/// Everything except the `revised` flags and `last_update_ns` is a function of the set of
/// trades and orders applied (not of their arrival order), so a historical replay gives the
/// same bars as a live run and [`BarBook::merge`] is exact.
#[derive(Debug, Clone)]
pub struct BarBook {
    config: BarConfig,
    series: [Series; BarSpec::COUNT],
    latest_trade_ns: i64,
    latest_event_ns: i64,
    wall_horizon_ns: i64,
    /// Bars with `end ≤ horizon` are closed: max(latest trade − grace, wall horizon).
    horizon_ns: i64,
    /// Trades before this are too late for every interval.
    too_late_before_ns: i64,
    /// The retention window moves once the clock reaches this (min of the series' `clock_end_ns`).
    next_advance_ns: i64,
    /// Some bar closes once the horizon reaches this (min of the series' next close end).
    close_due_ns: i64,
}

impl Default for BarBook {
    fn default() -> Self {
        BarBook::with_valid_config(BarConfig::default())
    }
}

impl BarBook {
    /// Creates an empty book.
    ///
    /// # Errors
    /// [`BarError::Config`] when the configuration is out of range.
    pub fn new(config: BarConfig) -> Result<BarBook, BarError> {
        config.validate()?;
        Ok(BarBook::with_valid_config(config))
    }

    fn with_valid_config(config: BarConfig) -> BarBook {
        BarBook {
            config,
            series: BarSpec::ALL.map(|s| Series::new(s, config.retained_bars(s))),
            latest_trade_ns: i64::MIN,
            latest_event_ns: i64::MIN,
            wall_horizon_ns: i64::MIN,
            horizon_ns: i64::MIN,
            too_late_before_ns: i64::MIN,
            next_advance_ns: i64::MIN,
            close_due_ns: i64::MAX,
        }
    }

    /// The book's closing and retention settings.
    pub fn config(&self) -> &BarConfig {
        &self.config
    }

    /// Event time of the latest trade, if any.
    pub fn latest_trade_ns(&self) -> Option<i64> {
        (self.latest_trade_ns != i64::MIN).then_some(self.latest_trade_ns)
    }

    /// Event time of the latest trade or order (the retention clock), if any.
    pub fn latest_event_ns(&self) -> Option<i64> {
        (self.latest_event_ns != i64::MIN).then_some(self.latest_event_ns)
    }

    /// Trades with an event time before this are too late for every interval.
    pub fn too_late_before_ns(&self) -> i64 {
        self.too_late_before_ns
    }

    /// Applies a trade to every interval whose retention covers it (or only moves the clock
    /// when `update_bars` is false). Bars that close as a consequence are appended to `closed`.
    ///
    /// The common case (a trade in the forming bars, no bar due to close, retention window
    /// unchanged) touches only cached thresholds and the three newest bars.
    #[inline(always)]
    pub fn apply_trade(
        &mut self,
        price: i64,
        qty: i64,
        key: TradeKey,
        now_ns: i64,
        update_bars: bool,
        closed: &mut Vec<Bar>,
    ) -> TradeEffect {
        let t = key.time_ns;
        if let Some(e) = self.admit(t, closed) {
            return e;
        }
        let mut revised = false;
        if update_bars {
            let horizon = self.horizon_ns;
            let mut changed = false;
            for s in &mut self.series {
                if t < s.cutoff_ns {
                    continue;
                }
                let w = s.spec.width_ns();
                // Fast path: trades mostly land in the newest (forming) bar.
                match s.bars.back_mut() {
                    Some(b)
                        if t >= i64::from(b.index()) * w && t - i64::from(b.index()) * w < w =>
                    {
                        revised |= touch(b, |b| b.add_trade(price, qty, key, now_ns));
                    }
                    _ => {
                        revised |= s.update_at(t, now_ns, horizon, closed, |b| {
                            b.add_trade(price, qty, key, now_ns)
                        });
                        changed = true;
                    }
                }
            }
            if changed {
                self.refresh_close_due();
            }
        }
        if t > self.latest_trade_ns {
            self.latest_trade_ns = t;
            self.raise_horizon(t.saturating_sub(self.config.grace_ns), closed);
        }
        TradeEffect::Applied { revised }
    }

    /// Range and retention checks shared by trades and orders; moves the retention clock.
    #[inline]
    fn admit(&mut self, t: i64, closed: &mut Vec<Bar>) -> Option<TradeEffect> {
        if !(MIN_TIME_NS..=MAX_TIME_NS).contains(&t) {
            return Some(TradeEffect::OutOfRange);
        }
        if t < self.too_late_before_ns {
            return Some(TradeEffect::TooLate);
        }
        if t > self.latest_event_ns {
            self.latest_event_ns = t;
            if t >= self.next_advance_ns {
                self.advance_event(t, closed);
            }
        }
        None
    }

    /// Adds an order to the order flow of the bar holding `time_ns` in every interval whose
    /// retention covers it. Orders move the retention clock but never close bars.
    pub fn apply_order(
        &mut self,
        side: Side,
        qty: i64,
        time_ns: i64,
        now_ns: i64,
        update_bars: bool,
        closed: &mut Vec<Bar>,
    ) -> OrderEffect {
        let t = time_ns;
        if let Some(e) = self.admit(t, closed) {
            return e;
        }
        let mut revised = false;
        if update_bars {
            let horizon = self.horizon_ns;
            for s in &mut self.series {
                if t >= s.cutoff_ns {
                    revised |= s.update_at(t, now_ns, horizon, closed, |b| {
                        b.add_order(side, qty, now_ns)
                    });
                }
            }
            self.refresh_close_due();
        }
        TradeEffect::Applied { revised }
    }

    /// Closes bars whose end + grace ≤ `now_ns` (for a live feed); appends them to `closed`.
    ///
    /// Do not call this while replaying history: bars would close by today's clock.
    pub fn close_by_wall_clock(&mut self, now_ns: i64, closed: &mut Vec<Bar>) {
        let h = now_ns.saturating_sub(self.config.grace_ns);
        self.wall_horizon_ns = self.wall_horizon_ns.max(h);
        self.raise_horizon(h, closed);
    }

    /// Runs on every trade that moves the clock: the common case is two compares.
    #[inline(always)]
    fn raise_horizon(&mut self, h: i64, closed: &mut Vec<Bar>) {
        if h > self.horizon_ns {
            self.horizon_ns = h;
            if h >= self.close_due_ns {
                self.close_due_bars(h, closed);
            }
        }
    }

    #[cold]
    fn close_due_bars(&mut self, h: i64, closed: &mut Vec<Bar>) {
        for s in &mut self.series {
            s.close_through(h, closed);
        }
        self.refresh_close_due();
    }

    fn refresh_close_due(&mut self) {
        self.close_due_ns = self
            .series
            .iter()
            .map(Series::next_close_end)
            .min()
            .unwrap_or(i64::MAX);
    }

    #[cold]
    fn advance_event(&mut self, t: i64, closed: &mut Vec<Bar>) {
        let mut too_late = i64::MAX;
        let mut next = i64::MAX;
        for s in &mut self.series {
            s.advance(t, closed);
            too_late = too_late.min(s.cutoff_ns);
            next = next.min(s.clock_end_ns);
        }
        self.too_late_before_ns = too_late;
        self.next_advance_ns = next;
        self.refresh_close_due();
    }

    /// Recomputes the bar of every interval holding `time_ns` (after a cancel or correction of a
    /// trade at that time) from `trades_between(start, end)`: the live trades with an event time
    /// in `[start, end)` as (price, qty, key), in key order (the symbol's trade journal holds
    /// them). Bars no longer held are skipped. Returns whether a closed bar changed (it is then
    /// marked revised, like a late trade's).
    pub(crate) fn rebuild_at<I>(
        &mut self,
        time_ns: i64,
        now_ns: i64,
        trades_between: impl Fn(i64, i64) -> I,
    ) -> bool
    where
        I: Iterator<Item = (i64, i64, TradeKey)>,
    {
        let mut revised = false;
        for s in &mut self.series {
            let w = s.spec.width_ns();
            let Ok(index) = i32::try_from(time_ns.div_euclid(w)) else {
                continue;
            };
            let Ok(pos) = s.bars.binary_search_index(index) else {
                continue;
            };
            let Some(bar) = s.bars.get_mut(pos) else {
                continue;
            };
            let start = i64::from(index) * w;
            let trades = trades_between(start, start + w);
            revised |= touch(bar, |b| b.rebuild_trades(trades, now_ns));
        }
        revised
    }

    /// Bars of `spec` whose start lies in `[from_ns, to_ns)`, oldest first; when more than
    /// `limit` match, the newest `limit` are returned. The forming bar is included (not closed).
    pub fn bars(&self, spec: BarSpec, from_ns: i64, to_ns: i64, limit: usize) -> Vec<Bar> {
        let s = &self.series[spec.index()];
        let w = spec.width_ns();
        let lo = s
            .bars
            .partition_point(|b| i64::from(b.index()) * w < from_ns);
        let hi = s
            .bars
            .partition_point(|b| i64::from(b.index()) * w < to_ns)
            .max(lo);
        let lo = lo.max(hi.saturating_sub(limit));
        s.bars.iter().skip(lo).take(hi - lo).copied().collect()
    }

    /// Every bar of `spec`, oldest first.
    pub fn iter(&self, spec: BarSpec) -> impl ExactSizeIterator<Item = &Bar> + '_ {
        self.series[spec.index()].bars.iter()
    }

    /// The bar of `spec` starting at `start_ns`, if it exists.
    pub fn get(&self, spec: BarSpec, start_ns: i64) -> Option<&Bar> {
        let s = &self.series[spec.index()];
        let index = i32::try_from(start_ns.div_euclid(spec.width_ns())).ok()?;
        let pos = s.bars.binary_search_index(index).ok()?;
        s.bars.get(pos).filter(|b| b.start_ns() == start_ns)
    }

    /// Number of bars held, all intervals.
    pub fn bar_count(&self) -> usize {
        self.series.iter().map(|s| s.bars.len()).sum()
    }

    /// Heap bytes reserved for bars plus the book itself.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<BarBook>()
            + self
                .series
                .iter()
                .map(|s| s.bars.heap_bytes())
                .sum::<usize>()
    }

    /// Merges a book of the same symbol built from a disjoint set of trades and orders.
    ///
    /// Bars of the same interval merge exactly ([`Bar::merge`]); clocks take the maximum;
    /// a bar is closed when either side had closed it or the merged clock closes it; bars
    /// outside the merged retention are evicted. This book's configuration is kept. The
    /// result is independent of merge order and grouping, except for `revised` (OR-ed; it
    /// records arrival-order history) and `last_update_ns` (maximum).
    pub fn merge(&mut self, other: &BarBook) {
        self.latest_trade_ns = self.latest_trade_ns.max(other.latest_trade_ns);
        self.latest_event_ns = self.latest_event_ns.max(other.latest_event_ns);
        self.wall_horizon_ns = self.wall_horizon_ns.max(other.wall_horizon_ns);
        for (s, o) in self.series.iter_mut().zip(&other.series) {
            let mut merged = VecDeque::with_capacity(s.bars.len() + o.bars.len());
            let (mut i, mut j) = (0, 0);
            loop {
                let next = match (s.bars.get(i), o.bars.get(j)) {
                    (Some(x), Some(y)) => match x.index().cmp(&y.index()) {
                        Ordering::Less => {
                            i += 1;
                            *x
                        }
                        Ordering::Greater => {
                            j += 1;
                            *y
                        }
                        Ordering::Equal => {
                            i += 1;
                            j += 1;
                            let mut m = *x;
                            m.merge_unchecked_interval(y);
                            m
                        }
                    },
                    (Some(x), None) => {
                        i += 1;
                        *x
                    }
                    (None, Some(y)) => {
                        j += 1;
                        *y
                    }
                    (None, None) => break,
                };
                merged.push_back(next);
            }
            s.bars = BarSeq::from_sorted(merged);
        }
        self.rebuild_derived();
        // Evict under this book's retention (the other book may have kept more).
        // Bars evicted here were closed by the merged clock or are simply out of retention;
        // a merge reports nothing, so the list is discarded.
        let mut dropped = Vec::new();
        for s in &mut self.series {
            s.evict_before(s.cutoff_ns, &mut dropped);
        }
        self.refresh_close_due();
    }

    /// Recomputes horizon, closed flags, cursors and cutoffs from the stored clocks.
    fn rebuild_derived(&mut self) {
        self.horizon_ns = self
            .latest_trade_ns
            .saturating_sub(self.config.grace_ns)
            .max(self.wall_horizon_ns);
        let mut too_late = i64::MAX;
        for s in &mut self.series {
            let w = s.spec.width_ns();
            for b in s.bars.iter_mut() {
                let closed = b.is_closed() || (i64::from(b.index()) + 1) * w <= self.horizon_ns;
                b.set_closed_to(closed);
            }
            s.first_open = s.bars.iter().take_while(|b| b.is_closed()).count();
            if self.latest_event_ns == i64::MIN {
                s.cutoff_ns = i64::MIN;
                s.clock_end_ns = i64::MIN;
            } else {
                let index = self.latest_event_ns.div_euclid(w);
                s.clock_end_ns = (index + 1) * w;
                s.cutoff_ns = (index - s.keep + 1) * w;
            }
            too_late = too_late.min(s.cutoff_ns);
        }
        self.too_late_before_ns = too_late;
        self.next_advance_ns = self
            .series
            .iter()
            .map(|s| s.clock_end_ns)
            .min()
            .unwrap_or(i64::MIN);
        self.refresh_close_due();
    }

    /// A serializable view of the book (for state export).
    pub(crate) fn to_parts(&self) -> BookPartsRef<'_> {
        BookPartsRef {
            config: &self.config,
            latest_trade_ns: self.latest_trade_ns,
            latest_event_ns: self.latest_event_ns,
            wall_horizon_ns: self.wall_horizon_ns,
            series: [
                &self.series[0].bars,
                &self.series[1].bars,
                &self.series[2].bars,
            ],
        }
    }

    /// Rebuilds a book from exported parts, checking every invariant.
    pub(crate) fn from_parts(parts: BookParts) -> Result<BarBook, BarError> {
        let mut book = BarBook::new(parts.config)?;
        let time_ok = |t: i64| t == i64::MIN || (MIN_TIME_NS..=MAX_TIME_NS).contains(&t);
        if !time_ok(parts.latest_trade_ns) || !time_ok(parts.latest_event_ns) {
            return Err(BarError::Invalid("clock outside the accepted time range"));
        }
        if parts.latest_trade_ns > parts.latest_event_ns {
            return Err(BarError::Invalid("latest trade after latest event"));
        }
        book.latest_trade_ns = parts.latest_trade_ns;
        book.latest_event_ns = parts.latest_event_ns;
        book.wall_horizon_ns = parts.wall_horizon_ns;
        for (s, bars) in book.series.iter_mut().zip(parts.series) {
            let mut prev: Option<i32> = None;
            for b in &bars {
                b.check()?;
                if b.spec() != s.spec {
                    return Err(BarError::Invalid("bar stored under the wrong interval"));
                }
                if prev.is_some_and(|p| p >= b.index()) {
                    return Err(BarError::Invalid("bars not strictly increasing"));
                }
                if b.start_ns() > parts.latest_event_ns {
                    return Err(BarError::Invalid("bar after the latest event"));
                }
                prev = Some(b.index());
            }
            s.bars = BarSeq::from_sorted(bars);
        }
        book.rebuild_derived();
        for s in &book.series {
            if s.bars.iter().skip(s.first_open).any(Bar::is_closed) {
                return Err(BarError::Invalid("closed bars are not a prefix"));
            }
            if s.bars.front().is_some_and(|b| b.start_ns() < s.cutoff_ns) {
                return Err(BarError::Invalid("bar outside the retention window"));
            }
        }
        Ok(book)
    }
}

/// Borrowed export form of a [`BarBook`]; field order must match [`BookParts`].
#[derive(Serialize)]
pub(crate) struct BookPartsRef<'a> {
    config: &'a BarConfig,
    latest_trade_ns: i64,
    latest_event_ns: i64,
    wall_horizon_ns: i64,
    series: [&'a BarSeq; BarSpec::COUNT],
}

/// Owned import form of a [`BarBook`].
#[derive(Deserialize)]
pub(crate) struct BookParts {
    config: BarConfig,
    latest_trade_ns: i64,
    latest_event_ns: i64,
    wall_horizon_ns: i64,
    series: [VecDeque<Bar>; BarSpec::COUNT],
}
