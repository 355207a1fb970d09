//! FIX UTC time fields → nanoseconds since the Unix epoch, with exact integer arithmetic.
//!
//! Supported range: years 1970 to 2261 inclusive. Earlier times would be negative and the
//! engine's windows never reach them (QuickFIX's placeholder `00000000-00:00:00` and
//! `19000101-00:00:00` are not event times); later ones leave the `i64` nanosecond range
//! (which ends in April 2262).

/// The first year accepted in a timestamp.
pub const MIN_YEAR: u32 = 1970;
/// The last year accepted in a timestamp.
pub const MAX_YEAR: u32 = 2261;

use super::swar;

const NS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// Nanoseconds per unit of a 3-, 6- or 9-digit fraction.
const FRACTION_SCALE: [i64; 3] = [1_000_000, 1_000, 1];

/// Why a FIX time field was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The text does not have the `YYYYMMDD-HH:MM:SS[.f]` shape (or its parts' shapes).
    #[error("malformed UTC timestamp")]
    Syntax,
    /// The fraction has a digit count other than 0, 3, 6 or 9.
    #[error("fraction must have 3, 6 or 9 digits")]
    Fraction,
    /// A calendar or clock field is out of range (month 13, 30 February, hour 24 …).
    #[error("date or time field out of range")]
    Field,
    /// The year is outside [`MIN_YEAR`]..=[`MAX_YEAR`].
    #[error("year outside 1970..=2261")]
    Year,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
///
/// Valid for any date whose year fits an `i64` without overflow in the intermediate
/// products; callers pass validated dates.
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400; // [0, 399]
    let m = month as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + day as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Whether `year` is a Gregorian leap year.
// `u32::is_multiple_of` needs Rust 1.87; the workspace declares rust-version 1.85.
#[allow(clippy::manual_is_multiple_of)]
pub const fn is_leap_year(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1–12) of `year`.
pub const fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses UTCDateOnly `YYYYMMDD` to nanoseconds since the epoch at 00:00:00 UTC.
///
/// # Errors
///
/// [`TimestampError`] when the text is not eight digits, the date does not exist, or the year
/// is outside [`MIN_YEAR`]..=[`MAX_YEAR`].
#[inline]
pub fn parse_utc_date_only(text: &[u8]) -> Result<i64, TimestampError> {
    if text.len() != 8 {
        return Err(TimestampError::Syntax);
    }
    date_ns(text)
}

/// Days since 1970-01-01 for a validated date with `year` ≥ 1: [`days_from_civil`] in
/// unsigned arithmetic, whose divisions by constants compile to multiplications.
#[inline(always)]
const fn days_since_epoch(year: u32, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe) as i64 - 719_468
}

/// Validates the 8-digit date at the start of `text` and returns its midnight in ns.
#[inline(always)]
fn date_ns(text: &[u8]) -> Result<i64, TimestampError> {
    // All eight digits in one word: one validity test and a pairwise conversion.
    let word = swar::load(text, 0).ok_or(TimestampError::Syntax)?;
    if !swar::all_digits(word, 8) {
        return Err(TimestampError::Syntax);
    }
    let pairs = swar::digit_pairs(word);
    let year = pairs[0] * 100 + pairs[1];
    let (month, day) = (pairs[2], pairs[3]);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(TimestampError::Field);
    }
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err(TimestampError::Year);
    }
    Ok(days_since_epoch(year, month, day) * SECS_PER_DAY * NS_PER_SEC)
}

