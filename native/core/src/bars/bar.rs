//! One OHLCV bar and its exact merge.

use super::{BarError, BarSpec, TradeKey};
use crate::types::{Arrival, Side};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const CLOSED: u8 = 0b01;
const REVISED: u8 = 0b10;
const SPEC_SHIFT: u32 = 2;
const SPEC_MASK: u8 = 0b11 << SPEC_SHIFT;

/// A 128-bit sum stored as two `u64` halves.
///
/// `i128` has 16-byte alignment on x86-64, which would pad [`Bar`] from 168 to 176 bytes;
/// the halves keep the alignment at 8. Additions wrap so that merges stay associative
/// even for adversarial inputs (no realistic bar comes near 2^127).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Wide {
    lo: u64,
    hi: u64,
}

impl Wide {
    #[inline]
    fn get(self) -> i128 {
        ((u128::from(self.hi) << 64) | u128::from(self.lo)) as i128
    }

    #[inline]
    fn from_i128(v: i128) -> Wide {
        Wide {
            lo: v as u64,
            hi: ((v as u128) >> 64) as u64,
        }
    }

    #[inline]
    fn add(&mut self, v: i128) {
        *self = Wide::from_i128(self.get().wrapping_add(v));
    }
}

impl Serialize for Wide {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i128(self.get())
    }
}

impl<'de> Deserialize<'de> for Wide {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i128::deserialize(d).map(Wide::from_i128)
    }
}

/// Order-flow totals of a bar (from the orders feed, not from trades).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderFlow {
    /// Number of orders whose time falls in the bar.
    pub count: u32,
    /// Σ quantity of buy orders (mantissa, scale 1e9).
    pub buy_qty: i128,
    /// Σ quantity of sell orders (mantissa, scale 1e9).
    pub sell_qty: i128,
}

/// One OHLCV bar of one symbol and interval.
///
/// A bar may hold orders but no trades; its OHLC accessors then return `None`. The open is
/// the price of the trade with the smallest `(time, arrival)` key, the close that of the
/// largest; if two trades share a key (possible only across sources whose sequence numbers
/// collide) the price breaks the tie (lowest opens, highest closes) so that merges stay exact
/// and independent of merge order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    open: i64,
    high: i64,
    low: i64,
    close: i64,
    open_time: i64,
    open_seq: u64,
    close_time: i64,
    close_seq: u64,
    volume: Wide,
    notional: Wide,
    buy_qty: Wide,
    sell_qty: Wide,
    last_update_ns: i64,
    /// Interval number: `start = index × width`. Fits `i32` for every accepted event time.
    index: i32,
    open_ord: u32,
    close_ord: u32,
    trades: u32,
    orders: u32,
    /// Changes applied to the bar: trades, orders, cancels and corrections (see
    /// [`Bar::revision`]).
    revision: u32,
    /// Bits 0–1: closed, revised; bits 2–3: the spec.
    flags: u8,
}

impl Bar {
    /// An empty bar (no trades, no orders) for interval number `index` of `spec`.
    pub(crate) fn empty(spec: BarSpec, index: i32, now_ns: i64) -> Bar {
        Bar {
            open: 0,
            high: 0,
            low: 0,
            close: 0,
            open_time: 0,
            open_seq: 0,
            close_time: 0,
            close_seq: 0,
            volume: Wide::default(),
            notional: Wide::default(),
            buy_qty: Wide::default(),
            sell_qty: Wide::default(),
            last_update_ns: now_ns,
            index,
            open_ord: 0,
            close_ord: 0,
            trades: 0,
            orders: 0,
            revision: 0,
            flags: (spec as u8) << SPEC_SHIFT,
        }
    }

    /// The bar's interval.
    #[inline]
    pub fn spec(&self) -> BarSpec {
        // Only constructors and validated imports set the bits, so the fallback is unreachable.
        BarSpec::from_index(usize::from((self.flags & SPEC_MASK) >> SPEC_SHIFT))
            .unwrap_or(BarSpec::M1)
    }

