//! A symbol's recently applied trades, kept so that a cancel or a correction can recompute the
//! bars that hold the trade.
//!
//! Sums (volume, notional, count) could be corrected by subtraction, but high, low, open and
//! close need the bar's other trades. The journal holds every applied trade whose event time is
//! inside the correction window (`window_ns` back from the symbol's latest event), plus the rest
//! of the largest interval that window starts in, so that every bar of a correctable trade can
//! be rebuilt from the journal alone. Entries are sorted by trade key (time, arrival). There is
//! no id index: a lookup scans back from the newest entry (cancels and corrections are rare and
//! usually recent, and the caller first checks the id against the symbol's id set), which keeps
//! the per-trade cost to one append.
//!
//! # Invariants
//! - The trades of every bar whose interval ends after `covered_from_ns()` are exactly the
//!   uncancelled entries in that interval (with their corrected price and quantity).
//! - A cancelled entry stays (so the cancel is idempotent and a replayed trade stays a
//!   duplicate) until it leaves the window like any other.

use crate::bars::{BarSpec, TradeKey};
use crate::types::Arrival;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One applied trade: 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub time_ns: i64,
    pub seq: u64,
    pub ord: u32,
    /// 1 when cancelled (u32 keeps the entry at 48 bytes without packing).
    cancelled: u32,
    /// Price mantissa, the corrected one after a correction.
    pub price: i64,
    /// Quantity mantissa, the corrected one after a correction.
    pub qty: i64,
    /// xxh3 hash of the trade's id; 0 when it has none (such a trade cannot be referred to).
    pub id: u64,
}

impl JournalEntry {
    /// The trade's key.
    pub fn key(&self) -> TradeKey {
        TradeKey::new(
            self.time_ns,
            Arrival {
                seq: self.seq,
                ord: self.ord,
            },
        )
    }

    /// Whether a cancel removed it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled != 0
    }
}

/// OHLCV of the trades in a span of event time, summed exactly from the journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradeWindow {
    /// Price of the first trade by key (time, arrival); `None` without trades.
    pub open: Option<i64>,
    pub high: Option<i64>,
    pub low: Option<i64>,
    /// Price of the last trade by key; `None` without trades.
    pub close: Option<i64>,
    /// Σ quantity (mantissa, scale 1e9).
    pub volume: i128,
    /// Σ price × quantity (mantissa, scale 1e18).
    pub notional: i128,
    pub trades: u32,
}

/// What a lookup by id found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The entry at this position.
    Found(usize),
    /// No such id in the journal.
    Missing,
}

/// See the module documentation.
///
/// The time of the oldest entry and the key of the newest are kept beside the deque: a trade
/// then reads neither end of it (two cache misses per symbol, the largest cost of the journal)
/// unless it evicts or arrives out of order. `bounds` must be reset by every change of `entries`.
#[derive(Debug, Clone)]
pub struct TradeJournal {
    window_ns: i64,
    entries: VecDeque<JournalEntry>,
    /// (oldest time, newest key) of `entries`; `None` when empty.
    bounds: Option<(i64, TradeKey)>,
}

/// Serialized form.
#[derive(Serialize, Deserialize)]
pub(crate) struct JournalParts {
    window_ns: i64,
    entries: VecDeque<JournalEntry>,
}

/// Borrowed serialized form; field order must match [`JournalParts`].
#[derive(Serialize)]
pub(crate) struct JournalPartsRef<'a> {
    window_ns: i64,
    entries: &'a VecDeque<JournalEntry>,
}

impl TradeJournal {
    /// An empty journal keeping `window_ns` of event time (0 keeps nothing).
    pub fn new(window_ns: i64) -> TradeJournal {
        TradeJournal {
            window_ns: window_ns.max(0),
            entries: VecDeque::new(),
            bounds: None,
        }
    }

    fn computed_bounds(&self) -> Option<(i64, TradeKey)> {
        match (self.entries.front(), self.entries.back()) {
            (Some(first), Some(last)) => Some((first.time_ns, last.key())),
            _ => None,
        }
    }

    fn reset_bounds(&mut self) {
        self.bounds = self.computed_bounds();
    }

    /// The correction window.
    pub fn window_ns(&self) -> i64 {
        self.window_ns
    }

    /// The newest entry, as a slice (empty when none): what the next append lands beside.
    pub fn tail(&self) -> &[JournalEntry] {
        let (front, back) = self.entries.as_slices();
        let last = if back.is_empty() { front } else { back };
        last.len()
            .checked_sub(1)
            .and_then(|i| last.get(i..))
            .unwrap_or(&[])
    }

    /// Number of trades held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no trade is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Oldest event time a cancel or correction may refer to, given the latest event.
    pub fn correctable_from_ns(&self, latest_event_ns: i64) -> i64 {
        latest_event_ns.saturating_sub(self.window_ns)
    }

    /// Every trade applied with an event time from here on is in the journal (cancelled ones
    /// marked, corrected ones with their new values), given the symbol's latest event.
    pub fn covered_from_ns(&self, latest_event_ns: i64) -> i64 {
        self.keep_from_ns(latest_event_ns)
    }

