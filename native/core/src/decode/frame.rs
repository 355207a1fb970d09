//! FIX framing: splits a stream into messages by BodyLength and validates the CheckSum.
//!
//! A frame is `8=<BeginString><SOH>9=<BodyLength><SOH><body>10=<ddd><SOH>`, where the body is
//! exactly BodyLength bytes ending with SOH, so a frame ends at `body start + BodyLength + 7`.
//! The stream is never split by searching for `8=FIX` (values such as `448=FIX11` and XmlData
//! fields carrying whole messages contain it); that search is only used to resynchronise after
//! bytes that cannot be framed.
//!
//! Choices where the FIX specification leaves room:
//! - A header whose second field is not `9=` (e.g. `35=` before `9=`) is
//!   [`Reason::BodyLength`]: the BodyLength is missing where it must be.
//! - BodyLength is 1–9 ASCII digits (`0` allowed); a sign, other bytes, or more digits are
//!   [`Reason::BodyLength`].
//! - When the declared end lies beyond the buffer and every byte up to the buffer's end is
//!   consistent with the frame, the message is [`Reason::Truncated`] — unless the buffer
//!   already holds a complete trailer (`<SOH>10=ddd<SOH>` as its last bytes) or another
//!   plausible message start, in which case the length is what is wrong
//!   ([`Reason::BodyLength`]).
//! - A frame with an unsupported BeginString that its BodyLength still delimits is skipped
//!   exactly. Every other failure, including a CheckSum mismatch, resynchronises at the next
//!   plausible `8=FIX` after the failing start: a corrupted BodyLength can land on a later
//!   message's trailer, and skipping by it would swallow good messages. (The price: when a
//!   container whose data field embeds a whole message is corrupt, the embedded message is
//!   framed on its own; a CRC32 record header is the guard against transport corruption.)
//! - A resynchronisation point is `8=FIX` followed within 17 bytes by `<SOH>9=` (or by the end
//!   of the buffer): `448=FIX11<SOH>447=D` is not a message start.
//! - A record's single trailing `\n` or `\r\n` is ignored (files end with a newline); any
//!   other byte outside a frame is part of a rejected run.

use memchr::memmem;

use super::fields::SOH;
use super::swar;
use crate::reason::Reason;

/// Longest BeginString accepted while looking for its SOH (`FIXT.1.1` is 8 bytes).
const MAX_BEGIN_STRING: usize = 16;
/// Most digits a BodyLength may have; more is absurd (≥ 1 GB message).
const MAX_BODY_LENGTH_DIGITS: usize = 9;
/// The pattern a resynchronisation point starts with.
pub(crate) const MESSAGE_START: &[u8] = b"8=FIX";

/// One frame, or one run of skipped bytes, found by [`frame_stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Byte offset within the buffer.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// `None` for a frame that passed framing and CheckSum validation; otherwise why the frame
    /// or run was rejected.
    pub reject: Option<Reason>,
}

/// Whether `begin_string` is one of the supported FIX versions.
#[inline]
pub fn is_supported_begin_string(begin_string: &[u8]) -> bool {
    matches!(
        begin_string,
        b"FIX.4.0" | b"FIX.4.1" | b"FIX.4.2" | b"FIX.4.3" | b"FIX.4.4" | b"FIXT.1.1"
    )
}

/// The FIX CheckSum of `bytes`: their sum modulo 256.
///
/// A `u8` wrapping fold, which LLVM turns into vector byte additions.
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

/// Length of `buf` without one trailing `\n` or `\r\n`.
#[inline]
pub(crate) fn trimmed_len(buf: &[u8]) -> usize {
    match buf {
        [.., b'\r', b'\n'] => buf.len() - 2,
        [.., b'\n'] => buf.len() - 1,
        _ => buf.len(),
    }
}

/// A frame that passed framing and CheckSum validation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GoodFrame<'a> {
    pub begin_string: &'a [u8],
    /// From the first body field through the SOH before `10=`.
    pub body: &'a [u8],
}

