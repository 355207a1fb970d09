//! OHLCV bars: tumbling 1m / 5m / 1h intervals aligned to the UTC epoch, per symbol.
//!
//! A [`Bar`] covers `[start, start + width)` with `start = floor(t / width) × width`. Every
//! trade updates the bar of each [`BarSpec`] directly, so 5m and 1h bars are exact roll-ups of
//! the 1m bars (same trades, same merge rules). Bars close by event time (the symbol's latest
//! trade time passing `end + grace`) and optionally by wall clock; see [`BarBook`].
//!
//! # Memory
//!
//! `size_of::<Bar>()` is 168 bytes: four 128-bit sums stored with 8-byte alignment (plain
//! `i128` would pad the struct further), the start as an `i32` interval number, the spec and
//! the closed/revised flags packed in one byte, the last event time taken from the close key,
//! a `u32` revision. At full default retention a symbol holds 1,440 + 2,016 + 720 = 4,176 bars;
//! the series buffers grow in exact steps up to the retention (no power-of-two slack), so the
//! bars take 4,176 × 168 = 701,568 bytes per symbol. (A whole symbol state adds its detector window, 800 bytes for the default
//! z-score, and its id set, up to 2 MiB at the default cap: see [`crate::dedupe`].)

mod bar;
mod book;
mod seq;

#[cfg(test)]
pub(crate) mod test_support;

pub use bar::{Bar, OrderFlow};
pub use book::{BarBook, OrderEffect, TradeEffect};
pub(crate) use book::{BookParts, BookPartsRef};

use crate::types::Arrival;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Earliest event time the engine accepts (≈ year 1824); keeps interval arithmetic overflow-free.
pub const MIN_TIME_NS: i64 = -(1 << 62);
/// Latest event time the engine accepts (≈ year 2116).
pub const MAX_TIME_NS: i64 = 1 << 62;

/// Longest retention accepted per interval: 400 days, so a series never exceeds ~576k bars.
pub const MAX_RETENTION_NS: i64 = 400 * 86_400 * 1_000_000_000;
/// Longest grace period accepted: one day.
pub const MAX_GRACE_NS: i64 = 86_400 * 1_000_000_000;

const NS_PER_SECOND: i64 = 1_000_000_000;

/// Errors of bar specs, configuration and bar merges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarError {
    /// The text is not `<step><unit>` with a unit of `s`, `m`, `h` or `d`.
    #[error("bar spec {0:?} is not <step><s|m|h|d>")]
    BadSpec(String),
    /// The interval is well formed but not one of 1m, 5m, 1h.
    #[error("bar spec {0:?} is not supported (supported: 1m, 5m, 1h)")]
    UnsupportedSpec(String),
    /// A configuration value is out of range.
    #[error("invalid bar configuration: {0}")]
    Config(&'static str),
    /// Two bars of different intervals were merged.
    #[error("cannot merge bars of different intervals")]
    MergeMismatch,
    /// A bar violates an invariant (only possible for imported state).
    #[error("invalid bar: {0}")]
    Invalid(&'static str),
}

/// Unit of a bar interval's step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// Seconds (`s`).
    Second,
    /// Minutes (`m`).
    Minute,
    /// Hours (`h`).
    Hour,
    /// Days (`d`).
    Day,
}

impl TimeUnit {
    /// Length of one unit in nanoseconds.
    pub const fn nanos(self) -> i64 {
        match self {
            TimeUnit::Second => NS_PER_SECOND,
            TimeUnit::Minute => 60 * NS_PER_SECOND,
            TimeUnit::Hour => 3_600 * NS_PER_SECOND,
            TimeUnit::Day => 86_400 * NS_PER_SECOND,
        }
    }

    fn from_char(c: u8) -> Option<TimeUnit> {
        match c {
            b's' => Some(TimeUnit::Second),
            b'm' => Some(TimeUnit::Minute),
            b'h' => Some(TimeUnit::Hour),
            b'd' => Some(TimeUnit::Day),
            _ => None,
        }
    }
}

/// A supported bar interval.
///
/// A closed enum rather than a free (step, unit) pair: roll-up exactness and the fixed-size
/// per-symbol series array rely on every interval being a multiple of the next smaller one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum BarSpec {
    /// One-minute bars.
    M1 = 0,
    /// Five-minute bars.
    M5 = 1,
    /// One-hour bars.
    H1 = 2,
}

impl BarSpec {
    /// Every supported interval, smallest first.
    pub const ALL: [BarSpec; 3] = [BarSpec::M1, BarSpec::M5, BarSpec::H1];
    /// Number of supported intervals.
    pub const COUNT: usize = 3;

