//! Turns raw payloads (FIX tag=value streams or JSON objects) into trades, orders and rejects.
//!
//! The decoder does not allocate per message (a MarketDataIncrementalRefresh with more than
//! eight trades spills to the heap) and never panics: every problem with the input is reported
//! as a [`Reason`] through [`DecodeSink::message`]. Results are pushed into a sink so that the
//! hot path can write them straight into a packed batch, while tools collect them into
//! per-message values.
//!
//! - [`Decoder::decode_record`] decodes a record (FIX stream or JSON trade) into a sink;
//!   [`decode_to_vec`] collects owned [`DecodedMessage`]s instead.
//! - [`frame_stream`] only frames a FIX stream (BodyLength + CheckSum), to split files.
//! - [`decimal`], [`time`] and [`mod@fields`] are the building blocks, public for tools and tests.

pub mod decimal;
mod decoder;
mod emit;
pub mod fields;
mod fix;
mod frame;
pub mod json;
mod owned;
mod swar;
pub mod time;

pub use decimal::{format_fixed, parse_decimal, DecimalError};
pub use decoder::{ConfigError, Decoder, DecoderConfig, MD_ENTRY_TYPES_ENV};
pub use fields::{fields, FieldIter, SOH};
pub use frame::{checksum, frame_stream, is_supported_begin_string, Frame};
pub use owned::{
    decode_to_vec, CollectSink, DecodedMessage, OwnedCorrection, OwnedOrder, OwnedTrade,
};

use crate::reason::Reason;
use crate::types::{Correction, Order, Trade};

/// What became of one framed message (or of a run of skipped bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A valid message that produced this many trades (MarketDataIncrementalRefresh may give 0).
    Trades(u32),
    /// A valid NewOrderSingle; one [`DecodeSink::order`] call follows.
    Order,
    /// A valid trade cancel or correction; one [`DecodeSink::correction`] call follows.
    Correction,
    /// A valid message of a type that carries no trade (heartbeat, order ack, …).
    Ignored,
    /// The message, or the skipped bytes, were rejected.
    Rejected(Reason),
}

/// One framed message, or one run of skipped bytes, within a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo<'a> {
    /// Byte offset of the message within its record.
    pub offset: usize,
    /// Length in bytes (for `Rejected(Garbled)` runs: the number of skipped bytes).
    pub len: usize,
    /// MsgType(35) when the header could be read; `b"json"` for JSON records.
    pub msg_type: Option<&'a [u8]>,
    /// What became of the message or run.
    pub outcome: Outcome,
}

/// Receives the decoder's results in input order.
///
/// For each message, `message` is called first, then its trades, order or correction.
pub trait DecodeSink<'a> {
    /// A message or rejected run; its results (if any) follow.
    fn message(&mut self, info: &MessageInfo<'a>);
    /// A trade of the last message.
    fn trade(&mut self, trade: &Trade<'a>);
    /// The order of the last message.
    fn order(&mut self, order: &Order<'a>);
    /// The correction of the last message.
    fn correction(&mut self, correction: &Correction<'a>);
}

impl Outcome {
    /// The reject reason, if the message was rejected.
    pub fn reason(self) -> Option<Reason> {
        match self {
            Outcome::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the order of sink calls.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl<'a> DecodeSink<'a> for Log {
        fn message(&mut self, info: &MessageInfo<'a>) {
            self.0.push(format!(
                "msg {} {} {:?}",
                info.offset, info.len, info.outcome
            ));
        }
        fn trade(&mut self, trade: &Trade<'a>) {
            self.0
                .push(format!("trade {} {}", trade.symbol, trade.arrival.ord));
        }
        fn order(&mut self, order: &Order<'a>) {
            self.0
                .push(format!("order {} {}", order.symbol, order.arrival.ord));
        }
        fn correction(&mut self, correction: &Correction<'a>) {
            self.0.push(format!("correction {:?}", correction.kind));
        }
    }

    fn msg(body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let sum = checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        m
    }

    #[test]
    fn sink_order_and_arrival_across_messages() {
        let x = msg("35=X|52=20240102-03:04:05|268=2|269=2|55=A|270=1|269=2|55=B|270=2|");
        let d = msg("35=D|55=C|54=1|38=1|52=20240102-03:04:05|");
        let er = msg("35=8|17=1|150=F|55=D|31=1|32=1|52=20240102-03:04:05|");
        let (xl, dl, el) = (x.len(), d.len(), er.len());
        let record = [x, d.clone(), er, d, b"\n".to_vec()].concat();
        let mut log = Log::default();
        Decoder::new(DecoderConfig::default()).decode_record(&record, 9, &mut log);
        assert_eq!(
            log.0,
            [
                format!("msg 0 {xl} Trades(2)"),
                "trade A 0".into(),
                "trade B 1".into(),
                format!("msg {xl} {dl} Order"),
                "order C 0".into(),
                format!("msg {} {el} Trades(1)", xl + dl),
                "trade D 2".into(),
                format!("msg {} {dl} Order", xl + dl + el),
                "order C 1".into(),
            ]
        );
    }

    #[test]
    fn json_records_are_dispatched() {
        let out = decode_to_vec(
            &Decoder::new(DecoderConfig::default()),
            br#"  {"symbol":"X","price":"1.5","qty":2,"ts":"2024-01-02T03:04:05Z"}"#,
            3,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].msg_type.as_deref(), Some("json"));
        assert_eq!(out[0].outcome, Outcome::Trades(1));
        assert_eq!(
            out[0].trades[0].arrival,
            crate::types::Arrival { seq: 3, ord: 0 }
        );
    }

    #[test]
    fn empty_records_produce_nothing() {
        let dec = Decoder::new(DecoderConfig::default());
        assert!(decode_to_vec(&dec, b"", 0).is_empty());
        assert!(decode_to_vec(&dec, b"\r\n", 0).is_empty());
        let out = decode_to_vec(&dec, b" ", 0);
        assert_eq!(out[0].outcome, Outcome::Rejected(Reason::Garbled));
        assert_eq!(
            Outcome::Rejected(Reason::Garbled).reason(),
            Some(Reason::Garbled)
        );
        assert_eq!(Outcome::Ignored.reason(), None);
    }
}
