//! Conversions at the JS edge: fixed-point to numbers, nanoseconds to ISO-8601 text.

use tickstream_core::types::{fixed_to_f64, Side};

/// Epoch milliseconds as a JS number (exact for ±285,000 years).
pub fn ns_to_ms(ns: i64) -> f64 {
    ns.div_euclid(1_000_000) as f64
}

/// ISO-8601 UTC with as many fractional digits as the time needs (0, 3, 6 or 9).
pub fn iso_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let Some(t) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return String::new();
    };
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    if nanos == 0 {
        format!("{base}Z")
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{base}.{:03}Z", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{base}.{:06}Z", nanos / 1_000)
    } else {
        format!("{base}.{nanos:09}Z")
    }
}

/// A price or quantity mantissa as a JS number.
pub fn num(mantissa: i64) -> f64 {
    fixed_to_f64(mantissa)
}

pub fn side(s: Side) -> String {
    s.as_str().to_owned()
}