    /// Interval number (`start_ns / width_ns`).
    #[inline]
    pub fn index(&self) -> i32 {
        self.index
    }

    /// Start of the interval, ns since the epoch (inclusive).
    #[inline]
    pub fn start_ns(&self) -> i64 {
        i64::from(self.index) * self.spec().width_ns()
    }

    /// End of the interval, ns since the epoch (exclusive).
    #[inline]
    pub fn end_ns(&self) -> i64 {
        self.start_ns() + self.spec().width_ns()
    }

    /// Price of the first trade by `(time, arrival)`; `None` without trades.
    pub fn open(&self) -> Option<i64> {
        (self.trades > 0).then_some(self.open)
    }

    /// Highest trade price; `None` without trades.
    pub fn high(&self) -> Option<i64> {
        (self.trades > 0).then_some(self.high)
    }

    /// Lowest trade price; `None` without trades.
    pub fn low(&self) -> Option<i64> {
        (self.trades > 0).then_some(self.low)
    }

    /// Price of the last trade by `(time, arrival)`; `None` without trades.
    pub fn close(&self) -> Option<i64> {
        (self.trades > 0).then_some(self.close)
    }

    /// Key of the opening trade; `None` without trades.
    pub fn open_key(&self) -> Option<TradeKey> {
        (self.trades > 0).then(|| self.open_key_raw())
    }

    /// Key of the closing trade; `None` without trades.
    pub fn close_key(&self) -> Option<TradeKey> {
        (self.trades > 0).then(|| self.close_key_raw())
    }

    /// Event time of the latest trade in the bar (ts_event); `None` without trades.
    pub fn last_event_ns(&self) -> Option<i64> {
        (self.trades > 0).then_some(self.close_time)
    }

    /// Wall-clock time of the last update (ts_init), as supplied by the caller.
    pub fn last_update_ns(&self) -> i64 {
        self.last_update_ns
    }

    /// Σ quantity (mantissa, scale 1e9).
    pub fn volume(&self) -> i128 {
        self.volume.get()
    }

    /// Σ price × quantity (mantissa, scale 1e18), exact.
    pub fn notional(&self) -> i128 {
        self.notional.get()
    }

    /// Number of trades.
    pub fn trades(&self) -> u32 {
        self.trades
    }

    /// How many changes made this version of the bar: every trade, order, cancel and
    /// correction applied to it counts one. It only grows within a state, and a bar rebuilt from
    /// part of its changes (a replay that began inside it) has a lower one, so together with the
    /// generation of the state it orders the versions of a bar (README, "Bar versions").
    pub fn revision(&self) -> u32 {
        self.revision
    }

    /// Order-flow totals.
    pub fn order_flow(&self) -> OrderFlow {
        OrderFlow {
            count: self.orders,
            buy_qty: self.buy_qty.get(),
            sell_qty: self.sell_qty.get(),
        }
    }

    /// Whether the bar is final (event time or wall clock passed `end + grace`).
    pub fn is_closed(&self) -> bool {
        self.flags & CLOSED != 0
    }

    /// Whether a late trade or order changed the bar after it closed.
    ///
    /// Depends on arrival order, so it is excluded from merge exactness.
    pub fn is_revised(&self) -> bool {
        self.flags & REVISED != 0
    }

    /// Volume-weighted average price as a float; `None` when the volume is 0.
    pub fn vwap(&self) -> Option<f64> {
        let volume = self.volume.get();
        // notional has scale 1e18 and volume 1e9, so the ratio still carries one 1e9 factor.
        (volume != 0)
            .then(|| self.notional.get() as f64 / volume as f64 / crate::types::SCALE as f64)
    }

    #[inline]
    fn open_key_raw(&self) -> TradeKey {
        TradeKey::new(
            self.open_time,
            Arrival {
                seq: self.open_seq,
                ord: self.open_ord,
            },
        )
    }

    #[inline]
    fn close_key_raw(&self) -> TradeKey {
        TradeKey::new(
            self.close_time,
            Arrival {
                seq: self.close_seq,
                ord: self.close_ord,
            },
        )
    }

