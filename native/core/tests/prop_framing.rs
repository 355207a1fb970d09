//! Property tests of framing: random valid messages (with data fields holding SOH, `=`,
//! `10=` and `8=FIX`) concatenated into one record decode back to their exact fields and
//! offsets, and corrupting one message never costs the messages around it.

mod support;

use proptest::prelude::*;
use support::{build_bytes, decoder, Counts};
use tickstream_core::decode::{decode_to_vec, fields, frame_stream, Outcome, SOH};

const BEGIN_STRINGS: [&str; 6] = [
    "FIX.4.0", "FIX.4.1", "FIX.4.2", "FIX.4.3", "FIX.4.4", "FIXT.1.1",
];
/// MsgTypes that carry no trade, so every generated message is `Ignored`.
const MSG_TYPES: [&str; 8] = ["0", "1", "A", "B", "n", "j", "BE", "U1"];
/// (length tag, data tag) pairs.
const DATA_PAIRS: [(u32, u32); 5] = [(95, 96), (212, 213), (354, 355), (364, 365), (1401, 1402)];
/// Tags whose next field would be read as data, and the header/trailer tags.
const RESERVED: [u32; 25] = [
    8, 9, 10, 35, 90, 93, 95, 212, 348, 350, 352, 354, 356, 358, 360, 362, 364, 445, 618, 621,
    1184, 1277, 1401, 96, 213,
];

#[derive(Debug, Clone)]
enum Field {
    Plain(u32, Vec<u8>),
    Data(u32, u32, Vec<u8>),
}

fn plain_value() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes but SOH; '=' and "8=FIX" are fine inside a value.
    prop_oneof![
        proptest::collection::vec(any::<u8>().prop_filter("no SOH", |&b| b != SOH), 0..12),
        Just(b"FIX11".to_vec()),
        Just(b"8=FIX.4.2".to_vec()),
        Just(b"a=b=c".to_vec()),
    ]
}

fn data_value() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(vec![SOH]),
        Just(b"8=FIX".to_vec()),
        Just(b"8=FIX.4.4\x01".to_vec()),
        Just(b"10=".to_vec()),
        Just(b"=".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(token, 0..8).prop_map(|t| t.concat())
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        3 => (1u32..20_000)
            .prop_filter("not reserved", |t| !RESERVED.contains(t))
            .prop_flat_map(|t| plain_value().prop_map(move |v| Field::Plain(t, v))),
        1 => (0..DATA_PAIRS.len(), data_value())
            .prop_map(|(i, v)| Field::Data(DATA_PAIRS[i].0, DATA_PAIRS[i].1, v)),
    ]
}

#[derive(Debug, Clone)]
struct Message {
    begin: &'static str,
    msg_type: &'static str,
    fields: Vec<Field>,
}

impl Message {
    fn body(&self) -> Vec<u8> {
        let mut body = format!("35={}\u{1}", self.msg_type).into_bytes();
        for f in &self.fields {
            match f {
                Field::Plain(t, v) => push(&mut body, *t, v),
                Field::Data(lt, dt, v) => {
                    push(&mut body, *lt, v.len().to_string().as_bytes());
                    push(&mut body, *dt, v);
                }
            }
        }
        body
    }

    fn bytes(&self) -> Vec<u8> {
        build_bytes(self.begin, &self.body())
    }

    /// The fields a walk over the whole frame must yield.
    fn expected_fields(&self, frame: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let body = self.body();
        let mut out = vec![
            (8, self.begin.as_bytes().to_vec()),
            (9, body.len().to_string().into_bytes()),
            (35, self.msg_type.as_bytes().to_vec()),
        ];
        for f in &self.fields {
            match f {
                Field::Plain(t, v) => out.push((*t, v.clone())),
                Field::Data(lt, dt, v) => {
                    out.push((*lt, v.len().to_string().into_bytes()));
                    out.push((*dt, v.clone()));
                }
            }
        }
        out.push((10, frame[frame.len() - 4..frame.len() - 1].to_vec()));
        out
    }
}

fn push(body: &mut Vec<u8>, tag: u32, value: &[u8]) {
    body.extend_from_slice(format!("{tag}=").as_bytes());
    body.extend_from_slice(value);
    body.push(SOH);
}

