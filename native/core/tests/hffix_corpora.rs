//! The three hffix corpora (real JSE market data, FIXT.1.1 and FIX.4.1 sessions) decode
//! without a single reject, with the message and trade counts of the data's README.

mod support;

use std::collections::{BTreeMap, HashMap};

use support::{decoder, read_data, Counts};
use tickstream_core::decode::{decode_to_vec, frame_stream, Outcome};
use tickstream_core::{Side, SCALE};

const JSE: &str = "hffix-fix.5.0.set.1.fix";
const SESSION: &str = "hffix-fix.5.0.set.2.fix";
const FIX41: &str = "hffix-fix.4.1.set.1.fix";

/// 2011-11-24 00:00:00 UTC in ns, by hand: 41 years 1970–2010 with 10 leap days
/// (1972 … 2008) = 14,975 days; January–October 2011 = 304 days; then 23 days: 15,302 days.
const JSE_DAY_NS: i64 = 15_302 * 86_400 * 1_000_000_000;

fn jse_time(h: i64, m: i64, s: i64, ms: i64) -> i64 {
    JSE_DAY_NS + ((h * 60 + m) * 60 + s) * 1_000_000_000 + ms * 1_000_000
}

fn msg_types(record: &[u8], md_types: &str) -> BTreeMap<(String, String), usize> {
    let mut by = BTreeMap::new();
    for m in decode_to_vec(&decoder(md_types), record, 0) {
        let key = (m.msg_type.unwrap_or_default(), format!("{:?}", m.outcome));
        *by.entry(key).or_default() += 1;
    }
    by
}

fn key(t: &str, o: &str) -> (String, String) {
    (t.to_owned(), o.to_owned())
}

#[test]
fn corpora_have_no_rejects() {
    for (name, messages) in [(JSE, 13_888), (SESSION, 65), (FIX41, 16)] {
        let data = read_data(name);
        for md_types in ["2", "2,3"] {
            let mut counts = Counts::default();
            decoder(md_types).decode_record(&data, 0, &mut counts);
            assert_eq!(counts.rejected, 0, "{name}: {:?}", counts.rejects);
            assert_eq!(counts.messages, messages, "{name}");
        }
        let mut frames = Vec::new();
        frame_stream(&data, &mut frames);
        assert_eq!(frames.len() as u64, messages, "{name}");
        assert!(frames.iter().all(|f| f.reject.is_none()), "{name}");
        // Frames tile the file (except the FIX.4.1 file's trailing newline).
        let end = frames.last().map_or(0, |f| f.offset + f.len);
        assert_eq!(
            data.len() - end,
            usize::from(data.ends_with(b"\n")),
            "{name}"
        );
    }
}

#[test]
fn jse_counts() {
    let data = read_data(JSE);
    // Default MDEntryTypes {2}: the index values (269=3) are not trades.
    let by = msg_types(&data, "2");
    assert_eq!(by[&key("0", "Ignored")], 2_523);
    assert_eq!(by[&key("X", "Trades(0)")], 11_365);
    assert_eq!(by.len(), 2);
    // {2,3}: every refresh carries exactly one index value.
    let by = msg_types(&data, "2,3");
    assert_eq!(by[&key("0", "Ignored")], 2_523);
    assert_eq!(by[&key("X", "Trades(1)")], 11_365);
    assert_eq!(by.len(), 2);
}

