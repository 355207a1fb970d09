//! Feeds arbitrary bytes to `Decoder::decode_record` and `frame_stream`.
//!
//! Beyond "never panics", it checks the decoder's accounting: the messages and rejected runs
//! of a FIX record tile it (minus one trailing newline), each message's results match its
//! outcome, and `frame_stream` agrees on the frames.
//!
//! Run: `cd native/fuzz && cargo +nightly fuzz run decode -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tickstream_core::decode::{
    frame_stream, DecodeSink, Decoder, DecoderConfig, MessageInfo, Outcome,
};
use tickstream_core::{Correction, Order, Trade, SCALE};

/// Checks the sink contract as the results arrive.
#[derive(Default)]
struct Checker {
    next_offset: usize,
    expected_trades: u32,
    expect_order: bool,
    expect_correction: bool,
    messages: usize,
    fix_messages: usize,
}

impl Checker {
    fn finish_message(&self) {
        assert_eq!(self.expected_trades, 0, "fewer trades than announced");
        assert!(
            !self.expect_order && !self.expect_correction,
            "missing order/correction"
        );
    }
}

impl<'a> DecodeSink<'a> for Checker {
    fn message(&mut self, info: &MessageInfo<'a>) {
        self.finish_message();
        assert_eq!(info.offset, self.next_offset, "gap or overlap");
        assert!(info.len > 0, "empty message");
        self.next_offset = info.offset + info.len;
        self.messages += 1;
        if info.msg_type != Some(b"json") && !matches!(info.outcome, Outcome::Rejected(_)) {
            self.fix_messages += 1;
        }
        match info.outcome {
            Outcome::Trades(n) => self.expected_trades = n,
            Outcome::Order => self.expect_order = true,
            Outcome::Correction => self.expect_correction = true,
            Outcome::Ignored | Outcome::Rejected(_) => {}
        }
    }

    fn trade(&mut self, trade: &Trade<'a>) {
        assert!(self.expected_trades > 0, "unannounced trade");
        self.expected_trades -= 1;
        assert!(trade.price > 0 && trade.qty >= 0 && trade.time_ns >= 0);
        assert!(!trade.symbol.is_empty() && !trade.symbol.chars().any(char::is_control));
        // Touch the fixed-point values the way the engine would.
        let _ = i128::from(trade.price) * i128::from(trade.qty) / i128::from(SCALE);
    }

    fn order(&mut self, order: &Order<'a>) {
        assert!(std::mem::take(&mut self.expect_order), "unannounced order");
        assert!(order.qty > 0 && order.price.is_none_or(|p| p > 0));
    }

    fn correction(&mut self, _: &Correction<'a>) {
        assert!(
            std::mem::take(&mut self.expect_correction),
            "unannounced correction"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let json = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let end = if data.ends_with(b"\r\n") {
        data.len() - 2
    } else if data.ends_with(b"\n") {
        data.len() - 1
    } else {
        data.len()
    };

    for types in ["2", "2,3,AB"] {
        let decoder = Decoder::new(DecoderConfig::with_md_entry_types(types).unwrap());
        let mut checker = Checker::default();
        decoder.decode_record(data, 7, &mut checker);
        checker.finish_message();
        if json {
            assert_eq!((checker.messages, checker.next_offset), (1, data.len()));
        } else {
            assert_eq!(checker.next_offset, end, "messages do not cover the record");
        }
    }

    if !json {
        let mut frames = Vec::new();
        frame_stream(data, &mut frames);
        assert_eq!(frames.iter().map(|f| f.len).sum::<usize>(), end);
    }
});