/// Parses UTCTimeOnly `HH:MM:SS[.sss|.ssssss|.sssssssss]` to nanoseconds since midnight.
///
/// Second 60 (a leap second) is accepted and counted as the next second, which is what a
/// POSIX clock shows after it; the result may therefore reach 86,400 s.
///
/// # Errors
///
/// [`TimestampError`] when the shape is wrong, the fraction has a digit count other than 0,
/// 3, 6 or 9, or a field is out of range (hour > 23, minute > 59, second > 60).
#[inline]
pub fn parse_utc_time_only(text: &[u8]) -> Result<i64, TimestampError> {
    // "HH:MM:SS" is one word: check the colons, then the six digits as pairs.
    let word = swar::load(text, 0).ok_or(TimestampError::Syntax)?;
    const COLONS_MASK: u64 = 0x0000_FF00_00FF_0000;
    const COLONS: u64 = u64::from_le_bytes([0, 0, b':', 0, 0, b':', 0, 0]);
    if word & COLONS_MASK != COLONS {
        return Err(TimestampError::Syntax);
    }
    // Turn the colons into '0's so that the digit test and conversion cover all eight bytes.
    let digits = word ^ (COLONS ^ u64::from_le_bytes([0, 0, b'0', 0, 0, b'0', 0, 0]));
    if !swar::all_digits(digits, 8) {
        return Err(TimestampError::Syntax);
    }
    let pairs = swar::digit_pairs(digits);
    // The pairs are "HH", "0M", "M0", "SS" (M being the minute's two digits).
    let hour = pairs[0];
    let minute = pairs[1] * 10 + pairs[2] / 10;
    let second = pairs[3];
    let frac_ns = match text.len() {
        8 => 0,
        12 | 15 | 18 => {
            if text[8] != b'.' {
                return Err(TimestampError::Syntax);
            }
            let frac = &text[9..];
            let mut value = 0u32;
            for &b in frac {
                let d = b.wrapping_sub(b'0');
                if d > 9 {
                    return Err(TimestampError::Syntax);
                }
                value = value * 10 + u32::from(d);
            }
            // 3 digits → ×1e6, 6 → ×1e3, 9 → ×1.
            i64::from(value) * FRACTION_SCALE[frac.len() / 3 - 1]
        }
        _ => {
            return Err(if text[8] == b'.' {
                TimestampError::Fraction
            } else {
                TimestampError::Syntax
            })
        }
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err(TimestampError::Field);
    }
    let secs = i64::from(hour * 3600 + minute * 60 + second);
    Ok(secs * NS_PER_SEC + frac_ns)
}

/// Parses UTCTimestamp `YYYYMMDD-HH:MM:SS[.sss|.ssssss|.sssssssss]` to ns since the epoch.
///
/// # Errors
///
/// [`TimestampError`] for a wrong shape, a fraction of another length than 0, 3, 6 or 9
/// digits, a date or clock field out of range, or a year outside
/// [`MIN_YEAR`]..=[`MAX_YEAR`] (so `00000000-00:00:00` is rejected).
#[inline]
pub fn parse_utc_timestamp(text: &[u8]) -> Result<i64, TimestampError> {
    if text.len() < 17 || text[8] != b'-' {
        return Err(TimestampError::Syntax);
    }
    let time = parse_utc_time_only(&text[9..])?;
    Ok(date_ns(text)? + time)
}

/// The last date a record's timestamps had, validated and converted: consecutive messages
/// almost always share it, so the calendar checks and day count run once per day.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DateCache {
    /// The eight date bytes as a word; zero (never a valid date) when empty.
    word: u64,
    midnight_ns: i64,
}

/// [`parse_utc_timestamp`] reusing the date of the previous call when it is the same.
///
/// # Errors
///
/// As [`parse_utc_timestamp`].
#[inline]
pub(crate) fn parse_utc_timestamp_cached(
    text: &[u8],
    cache: &mut DateCache,
) -> Result<i64, TimestampError> {
    if text.len() < 17 || text[8] != b'-' {
        return Err(TimestampError::Syntax);
    }
    let time = parse_utc_time_only(&text[9..])?;
    let word = swar::load(text, 0).ok_or(TimestampError::Syntax)?;
    if word != cache.word {
        cache.midnight_ns = date_ns(text)?;
        cache.word = word;
    }
    Ok(cache.midnight_ns + time)
}

/// Combines MDEntryDate (UTCDateOnly) and MDEntryTime (UTCTimeOnly) into ns since the epoch.
///
/// # Errors
///
/// [`TimestampError`] when either part is invalid.
#[inline]
pub fn parse_date_and_time(date: &[u8], time: &[u8]) -> Result<i64, TimestampError> {
    Ok(parse_utc_date_only(date)? + parse_utc_time_only(time)?)
}

