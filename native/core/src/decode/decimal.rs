//! Decimal text ↔ fixed-point mantissa (scale [`SCALE`]).
//!
//! FIX `float`/`Price`/`Qty` values and JSON numbers are parsed from their exact text, never
//! through `f64`, so that `109.03125` is exactly `109_031_250_000`.

use crate::types::{SCALE, SCALE_DIGITS};

/// Why a decimal text could not be turned into a mantissa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The text is empty.
    #[error("empty decimal")]
    Empty,
    /// The text is not `-?digits[.digits]` (exponents, `+`, spaces, `-`, `.` alone …).
    #[error("not a plain decimal")]
    Syntax,
    /// The value does not fit an `i64` mantissa at scale 1e9 (|value| > ~9.22e9).
    #[error("decimal out of range")]
    Overflow,
}

/// `10^(9 - n)` for `n` fractional digits already read (`n` ≤ 9).
const FRAC_SCALE: [u64; 10] = [
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// Parses FIX float text (`-?digits[.digits]`) to an `i64` mantissa at scale 1e9.
///
/// Accepted: an optional `-`, integer digits, an optional `.` and fractional digits, with at
/// least one digit overall (`.995` and `5.` are fine). Rejected: empty text, `-` or `.` alone,
/// `+`, exponents, spaces, any other byte.
///
/// More than nine fractional digits are rounded half-up (away from zero) on the tenth digit:
/// real feeds print binary floats with 17 significant digits (`25929.169999999996`), and the
/// nearest nano-unit is what the sender meant. Digits after the tenth cannot change a
/// half-up decision once the tenth digit is known, but they are still checked to be digits.
///
/// # Errors
///
/// [`DecimalError::Empty`], [`DecimalError::Syntax`] for malformed text and
/// [`DecimalError::Overflow`] when the value does not fit an `i64` mantissa.
#[inline]
pub fn parse_decimal(text: &[u8]) -> Result<i64, DecimalError> {
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };

    let n = digits.len();
    let mut i = 0;
    let mut int: u64 = 0;
    // Integer part. Eighteen digits cannot overflow a u64, so the loop needs no checked
    // arithmetic; longer runs (leading zeros, absurd values) continue on the checked path.
    let fast_end = n.min(18);
    while i < fast_end {
        let d = digits[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        int = int * 10 + u64::from(d);
        i += 1;
    }
    if i == 18 {
        while i < n {
            let d = digits[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            int = int
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d)))
                .ok_or(DecimalError::Overflow)?;
            i += 1;
        }
    }
    let int_digits = i;

    let mut frac: u64 = 0;
    let mut frac_digits = 0usize;
    let mut round_up = false;
    if i < n && digits[i] == b'.' {
        i += 1;
        let frac_start = i;
        // Up to nine digits are kept exactly.
        let kept_end = n.min(frac_start + SCALE_DIGITS as usize);
        while i < kept_end {
            let d = digits[i].wrapping_sub(b'0');
            if d > 9 {
                return Err(DecimalError::Syntax);
            }
            frac = frac * 10 + u64::from(d);
            i += 1;
        }
        frac_digits = i - frac_start;
        // The tenth decides the rounding; the rest only need to be digits.
        if i < n {
            let d = digits[i].wrapping_sub(b'0');
            if d > 9 {
                return Err(DecimalError::Syntax);
            }
            round_up = d >= 5;
            i += 1;
            while i < n {
                if !digits[i].is_ascii_digit() {
                    return Err(DecimalError::Syntax);
                }
                i += 1;
            }
        }
        if int_digits == 0 && frac_digits == 0 {
            // "." or "-."
            return Err(DecimalError::Syntax);
        }
    } else if int_digits == 0 {
        // "-" alone, or a leading non-digit.
        return Err(DecimalError::Syntax);
    }
    if i != n {
        return Err(DecimalError::Syntax);
    }

    let magnitude = int
        .checked_mul(SCALE as u64)
        .and_then(|v| v.checked_add(frac * FRAC_SCALE[frac_digits]))
        .and_then(|v| v.checked_add(u64::from(round_up)))
        .ok_or(DecimalError::Overflow)?;
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        if magnitude > i64::MAX as u64 + 1 {
            return Err(DecimalError::Overflow);
        }
        Ok((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).map_err(|_| DecimalError::Overflow)
    }
}

/// Formats a mantissa (scale 1e9) as the shortest exact decimal: `12.3`, `100`, `0.000000001`.
pub fn format_fixed(mantissa: i64) -> String {
    let magnitude = mantissa.unsigned_abs();
    let int = magnitude / SCALE as u64;
    let frac = magnitude % SCALE as u64;
    let mut out = String::with_capacity(24);
    if mantissa < 0 {
        out.push('-');
    }
    out.push_str(&int.to_string());
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<i64, DecimalError> {
        parse_decimal(s.as_bytes())
    }

    #[test]
    fn parses_plain_forms() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("12.3"), Ok(12_300_000_000));
        assert_eq!(p("109.03125"), Ok(109_031_250_000));
        assert_eq!(p(".995"), Ok(995_000_000));
        assert_eq!(p("5."), Ok(5_000_000_000));
        assert_eq!(p("-1.5"), Ok(-1_500_000_000));
        assert_eq!(p("-0"), Ok(0));
        assert_eq!(p("0.000000001"), Ok(1));
        assert_eq!(p("00000000000000000000000012"), Ok(12_000_000_000));
        assert_eq!(p("5000.000000000000"), Ok(5_000 * SCALE));
    }

    #[test]
    fn rounds_beyond_nine_fraction_digits_half_up() {
        assert_eq!(p("25929.169999999996"), Ok(25_929_170_000_000));
        assert_eq!(p("0.0000000004"), Ok(0));
        assert_eq!(p("0.0000000005"), Ok(1));
        assert_eq!(p("0.00000000049999"), Ok(0));
        assert_eq!(p("-0.0000000005"), Ok(-1));
        assert_eq!(p("1.9999999999"), Ok(2 * SCALE));
        assert_eq!(p("0.1234567891x"), Err(DecimalError::Syntax));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "-", ".", "-.", "+1", "1e5", "1E5", " 1", "1 ", "1..2", "1.2.3", "--1", "0x10", "1,5",
        ] {
            assert_eq!(p(bad), Err(DecimalError::Syntax), "{bad:?}");
        }
        assert_eq!(p(""), Err(DecimalError::Empty));
    }

    #[test]
    fn detects_overflow() {
        assert_eq!(p("9223372036.854775807"), Ok(i64::MAX));
        assert_eq!(p("9223372036.854775808"), Err(DecimalError::Overflow));
        assert_eq!(p("-9223372036.854775808"), Ok(i64::MIN));
        assert_eq!(p("-9223372036.854775809"), Err(DecimalError::Overflow));
        assert_eq!(p("9223372036.8547758075"), Err(DecimalError::Overflow));
        assert_eq!(p("99999999999999999999999"), Err(DecimalError::Overflow));
    }

    #[test]
    fn formats_shortest_exact() {
        assert_eq!(format_fixed(12_300_000_000), "12.3");
        assert_eq!(format_fixed(100 * SCALE), "100");
        assert_eq!(format_fixed(1), "0.000000001");
        assert_eq!(format_fixed(0), "0");
        assert_eq!(format_fixed(-1_500_000_000), "-1.5");
        assert_eq!(format_fixed(i64::MIN), "-9223372036.854775808");
        assert_eq!(format_fixed(i64::MAX), "9223372036.854775807");
    }
}