/// What the framer found at one position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameResult<'a> {
    Good(GoodFrame<'a>),
    Rejected {
        reason: Reason,
        /// MsgType, when the rejected bytes are a delimited frame whose body starts with it.
        msg_type: Option<&'a [u8]>,
    },
}

/// One step of the framer: a frame or a rejected run at `offset..offset + len`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameEvent<'a> {
    pub offset: usize,
    pub len: usize,
    pub result: FrameResult<'a>,
}

/// Why a frame failed, and whether its end is still known.
#[derive(Debug, Clone, Copy)]
struct Failure {
    reason: Reason,
    /// End of the frame when it is to be skipped exactly (see the module docs).
    delimited_end: Option<usize>,
    /// The body's bounds when the frame was delimited, to label the reject with its MsgType.
    body: Option<(usize, usize)>,
}

impl Failure {
    #[inline]
    fn at(reason: Reason) -> Self {
        Failure {
            reason,
            delimited_end: None,
            body: None,
        }
    }
}

/// Splits a buffer into frames and rejected runs, in order, covering every byte up to the
/// trimmed end.
#[derive(Debug, Clone)]
pub(crate) struct Framer<'a, 'f> {
    buf: &'a [u8],
    pos: usize,
    finder: &'f memmem::Finder<'static>,
}

impl<'a, 'f> Framer<'a, 'f> {
    /// Frames `buf` (without its trailing newline) using `finder` (for [`MESSAGE_START`]).
    #[inline]
    pub fn new(buf: &'a [u8], finder: &'f memmem::Finder<'static>) -> Self {
        Framer {
            buf: &buf[..trimmed_len(buf)],
            pos: 0,
            finder,
        }
    }

    /// Whether a `8=FIX` found at `at` starts something that looks like a header.
    fn plausible_start(&self, at: usize) -> bool {
        let window_end = (at + 2 + MAX_BEGIN_STRING + 1).min(self.buf.len());
        let window = &self.buf[at + MESSAGE_START.len()..window_end];
        match window.iter().position(|&b| b == SOH) {
            Some(i) => {
                let after = at + MESSAGE_START.len() + i + 1;
                let rest = &self.buf[after..];
                // "9=" or the buffer ends inside it.
                (rest.len() < 2 && b"9=".starts_with(rest)) || rest.starts_with(b"9=")
            }
            // No SOH yet: plausible only if the buffer ends within the BeginString window.
            None => window_end == self.buf.len() && window_end < at + 2 + MAX_BEGIN_STRING + 1,
        }
    }

    /// The next plausible message start strictly after `from`, or the end of the buffer.
    fn resync(&self, from: usize) -> usize {
        let mut search = from + 1;
        while search < self.buf.len() {
            match self.finder.find(&self.buf[search..]) {
                Some(i) => {
                    let at = search + i;
                    if self.plausible_start(at) {
                        return at;
                    }
                    search = at + 1;
                }
                None => break,
            }
        }
        self.buf.len()
    }

    /// Whether a plausible message start exists in `(from, end of buffer)`.
    fn has_later_start(&self, from: usize) -> bool {
        self.resync(from) < self.buf.len()
    }

    /// Whether the buffer ends with a complete trailer `<SOH>10=ddd<SOH>`.
    fn ends_with_trailer(&self) -> bool {
        match self.buf {
            [.., SOH, b'1', b'0', b'=', a, b, c, SOH] => {
                a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()
            }
            _ => false,
        }
    }

    /// Classifies a frame that runs past the buffer's end.
    fn beyond_end(&self, start: usize) -> Failure {
        if self.ends_with_trailer() || self.has_later_start(start) {
            Failure::at(Reason::BodyLength)
        } else {
            Failure::at(Reason::Truncated)
        }
    }

