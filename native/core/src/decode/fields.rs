//! The `tag=value<SOH>` field walk, with length-prefixed data fields.
//!
//! The walk is the decoder's inner loop, so it is written for speed: one forward pass, no
//! allocation, and no UTF-8 validation (values are handed out as bytes).

use super::swar;
use crate::reason::Reason;

/// The FIX field delimiter, Start Of Header.
pub const SOH: u8 = 0x01;

/// The data tag whose length a length tag gives (`95` → `96` RawData, `212` → `213` XmlData …).
///
/// When a length tag is followed immediately by its data tag, the data value is exactly that
/// many bytes and may contain SOH, `=` and even `10=`.
#[inline]
pub const fn data_tag_for(length_tag: u32) -> Option<u32> {
    match length_tag {
        90 => Some(91),     // SecureDataLen → SecureData
        93 => Some(89),     // SignatureLength → Signature
        95 => Some(96),     // RawDataLength → RawData
        212 => Some(213),   // XmlDataLen → XmlData
        348 => Some(349),   // EncodedIssuerLen → EncodedIssuer
        350 => Some(351),   // EncodedSecurityDescLen → EncodedSecurityDesc
        352 => Some(353),   // EncodedListExecInstLen → EncodedListExecInst
        354 => Some(355),   // EncodedTextLen → EncodedText
        356 => Some(357),   // EncodedSubjectLen → EncodedSubject
        358 => Some(359),   // EncodedHeadlineLen → EncodedHeadline
        360 => Some(361),   // EncodedAllocTextLen → EncodedAllocText
        362 => Some(363),   // EncodedUnderlyingIssuerLen → EncodedUnderlyingIssuer
        364 => Some(365),   // EncodedUnderlyingSecurityDescLen → EncodedUnderlyingSecurityDesc
        445 => Some(446),   // EncodedListStatusTextLen → EncodedListStatusText
        618 => Some(619),   // EncodedLegIssuerLen → EncodedLegIssuer
        621 => Some(622),   // EncodedLegSecurityDescLen → EncodedLegSecurityDesc
        1184 => Some(1185), // SecurityXMLLen → SecurityXML
        1277 => Some(1278), // DerivativeEncodedIssuerLen → DerivativeEncodedIssuer
        1401 => Some(1402), // EncryptedPasswordLen → EncryptedPassword
        _ => None,
    }
}

/// Finds the next SOH at or after `from`, eight bytes at a time.
///
/// FIX values are short, too short for `memchr`'s vector set-up to pay off, but long
/// enough that a byte loop is slower too (see the measurements in `benches/decode.rs`).
#[inline(always)]
fn find_soh(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(word) = swar::load(buf, i) {
        if let Some(k) = swar::find_byte(word, SOH) {
            return Some(i + k as usize);
        }
        i += 8;
    }
    buf.get(i..)?.iter().position(|&b| b == SOH).map(|p| i + p)
}

/// Bit `t` is set when tag `t` is a length tag (see [`data_tag_for`]); one load and a shift
/// per field instead of a chain of comparisons.
const LENGTH_TAGS: [u64; 22] = {
    let mut bits = [0u64; 22];
    let mut tag = 0u32;
    while tag < 22 * 64 {
        if data_tag_for(tag).is_some() {
            bits[(tag / 64) as usize] |= 1 << (tag % 64);
        }
        tag += 1;
    }
    bits
};

/// Whether `tag` is a length tag.
#[inline(always)]
fn is_length_tag(tag: u32) -> bool {
    match LENGTH_TAGS.get((tag / 64) as usize) {
        Some(bits) => bits >> (tag % 64) & 1 == 1,
        None => false,
    }
}

/// Parses a data length value: 1–9 ASCII digits.
#[inline]
fn parse_len(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 9 {
        return None;
    }
    let mut n = 0usize;
    for &b in value {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + usize::from(d);
    }
    Some(n)
}

/// Iterates the `tag=value<SOH>` fields of a byte string, honouring data fields.
///
/// Syntax (any violation is [`Reason::Garbled`] and ends the iteration): the tag is 1–10 ASCII
/// digits without a leading zero that fit a `u32`, then `=`, then the value, then SOH. Values
/// may be empty (a required field with an empty value fails its own check later). After a
/// length tag (see [`data_tag_for`]) the next field, if it is the paired data tag, takes
/// exactly that many bytes, which must be followed by SOH; a non-numeric length followed by
/// its data tag is garbled. A data tag without its length tag is an ordinary field.
#[derive(Debug, Clone)]
pub struct FieldIter<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The data tag the previous field (a length tag) announced; 0 (never a tag) if none.
    /// A plain `u32` so that the per-field test is a single comparison.
    data_tag: u32,
    /// The announced length; `None` if the length tag's value was not a number.
    data_len: Option<usize>,
}

