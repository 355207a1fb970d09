//! The decoder's configuration, entry point and record-level bookkeeping.

use memchr::memmem;

use super::frame::{FrameResult, Framer, MESSAGE_START};
use super::time::DateCache;
use super::{fix, json, DecodeSink, MessageInfo, Outcome};
use crate::reason::Reason;
use crate::types::{Arrival, Correction, Order, Side, Trade};

/// Name of the environment variable whose value [`DecoderConfig::with_md_entry_types`] parses.
pub const MD_ENTRY_TYPES_ENV: &str = "FIX_MD_ENTRY_TYPES";

/// What the decoder treats as a trade, and how strictly it checks symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// MDEntryType(269) values whose MarketDataIncrementalRefresh entries are trades.
    ///
    /// Default `["2"]` (Trade). Index feeds such as the JSE's publish values as `3`
    /// (Index Value); add it to treat them as trades.
    pub md_entry_types: Vec<Vec<u8>>,
    /// Longest accepted symbol, in bytes (default 64).
    pub max_symbol_len: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            md_entry_types: vec![b"2".to_vec()],
            max_symbol_len: 64,
        }
    }
}

/// A rejected decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The MDEntryType list has no entries (`""`) or an empty one (`"2,,3"`).
    #[error("empty MDEntryType in list {0:?}")]
    EmptyEntryType(String),
    /// An MDEntryType contains a byte that cannot appear in a FIX value (SOH, control
    /// characters, `=`, spaces or non-ASCII).
    #[error("invalid MDEntryType {0:?}")]
    InvalidEntryType(String),
}

impl DecoderConfig {
    /// The default configuration with MDEntryTypes taken from a comma-separated list such as
    /// `"2,3"` (the format of the `FIX_MD_ENTRY_TYPES` environment variable).
    ///
    /// Spaces around items are ignored.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyEntryType`] for an empty list or item, and
    /// [`ConfigError::InvalidEntryType`] for an item with bytes other than printable ASCII
    /// (excluding `=` and space).
    pub fn with_md_entry_types(spec: &str) -> Result<Self, ConfigError> {
        let mut types = Vec::new();
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(ConfigError::EmptyEntryType(spec.to_owned()));
            }
            if !item.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
                return Err(ConfigError::InvalidEntryType(item.to_owned()));
            }
            if !types.iter().any(|t: &Vec<u8>| t == item.as_bytes()) {
                types.push(item.as_bytes().to_vec());
            }
        }
        Ok(DecoderConfig {
            md_entry_types: types,
            ..DecoderConfig::default()
        })
    }
}

/// Decodes records of FIX tag=value streams or JSON trades into a [`DecodeSink`].
///
/// Immutable after construction, so one decoder can be shared by threads.
#[derive(Debug, Clone)]
pub struct Decoder {
    config: DecoderConfig,
    /// Bit `c` set when the one-byte MDEntryType `c` (ASCII) is a trade: the common case is a
    /// single-character type, tested with one shift instead of a list scan.
    md_single: u128,
    /// Trade MDEntryTypes longer than one byte.
    md_multi: Vec<Vec<u8>>,
    finder: memmem::Finder<'static>,
}

impl Decoder {
    /// Builds a decoder for `config`.
    pub fn new(config: DecoderConfig) -> Self {
        let mut md_single = 0u128;
        let mut md_multi = Vec::new();
        for t in &config.md_entry_types {
            match t.as_slice() {
                [c] if *c < 128 => md_single |= 1u128 << c,
                _ => md_multi.push(t.clone()),
            }
        }
        Decoder {
            config,
            md_single,
            md_multi,
            finder: memmem::Finder::new(MESSAGE_START),
        }
    }

    /// The configuration this decoder was built with.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Whether an MDEntryType value denotes a trade under this configuration.
    #[inline]
    pub(crate) fn is_trade_entry_type(&self, entry_type: &[u8]) -> bool {
        match entry_type {
            [c] if *c < 128 => self.md_single >> c & 1 == 1,
            _ => self.md_multi.iter().any(|t| t == entry_type),
        }
    }

    /// Longest accepted symbol in bytes.
    #[inline]
    pub(crate) fn max_symbol_len(&self) -> usize {
        self.config.max_symbol_len
    }

    /// Decodes one record (one Kafka record, or a whole stream/file). A record whose first
    /// byte after optional ASCII whitespace is '{' is a JSON trade; otherwise it is a FIX
    /// stream that may hold several messages.
    ///
    /// For every message or rejected run, in order, the sink receives
    /// [`DecodeSink::message`] and then the message's trades, order or correction. Trades get
    /// `Arrival { seq, ord }` with `ord` counting the trades of this record from 0; orders
    /// count the record's orders the same way. An empty record (or one holding only its
    /// trailing newline) produces nothing.
    pub fn decode_record<'a, S: DecodeSink<'a>>(&self, record: &'a [u8], seq: u64, sink: &mut S) {
        let mut out = Emitter::new(sink, seq);
        if is_json(record) {
            json::decode_json(self, record, &mut out);
            return;
        }
        for event in Framer::new(record, &self.finder) {
            match event.result {
                FrameResult::Good(frame) => {
                    fix::decode_message(self, frame, event.offset, event.len, &mut out);
                }
                FrameResult::Rejected { reason, msg_type } => out.message(MessageInfo {
                    offset: event.offset,
                    len: event.len,
                    msg_type,
                    outcome: Outcome::Rejected(reason),
                }),
            }
        }
    }
}