    /// Parses and validates the frame starting at `start`.
    #[inline]
    fn parse(&self, start: usize) -> Result<(GoodFrame<'a>, usize), Failure> {
        let buf = self.buf;
        let b = &buf[start..];

        // 8=
        if b.len() < 2 {
            return Err(if b"8=".starts_with(b) {
                self.beyond_end(start)
            } else {
                Failure::at(Reason::Garbled)
            });
        }
        if b[0] != b'8' || b[1] != b'=' {
            return Err(Failure::at(Reason::Garbled));
        }

        // BeginString up to its SOH. Fast path: the SOH of `FIX.4.x` and `FIXT.1.1` lies in
        // the eight bytes after "8=F".
        let fast = match b.get(2) {
            Some(&SOH) => Some(0),
            _ => swar::load(b, 3)
                .and_then(|w| swar::find_byte(w, SOH))
                .map(|k| k as usize + 1),
        };
        let begin_len = match fast {
            Some(len) => len,
            None => {
                let window = &b[2..b.len().min(2 + MAX_BEGIN_STRING + 1)];
                match window.iter().position(|&c| c == SOH) {
                    Some(len) => len,
                    None if window.len() <= MAX_BEGIN_STRING => return Err(self.beyond_end(start)),
                    None => return Err(Failure::at(Reason::BadBeginString)),
                }
            }
        };
        let begin_string = &b[2..2 + begin_len];
        let supported = is_supported_begin_string(begin_string);
        // Once the BeginString is known to be bad, that is the reason whatever else fails.
        let fail = |reason: Reason| {
            Failure::at(if supported {
                reason
            } else {
                Reason::BadBeginString
            })
        };

        // 9=
        let p = 2 + begin_len + 1;
        let nine = &b[p..];
        if nine.len() < 2 {
            return Err(if b"9=".starts_with(nine) {
                fail(self.beyond_end(start).reason)
            } else {
                fail(Reason::BodyLength)
            });
        }
        if nine[0] != b'9' || nine[1] != b'=' {
            return Err(fail(Reason::BodyLength));
        }

        // BodyLength digits up to SOH; fast path for the usual 1–7 digits.
        let mut q = p + 2;
        let mut body_len = 0usize;
        if let Some((word, n)) = swar::load(b, q).and_then(|w| Some((w, swar::find_byte(w, SOH)?)))
        {
            if n == 0 || !swar::all_digits(word, n) {
                return Err(fail(Reason::BodyLength));
            }
            body_len = swar::parse_digits(word, n) as usize;
            q += n as usize;
        } else {
            loop {
                let Some(&c) = b.get(q) else {
                    return Err(fail(self.beyond_end(start).reason));
                };
                if c == SOH {
                    break;
                }
                let d = c.wrapping_sub(b'0');
                if d > 9 || q - (p + 2) >= MAX_BODY_LENGTH_DIGITS {
                    return Err(fail(Reason::BodyLength));
                }
                body_len = body_len * 10 + usize::from(d);
                q += 1;
            }
            if q == p + 2 {
                return Err(fail(Reason::BodyLength));
            }
        }
        let body_start = q + 1; // relative to start

        // Trailer: the body's last byte is SOH, then "10=", three digits and SOH. Compare
        // what is available against that pattern; the first mismatch says which part is bad.
        let tag10 = body_start + body_len;
        if tag10 > b.len() {
            // The declared body alone already runs past the buffer.
            return Err(fail(self.beyond_end(start).reason));
        }
        let (pattern_start, pattern): (usize, &[u8]) = if body_len == 0 {
            (tag10, b"10=ddd\x01")
        } else {
            (tag10 - 1, b"\x0110=ddd\x01")
        };
        let digits_at = pattern.len() - 4; // index of the first checksum digit
                                           // Fast path: the whole `<SOH>10=ddd<SOH>` in one word.
        const TRAILER_MASK: u64 = 0xFF00_0000_FFFF_FFFF;
        const TRAILER: u64 = u64::from_le_bytes([SOH, b'1', b'0', b'=', 0, 0, 0, SOH]);
        let trailer_ok = body_len > 0
            && swar::load(b, pattern_start)
                .is_some_and(|w| w & TRAILER_MASK == TRAILER && swar::all_digits(w >> 32, 3));
        if !trailer_ok {
            for (i, &want) in pattern.iter().enumerate() {
                let Some(&got) = b.get(pattern_start + i) else {
                    // Everything present so far fits: the buffer ends inside the frame.
                    return Err(fail(self.beyond_end(start).reason));
                };
                let ok = if want == b'd' {
                    got.is_ascii_digit()
                } else {
                    got == want
                };
                if !ok {
                    return Err(fail(if i < digits_at {
                        Reason::BodyLength
                    } else {
                        Reason::Checksum
                    }));
                }
            }
        }
        let frame_len = tag10 + 7;
        let body = (start + body_start, start + tag10);
        if !supported {
            return Err(Failure {
                reason: Reason::BadBeginString,
                delimited_end: Some(start + frame_len),
                body: Some(body),
            });
        }

        let declared = b[tag10 + 3..tag10 + 6]
            .iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
        if u32::from(checksum(&b[..tag10])) != declared {
            return Err(Failure {
                reason: Reason::Checksum,
                delimited_end: None,
                body: Some(body),
            });
        }
        Ok((
            GoodFrame {
                begin_string,
                body: &buf[body.0..body.1],
            },
            start + frame_len,
        ))
    }
}