    /// The trades with an event time in `[from_ns, to_ns)`, summed; `None` when the journal may
    /// not hold all of them (`from_ns` before [`Self::covered_from_ns`], or no window at all).
    pub fn window(&self, from_ns: i64, to_ns: i64, latest_event_ns: i64) -> Option<TradeWindow> {
        if self.window_ns == 0 || from_ns < self.covered_from_ns(latest_event_ns) {
            return None;
        }
        let mut w = TradeWindow::default();
        for e in self.live_between(from_ns, to_ns) {
            w.open.get_or_insert(e.price);
            w.close = Some(e.price);
            w.high = Some(w.high.map_or(e.price, |h| h.max(e.price)));
            w.low = Some(w.low.map_or(e.price, |l| l.min(e.price)));
            w.volume += i128::from(e.qty);
            w.notional += i128::from(e.price) * i128::from(e.qty);
            w.trades = w.trades.saturating_add(1);
        }
        Some(w)
    }

    /// Entries before this are dropped: the start of the largest interval holding the oldest
    /// correctable time, so that each of its bars stays whole in the journal.
    fn keep_from_ns(&self, latest_event_ns: i64) -> i64 {
        let largest = BarSpec::ALL[BarSpec::COUNT - 1];
        largest.align(self.correctable_from_ns(latest_event_ns))
    }

    /// Records an applied trade and drops what left the window. `latest_event_ns` is the
    /// symbol's clock after the trade.
    pub fn record(
        &mut self,
        key: TradeKey,
        price: i64,
        qty: i64,
        id: Option<u64>,
        latest_event_ns: i64,
    ) {
        if self.window_ns == 0 {
            return;
        }
        let keep_from = self.keep_from_ns(latest_event_ns);
        self.evict_before(keep_from);
        if key.time_ns < keep_from {
            return;
        }
        let entry = JournalEntry {
            time_ns: key.time_ns,
            seq: key.arrival.seq,
            ord: key.arrival.ord,
            cancelled: 0,
            price,
            qty,
            id: id.map_or(0, |h| h.max(1)),
        };
        // Trades mostly arrive in key order: append; a late one is inserted in place.
        match self.bounds {
            Some((oldest, newest)) if newest > key => {
                let at = self.entries.partition_point(|e| e.key() < key);
                self.entries.insert(at, entry);
                self.bounds = Some((oldest.min(key.time_ns), newest));
            }
            Some((oldest, _)) => {
                self.entries.push_back(entry);
                self.bounds = Some((oldest, key));
            }
            None => {
                self.entries.push_back(entry);
                self.bounds = Some((key.time_ns, key));
            }
        }
        debug_assert_eq!(self.bounds, self.computed_bounds());
    }

    fn evict_before(&mut self, keep_from: i64) {
        match self.bounds {
            Some((oldest, _)) if oldest < keep_from => {}
            _ => return,
        }
        while let Some(front) = self.entries.front() {
            if front.time_ns >= keep_from {
                break;
            }
            self.entries.pop_front();
        }
        self.reset_bounds();
    }

    /// Finds the trade whose id hashes to `id`, newest first.
    pub fn find(&self, id: u64) -> Lookup {
        let id = id.max(1);
        self.entries
            .iter()
            .rposition(|e| e.id == id)
            .map_or(Lookup::Missing, Lookup::Found)
    }

    /// The entry at `at`.
    pub fn get(&self, at: usize) -> Option<&JournalEntry> {
        self.entries.get(at)
    }

    /// Marks the entry at `at` cancelled.
    pub fn cancel(&mut self, at: usize) {
        if let Some(e) = self.entries.get_mut(at) {
            e.cancelled = 1;
        }
    }

    /// Replaces the price and quantity of the entry at `at`.
    pub fn correct(&mut self, at: usize, price: i64, qty: i64) {
        if let Some(e) = self.entries.get_mut(at) {
            e.price = price;
            e.qty = qty;
        }
    }

