//! The decoder's configuration and entry point, which frames a record and hands each message to
//! the FIX or JSON decoder.

use memchr::memmem;

use super::emit::{Emitter, Rules};
use super::frame::{FrameResult, Framer, MESSAGE_START};
use super::{fix, json, DecodeSink, MessageInfo, Outcome};

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
    rules: Rules,
    finder: memmem::Finder<'static>,
}

impl Decoder {
    /// Builds a decoder for `config`.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            rules: Rules::new(&config.md_entry_types, config.max_symbol_len),
            config,
            finder: memmem::Finder::new(MESSAGE_START),
        }
    }

    /// The configuration this decoder was built with.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
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
            json::decode_json(&self.rules, record, &mut out);
            return;
        }
        for event in Framer::new(record, &self.finder) {
            match event.result {
                FrameResult::Good(frame) => {
                    fix::decode_message(&self.rules, frame, event.offset, event.len, &mut out);
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
        assert!(d.rules.is_trade_entry_type(b"3"));
        assert!(d.rules.is_trade_entry_type(b"AB"));
        assert!(!d.rules.is_trade_entry_type(b"0"));
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