/// MsgType of a body that starts with `35=`, for labelling a rejected but delimited frame.
fn peek_msg_type(body: &[u8]) -> Option<&[u8]> {
    let rest = body.strip_prefix(b"35=")?;
    let end = rest.iter().position(|&c| c == SOH)?;
    (end > 0).then(|| &rest[..end])
}

impl<'a> Iterator for Framer<'a, '_> {
    type Item = FrameEvent<'a>;

    #[inline]
    fn next(&mut self) -> Option<FrameEvent<'a>> {
        let start = self.pos;
        if start >= self.buf.len() {
            return None;
        }
        match self.parse(start) {
            Ok((frame, end)) => {
                self.pos = end;
                Some(FrameEvent {
                    offset: start,
                    len: end - start,
                    result: FrameResult::Good(frame),
                })
            }
            Err(failure) => {
                let end = match failure.delimited_end {
                    Some(end) => end,
                    None => self.resync(start),
                };
                self.pos = end;
                let msg_type = failure
                    .body
                    .and_then(|(s, e)| peek_msg_type(&self.buf[s..e]));
                Some(FrameEvent {
                    offset: start,
                    len: end - start,
                    result: FrameResult::Rejected {
                        reason: failure.reason,
                        msg_type,
                    },
                })
            }
        }
    }
}