    /// The uncancelled trades with an event time in `[from_ns, to_ns)`, in key order.
    pub fn live_between(
        &self,
        from_ns: i64,
        to_ns: i64,
    ) -> impl Iterator<Item = &JournalEntry> + '_ {
        let lo = self.entries.partition_point(|e| e.time_ns < from_ns);
        self.entries
            .range(lo..)
            .take_while(move |e| e.time_ns < to_ns)
            .filter(|e| !e.is_cancelled())
    }

    /// The latest uncancelled trade.
    pub fn latest_live(&self) -> Option<&JournalEntry> {
        self.entries.iter().rev().find(|e| !e.is_cancelled())
    }

    /// Unites two journals of disjoint trades (state merge); this window is kept.
    pub fn merge(&mut self, other: &TradeJournal) {
        let mut all: Vec<JournalEntry> =
            self.entries.iter().chain(&other.entries).copied().collect();
        all.sort_by_key(JournalEntry::key);
        all.dedup_by_key(|e| e.key());
        self.entries = all.into();
        self.reset_bounds();
    }

    /// Heap bytes of the entries.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<JournalEntry>()
    }

    pub(crate) fn to_parts(&self) -> JournalPartsRef<'_> {
        JournalPartsRef {
            window_ns: self.window_ns,
            entries: &self.entries,
        }
    }

    /// Rebuilds a journal from exported parts.
    ///
    /// # Errors
    /// A description of the violated invariant (entries out of order, bad values).
    pub(crate) fn from_parts(parts: JournalParts) -> Result<TradeJournal, &'static str> {
        if parts.window_ns < 0 {
            return Err("negative correction window");
        }
        let sorted = parts
            .entries
            .iter()
            .zip(parts.entries.iter().skip(1))
            .all(|(a, b)| a.key() < b.key());
        if !sorted {
            return Err("journal entries not strictly increasing");
        }
        if parts
            .entries
            .iter()
            .any(|e| e.price <= 0 || e.qty < 0 || e.cancelled > 1)
        {
            return Err("journal entry out of range");
        }
        let mut journal = TradeJournal {
            window_ns: parts.window_ns,
            entries: parts.entries,
            bounds: None,
        };
        journal.reset_bounds();
        Ok(journal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MIN;

    fn key(t: i64, seq: u64) -> TradeKey {
        TradeKey::new(t, Arrival { seq, ord: 0 })
    }

    #[test]
    fn entries_are_48_bytes() {
        assert_eq!(std::mem::size_of::<JournalEntry>(), 48);
    }

    #[test]
    fn keeps_whole_hours_of_the_window_and_finds_by_id() {
        let mut j = TradeJournal::new(30 * MIN);
        // Trades every minute for three hours, ids 1.., one late trade inserted in place.
        for i in 0..180 {
            j.record(key(i * MIN, i as u64), 100, 1, Some(i as u64 + 1), i * MIN);
        }
        // Latest 179 min: correctable from 149 min, kept from the hour holding it (120 min).
        assert_eq!(j.len(), 60);
        assert_eq!(j.find(120), Lookup::Missing, "trade 119 left with its hour");
        let Lookup::Found(at) = j.find(150) else {
            panic!("trade 149 is kept")
        };
        assert_eq!(j.get(at).map(|e| e.time_ns), Some(149 * MIN));
        j.record(key(150 * MIN + 1, 999), 100, 1, Some(5_000), 179 * MIN);
        let Lookup::Found(late) = j.find(5_000) else {
            panic!("late trade kept")
        };
        assert_eq!(j.get(late).map(|e| e.seq), Some(999));
        assert_eq!(j.get(late - 1).map(|e| e.time_ns), Some(150 * MIN));
        j.cancel(late);
        assert_eq!(j.live_between(150 * MIN, 151 * MIN).count(), 1);
        j.correct(at, 7, 3);
        assert_eq!(
            j.live_between(149 * MIN, 150 * MIN)
                .map(|e| (e.price, e.qty))
                .collect::<Vec<_>>(),
            vec![(7, 3)]
        );
        let mut copy = TradeJournal::from_parts(JournalParts {
            window_ns: j.window_ns,
            entries: j.entries.clone(),
        })
        .unwrap();
        assert_eq!(copy.find(5_000), Lookup::Found(late));
        copy.merge(&j);
        assert_eq!(
            copy.len(),
            j.len(),
            "merging the same trades keeps one of each"
        );
        assert_eq!(j.latest_live().map(|e| e.time_ns), Some(179 * MIN));
        let _ = HOUR;
    }

    #[test]
    fn sums_a_window_of_trades_it_covers_and_refuses_one_it_may_not() {
        let mut j = TradeJournal::new(30 * MIN);
        for i in 0..180 {
            j.record(
                key(i * MIN, i as u64),
                100 + i,
                2,
                Some(i as u64 + 1),
                i * MIN,
            );
        }
        let latest = 179 * MIN;
        assert_eq!(j.covered_from_ns(latest), 120 * MIN);
        assert_eq!(j.window(119 * MIN, 130 * MIN, latest), None);
        let Lookup::Found(at) = j.find(126) else {
            panic!("trade 125 is kept")
        };
        j.cancel(at);
        let w = j.window(120 * MIN, 130 * MIN, latest).unwrap();
        assert_eq!(w.trades, 9);
        assert_eq!((w.open, w.close), (Some(220), Some(229)));
        assert_eq!((w.low, w.high), (Some(220), Some(229)));
        assert_eq!(w.volume, 18);
        let prices: i128 = (120..130).filter(|&i| i != 125).map(|i| 100 + i).sum();
        assert_eq!(w.notional, prices * 2);
        assert_eq!(
            j.window(170 * MIN, 170 * MIN, latest),
            Some(TradeWindow::default())
        );
        assert_eq!(TradeJournal::new(0).window(0, 1, 0), None);
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let mut j = TradeJournal::new(0);
        j.record(key(0, 0), 1, 1, Some(1), 0);
        assert!(j.is_empty());
        assert_eq!(j.find(1), Lookup::Missing);
    }
}