#[test]
fn jse_known_trades() {
    let data = read_data(JSE);
    let out = decode_to_vec(&decoder("2,3"), &data, 42);
    let trades: Vec<_> = out
        .iter()
        .flat_map(|m| m.trades.iter().map(move |t| (m.offset, t)))
        .collect();
    assert_eq!(trades.len(), 11_365);

    let mut per_symbol: HashMap<&str, Vec<_>> = HashMap::new();
    for (offset, t) in &trades {
        per_symbol
            .entry(t.symbol.as_str())
            .or_default()
            .push((*offset, *t));
    }
    assert_eq!(per_symbol.len(), 80);

    // The first trade of the file: JA00 at 76.79, after 112,292 bytes of heartbeats.
    let (offset, first) = trades[0];
    assert_eq!(offset, 112_292);
    assert_eq!(
        (first.symbol.as_str(), first.price, first.qty),
        ("JA00", 76_790_000_000, 0)
    );
    assert_eq!(first.time_ns, jse_time(6, 28, 56, 151));
    assert_eq!(
        (
            first.arrival.seq,
            first.arrival.ord,
            first.id.as_deref(),
            first.side
        ),
        (42, 0, None, Side::Unknown)
    );

    // J200 (the FTSE/JSE Top 40): 2,930 values, the first printed with 17 significant digits.
    let j200 = &per_symbol["J200"];
    assert_eq!(j200.len(), 2_930);
    let (offset, t) = j200[0];
    assert_eq!(offset, 238_923);
    assert_eq!(t.price, 25_929_170_000_000);
    assert_eq!(t.time_ns, jse_time(6, 58, 56, 460));
    let (offset, t) = j200[j200.len() - 1];
    assert_eq!((offset, t.price), (2_091_841, 25_809_440_000_000));
    assert_eq!(t.time_ns, jse_time(7, 57, 8, 268));

    // JA0R's 68.209999999999 (12 fractional digits) is 68.21.
    let ja0r = &per_symbol["JA0R"];
    assert_eq!(ja0r.len(), 351);
    let (_, t) = ja0r.iter().find(|(o, _)| *o == 119_040).unwrap();
    assert_eq!(t.price, 68_210_000_000);
    assert_eq!(t.time_ns, jse_time(6, 30, 26, 197));

    assert_eq!(per_symbol["J151"].len(), 59);
    assert_eq!(per_symbol["J151"][0].1.price, 17_624_650_000_000);
}

#[test]
fn session_corpus() {
    let data = read_data(SESSION);
    let by = msg_types(&data, "2");
    assert_eq!(by[&key("D", "Order")], 15);
    assert_eq!(by[&key("A", "Ignored")], 16);
    assert_eq!(by[&key("0", "Ignored")], 18);
    assert_eq!(by[&key("5", "Ignored")], 14);
    let out = decode_to_vec(&decoder("2"), &data, 5);
    let m = out.iter().find(|m| m.offset == 472).unwrap();
    let o = m.order.as_ref().unwrap();
    assert_eq!(
        (o.symbol.as_str(), o.side, o.qty, o.price),
        ("9955", Side::Buy, SCALE, Some(1_380_000_000))
    );
    assert_eq!((o.arrival.seq, o.arrival.ord), (5, 0));
    let ords: Vec<u32> = out
        .iter()
        .filter_map(|m| m.order.as_ref())
        .map(|o| o.arrival.ord)
        .collect();
    assert_eq!(ords, (0..15).collect::<Vec<_>>());
}

#[test]
fn fix41_corpus() {
    let data = read_data(FIX41);
    let out = decode_to_vec(&decoder("2"), &data, 0);
    assert_eq!(out.len(), 16);
    let trades: Vec<_> = out.iter().flat_map(|m| &m.trades).collect();
    assert_eq!(trades.len(), 2);
    assert_eq!(
        (trades[0].symbol.as_str(), trades[0].price, trades[0].qty),
        ("MSFT", 12_300_000_000, 10_000 * SCALE)
    );
    assert_eq!(
        (trades[1].symbol.as_str(), trades[1].id.as_deref()),
        ("ORCL", Some("4"))
    );
    // The three 150=2 acknowledgements with 31=0|32=0 are not executions.
    let acks = out
        .iter()
        .filter(|m| m.msg_type.as_deref() == Some("8") && m.outcome == Outcome::Ignored)
        .count();
    assert_eq!(acks, 3);
    assert_eq!(
        out.iter().filter(|m| m.outcome == Outcome::Order).count(),
        3
    );
    assert_eq!(
        out.iter()
            .filter(|m| m.msg_type.as_deref() == Some("3"))
            .count(),
        2
    );
}