impl<'a> FieldIter<'a> {
    /// Starts a walk at the beginning of `buf` (a whole frame or just a body).
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        FieldIter {
            buf,
            pos: 0,
            data_tag: 0,
            data_len: None,
        }
    }

    /// Byte offset of the next field within the walked buffer.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Marks the walk as finished and returns the error, so that iteration stops after it.
    #[cold]
    fn fail<T>(&mut self) -> Result<T, Reason> {
        self.pos = self.buf.len();
        Err(Reason::Garbled)
    }

    /// Reads the next field: `Ok(Some((tag, value)))`, `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// [`Reason::Garbled`] when the bytes at the current position are not a field; the walk
    /// is then finished.
    #[inline(always)]
    pub fn next_field(&mut self) -> Result<Option<(u32, &'a [u8])>, Reason> {
        let buf = self.buf;
        let mut pos = self.pos;
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        // Tag: 1–10 digits, the first 1–9 (no leading zero), then '='. Accumulated in u64:
        // ten digits cannot overflow it, and one range check at the end replaces an overflow
        // check per digit.
        let d = first.wrapping_sub(b'1');
        if d > 8 {
            return self.fail();
        }
        let mut wide = u64::from(d) + 1;
        let digits_start = pos;
        pos += 1;
        loop {
            let Some(&b) = buf.get(pos) else {
                return self.fail();
            };
            pos += 1;
            if b == b'=' {
                break;
            }
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return self.fail();
            }
            wide = wide.wrapping_mul(10).wrapping_add(u64::from(d));
        }
        // Up to ten digits (and '='): the u64 cannot have wrapped, so the range check is
        // exact. Checked once here rather than per digit.
        if pos - digits_start > 11 {
            return self.fail();
        }
        let Ok(tag) = u32::try_from(wide) else {
            return self.fail();
        };

        let start = pos;
        let end = if tag == self.data_tag {
            match self.data_len.and_then(|l| start.checked_add(l)) {
                Some(end) if buf.get(end) == Some(&SOH) => end,
                _ => return self.fail(),
            }
        } else {
            match find_soh(buf, start) {
                Some(end) => end,
                None => return self.fail(),
            }
        };
        let value = &buf[start..end];
        if self.data_tag != 0 || is_length_tag(tag) {
            self.announce_data(tag, value);
        }
        self.pos = end + 1;
        Ok(Some((tag, value)))
    }

    /// Records the data field a length tag announces, or clears the announcement after the
    /// field that followed it (rare, so kept out of line).
    #[cold]
    fn announce_data(&mut self, tag: u32, value: &[u8]) {
        self.data_tag = if is_length_tag(tag) {
            self.data_len = parse_len(value);
            data_tag_for(tag).unwrap_or(0)
        } else {
            0
        };
    }

    /// Walks the remaining fields only to check their syntax.
    ///
    /// # Errors
    ///
    /// [`Reason::Garbled`] at the first malformed field.
    #[inline]
    pub fn check_rest(&mut self) -> Result<(), Reason> {
        while self.next_field()?.is_some() {}
        Ok(())
    }
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = Result<(u32, &'a [u8]), Reason>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_field().transpose()
    }
}

/// Walks the `tag=value<SOH>` fields of `buf` (a frame from `8=` to the final SOH, or a body).
pub fn fields(buf: &[u8]) -> FieldIter<'_> {
    FieldIter::new(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(s: &str) -> Result<Vec<(u32, Vec<u8>)>, Reason> {
        let bytes: Vec<u8> = s.bytes().map(|b| if b == b'|' { SOH } else { b }).collect();
        fields(&bytes)
            .map(|r| r.map(|(t, v)| (t, v.to_vec())))
            .collect()
    }

    #[test]
    fn walks_plain_fields() {
        let got = walk("35=0|49=TW|58=|").unwrap();
        assert_eq!(
            got,
            vec![(35, b"0".to_vec()), (49, b"TW".to_vec()), (58, vec![])]
        );
    }

    #[test]
    fn data_fields_take_their_length() {
        let got = walk("95=7|96=a|b=10=|58=x|").unwrap();
        assert_eq!(
            got[1],
            (
                96,
                b"a|b=10="
                    .iter()
                    .map(|&b| if b == b'|' { SOH } else { b })
                    .collect()
            )
        );
        assert_eq!(got[2], (58, b"x".to_vec()));
        // Data tag without its length tag is a normal field.
        assert_eq!(walk("96=ABC=DE|").unwrap(), vec![(96, b"ABC=DE".to_vec())]);
        // A length tag followed by another field leaves that field alone.
        assert_eq!(walk("212=4|384=2|").unwrap().len(), 2);
    }

    #[test]
    fn garbled_syntax() {
        for bad in [
            "49garbled=TW|",
            "=x|",
            "035=0|",
            "35|",
            "35=0",
            "4294967296=x|",
            "95=7|96=short|",
            "95=x|96=abc|",
            "95=3|96=abcd|",
            "a=b|",
        ] {
            assert_eq!(walk(bad), Err(Reason::Garbled), "{bad}");
        }
        assert!(walk("4294967295=x|").is_ok());
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let bytes = b"a=1\x0135=0\x01";
        let mut it = fields(bytes);
        assert_eq!(it.next(), Some(Err(Reason::Garbled)));
        assert_eq!(it.next(), None);
    }
}