/// Frames a FIX stream without decoding fields: appends the `(offset, len)` of each frame or
/// skipped run to `out`, used to split files into records.
///
/// Frames are validated up to their CheckSum (BeginString, BodyLength, trailer, byte sum);
/// bodies are not walked. The frames and runs cover the buffer without gaps, except for a
/// single trailing `\n` or `\r\n`, which is ignored.
pub fn frame_stream(buf: &[u8], out: &mut Vec<Frame>) {
    let finder = memmem::Finder::new(MESSAGE_START);
    for event in Framer::new(buf, &finder) {
        out.push(Frame {
            offset: event.offset,
            len: event.len,
            reject: match event.result {
                FrameResult::Good(_) => None,
                FrameResult::Rejected { reason, .. } => Some(reason),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soh(s: &str) -> Vec<u8> {
        s.bytes().map(|b| if b == b'|' { SOH } else { b }).collect()
    }

    fn frames(s: &str) -> Vec<Frame> {
        let mut out = Vec::new();
        frame_stream(&soh(s), &mut out);
        out
    }

    const HEARTBEAT: &str = "8=FIX.4.2|9=45|35=0|34=3|49=TW|52=20000426-12:05:06|56=ISLD|10=218|";

    fn rejects(s: &str) -> Vec<Option<Reason>> {
        frames(s).iter().map(|f| f.reject).collect()
    }

    #[test]
    fn checksum_of_known_message() {
        let m = soh(HEARTBEAT);
        assert_eq!(checksum(&m[..m.len() - 7]), 218);
    }

    #[test]
    fn frames_by_body_length() {
        let two = format!("{HEARTBEAT}{HEARTBEAT}\n");
        let got = frames(&two);
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].offset, got[1].len, got[1].reject), (67, 67, None));
    }

    #[test]
    fn reason_checksum() {
        assert_eq!(
            rejects(&HEARTBEAT.replace("10=218", "10=000")),
            [Some(Reason::Checksum)]
        );
        assert_eq!(
            rejects(&HEARTBEAT.replace("10=218", "10=ABC")),
            [Some(Reason::Checksum)]
        );
        assert_eq!(
            rejects("8=FIX.4.2|9=12|35=A|108=30|10=31|"),
            [Some(Reason::Checksum)]
        );
    }

    #[test]
    fn reason_body_length() {
        assert_eq!(
            rejects(&HEARTBEAT.replace("9=45", "9=AB")),
            [Some(Reason::BodyLength)]
        );
        assert_eq!(
            rejects(&HEARTBEAT.replace("9=45", "9=-1")),
            [Some(Reason::BodyLength)]
        );
        assert_eq!(
            rejects(&HEARTBEAT.replace("9=45", "9=44")),
            [Some(Reason::BodyLength)]
        );
        assert_eq!(
            rejects(&HEARTBEAT.replace("9=45", "9=")),
            [Some(Reason::BodyLength)]
        );
        assert_eq!(
            rejects(&HEARTBEAT.replace("9=45", "9=4500000000")),
            [Some(Reason::BodyLength)]
        );
        // Header out of order.
        assert_eq!(
            rejects("8=FIX.4.2|35=0|9=45|34=3|49=TW|52=20000426-12:05:06|56=ISLD|10=218|"),
            [Some(Reason::BodyLength)]
        );
        // Declared end beyond the buffer, but the buffer ends with a complete trailer.
        assert_eq!(
            rejects(&HEARTBEAT.replace("9=45", "9=99")),
            [Some(Reason::BodyLength)]
        );
    }

    #[test]
    fn reason_truncated() {
        let m = HEARTBEAT;
        for cut in [1, 2, 5, 10, 12, 30, m.len() - 7, m.len() - 4, m.len() - 1] {
            assert_eq!(
                rejects(&m[..cut]),
                [Some(Reason::Truncated)],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn reason_bad_begin_string() {
        // Delimited by its BodyLength: exactly that frame is skipped.
        let bad = HEARTBEAT.replace("FIX.4.2", "FIX.5.0");
        let got = frames(&format!("{bad}{HEARTBEAT}"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].reject, Some(Reason::BadBeginString));
        assert_eq!(got[0].len, bad.len());
        assert_eq!(got[1].reject, None);
        assert_eq!(rejects("8=HELLO|x"), [Some(Reason::BadBeginString)]);
    }

    #[test]
    fn reason_garbled_runs_and_resync() {
        let s = format!("junk{HEARTBEAT} ");
        let got = frames(&s);
        assert_eq!(
            got,
            [
                Frame {
                    offset: 0,
                    len: 4,
                    reject: Some(Reason::Garbled)
                },
                Frame {
                    offset: 4,
                    len: 67,
                    reject: None
                },
                Frame {
                    offset: 71,
                    len: 1,
                    reject: Some(Reason::Garbled)
                },
            ]
        );
        // Whitespace between frames is not tolerated.
        let got = frames(&format!("{HEARTBEAT}\n{HEARTBEAT}"));
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[1],
            Frame {
                offset: 67,
                len: 1,
                reject: Some(Reason::Garbled)
            }
        );
    }

    #[test]
    fn resync_skips_implausible_starts() {
        // A broken frame containing 448=FIX11 is skipped as one run.
        let broken = "8=FIX.4.4|9=999|35=8|448=FIX11|447=D|10=000|";
        let got = frames(&format!("{broken}{HEARTBEAT}"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len, broken.len());
        assert_eq!(got[0].reject, Some(Reason::BodyLength));
        assert_eq!(got[1].reject, None);
    }

    #[test]
    fn trailing_newline_is_ignored_once() {
        assert_eq!(rejects(&format!("{HEARTBEAT}\r\n")), [None]);
        assert_eq!(
            rejects(&format!("{HEARTBEAT}\n\n")),
            [None, Some(Reason::Garbled)]
        );
        assert!(frames("").is_empty());
        assert!(frames("\n").is_empty());
    }
}