/// Whether the first byte after optional ASCII whitespace is `{`.
#[inline]
fn is_json(record: &[u8]) -> bool {
    record
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// A trade before its arrival is assigned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TradeData<'a> {
    pub symbol: &'a str,
    pub price: i64,
    pub qty: i64,
    pub time_ns: i64,
    pub id: Option<&'a str>,
    pub side: Side,
}

/// An order before its arrival is assigned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderData<'a> {
    pub symbol: &'a str,
    pub side: Side,
    pub qty: i64,
    pub price: Option<i64>,
    pub time_ns: i64,
    pub cl_ord_id: Option<&'a str>,
}

/// Forwards results to the sink and numbers the record's trades and orders.
pub(crate) struct Emitter<'s, S> {
    sink: &'s mut S,
    seq: u64,
    trade_ord: u32,
    order_ord: u32,
    /// The record's last timestamp date, shared by its messages' time fields.
    pub dates: DateCache,
}

impl<'s, 'a, S: DecodeSink<'a>> Emitter<'s, S> {
    #[inline]
    fn new(sink: &'s mut S, seq: u64) -> Self {
        Emitter {
            sink,
            seq,
            trade_ord: 0,
            order_ord: 0,
            dates: DateCache::default(),
        }
    }

    #[inline]
    pub fn message(&mut self, info: MessageInfo<'a>) {
        self.sink.message(&info);
    }

    #[inline]
    pub fn reject(
        &mut self,
        offset: usize,
        len: usize,
        msg_type: Option<&'a [u8]>,
        reason: Reason,
    ) {
        self.message(MessageInfo {
            offset,
            len,
            msg_type,
            outcome: Outcome::Rejected(reason),
        });
    }

    #[inline]
    pub fn trade(&mut self, t: &TradeData<'a>) {
        let trade = Trade {
            symbol: t.symbol,
            price: t.price,
            qty: t.qty,
            time_ns: t.time_ns,
            arrival: Arrival {
                seq: self.seq,
                ord: self.trade_ord,
            },
            id: t.id,
            side: t.side,
        };
        // A record would need billions of trades to wrap; wrapping keeps this panic-free.
        self.trade_ord = self.trade_ord.wrapping_add(1);
        self.sink.trade(&trade);
    }

    #[inline]
    pub fn order(&mut self, o: &OrderData<'a>) {
        let order = Order {
            symbol: o.symbol,
            side: o.side,
            qty: o.qty,
            price: o.price,
            time_ns: o.time_ns,
            arrival: Arrival {
                seq: self.seq,
                ord: self.order_ord,
            },
            cl_ord_id: o.cl_ord_id,
        };
        self.order_ord = self.order_ord.wrapping_add(1);
        self.sink.order(&order);
    }

    /// Corrections are numbered with the record's trades (see [`Correction::arrival`]).
    #[inline]
    pub fn correction(&mut self, c: &Correction<'a>) {
        let c = Correction {
            arrival: Arrival {
                seq: self.seq,
                ord: self.trade_ord,
            },
            ..*c
        };
        self.trade_ord = self.trade_ord.wrapping_add(1);
        self.sink.correction(&c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md_entry_type_spec() {
        let c = DecoderConfig::with_md_entry_types("2, 3").unwrap();
        assert_eq!(c.md_entry_types, vec![b"2".to_vec(), b"3".to_vec()]);
        assert_eq!(c.max_symbol_len, 64);
        assert!(matches!(
            DecoderConfig::with_md_entry_types(""),
            Err(ConfigError::EmptyEntryType(_))
        ));
        assert!(matches!(
            DecoderConfig::with_md_entry_types("2,,3"),
            Err(ConfigError::EmptyEntryType(_))
        ));
        assert!(matches!(
            DecoderConfig::with_md_entry_types("2,a=b"),
            Err(ConfigError::InvalidEntryType(_))
        ));
        let d = Decoder::new(DecoderConfig::with_md_entry_types("2,3,AB").unwrap());
        assert!(d.is_trade_entry_type(b"3"));
        assert!(d.is_trade_entry_type(b"AB"));
        assert!(!d.is_trade_entry_type(b"0"));
        assert!(!d.is_trade_entry_type(b""));
        assert!(!d.is_trade_entry_type("é".as_bytes()));
    }

    #[test]
    fn decoder_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Decoder>();
    }

    #[test]
    fn json_detection() {
        assert!(is_json(b" \n{\"a\":1}"));
        assert!(!is_json(b"8=FIX.4.2"));
        assert!(!is_json(b"   "));
    }
}
