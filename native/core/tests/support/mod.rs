//! Fixtures shared by the integration tests: data location, golden-message helpers, sinks.
//!
//! Golden FIX is written with `|` for SOH (and `<SOH>` for a SOH inside a data field, as in
//! public-samples.txt); [`fix`] converts it to the wire form.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use tickstream_core::decode::{
    checksum, DecodeSink, Decoder, DecoderConfig, MessageInfo, Outcome, SOH,
};
use tickstream_core::{Correction, Order, Reason, Trade};

/// Directory of the FIX test data.
///
/// `TICKSTREAM_FIX_DATA` wins; otherwise the repository's vendored copy
/// (`<repo>/test/data/fix`) when it exists, else the shared data next to the repository.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TICKSTREAM_FIX_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let vendored = manifest.join("../../test/data/fix");
    if vendored.is_dir() {
        return vendored;
    }
    manifest.join("../../../shared/data/fix")
}

/// Reads a data file.
pub fn read_data(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Converts golden text (`|` and `<SOH>` for SOH) to wire bytes.
pub fn fix(text: &str) -> Vec<u8> {
    text.replace("<SOH>", "\u{1}")
        .bytes()
        .map(|b| if b == b'|' { SOH } else { b })
        .collect()
}

/// Builds a frame from a `|`-separated body, computing BodyLength and CheckSum.
pub fn build(begin: &str, body: &str) -> Vec<u8> {
    build_bytes(begin, &fix(body))
}

/// Builds a frame around a raw body (which must end with SOH).
pub fn build_bytes(begin: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("8={begin}\u{1}9={}\u{1}", body.len()).into_bytes();
    m.extend_from_slice(body);
    let sum = checksum(&m);
    m.extend_from_slice(format!("10={sum:03}\u{1}").as_bytes());
    m
}

/// A decoder with the given MDEntryTypes (`"2,3"`).
pub fn decoder(md_types: &str) -> Decoder {
    Decoder::new(DecoderConfig::with_md_entry_types(md_types).expect("valid MDEntryTypes"))
}

/// One line of public-samples.txt.
#[derive(Debug, Clone)]
pub struct Sample {
    /// 1-based line number in the file.
    pub line: usize,
    pub valid: bool,
    pub verdict: String,
    pub source: String,
    pub description: String,
    pub message: Vec<u8>,
}

/// Parses public-samples.txt: `<verdict>\t<source>\t<description>\t<message>`.
pub fn samples() -> Vec<Sample> {
    let text = String::from_utf8(read_data("public-samples.txt")).expect("UTF-8 samples");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("VALID") || l.starts_with("INVALID"))
        .map(|(i, l)| {
            let cols: Vec<&str> = l.splitn(4, '\t').collect();
            assert_eq!(cols.len(), 4, "line {}: {l}", i + 1);
            Sample {
                line: i + 1,
                valid: cols[0].starts_with("VALID"),
                verdict: cols[0].to_owned(),
                source: cols[1].to_owned(),
                description: cols[2].to_owned(),
                message: fix(cols[3]),
            }
        })
        .collect()
}

/// A sink that counts outcomes without keeping anything (what the bench uses too).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub messages: u64,
    pub trades: u64,
    pub orders: u64,
    pub corrections: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub rejects: Vec<(usize, usize, Reason)>,
}

impl<'a> DecodeSink<'a> for Counts {
    fn message(&mut self, info: &MessageInfo<'a>) {
        self.messages += 1;
        match info.outcome {
            Outcome::Ignored => self.ignored += 1,
            Outcome::Rejected(r) => {
                self.rejected += 1;
                self.rejects.push((info.offset, info.len, r));
            }
            _ => {}
        }
    }
    fn trade(&mut self, _: &Trade<'a>) {
        self.trades += 1;
    }
    fn order(&mut self, _: &Order<'a>) {
        self.orders += 1;
    }
    fn correction(&mut self, _: &Correction<'a>) {
        self.corrections += 1;
    }
}

/// Nanoseconds since the epoch of a UTC civil time, computed independently of the decoder
/// (through chrono).
pub fn utc_ns(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_nano_opt(h, mi, s, nanos))
        .expect("valid civil time")
        .and_utc()
        .timestamp_nanos_opt()
        .expect("in range")
}

/// Re-frames a (possibly broken) message: keeps its BeginString and the body between the
/// `9=` field and the last `10=`, edits the body (in `|` form), and recomputes BodyLength and
/// CheckSum.
pub fn reframe(message: &[u8], edit: impl Fn(String) -> String) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).expect("UTF-8 message");
    let text = text.replace('\u{1}', "|");
    let begin_end = text.find('|').expect("BeginString");
    let begin = &text[2..begin_end];
    let rest = &text[begin_end + 1..];
    let body_start = rest.find('|').expect("BodyLength field") + 1;
    let trailer = rest.rfind("|10=").expect("CheckSum field") + 1;
    build(begin, &edit(rest[body_start..trailer].to_owned()))
}

/// Whether an outcome is free of framing and syntax rejects (semantic rejects are fine).
pub fn frame_reasons_ok(outcome: Outcome) -> bool {
    !matches!(
        outcome,
        Outcome::Rejected(
            Reason::Checksum
                | Reason::BodyLength
                | Reason::Truncated
                | Reason::Garbled
                | Reason::BadBeginString
        )
    )
}
