//! CRC-32 (IEEE, as zlib and Kafka tooling compute it) of record payloads.
//!
//! Producers may attach a `crc32` header to a record; [`verify_crc32_header`] checks it
//! before the payload is decoded, so corruption in transit is a [`Reason::Crc32`] dead
//! letter rather than a bogus trade.

use crate::reason::Reason;

/// The CRC-32 (IEEE 802.3 polynomial, the one of zlib, gzip and Java's `CRC32`) of `bytes`.
#[inline]
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Reads `digits` as a number in `radix`, at most `u32::MAX`.
fn parse_radix(digits: &[u8], radix: u32) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &b| {
        let d = char::from(b).to_digit(radix)?;
        acc.checked_mul(radix)?.checked_add(d)
    })
}

/// The values a `crc32` header may denote.
///
/// Accepted forms (surrounding ASCII whitespace ignored):
/// - `0x` or `0X` followed by 1–8 hex digits: hexadecimal;
/// - exactly 8 hex digits (either case): hexadecimal, the form `printf("%08x")` writes;
/// - 1–10 decimal digits not above `u32::MAX`: decimal, the form `crc32()` returns in
///   JavaScript and Java.
///
/// Eight decimal digits fit both readings: `12345678` may be the hex CRC `0x12345678` or the
/// decimal `12345678`. Both are returned, and the header matches if either does; refusing
/// either reading would reject a producer that follows one of the documented forms, while
/// the cost is one more accepted value out of 2³².
fn header_values(text: &[u8]) -> [Option<u32>; 2] {
    let text = text.trim_ascii();
    if let Some(hex) = text
        .strip_prefix(b"0x")
        .or_else(|| text.strip_prefix(b"0X"))
    {
        if hex.len() <= 8 {
            return [parse_radix(hex, 16), None];
        }
        return [None, None];
    }
    let hex = if text.len() == 8 {
        parse_radix(text, 16)
    } else {
        None
    };
    let decimal = if text.len() <= 10 {
        parse_radix(text, 10)
    } else {
        None
    };
    [hex, decimal]
}

/// Checks a record's `crc32` header text against its payload.
///
/// Accepted forms, surrounding ASCII whitespace ignored: `0x`/`0X`-prefixed hex (1–8
/// digits), exactly 8 hex digits (either case, as `printf("%08x")` writes), or decimal
/// (1–10 digits, at most `u32::MAX`, as JavaScript's and Java's `crc32()` return). Eight
/// decimal digits fit both readings, so such a header matches if either equals the CRC:
/// refusing one reading would reject a producer that follows a documented form, at the cost
/// of one more accepted value out of 2³².
///
/// # Errors
///
/// [`Reason::Crc32`] when the header is in none of these forms or does not equal
/// [`crc32`] of `payload`.
pub fn verify_crc32_header(payload: &[u8], header_value: &[u8]) -> Result<(), Reason> {
    let actual = crc32(payload);
    if header_values(header_value).contains(&Some(actual)) {
        Ok(())
    } else {
        Err(Reason::Crc32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn accepts_documented_forms() {
        let payload = b"123456789";
        for ok in [
            &b"cbf43926"[..],
            b"CBF43926",
            b"0xcbf43926",
            b"0XCBF43926",
            b"3421780262",
            b" 3421780262\n",
        ] {
            assert_eq!(verify_crc32_header(payload, ok), Ok(()), "{ok:?}");
        }
        // Short 0x forms keep their meaning.
        let small = (0u32..)
            .find(|i| crc32(&i.to_le_bytes()) < 0x1000_0000)
            .unwrap();
        let bytes = small.to_le_bytes();
        let crc = crc32(&bytes);
        assert_eq!(
            verify_crc32_header(&bytes, format!("{crc:#x}").as_bytes()),
            Ok(())
        );
        assert_eq!(
            verify_crc32_header(&bytes, format!("{crc:08x}").as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn reason_crc32() {
        let payload = b"123456789";
        for bad in [
            &b""[..],
            b"cbf43927",
            b"0x",
            b"0xcbf439260",
            b"3421780263",
            b"99999999999",
            b"-1",
            b"cbf4392",
            b"xyz",
        ] {
            assert_eq!(
                verify_crc32_header(payload, bad),
                Err(Reason::Crc32),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ambiguous_eight_digits_match_either_reading() {
        assert_eq!(
            header_values(b"12345678"),
            [Some(0x1234_5678), Some(12_345_678)]
        );
    }
}
