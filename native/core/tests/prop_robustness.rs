//! Arbitrary input never panics, and the decoder's report always accounts for every byte.

mod support;

use proptest::prelude::*;
use support::{decoder, samples, Counts};
use tickstream_core::decode::{decode_to_vec, frame_stream, DecodedMessage};

/// Checks that messages and runs tile the record (minus one trailing newline), in order.
fn assert_tiles(record: &[u8], out: &[DecodedMessage]) -> Result<(), TestCaseError> {
    let json = record.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if json {
        prop_assert_eq!(out.len(), 1);
        prop_assert_eq!((out[0].offset, out[0].len), (0, record.len()));
        return Ok(());
    }
    let end = if record.ends_with(b"\r\n") {
        record.len() - 2
    } else if record.ends_with(b"\n") {
        record.len() - 1
    } else {
        record.len()
    };
    let mut offset = 0;
    for m in out {
        prop_assert_eq!(m.offset, offset);
        prop_assert!(m.len > 0);
        prop_assert_eq!(
            m.trades.is_empty(),
            !matches!(m.outcome, tickstream_core::decode::Outcome::Trades(n) if n > 0)
        );
        offset += m.len;
    }
    prop_assert_eq!(offset, end);
    let mut frames = Vec::new();
    frame_stream(record, &mut frames);
    prop_assert_eq!(frames.iter().map(|f| f.len).sum::<usize>(), end);
    Ok(())
}

fn valid_messages() -> Vec<Vec<u8>> {
    samples()
        .into_iter()
        .filter(|s| s.valid)
        .map(|s| s.message)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes(record in proptest::collection::vec(any::<u8>(), 0..512)) {
        let out = decode_to_vec(&decoder("2,3"), &record, 0);
        assert_tiles(&record, &out)?;
    }

    #[test]
    fn fix_like_bytes(record in proptest::collection::vec(
        prop_oneof![
            Just(b"8=FIX.4.4\x01".to_vec()), Just(b"9=".to_vec()), Just(b"35=X\x01".to_vec()),
            Just(b"268=".to_vec()), Just(b"269=2\x01".to_vec()), Just(b"270=".to_vec()),
            Just(b"10=".to_vec()), Just(b"\x01".to_vec()), Just(b"95=".to_vec()), Just(b"96=".to_vec()),
            "[0-9]{1,3}".prop_map(String::into_bytes), Just(b"=".to_vec()), Just(b"{".to_vec()),
        ],
        0..64,
    )) {
        let record = record.concat();
        let out = decode_to_vec(&decoder("2,3"), &record, 0);
        assert_tiles(&record, &out)?;
    }

    #[test]
    fn mutated_valid_messages(
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..5),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let pool = valid_messages();
        let mut record: Vec<u8> = picks.iter().flat_map(|i| pool[i.index(pool.len())].clone()).collect();
        for (at, byte, kind) in edits {
            if record.is_empty() {
                break;
            }
            let i = at.index(record.len());
            match kind {
                0 => record[i] = byte,
                1 => { record.remove(i); }
                _ => record.insert(i, byte),
            }
        }
        let out = decode_to_vec(&decoder("2,3"), &record, 0);
        assert_tiles(&record, &out)?;
        let mut counts = Counts::default();
        decoder("2").decode_record(&record, 0, &mut counts);
        prop_assert_eq!(counts.messages as usize, out.len());
    }

    #[test]
    fn json_like_records(record in r#"\{("(symbol|price|qty|ts|side|id)":("[A-Za-z0-9.:\-\\]{0,12}"|-?[0-9.eE]{1,8}|null|true|\{\}),?){0,7}\}"#) {
        let out = decode_to_vec(&decoder("2"), record.as_bytes(), 0);
        assert_tiles(record.as_bytes(), &out)?;
    }
}
