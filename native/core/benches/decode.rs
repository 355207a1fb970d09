//! Decoder throughput on the JSE corpus (13,888 real FIXT.1.1 messages, ~150 B each).
//!
//! `decode`: framing + CheckSum + field walk + extraction of the 11,365 index values as
//! trades (MDEntryTypes {2,3}), into a no-op counting sink. `frame`: framing + CheckSum only.
//! Each is measured twice, once per throughput unit (messages/s and bytes/s).
//!
//! Data: `TICKSTREAM_FIX_DATA`, else `<repo>/test/data/fix` when present, else the shared
//! `../shared/data/fix` next to the repository.
//!
//! The alternatives measured for the hot loop (SWAR vs byte loops vs memchr) and their figures
//! are in docs/design-notes.md.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickstream_core::decode::{
    frame_stream, DecodeSink, Decoder, DecoderConfig, Frame, MessageInfo, Outcome,
};
use tickstream_core::{Correction, Order, Trade};

fn corpus() -> Vec<u8> {
    let dir = std::env::var_os("TICKSTREAM_FIX_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let vendored = manifest.join("../../test/data/fix");
            if vendored.is_dir() {
                vendored
            } else {
                manifest.join("../../../shared/data/fix")
            }
        });
    let path = dir.join("hffix-fix.5.0.set.1.fix");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Counts what the decoder reports, touching each trade's fields so nothing is optimised out.
#[derive(Default)]
struct CountingSink {
    messages: u64,
    rejected: u64,
    trades: u64,
    checksum: i64,
}

impl<'a> DecodeSink<'a> for CountingSink {
    #[inline]
    fn message(&mut self, info: &MessageInfo<'a>) {
        self.messages += 1;
        self.rejected += u64::from(matches!(info.outcome, Outcome::Rejected(_)));
    }
    #[inline]
    fn trade(&mut self, trade: &Trade<'a>) {
        self.trades += 1;
        self.checksum = self
            .checksum
            .wrapping_add(trade.price ^ trade.time_ns ^ trade.symbol.len() as i64);
    }
    #[inline]
    fn order(&mut self, _: &Order<'a>) {}
    #[inline]
    fn correction(&mut self, _: &Correction<'a>) {}
}

fn bench(c: &mut Criterion) {
    let data = corpus();
    let decoder = Decoder::new(DecoderConfig::with_md_entry_types("2,3").expect("valid types"));

    // Sanity check once, outside the timing.
    let mut sink = CountingSink::default();
    decoder.decode_record(&data, 0, &mut sink);
    assert_eq!(
        (sink.messages, sink.trades, sink.rejected),
        (13_888, 11_365, 0)
    );
    let messages = sink.messages;

    let decode = |data: &[u8]| {
        let mut sink = CountingSink::default();
        decoder.decode_record(black_box(data), 0, &mut sink);
        black_box((sink.trades, sink.checksum))
    };
    let mut frames: Vec<Frame> = Vec::with_capacity(16_384);
    let mut frame = |data: &[u8]| {
        frames.clear();
        frame_stream(black_box(data), &mut frames);
        black_box(frames.len())
    };

    let mut group = c.benchmark_group("jse_md23");
    group.throughput(Throughput::Elements(messages));
    group.bench_function("decode/msgs", |b| b.iter(|| decode(&data)));
    group.bench_function("frame/msgs", |b| b.iter(|| frame(&data)));
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("decode/bytes", |b| b.iter(|| decode(&data)));
    group.bench_function("frame/bytes", |b| b.iter(|| frame(&data)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
