//! The 41 public sample messages (QuickFIX, QuickFIX/J, hffix, simplefix, ferrumfix, fixparser
//! test suites) decode to their published verdicts.

mod support;

use support::{decoder, fix, frame_reasons_ok, reframe, samples, utc_ns, Sample};
use tickstream_core::decode::{checksum, decode_to_vec, frame_stream, DecodedMessage, Outcome};
use tickstream_core::{Reason, Side, SCALE};

/// Decodes a sample with MDEntryTypes {2,3} (the JSE index values count as trades).
fn decode(s: &Sample) -> Vec<DecodedMessage> {
    decode_to_vec(&decoder("2,3"), &s.message, s.line as u64)
}

fn sample(description: &str) -> Sample {
    samples()
        .into_iter()
        .find(|s| s.description == description)
        .unwrap_or_else(|| panic!("no sample {description:?}"))
}

/// What each VALID sample amounts to once its fields are read.
fn expected_valid(description: &str) -> Outcome {
    use Outcome::*;
    match description {
        "NewOrderSingle 35=D (market)"
        | "NewOrderSingle 35=D limit (40=2, 44=10)"
        | "FIXT.1.1 NewOrderSingle 35=D, ms timestamps, 60="
        | "NewOrderSingle 35=D FIX.4.4, Parties group" => Order,
        "ExecutionReport 35=8 fill (31=12.3, 32=10000, 39=2)"
        | "FIXT.1.1 MDIncRefresh 35=X, 2 entries (269=x,269=3), 273=UTCTimeOnly"
        | "FIXT.1.1 MDIncRefresh 35=X, 3 entries, price 25929.169999999996"
        | "TradeCaptureReport 35=AE FIXT.1.1 (31=27, 32=5000.000000000000, 487=0, 60 ms, NoSides=2)"
        | "TradeCaptureReport 35=AE FIX.4.4 (571=TradeReportID, 487=0, 570=N)"
        | "ExecutionReport fill 35=8 (31=99.06, 32=25)" => Trades(1),
        "MDIncRefresh 35=X FIX.4.2, 2 entries (bid/offer) -- checksum computed with SOH" => {
            Trades(0)
        }
        // Semantically rejected although well formed:
        // QuickFIX's strBodyFields has no OrderQty(38) (its 60=19000101-00:00:00 would be
        // BAD_TIMESTAMP next);
        "NewOrderSingle 35=D" => Rejected(Reason::MissingField),
        // QuickFIX's outOfOrder ExecutionReport has LastPx but no LastQty(32); with one its
        // placeholder 60=00000000-00:00:00 is BAD_TIMESTAMP (see below);
        "ExecutionReport 35=8 FIX.4.2 (31=109.03125)" => Rejected(Reason::MissingField),
        // ferrumfix's random NewOrderSingle has no Symbol(55).
        "NewOrderSingle 35=D FIX.4.4 -- checksum computed with SOH" => {
            Rejected(Reason::MissingField)
        }
        _ => Ignored,
    }
}

/// The reject each INVALID sample must produce.
fn expected_invalid(description: &str) -> Reason {
    match description {
        d if d.starts_with("CME ExecutionReport 35=8 fill") => Reason::Checksum,
        "NewOrderSingle 35=D with 44=.995 (leading-dot decimal)" => Reason::BodyLength,
        "Logon with 96=ABC=DE (embedded \"=\" in value, no 95)" => Reason::BodyLength,
        "BROKEN: CheckSum 10=000 (should be 218)" => Reason::Checksum,
        "BROKEN: CheckSum non-numeric 10=ABC" => Reason::Checksum,
        "BROKEN: BodyLength non-numeric 9=AB" => Reason::BodyLength,
        // A header out of order has no BodyLength where it must be.
        "BROKEN: 35 before 9 (header order)" => Reason::BodyLength,
        // The buffer ends where CheckSum should start.
        "BROKEN: no CheckSum field" => Reason::Truncated,
        "BROKEN: garbled tag \"49garbled=TW\"" => Reason::BodyLength,
        // The message itself is valid; the trailing space is a garbled run.
        "BROKEN: trailing byte after final SOH (\"10=218| \")" => Reason::Garbled,
        "BROKEN: final SOH missing after 10=218" => Reason::Truncated,
        "BROKEN: 9=-1 (and 2-digit checksum)" => Reason::BodyLength,
        // BodyLength is right; the two-digit CheckSum is what is wrong.
        "NOTE: BodyLength OK but CheckSum written as 2 digits (10=31) and wrong value" => {
            Reason::Checksum
        }
        "BROKEN: BodyLength 43 (actual 40) and CheckSum 146" => Reason::BodyLength,
        d if d.starts_with("BROKEN CheckSum (fefix accepts it") => Reason::Checksum,
        d if d.starts_with("BROKEN: XmlDataLen 212=4 without 213") => Reason::BodyLength,
        other => panic!("no expectation for INVALID sample {other:?}"),
    }
}

