//! The market's vocabulary shared by the decoder and the aggregation engine.
//!
//! Prices and quantities are fixed-point: an `i64` mantissa with [`SCALE_DIGITS`] implied
//! decimal places. Sums (volume, notional) are `i128` so that no realistic bar overflows.
//! Floats appear only at the edge (JSON output, the z-score).

use serde::{Deserialize, Serialize};

/// Number of implied decimal places of every price and quantity mantissa.
pub const SCALE_DIGITS: u32 = 9;
/// `10^SCALE_DIGITS`: the mantissa of the value `1`.
pub const SCALE: i64 = 1_000_000_000;

/// Converts a fixed-point mantissa to a float, for output and statistics only.
#[inline]
pub fn fixed_to_f64(mantissa: i64) -> f64 {
    mantissa as f64 / SCALE as f64
}

/// Converts a wide fixed-point sum (scale [`SCALE`]) to a float.
#[inline]
pub fn wide_to_f64(mantissa: i128) -> f64 {
    mantissa as f64 / SCALE as f64
}

/// Writes a wide fixed-point sum with `scale_digits` implied decimal places as exact decimal
/// text, without trailing zeros (what exact roll-ups in JavaScript read back).
pub fn wide_to_decimal(mantissa: i128, scale_digits: u32) -> String {
    let div = 10u128.pow(scale_digits);
    let abs = mantissa.unsigned_abs();
    let (int, frac) = (abs / div, abs % div);
    let sign = if mantissa < 0 { "-" } else { "" };
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:0width$}", width = scale_digits as usize);
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

/// Aggressor or order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[repr(u8)]
pub enum Side {
    #[default]
    Unknown = 0,
    Buy = 1,
    Sell = 2,
}

impl Side {
    /// Maps the wire code used in batches back to a side; unknown codes are `Unknown`.
    pub fn from_code(code: u8) -> Side {
        match code {
            1 => Side::Buy,
            2 => Side::Sell,
            _ => Side::Unknown,
        }
    }

    /// Lower-case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Unknown => "unknown",
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// Position of a trade in its source's arrival order.
///
/// `seq` is the record's sequence in its source (a Kafka offset, or the message index of a
/// replayed file); `ord` numbers the trades decoded from that record (entries of one
/// MarketDataIncrementalRefresh). Together with the event time it totally orders the trades
/// of a symbol, which makes "ties by arrival" well defined and bar merges exact.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Arrival {
    pub seq: u64,
    pub ord: u32,
}

/// A validated trade, borrowing its text fields from the decoded buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade<'a> {
    pub symbol: &'a str,
    /// Price mantissa, scale [`SCALE`]; always > 0.
    pub price: i64,
    /// Quantity mantissa, scale [`SCALE`]; ≥ 0 (market-data trades may carry no size).
    pub qty: i64,
    /// Event time, nanoseconds since the Unix epoch (UTC).
    pub time_ns: i64,
    pub arrival: Arrival,
    /// ExecID / TradeReportID / entry id; `None` when the source has none (no id dedupe then).
    pub id: Option<&'a str>,
    pub side: Side,
}

/// An order from the orders flow (NewOrderSingle), counted into its bar's order flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order<'a> {
    pub symbol: &'a str,
    pub side: Side,
    /// OrderQty mantissa, scale [`SCALE`]; > 0.
    pub qty: i64,
    /// Limit price mantissa, `None` for market orders.
    pub price: Option<i64>,
    pub time_ns: i64,
    pub arrival: Arrival,
    /// ClOrdID.
    pub cl_ord_id: Option<&'a str>,
}

/// What a trade cancel or correction refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum CorrectionKind {
    Cancel = 1,
    Correct = 2,
}

/// A trade cancel (ExecType H, TradeReportTransType 1) or correction (G, 2) of an earlier trade.
///
/// A cancel removes the referenced trade from its bars; a correction replaces its price and
/// quantity and keeps its time (see [`crate::journal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Correction<'a> {
    pub kind: CorrectionKind,
    pub symbol: Option<&'a str>,
    /// The id of the report itself (ExecID / TradeReportID): a redelivered report applies once.
    pub id: Option<&'a str>,
    /// The id of the trade it refers to (ExecRefID 19 / TradeReportRefID 572).
    pub ref_id: Option<&'a str>,
    /// The corrected LastPx mantissa (corrections only; > 0).
    pub price: Option<i64>,
    /// The corrected LastQty mantissa (corrections only; ≥ 0).
    pub qty: Option<i64>,
    /// Position in the source; numbered with the record's trades, so a trade and its cancel in
    /// one record keep their order.
    pub arrival: Arrival,
}

#[cfg(test)]
mod decimal_text_tests {
    use super::wide_to_decimal;

    #[test]
    fn writes_exact_decimal_text() {
        assert_eq!(wide_to_decimal(0, 9), "0");
        assert_eq!(wide_to_decimal(1_500_000_000, 9), "1.5");
        assert_eq!(wide_to_decimal(-12, 9), "-0.000000012");
        assert_eq!(
            wide_to_decimal(123_456_789_012_345_678_901_234_567, 18),
            "123456789.012345678901234567"
        );
        assert_eq!(
            wide_to_decimal(i128::MIN, 18),
            "-170141183460469231731.687303715884105728"
        );
    }
}
