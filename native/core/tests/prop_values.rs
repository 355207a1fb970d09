//! Property tests of the value parsers against independent references: decimals against an
//! `i128` computation, timestamps against chrono.

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use proptest::prelude::*;
use tickstream_core::decode::time::{
    parse_date_and_time, parse_utc_timestamp, END_NS, MAX_YEAR, MIN_YEAR,
};
use tickstream_core::decode::{format_fixed, parse_decimal, DecimalError};

/// Reference decimal parser: shape check, then exact `i128` arithmetic on the digits
/// (saturating far beyond the `i64` range so that overflow stays detectable).
fn reference_decimal(text: &str) -> Result<i64, DecimalError> {
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let frac_digits = frac.unwrap_or("");
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac_digits) || (int.is_empty() && frac_digits.is_empty()) {
        return Err(DecimalError::Syntax);
    }
    let cap = 1i128 << 100;
    let mut value: i128 = 0;
    for b in int.bytes() {
        value = (value * 10 + i128::from(b - b'0')).min(cap);
    }
    for i in 0..9 {
        let d = frac_digits
            .as_bytes()
            .get(i)
            .map_or(0, |b| i128::from(b - b'0'));
        value = (value * 10 + d).min(cap);
    }
    if frac_digits.as_bytes().get(9).is_some_and(|&b| b >= b'5') {
        value += 1;
    }
    let value = if neg { -value } else { value };
    i64::try_from(value).map_err(|_| DecimalError::Overflow)
}

/// Formats `mantissa / 10^scale` with exactly `scale` fraction digits.
fn with_scale(mantissa: i64, scale: u32) -> String {
    let p = 10u64.pow(scale);
    let a = mantissa.unsigned_abs();
    let sign = if mantissa < 0 { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{a}")
    } else {
        format!("{sign}{}.{:0width$}", a / p, a % p, width = scale as usize)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn scaled_integers_parse_exactly(mantissa in any::<i64>(), scale in 0u32..=9) {
        let text = with_scale(mantissa, scale);
        let expected = i64::try_from(i128::from(mantissa) * 10i128.pow(9 - scale))
            .map_err(|_| DecimalError::Overflow);
        prop_assert_eq!(parse_decimal(text.as_bytes()), expected, "{}", text);
        prop_assert_eq!(reference_decimal(&text), expected);
    }

    #[test]
    fn spelling_variants_parse_alike(int in 0u64..10_000_000, frac in 0u32..1_000_000_000, zeros in 0usize..4) {
        let canonical = parse_decimal(format!("{int}.{frac:09}").as_bytes()).unwrap();
        let lead = "0".repeat(zeros);
        let trail = "0".repeat(zeros);
        let padded = format!("{lead}{int}.{frac:09}{trail}");
        prop_assert_eq!(parse_decimal(padded.as_bytes()), Ok(canonical));
        if int == 0 {
            prop_assert_eq!(parse_decimal(format!(".{frac:09}").as_bytes()), Ok(canonical));
        }
        if frac == 0 {
            prop_assert_eq!(parse_decimal(format!("{int}.").as_bytes()), Ok(canonical));
        }
    }

    #[test]
    fn long_fractions_round_half_up(neg in any::<bool>(), int in 0u64..9_000_000_000, digits in "[0-9]{10,30}") {
        let text = format!("{}{int}.{digits}", if neg { "-" } else { "" });
        let first9: i128 = digits[..9].parse().unwrap();
        let up = i128::from(digits.as_bytes()[9] >= b'5');
        let magnitude = i128::from(int) * 1_000_000_000 + first9 + up;
        let expected = i64::try_from(if neg { -magnitude } else { magnitude })
            .map_err(|_| DecimalError::Overflow);
        prop_assert_eq!(parse_decimal(text.as_bytes()), expected, "{}", text);
    }

    #[test]
    fn arbitrary_text_matches_the_reference(text in "-?[0-9.]{0,25}|[-+0-9.eE ]{0,12}") {
        prop_assert_eq!(parse_decimal(text.as_bytes()), reference_decimal(&text), "{:?}", text);
    }

    #[test]
    fn format_fixed_round_trips_shortest(mantissa in any::<i64>()) {
        let text = format_fixed(mantissa);
        prop_assert_eq!(parse_decimal(text.as_bytes()), Ok(mantissa));
        if let Some((_, frac)) = text.split_once('.') {
            prop_assert!(!frac.ends_with('0') && !frac.is_empty() && frac.len() <= 9, "{}", text);
        }
    }

    #[test]
    fn timestamps_round_trip_through_chrono(ns in 0i64..END_NS, width_index in 0usize..4) {
        let width = [0usize, 3, 6, 9][width_index];
        let dt = DateTime::from_timestamp_nanos(ns);
        let mut text = dt.format("%Y%m%d-%H:%M:%S").to_string();
        let nanos = dt.nanosecond();
        if width > 0 {
            text.push_str(&format!(".{:09}", nanos)[..width + 1]);
        }
        let unit = 10i64.pow(9 - width as u32);
        prop_assert_eq!(parse_utc_timestamp(text.as_bytes()), Ok(ns - ns.rem_euclid(unit)), "{}", text);
        // MDEntryDate + MDEntryTime give the same instant.
        let (date, time) = text.split_once('-').unwrap();
        prop_assert_eq!(parse_date_and_time(date.as_bytes(), time.as_bytes()), Ok(ns - ns.rem_euclid(unit)));
    }

    #[test]
    fn calendar_validation_matches_chrono(
        y in prop_oneof![3 => 1965i32..=2265, 1 => 0i32..=9999], mo in 0u32..=13, d in 0u32..=32,
        h in 0u32..=25, mi in 0u32..=61, s in 0u32..=61, ms in 0u32..1000,
    ) {
        let text = format!("{y:04}{mo:02}{d:02}-{h:02}:{mi:02}:{s:02}.{ms:03}");
        // chrono has no second 60; a leap second is the next second.
        let (sec, carry) = if s == 60 { (59, 1_000_000_000) } else { (s, 0) };
        let expected = NaiveDate::from_ymd_opt(y, mo, d)
            .filter(|date| (MIN_YEAR as i32..=MAX_YEAR as i32).contains(&date.year()))
            .and_then(|date| date.and_hms_milli_opt(h, mi, sec, ms))
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
            .map(|n| n + carry);
        prop_assert_eq!(parse_utc_timestamp(text.as_bytes()).ok(), expected, "{}", text);
    }

    #[test]
    fn malformed_timestamps_never_panic(text in "[0-9:.\\-]{0,30}") {
        let _ = parse_utc_timestamp(text.as_bytes());
    }
}