#[test]
fn file_has_41_samples_25_valid() {
    let all = samples();
    assert_eq!(all.len(), 41);
    assert_eq!(all.iter().filter(|s| s.valid).count(), 25);
}

#[test]
fn valid_samples_frame_as_one_message_and_match_their_verdict() {
    for s in samples().iter().filter(|s| s.valid) {
        let ctx = format!("line {} {}", s.line, s.description);
        // The verdict's BL and CS are those of the wire bytes.
        let bl: usize = field(&s.verdict, "BL=").parse().unwrap();
        let cs: u8 = field(&s.verdict, "CS=").parse().unwrap();
        assert_eq!(checksum(&s.message[..s.message.len() - 7]), cs, "{ctx}");
        let header_end = s
            .message
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == 1)
            .nth(1)
            .unwrap()
            .0;
        assert_eq!(s.message.len() - header_end - 1 - 7, bl, "{ctx}");

        let mut frames = Vec::new();
        frame_stream(&s.message, &mut frames);
        assert_eq!(frames.len(), 1, "{ctx}");
        assert_eq!(
            (frames[0].offset, frames[0].len, frames[0].reject),
            (0, s.message.len(), None),
            "{ctx}"
        );

        let out = decode(s);
        assert_eq!(out.len(), 1, "{ctx}: {out:?}");
        assert!(
            frame_reasons_ok(out[0].outcome),
            "{ctx}: {:?}",
            out[0].outcome
        );
        assert_eq!(out[0].outcome, expected_valid(&s.description), "{ctx}");
    }
}

#[test]
fn invalid_samples_are_rejected_with_their_reason() {
    for s in samples().iter().filter(|s| !s.valid) {
        let ctx = format!("line {} {}", s.line, s.description);
        let out = decode(s);
        let reasons: Vec<Reason> = out.iter().filter_map(|m| m.outcome.reason()).collect();
        assert_eq!(
            reasons,
            [expected_invalid(&s.description)],
            "{ctx}: {out:?}"
        );
        // Every byte is accounted for.
        assert_eq!(
            out.iter().map(|m| m.len).sum::<usize>(),
            s.message.len(),
            "{ctx}"
        );
        // frame_stream agrees with the decoder on framing rejects.
        let mut frames = Vec::new();
        frame_stream(&s.message, &mut frames);
        let frame_rejects: Vec<Reason> = frames.iter().filter_map(|f| f.reject).collect();
        assert_eq!(frame_rejects, reasons, "{ctx}");
    }
}

fn field<'a>(verdict: &'a str, key: &str) -> &'a str {
    let start = verdict.find(key).unwrap() + key.len();
    let end = verdict[start..].find([',', ')']).unwrap() + start;
    &verdict[start..end]
}

#[test]
fn fix42_fill_price_109_03125() {
    let s = sample("ExecutionReport 35=8 FIX.4.2 (31=109.03125)");
    // With a LastQty, the QuickFIX placeholder TransactTime is what fails.
    let with_qty = reframe(&s.message, |b| b.replace("|38=3000|", "|32=3000|38=3000|"));
    let out = decode_to_vec(&decoder("2"), &with_qty, 0);
    assert_eq!(out[0].outcome, Outcome::Rejected(Reason::BadTimestamp));
    // With a real TransactTime it is a trade at exactly 109.03125.
    let fixed = reframe(&s.message, |b| {
        b.replace("|38=3000|", "|32=3000|38=3000|")
            .replace("60=00000000-00:00:00", "60=20000426-12:05:06")
    });
    let out = decode_to_vec(&decoder("2"), &fixed, 0);
    let t = &out[0].trades[0];
    assert_eq!(
        (t.symbol.as_str(), t.price, t.qty),
        ("ABCD", 109_031_250_000, 3000 * SCALE)
    );
    assert_eq!((t.id.as_deref(), t.side), (Some("2"), Side::Buy));
    assert_eq!(t.time_ns, utc_ns(2000, 4, 26, 12, 5, 6, 0));
}