    #[inline]
    fn set_open(&mut self, price: i64, key: TradeKey) {
        self.open = price;
        self.open_time = key.time_ns;
        self.open_seq = key.arrival.seq;
        self.open_ord = key.arrival.ord;
    }

    #[inline]
    fn set_close(&mut self, price: i64, key: TradeKey) {
        self.close = price;
        self.close_time = key.time_ns;
        self.close_seq = key.arrival.seq;
        self.close_ord = key.arrival.ord;
    }

    pub(crate) fn set_closed(&mut self) {
        self.flags |= CLOSED;
    }

    pub(crate) fn set_closed_to(&mut self, closed: bool) {
        if closed {
            self.flags |= CLOSED;
        } else {
            self.flags &= !CLOSED;
        }
    }

    pub(crate) fn set_revised(&mut self) {
        self.flags |= REVISED;
    }

    /// Adds one trade. The caller has checked that `key.time_ns` falls in the interval.
    // Always inlined: it runs three times per trade and the call overhead showed in profiles.
    #[inline(always)]
    pub(crate) fn add_trade(&mut self, price: i64, qty: i64, key: TradeKey, now_ns: i64) {
        if self.trades == 0 {
            self.open = price;
            self.high = price;
            self.low = price;
            self.set_open(price, key);
            self.set_close(price, key);
        } else {
            self.high = self.high.max(price);
            self.low = self.low.min(price);
            // Most trades arrive in time order, so test the close first.
            if (key, price) > (self.close_key_raw(), self.close) {
                self.set_close(price, key);
            } else if (key, price) < (self.open_key_raw(), self.open) {
                self.set_open(price, key);
            }
        }
        self.volume.add(i128::from(qty));
        self.notional.add(i128::from(price) * i128::from(qty));
        self.trades = self.trades.saturating_add(1);
        self.revision = self.revision.saturating_add(1);
        self.last_update_ns = self.last_update_ns.max(now_ns);
        debug_assert!(self.check().is_ok(), "{:?}", self.check());
    }

    /// Replaces the bar's trades by `trades` (key order not required), keeping its order flow,
    /// and counts one change: a cancel or correction recomputes a bar from the trades it still
    /// holds. The caller passes trades inside the interval.
    pub(crate) fn rebuild_trades(
        &mut self,
        trades: impl Iterator<Item = (i64, i64, TradeKey)>,
        now_ns: i64,
    ) {
        let revision = self.revision;
        let mut fresh = Bar::empty(self.spec(), self.index, self.last_update_ns);
        fresh.orders = self.orders;
        fresh.buy_qty = self.buy_qty;
        fresh.sell_qty = self.sell_qty;
        fresh.flags = self.flags;
        for (price, qty, key) in trades {
            fresh.add_trade(price, qty, key, now_ns);
        }
        fresh.revision = revision.saturating_add(1);
        *self = fresh;
    }

    /// Adds one order to the order flow.
    #[inline]
    pub(crate) fn add_order(&mut self, side: Side, qty: i64, now_ns: i64) {
        self.orders = self.orders.saturating_add(1);
        self.revision = self.revision.saturating_add(1);
        match side {
            Side::Buy => self.buy_qty.add(i128::from(qty)),
            Side::Sell => self.sell_qty.add(i128::from(qty)),
            Side::Unknown => {}
        }
        self.last_update_ns = self.last_update_ns.max(now_ns);
    }

    /// Merges a bar of the same interval built from a disjoint set of trades and orders.
    ///
    /// The result equals the bar built from both sets (open/close by key, high/low, sums,
    /// counts, order flow). `closed` and `revised` are OR-ed, `last_update` is the maximum.
    ///
    /// # Errors
    /// [`BarError::MergeMismatch`] when the bars have different specs or intervals.
    pub fn merge(&mut self, other: &Bar) -> Result<(), BarError> {
        if self.flags & SPEC_MASK != other.flags & SPEC_MASK || self.index != other.index {
            return Err(BarError::MergeMismatch);
        }
        self.merge_unchecked_interval(other);
        Ok(())
    }