    /// Parses `<step><unit>` (`"1m"`, `"5m"`, `"1h"`, also `"60m"`, `"3600s"`).
    ///
    /// # Errors
    /// [`BarError::BadSpec`] when the text is malformed, [`BarError::UnsupportedSpec`] when
    /// the interval is not 1m, 5m or 1h.
    pub fn parse(text: &str) -> Result<BarSpec, BarError> {
        let bytes = text.trim().as_bytes();
        let bad = || BarError::BadSpec(text.to_owned());
        let (&unit, digits) = bytes.split_last().ok_or_else(bad)?;
        let unit = TimeUnit::from_char(unit).ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let step = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        let width = step.checked_mul(unit.nanos()).ok_or_else(bad)?;
        BarSpec::ALL
            .into_iter()
            .find(|s| s.width_ns() == width)
            .ok_or_else(|| BarError::UnsupportedSpec(text.to_owned()))
    }

    /// Width of the interval in nanoseconds.
    #[inline]
    pub const fn width_ns(self) -> i64 {
        self.step() as i64 * self.unit().nanos()
    }

    /// Canonical name: `"1m"`, `"5m"` or `"1h"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BarSpec::M1 => "1m",
            BarSpec::M5 => "5m",
            BarSpec::H1 => "1h",
        }
    }

    /// Number of units per interval.
    pub const fn step(self) -> u32 {
        match self {
            BarSpec::M1 | BarSpec::H1 => 1,
            BarSpec::M5 => 5,
        }
    }

    /// Unit of the step.
    pub const fn unit(self) -> TimeUnit {
        match self {
            BarSpec::M1 | BarSpec::M5 => TimeUnit::Minute,
            BarSpec::H1 => TimeUnit::Hour,
        }
    }

    /// Position in [`BarSpec::ALL`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Inverse of [`BarSpec::index`].
    pub const fn from_index(index: usize) -> Option<BarSpec> {
        match index {
            0 => Some(BarSpec::M1),
            1 => Some(BarSpec::M5),
            2 => Some(BarSpec::H1),
            _ => None,
        }
    }

    /// Start of the interval containing `time_ns` (floor towards −∞, so negative times align too).
    #[inline]
    pub const fn align(self, time_ns: i64) -> i64 {
        time_ns.div_euclid(self.width_ns()) * self.width_ns()
    }
}

impl fmt::Display for BarSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BarSpec {
    type Err = BarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BarSpec::parse(s)
    }
}

/// Total order of a symbol's trades: event time, then arrival.
///
/// Derived `Ord` compares `time_ns` first, then `arrival` (seq, ord).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct TradeKey {
    /// Event time, ns since the epoch.
    pub time_ns: i64,
    /// Arrival position within the source.
    pub arrival: Arrival,
}

impl TradeKey {
    /// Builds a key from its parts.
    pub const fn new(time_ns: i64, arrival: Arrival) -> TradeKey {
        TradeKey { time_ns, arrival }
    }
}

/// Closing and retention settings of a [`BarBook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarConfig {
    /// How long after a bar's end (in event time) late trades are still expected; default 2 s.
    pub grace_ns: i64,
    /// Retention per interval (index = [`BarSpec::index`]), measured back from the symbol's
    /// latest event; default 24 h of 1m, 7 days of 5m, 30 days of 1h.
    pub retention_ns: [i64; BarSpec::COUNT],
}

impl Default for BarConfig {
    fn default() -> Self {
        const DAY: i64 = 86_400 * NS_PER_SECOND;
        BarConfig {
            grace_ns: 2 * NS_PER_SECOND,
            retention_ns: [DAY, 7 * DAY, 30 * DAY],
        }
    }
}

impl BarConfig {
    /// Checks every value is in range.
    ///
    /// # Errors
    /// [`BarError::Config`] naming the first offending setting.
    pub fn validate(&self) -> Result<(), BarError> {
        if !(0..=MAX_GRACE_NS).contains(&self.grace_ns) {
            return Err(BarError::Config("grace must be between 0 and 1 day"));
        }
        for spec in BarSpec::ALL {
            let r = self.retention_ns[spec.index()];
            if r < spec.width_ns() || r > MAX_RETENTION_NS {
                return Err(BarError::Config(
                    "retention must be at least one interval and at most 400 days",
                ));
            }
        }
        Ok(())
    }

    /// Number of intervals of `spec` kept: `ceil(retention / width)`.
    #[inline]
    pub fn retained_bars(&self, spec: BarSpec) -> i64 {
        let w = spec.width_ns();
        (self.retention_ns[spec.index()] + w - 1) / w
    }
}

#[cfg(test)]
mod tests;