#[test]
fn fix41_fill_and_ack() {
    let out = decode(&sample(
        "ExecutionReport 35=8 fill (31=12.3, 32=10000, 39=2)",
    ));
    let t = &out[0].trades[0];
    assert_eq!(
        (t.symbol.as_str(), t.price, t.qty),
        ("MSFT", 12_300_000_000, 10_000 * SCALE)
    );
    assert_eq!((t.id.as_deref(), t.side), (Some("2"), Side::Buy));
    // No TransactTime: SendingTime.
    assert_eq!(t.time_ns, utc_ns(2012, 11, 5, 23, 24, 42, 0));
    let out = decode(&sample("ExecutionReport 35=8 ack (39=0, LastPx=0)"));
    assert_eq!(out[0].outcome, Outcome::Ignored);
}

#[test]
fn fixparser_fill() {
    let out = decode(&sample("ExecutionReport fill 35=8 (31=99.06, 32=25)"));
    let t = &out[0].trades[0];
    assert_eq!(
        (t.symbol.as_str(), t.price, t.qty),
        ("GLD", 99_060_000_000, 25 * SCALE)
    );
    assert_eq!((t.id.as_deref(), t.side), (Some("INDNTHDOG"), Side::Sell));
    assert_eq!(t.time_ns, utc_ns(2010, 1, 30, 8, 0, 52, 0));
}

#[test]
fn quickfixj_trade_capture_reports() {
    let fixt = decode(&sample(
        "TradeCaptureReport 35=AE FIXT.1.1 (31=27, 32=5000.000000000000, 487=0, 60 ms, NoSides=2)",
    ));
    let t = &fixt[0].trades[0];
    assert_eq!(
        (t.symbol.as_str(), t.price, t.qty),
        ("ANZ", 27 * SCALE, 5000 * SCALE)
    );
    // No TradeReportID(571): TradeID(1003). Two sides: no aggressor.
    assert_eq!(
        (t.id.as_deref(), t.side),
        (Some("1120000338"), Side::Unknown)
    );
    assert_eq!(t.time_ns, utc_ns(2022, 2, 10, 2, 43, 27, 796_000_000));

    let fix44 = decode(&sample(
        "TradeCaptureReport 35=AE FIX.4.4 (571=TradeReportID, 487=0, 570=N)",
    ));
    let t = &fix44[0].trades[0];
    assert_eq!(
        (t.price, t.qty, t.id.as_deref()),
        (27 * SCALE, 5000 * SCALE, Some("TradeReportID"))
    );
}

#[test]
fn jse_market_data() {
    let s = sample("FIXT.1.1 MDIncRefresh 35=X, 3 entries, price 25929.169999999996");
    // Default configuration: only 269=2 is a trade, and there is none.
    assert_eq!(
        decode_to_vec(&decoder("2"), &s.message, 0)[0].outcome,
        Outcome::Trades(0)
    );
    let out = decode(&s);
    let t = &out[0].trades[0];
    // 25929.169999999996 rounds half-up at the 10th fractional digit to 25929.17.
    assert_eq!(
        (t.symbol.as_str(), t.price, t.qty, t.id.as_deref()),
        ("J200", 25_929_170_000_000, 0, None)
    );
    // MDEntryTime without MDEntryDate: SendingTime.
    assert_eq!(t.time_ns, utc_ns(2011, 11, 24, 6, 58, 56, 460_000_000));

    let out = decode(&sample(
        "FIXT.1.1 MDIncRefresh 35=X, 2 entries (269=x,269=3), 273=UTCTimeOnly",
    ));
    assert_eq!(
        (out[0].trades[0].symbol.as_str(), out[0].trades[0].price),
        ("JA00", 76_790_000_000)
    );
}

