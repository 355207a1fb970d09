//! Tick and volume bars: a bar every `n` trades (`<n>t`) or every `n` units of volume (`<n>v`),
//! per symbol, in the order trades are applied (not event time). A volume bar closes with the
//! trade that reaches or crosses its threshold; that trade is not split, so a bar may hold more
//! than `n` units. Late trades join the forming bar like any other; cancels and corrections do not
//! rewrite these bars (their boundaries depend on every trade before them); a replay changes
//! nothing, because duplicates are skipped before a trade is applied.
//!
//! Each book keeps its forming bar and the last [`KEEP_CLOSED`] closed bars.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Closed bars kept per spec and symbol (about 100 bytes each).
pub const KEEP_CLOSED: usize = 500;
/// Specs per engine.
pub const MAX_SPECS: usize = 4;

/// What closes a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActivitySpec {
    /// Every `n` trades.
    Ticks(u32),
    /// Every `n` units of volume (mantissa, scale 1e9).
    Volume(i128),
}

/// Why a spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivityError {
    /// Not `<n>t` or `<n>v` with `n` from 1 to 1,000,000,000.
    #[error("not a tick or volume bar spec: {0:?} (expected <n>t or <n>v)")]
    Malformed(String),
    /// More than [`MAX_SPECS`] specs, or one twice.
    #[error("at most {MAX_SPECS} distinct tick and volume bar specs")]
    TooMany,
}

impl ActivitySpec {
    /// Parses `100t` or `5000v`.
    ///
    /// # Errors
    /// [`ActivityError::Malformed`] for anything else.
    pub fn parse(text: &str) -> Result<ActivitySpec, ActivityError> {
        let bad = || ActivityError::Malformed(text.to_owned());
        let (digits, kind) = text.split_at(text.len().saturating_sub(1));
        if digits.is_empty()
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        if n > 1_000_000_000 {
            return Err(bad());
        }
        match kind {
            "t" => Ok(ActivitySpec::Ticks(n)),
            "v" => Ok(ActivitySpec::Volume(
                i128::from(n) * i128::from(crate::types::SCALE),
            )),
            _ => Err(bad()),
        }
    }

    /// The text it parses from.
    pub fn text(&self) -> String {
        match self {
            ActivitySpec::Ticks(n) => format!("{n}t"),
            ActivitySpec::Volume(m) => format!("{}v", m / i128::from(crate::types::SCALE)),
        }
    }
}

/// Parses a comma-separated list (`"100t,5000v"`; empty for none).
///
/// # Errors
/// A malformed spec, or more than [`MAX_SPECS`] distinct ones.
pub fn parse_specs(text: &str) -> Result<Vec<ActivitySpec>, ActivityError> {
    let mut out: Vec<ActivitySpec> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let spec = ActivitySpec::parse(part)?;
        if out.contains(&spec) || out.len() == MAX_SPECS {
            return Err(ActivityError::TooMany);
        }
        out.push(spec);
    }
    Ok(out)
}

/// The specs of an engine (at most [`MAX_SPECS`]), as a `Copy` value for configurations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivitySpecs([Option<ActivitySpec>; MAX_SPECS]);

impl ActivitySpecs {
    /// The specs of `list`.
    ///
    /// # Errors
    /// [`ActivityError::TooMany`] for more than [`MAX_SPECS`] or a repeated spec.
    pub fn new(list: &[ActivitySpec]) -> Result<ActivitySpecs, ActivityError> {
        let mut out = [None; MAX_SPECS];
        for (i, &s) in list.iter().enumerate() {
            if i == MAX_SPECS || list[..i].contains(&s) {
                return Err(ActivityError::TooMany);
            }
            out[i] = Some(s);
        }
        Ok(ActivitySpecs(out))
    }

    /// The specs, in order.
    pub fn to_vec(&self) -> Vec<ActivitySpec> {
        self.0.iter().flatten().copied().collect()
    }
}

/// One tick or volume bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityBar {
    /// Bar number within the symbol's state (0 for its first bar of this spec).
    pub number: u64,
    /// Event time of the first and of the last trade applied to it.
    pub first_ns: i64,
    pub last_ns: i64,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    /// Σ quantity (mantissa, scale 1e9).
    pub volume: i128,
    /// Σ price × quantity (mantissa, scale 1e18).
    pub notional: i128,
    pub trades: u32,
    pub closed: bool,
}

/// The bars of one spec: closed ones (oldest first), then the forming one if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySeries {
    spec: ActivitySpec,
    bars: VecDeque<ActivityBar>,
    next_number: u64,
}

impl ActivitySeries {
    fn new(spec: ActivitySpec) -> ActivitySeries {
        ActivitySeries {
            spec,
            bars: VecDeque::new(),
            next_number: 0,
        }
    }

    fn apply(&mut self, price: i64, qty: i64, time_ns: i64) {
        let forming = self.bars.back_mut().filter(|b| !b.closed);
        let bar = match forming {
            Some(b) => b,
            None => {
                if self.bars.len() >= KEEP_CLOSED {
                    self.bars.pop_front();
                }
                self.bars.push_back(ActivityBar {
                    number: self.next_number,
                    first_ns: time_ns,
                    last_ns: time_ns,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume: 0,
                    notional: 0,
                    trades: 0,
                    closed: false,
                });
                self.next_number += 1;
                match self.bars.back_mut() {
                    Some(b) => b,
                    None => return,
                }
            }
        };
        bar.last_ns = time_ns;
        bar.close = price;
        bar.high = bar.high.max(price);
        bar.low = bar.low.min(price);
        bar.volume += i128::from(qty);
        bar.notional += i128::from(price) * i128::from(qty);
        bar.trades = bar.trades.saturating_add(1);
        bar.closed = match self.spec {
            ActivitySpec::Ticks(n) => bar.trades >= n,
            ActivitySpec::Volume(m) => bar.volume >= m,
        };
    }
}