fn message() -> impl Strategy<Value = Message> {
    (
        0..BEGIN_STRINGS.len(),
        0..MSG_TYPES.len(),
        proptest::collection::vec(field(), 0..10),
    )
        .prop_map(|(b, t, fields)| Message {
            begin: BEGIN_STRINGS[b],
            msg_type: MSG_TYPES[t],
            fields,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn concatenated_messages_decode_back(msgs in proptest::collection::vec(message(), 1..6), newline in any::<bool>()) {
        let frames: Vec<Vec<u8>> = msgs.iter().map(Message::bytes).collect();
        let mut record = frames.concat();
        if newline {
            record.push(b'\n');
        }
        let out = decode_to_vec(&decoder("2"), &record, 1);
        prop_assert_eq!(out.len(), msgs.len());
        let mut offset = 0;
        for ((m, frame), got) in msgs.iter().zip(&frames).zip(&out) {
            prop_assert_eq!((got.offset, got.len), (offset, frame.len()));
            prop_assert_eq!(got.outcome, Outcome::Ignored);
            prop_assert_eq!(got.msg_type.as_deref(), Some(m.msg_type));
            let walked: Vec<(u32, Vec<u8>)> = fields(&record[offset..offset + frame.len()])
                .map(|r| r.map(|(t, v)| (t, v.to_vec())))
                .collect::<Result<_, _>>()
                .expect("well-formed fields");
            prop_assert_eq!(walked, m.expected_fields(frame));
            offset += frame.len();
        }
        let mut framed = Vec::new();
        frame_stream(&record, &mut framed);
        prop_assert_eq!(framed.len(), msgs.len());
        prop_assert!(framed.iter().all(|f| f.reject.is_none()));
    }

    #[test]
    fn one_corrupt_byte_costs_only_its_message(
        msgs in proptest::collection::vec(message(), 2..6),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let frames: Vec<Vec<u8>> = msgs.iter().map(Message::bytes).collect();
        let k = which.index(frames.len());
        let starts: Vec<usize> = frames.iter().scan(0, |s, f| { let o = *s; *s += f.len(); Some(o) }).collect();
        let mut record = frames.concat();
        let pos = starts[k] + at.index(frames[k].len());
        record[pos] = record[pos].wrapping_add(delta);
        // A record starting with '{' is JSON by definition, not a corrupt FIX stream.
        prop_assume!(record.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{'));

        let out = decode_to_vec(&decoder("2"), &record, 1);
        prop_assert!(out.iter().any(|m| matches!(m.outcome, Outcome::Rejected(_))), "{:?}", out);
        // Every other message is decoded intact at its offset.
        for (j, frame) in frames.iter().enumerate().filter(|&(j, _)| j != k) {
            let found = out.iter().find(|m| m.offset == starts[j]);
            prop_assert!(found.is_some(), "message {} of {} lost: {:?}", j, frames.len(), out);
            let found = found.unwrap();
            prop_assert_eq!((found.len, found.outcome), (frame.len(), Outcome::Ignored));
        }
        // The results tile the record, except a trailing newline (which the corruption may
        // have produced from the final SOH: 0x01 + 9).
        let newline = if record.ends_with(b"\r\n") { 2 } else { usize::from(record.ends_with(b"\n")) };
        prop_assert_eq!(out.iter().map(|m| m.len).sum::<usize>(), record.len() - newline);
    }

    #[test]
    fn wrong_body_length_is_rejected_and_stream_recovers(
        msgs in proptest::collection::vec(message(), 2..5),
        which in any::<prop::sample::Index>(),
        shift in prop_oneof![-20i64..0, 1i64..20],
    ) {
        let k = which.index(msgs.len());
        let mut frames: Vec<Vec<u8>> = msgs.iter().map(Message::bytes).collect();
        // Rewrite message k's BodyLength (the checksum is recomputed, so only the length lies).
        let body = msgs[k].body();
        let declared = (body.len() as i64 + shift).max(0);
        let mut m = format!("8={}\u{1}9={declared}\u{1}", msgs[k].begin).into_bytes();
        m.extend_from_slice(&body);
        let sum = tickstream_core::decode::checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\u{1}").as_bytes());
        frames[k] = m;
        let starts: Vec<usize> = frames.iter().scan(0, |s, f| { let o = *s; *s += f.len(); Some(o) }).collect();
        let record = frames.concat();

        let mut counts = Counts::default();
        decoder("2").decode_record(&record, 0, &mut counts);
        prop_assert!(counts.rejected >= 1);
        let out = decode_to_vec(&decoder("2"), &record, 0);
        for j in (0..frames.len()).filter(|&j| j != k) {
            let found = out.iter().find(|m| m.offset == starts[j]);
            prop_assert!(found.map(|m| m.outcome) == Some(Outcome::Ignored), "message {} lost: {:?}", j, out);
        }
    }
}
