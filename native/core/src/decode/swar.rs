//! Eight-bytes-at-a-time ("SIMD within a register") helpers for the hot loops.
//!
//! FIX fields are short: tags of 1–5 digits, values of a few to ~25 bytes. Byte loops over
//! them spend their time on unpredictable loop exits; reading a whole `u64` and locating the
//! delimiter with bit tricks replaces those branches with a handful of ALU operations. The
//! helpers only read within the slice they are given and fall back to the caller's byte
//! loop when fewer than eight bytes remain.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const NIBBLE_HIGHS: u64 = 0xF0F0_F0F0_F0F0_F0F0;
const ZEROS: u64 = 0x3030_3030_3030_3030;
const SIXES: u64 = 0x0606_0606_0606_0606;

/// Loads eight bytes at `at` as a little-endian word, if they are all inside `buf`.
#[inline(always)]
pub(crate) fn load(buf: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// Index (0–7) of the first byte of `word` equal to `byte`, if any.
#[inline(always)]
pub(crate) fn find_byte(word: u64, byte: u8) -> Option<u32> {
    let x = word ^ (ONES * u64::from(byte));
    // The has-zero-byte test: the lowest set high bit marks the first zero byte exactly
    // (bits above it may be spurious borrows, hence trailing_zeros).
    let zero = x.wrapping_sub(ONES) & !x & HIGHS;
    (zero != 0).then(|| zero.trailing_zeros() / 8)
}

/// Whether the low `n` bytes (`n` ≤ 8) of `word` are all ASCII digits.
#[inline(always)]
pub(crate) fn all_digits(word: u64, n: u32) -> bool {
    let mask = if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    // High nibble 3, and low nibble ≤ 9 (adding 6 must not carry into the high nibble).
    // Carries from a lane can only start at a byte ≥ 0xFA, which fails the first test.
    (word & NIBBLE_HIGHS & mask) == (ZEROS & mask)
        && (word.wrapping_add(SIXES) & NIBBLE_HIGHS & mask) == (ZEROS & mask)
}

/// The value of the low `n` bytes (1 ≤ `n` ≤ 8) of `word`, which must be ASCII digits, read
/// as a decimal number with the first byte most significant.
#[inline(always)]
pub(crate) fn parse_digits(word: u64, n: u32) -> u32 {
    debug_assert!((1..=8).contains(&n));
    // Keep the digit values and move them to the top lanes, so that the empty lanes act as
    // leading zeros of an eight-digit number.
    let mut v = (word & 0x0F0F_0F0F_0F0F_0F0F) << (8 * (8 - n));
    v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v.wrapping_mul(10_000) + (v >> 32)) & 0xFFFF_FFFF;
    v as u32
}

/// The four two-digit numbers of an eight-digit word (first byte most significant), which
/// must be ASCII digits: `"20111124"` → `[20, 11, 11, 24]`.
#[inline(always)]
pub(crate) fn digit_pairs(word: u64) -> [u32; 4] {
    let v = word & 0x0F0F_0F0F_0F0F_0F0F;
    // Each 16-bit lane becomes first digit × 10 + second digit.
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    [
        (v & 0xFF) as u32,
        (v >> 16 & 0xFF) as u32,
        (v >> 32 & 0xFF) as u32,
        (v >> 48 & 0xFF) as u32,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(b)
    }

    #[test]
    fn finds_bytes() {
        assert_eq!(find_byte(w(b"35=X\x01abc"), b'='), Some(2));
        assert_eq!(find_byte(w(b"35=X\x01abc"), 1), Some(4));
        assert_eq!(
            find_byte(w(b"\x01\x01\x01\x01\x01\x01\x01\x01"), 1),
            Some(0)
        );
        assert_eq!(find_byte(w(b"abcdefgh"), b'='), None);
        // A byte 0x01 above a 0x00 byte must not hide the real first match.
        assert_eq!(find_byte(w(b"\x00\x02=\x01"), b'='), Some(2));
    }

    #[test]
    fn digits() {
        assert!(all_digits(w(b"0123456789"[..8].as_ref()), 8));
        assert!(all_digits(w(b"12=x"), 2));
        assert!(!all_digits(w(b"12=x"), 3));
        assert!(!all_digits(w(b"1:"), 2));
        assert!(!all_digits(w(b"\xfa1"), 2));
        assert!(!all_digits(w(b"/1"), 2));
        assert_eq!(parse_digits(w(b"35="), 2), 35);
        assert_eq!(parse_digits(w(b"1"), 1), 1);
        assert_eq!(parse_digits(w(b"20111124"), 8), 20_111_124);
        assert_eq!(parse_digits(w(b"9999999"), 7), 9_999_999);
        assert_eq!(digit_pairs(w(b"20111124")), [20, 11, 11, 24]);
        assert_eq!(digit_pairs(w(b"06058059")), [6, 5, 80, 59]);
    }
}