/// A symbol's tick and volume bars, one series per configured spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityBook {
    series: Vec<ActivitySeries>,
}

impl ActivityBook {
    /// An empty book for `specs`.
    pub fn new(specs: &[ActivitySpec]) -> ActivityBook {
        ActivityBook {
            series: specs.iter().map(|&s| ActivitySeries::new(s)).collect(),
        }
    }

    /// Whether no spec is configured.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Applies one trade to every series.
    #[inline]
    pub fn apply(&mut self, price: i64, qty: i64, time_ns: i64) {
        for s in &mut self.series {
            s.apply(price, qty, time_ns);
        }
    }

    /// The newest `limit` bars of `spec`, oldest first (the forming one last); `None` when the
    /// book has no such spec.
    pub fn bars(&self, spec: ActivitySpec, limit: usize) -> Option<Vec<ActivityBar>> {
        let s = self.series.iter().find(|s| s.spec == spec)?;
        let skip = s.bars.len().saturating_sub(limit);
        Some(s.bars.iter().skip(skip).copied().collect())
    }

    /// Whether the book's specs are `specs`, in order.
    pub fn has_specs(&self, specs: &[ActivitySpec]) -> bool {
        self.series.len() == specs.len() && self.series.iter().zip(specs).all(|(s, &t)| s.spec == t)
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|s| s.bars.capacity() * std::mem::size_of::<ActivityBar>())
            .sum()
    }

    /// Checks what an import must hold: bars in number order, at most one forming and last,
    /// consistent prices.
    ///
    /// # Errors
    /// A description of the violated invariant.
    pub fn validate(&self) -> Result<(), &'static str> {
        for s in &self.series {
            if s.bars.len() > KEEP_CLOSED + 1 {
                return Err("too many tick or volume bars");
            }
            let ordered = s
                .bars
                .iter()
                .zip(s.bars.iter().skip(1))
                .all(|(a, b)| a.number < b.number && a.closed);
            let numbered = s.bars.back().is_none_or(|b| b.number < s.next_number);
            let sane = s.bars.iter().all(|b| {
                b.trades > 0 && b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close)
            });
            if !(ordered && numbered && sane) {
                return Err("tick or volume bars out of order or inconsistent");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SCALE;

    #[test]
    fn parses_specs() {
        assert_eq!(ActivitySpec::parse("100t"), Ok(ActivitySpec::Ticks(100)));
        assert_eq!(
            ActivitySpec::parse("5v"),
            Ok(ActivitySpec::Volume(5 * i128::from(SCALE)))
        );
        for bad in ["", "t", "0t", "01t", "5m", "-5t", "5 t", "2000000000t"] {
            assert!(ActivitySpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_specs("").unwrap(), vec![]);
        assert_eq!(parse_specs("3t, 10v").unwrap().len(), 2);
        assert_eq!(parse_specs("3t,3t"), Err(ActivityError::TooMany));
        assert_eq!(ActivitySpec::parse("10v").unwrap().text(), "10v");
    }

    #[test]
    fn closes_tick_bars_every_n_trades_and_volume_bars_on_the_crossing_trade() {
        let specs = parse_specs("3t,10v").unwrap();
        let mut book = ActivityBook::new(&specs);
        // Quantities 4, 4, 4, 1, 9 (units) at prices 1..=5, times descending (late trades count
        // in applied order).
        for (i, q) in [4, 4, 4, 1, 9].iter().enumerate() {
            let i = i as i64;
            book.apply((i + 1) * SCALE, q * SCALE, 100 - i);
        }
        let ticks = book.bars(specs[0], 10).unwrap();
        assert_eq!(
            ticks
                .iter()
                .map(|b| (b.number, b.trades, b.open, b.close, b.closed))
                .collect::<Vec<_>>(),
            vec![
                (0, 3, SCALE, 3 * SCALE, true),
                (1, 2, 4 * SCALE, 5 * SCALE, false)
            ]
        );
        assert_eq!((ticks[0].first_ns, ticks[0].last_ns), (100, 98));
        let volume = book.bars(specs[1], 10).unwrap();
        // 4 + 4 + 4 = 12 ≥ 10 closes with the third trade; 1 + 9 = 10 closes with the fifth.
        assert_eq!(
            volume
                .iter()
                .map(|b| (b.trades, b.volume / i128::from(SCALE), b.closed))
                .collect::<Vec<_>>(),
            vec![(3, 12, true), (2, 10, true)]
        );
        assert_eq!(
            volume[1].notional,
            i128::from(4 * SCALE) * i128::from(SCALE)
                + i128::from(5 * SCALE) * i128::from(9 * SCALE)
        );
        assert_eq!(book.bars(specs[1], 1).unwrap().len(), 1);
        assert!(book.validate().is_ok());
        assert!(book.has_specs(&specs) && !book.has_specs(&specs[..1]));
    }

    #[test]
    fn keeps_a_bounded_number_of_closed_bars() {
        let spec = ActivitySpec::Ticks(1);
        let mut book = ActivityBook::new(&[spec]);
        for i in 0..(KEEP_CLOSED as i64 + 10) {
            book.apply(SCALE, SCALE, i);
        }
        let bars = book.bars(spec, usize::MAX).unwrap();
        assert_eq!(bars.len(), KEEP_CLOSED);
        assert_eq!(bars[0].number, 10);
    }
}