#[test]
fn orders() {
    let o = decode(&sample("FIXT.1.1 NewOrderSingle 35=D, ms timestamps, 60="))[0]
        .order
        .clone()
        .unwrap();
    assert_eq!(
        (o.symbol.as_str(), o.side, o.qty, o.price),
        ("9955", Side::Buy, SCALE, Some(1_380_000_000))
    );
    assert_eq!(o.time_ns, utc_ns(2013, 7, 24, 11, 44, 42, 595_000_000));
    assert_eq!(
        o.cl_ord_id.as_deref(),
        Some("25ecf178-55e3-4914-90d6-53db38ff46c5")
    );
    let o = decode(&sample("NewOrderSingle 35=D (market)"))[0]
        .order
        .clone()
        .unwrap();
    assert_eq!(
        (o.symbol.as_str(), o.qty, o.price),
        ("MSFT", 10_000 * SCALE, None)
    );
    // The QuickFIX body-fields order also has a placeholder time: with a quantity, that fails.
    let s = sample("NewOrderSingle 35=D");
    let with_qty = reframe(&s.message, |b| b.replace("|40=2|", "|38=100|40=2|"));
    let out = decode_to_vec(&decoder("2"), &with_qty, 0);
    assert_eq!(out[0].outcome, Outcome::Rejected(Reason::BadTimestamp));
}

#[test]
fn data_fields_with_soh_and_embedded_messages() {
    let out = decode(&sample(
        "XMLnonFIX 35=n: XmlData(213, len 212=413) carries a whole FIX msg incl. SOH and \"8=\",\"10=\" -> shown as <SOH>",
    ));
    assert_eq!(
        (out[0].msg_type.as_deref(), out[0].outcome),
        (Some("n"), Outcome::Ignored)
    );
    let out = decode(&sample(
        "MassQuote 35=i; data field 365 (len 364=10) CONTAINS SOH -> shown as <SOH>",
    ));
    assert_eq!(out[0].outcome, Outcome::Ignored);
    // 448=FIX11 inside a Parties group is just a value.
    let out = decode(&sample(
        "ExecutionReport 35=8 FIX.4.4 (ASX), 150=D, Parties group NoPartyIDs=3",
    ));
    assert_eq!(out[0].outcome, Outcome::Ignored);
}

#[test]
fn invalid_samples_with_a_correct_frame() {
    // Re-framed, the broken samples show what their bodies hold.
    let s = sample("NewOrderSingle 35=D with 44=.995 (leading-dot decimal)");
    let o = decode_to_vec(&decoder("2"), &reframe(&s.message, |b| b), 0)[0]
        .order
        .clone()
        .unwrap();
    assert_eq!(
        (o.symbol.as_str(), o.price, o.side),
        ("VOD", Some(995_000_000), Side::Buy)
    );

    let s = sample("BROKEN: garbled tag \"49garbled=TW\"");
    let out = decode_to_vec(&decoder("2"), &reframe(&s.message, |b| b), 0);
    assert_eq!(out[0].outcome, Outcome::Rejected(Reason::Garbled));

    let s = sample("Logon with 96=ABC=DE (embedded \"=\" in value, no 95)");
    let out = decode_to_vec(&decoder("2"), &reframe(&s.message, |b| b), 0);
    assert_eq!(out[0].outcome, Outcome::Ignored);

    let cme = samples()
        .into_iter()
        .find(|s| s.description.starts_with("CME ExecutionReport"))
        .unwrap();
    let out = decode_to_vec(&decoder("2"), &reframe(&cme.message, |b| b), 0);
    let t = &out[0].trades[0];
    assert_eq!(
        (t.symbol.as_str(), t.price, t.qty),
        ("ES", 208_700 * SCALE, SCALE)
    );
    assert_eq!(t.id.as_deref(), Some("64485:M:412850TN0031303"));
}

#[test]
fn samples_concatenated_into_one_stream() {
    // All valid samples in one record frame exactly as they do alone, whatever they carry.
    let valid: Vec<Sample> = samples().into_iter().filter(|s| s.valid).collect();
    let stream: Vec<u8> = valid.iter().flat_map(|s| s.message.clone()).collect();
    let out = decode_to_vec(&decoder("2,3"), &stream, 0);
    assert_eq!(out.len(), valid.len());
    let mut offset = 0;
    for (m, s) in out.iter().zip(&valid) {
        assert_eq!((m.offset, m.len), (offset, s.message.len()));
        assert_eq!(m.outcome, expected_valid(&s.description));
        offset += s.message.len();
    }
    // Trades are numbered across the record.
    let ords: Vec<u32> = out
        .iter()
        .flat_map(|m| m.trades.iter().map(|t| t.arrival.ord))
        .collect();
    assert_eq!(ords, (0..ords.len() as u32).collect::<Vec<_>>());
    assert_eq!(fix("a|b<SOH>"), b"a\x01b\x01");
}