/// The first nanosecond not representable by [`MAX_YEAR`]: 2262-01-01T00:00:00Z.
pub const END_NS: i64 = days_from_civil(MAX_YEAR as i64 + 1, 1, 1) * SECS_PER_DAY * NS_PER_SEC;

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Result<i64, TimestampError> {
        parse_utc_timestamp(s.as_bytes())
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2011, 11, 24), 15_302);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn parses_all_fraction_widths() {
        // 2011-11-24T06:58:56 UTC = 15302 days + 25136 s.
        let base = (15_302 * 86_400 + 6 * 3600 + 58 * 60 + 56) * NS_PER_SEC;
        assert_eq!(ts("20111124-06:58:56"), Ok(base));
        assert_eq!(ts("20111124-06:58:56.460"), Ok(base + 460_000_000));
        assert_eq!(ts("20111124-06:58:56.460123"), Ok(base + 460_123_000));
        assert_eq!(ts("20111124-06:58:56.460123456"), Ok(base + 460_123_456));
    }

    #[test]
    fn rejects_other_fraction_widths() {
        for bad in [
            "20111124-06:58:56.4",
            "20111124-06:58:56.46",
            "20111124-06:58:56.4601",
        ] {
            assert_eq!(ts(bad), Err(TimestampError::Fraction), "{bad}");
        }
        assert_eq!(ts("20111124-06:58:56."), Err(TimestampError::Fraction));
        assert_eq!(ts("20111124-06:58:56x460"), Err(TimestampError::Syntax));
    }

    #[test]
    fn validates_calendar_and_clock() {
        assert!(ts("20240229-00:00:00").is_ok());
        assert!(ts("20000229-00:00:00").is_ok());
        assert_eq!(ts("20230229-00:00:00"), Err(TimestampError::Field));
        assert_eq!(ts("21000229-00:00:00"), Err(TimestampError::Field));
        assert_eq!(ts("20231301-00:00:00"), Err(TimestampError::Field));
        assert_eq!(ts("20230431-00:00:00"), Err(TimestampError::Field));
        assert_eq!(ts("20230100-00:00:00"), Err(TimestampError::Field));
        assert_eq!(ts("20230101-24:00:00"), Err(TimestampError::Field));
        assert_eq!(ts("20230101-23:60:00"), Err(TimestampError::Field));
        assert_eq!(ts("20230101-23:59:61"), Err(TimestampError::Field));
        assert_eq!(ts("00000000-00:00:00"), Err(TimestampError::Field));
        assert_eq!(ts("19000101-00:00:00"), Err(TimestampError::Year));
        assert_eq!(ts("22620101-00:00:00"), Err(TimestampError::Year));
        assert!(ts("22611231-23:59:60.999999999").is_ok());
        assert_eq!(ts("2023010-100:00:00"), Err(TimestampError::Syntax));
        assert_eq!(ts("20230101 00:00:00"), Err(TimestampError::Syntax));
        assert_eq!(ts("20230101-00:00"), Err(TimestampError::Syntax));
        assert_eq!(ts("2023-01-01T00:00:00"), Err(TimestampError::Syntax));
    }

    #[test]
    fn cached_parse_matches() {
        let mut cache = DateCache::default();
        for t in [
            "20111124-06:58:56.460",
            "20111124-07:00:00",
            "20240229-23:59:59.999999999",
            "20111124-06:58:56",
        ] {
            assert_eq!(parse_utc_timestamp_cached(t.as_bytes(), &mut cache), ts(t));
        }
        assert_eq!(
            parse_utc_timestamp_cached(b"20230229-00:00:00", &mut cache),
            Err(TimestampError::Field)
        );
        assert_eq!(
            parse_utc_timestamp_cached(b"20111124-25:00:00", &mut cache),
            Err(TimestampError::Field)
        );
        assert_eq!(
            parse_utc_timestamp_cached(b"20111124-06:58:56.460", &mut cache),
            ts("20111124-06:58:56.460")
        );
    }

    #[test]
    fn leap_second_is_the_next_second() {
        assert_eq!(
            ts("20161231-23:59:60").unwrap(),
            ts("20170101-00:00:00").unwrap()
        );
    }

    #[test]
    fn date_and_time_only() {
        assert_eq!(
            parse_date_and_time(b"20111124", b"06:30:00.000"),
            ts("20111124-06:30:00")
        );
        assert_eq!(parse_utc_date_only(b"2011112"), Err(TimestampError::Syntax));
        assert_eq!(parse_utc_time_only(b"6:30:00"), Err(TimestampError::Syntax));
    }

    #[test]
    fn unsigned_days_match_signed() {
        for (y, m, d) in [
            (1970, 1, 1),
            (1970, 3, 1),
            (2000, 2, 29),
            (2011, 11, 24),
            (2261, 12, 31),
        ] {
            assert_eq!(
                days_since_epoch(y, m, d),
                days_from_civil(i64::from(y), m, d)
            );
        }
    }

    #[test]
    fn end_of_range_fits_i64() {
        const { assert!(END_NS > 0) };
        assert_eq!(ts("22611231-23:59:59.999999999"), Ok(END_NS - 1));
    }
}