    /// Merges `other` as if it were in this bar's interval (roll-ups use this for sub-bars).
    pub(crate) fn merge_unchecked_interval(&mut self, other: &Bar) {
        if other.trades > 0 {
            if self.trades == 0 {
                self.open = other.open;
                self.high = other.high;
                self.low = other.low;
                self.close = other.close;
                self.set_open(other.open, other.open_key_raw());
                self.set_close(other.close, other.close_key_raw());
            } else {
                self.high = self.high.max(other.high);
                self.low = self.low.min(other.low);
                if (other.open_key_raw(), other.open) < (self.open_key_raw(), self.open) {
                    self.set_open(other.open, other.open_key_raw());
                }
                if (other.close_key_raw(), other.close) > (self.close_key_raw(), self.close) {
                    self.set_close(other.close, other.close_key_raw());
                }
            }
        }
        self.volume.add(other.volume.get());
        self.notional.add(other.notional.get());
        self.buy_qty.add(other.buy_qty.get());
        self.sell_qty.add(other.sell_qty.get());
        self.trades = self.trades.saturating_add(other.trades);
        self.orders = self.orders.saturating_add(other.orders);
        self.revision = self.revision.saturating_add(other.revision);
        self.last_update_ns = self.last_update_ns.max(other.last_update_ns);
        self.flags |= other.flags & (CLOSED | REVISED);
        debug_assert!(self.check().is_ok(), "{:?}", self.check());
    }

    /// Rolls `sub` (a bar of a smaller interval inside this one) into this bar.
    ///
    /// # Errors
    /// [`BarError::MergeMismatch`] when `sub` does not lie inside this bar's interval.
    pub fn roll_up(&mut self, sub: &Bar) -> Result<(), BarError> {
        let inside = sub.start_ns() >= self.start_ns() && sub.end_ns() <= self.end_ns();
        if !inside || sub.spec() > self.spec() {
            return Err(BarError::MergeMismatch);
        }
        self.merge_unchecked_interval(sub);
        Ok(())
    }

    /// Checks the bar's invariants (used by debug assertions and by state import).
    ///
    /// # Errors
    /// [`BarError::Invalid`] naming the violated invariant.
    pub fn check(&self) -> Result<(), BarError> {
        if self.flags & !(CLOSED | REVISED | SPEC_MASK) != 0
            || (self.flags & SPEC_MASK) >> SPEC_SHIFT > 2
        {
            return Err(BarError::Invalid("unknown flag bits"));
        }
        // Checked: an imported interval number times the width may not fit i64.
        let Some(start) = i64::from(self.index).checked_mul(self.spec().width_ns()) else {
            return Err(BarError::Invalid(
                "interval outside the accepted time range",
            ));
        };
        if start < super::MIN_TIME_NS.saturating_sub(self.spec().width_ns())
            || start > super::MAX_TIME_NS
        {
            return Err(BarError::Invalid(
                "interval outside the accepted time range",
            ));
        }
        if self.trades == 0 {
            let zero = self.open == 0
                && self.high == 0
                && self.low == 0
                && self.close == 0
                && self.open_key_raw() == TradeKey::default()
                && self.close_key_raw() == TradeKey::default()
                && self.volume.get() == 0
                && self.notional.get() == 0;
            return if zero {
                Ok(())
            } else {
                Err(BarError::Invalid("a bar without trades has prices or sums"))
            };
        }
        if self.high < self.open.max(self.close) || self.low > self.open.min(self.close) {
            return Err(BarError::Invalid("high/low do not bound open/close"));
        }
        if (self.open_key_raw(), self.open) > (self.close_key_raw(), self.close) {
            return Err(BarError::Invalid("open key after close key"));
        }
        let end = start + self.spec().width_ns();
        if self.open_time < start || self.close_time >= end {
            return Err(BarError::Invalid("trade time outside the interval"));
        }
        Ok(())
    }
}
