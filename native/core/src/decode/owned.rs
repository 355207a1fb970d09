//! Owned per-message results, for tools, tests and the Node binding's per-message API.

use serde::{Deserialize, Serialize};

use super::{DecodeSink, Decoder, MessageInfo, Outcome};
use crate::types::{Arrival, Correction, CorrectionKind, Order, Side, Trade};

/// A [`Trade`] with owned text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedTrade {
    /// Instrument symbol.
    pub symbol: String,
    /// Price mantissa, scale [`crate::types::SCALE`].
    pub price: i64,
    /// Quantity mantissa, scale [`crate::types::SCALE`].
    pub qty: i64,
    /// Event time, ns since the epoch.
    pub time_ns: i64,
    /// Position in arrival order.
    pub arrival: Arrival,
    /// Trade id, when the source has one.
    pub id: Option<String>,
    /// Aggressor side.
    pub side: Side,
}

impl From<&Trade<'_>> for OwnedTrade {
    fn from(t: &Trade<'_>) -> Self {
        OwnedTrade {
            symbol: t.symbol.to_owned(),
            price: t.price,
            qty: t.qty,
            time_ns: t.time_ns,
            arrival: t.arrival,
            id: t.id.map(str::to_owned),
            side: t.side,
        }
    }
}

/// An [`Order`] with owned text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedOrder {
    /// Instrument symbol.
    pub symbol: String,
    /// Order side.
    pub side: Side,
    /// OrderQty mantissa.
    pub qty: i64,
    /// Limit price mantissa; `None` for market orders.
    pub price: Option<i64>,
    /// Event time, ns since the epoch.
    pub time_ns: i64,
    /// Position in arrival order.
    pub arrival: Arrival,
    /// ClOrdID.
    pub cl_ord_id: Option<String>,
}

impl From<&Order<'_>> for OwnedOrder {
    fn from(o: &Order<'_>) -> Self {
        OwnedOrder {
            symbol: o.symbol.to_owned(),
            side: o.side,
            qty: o.qty,
            price: o.price,
            time_ns: o.time_ns,
            arrival: o.arrival,
            cl_ord_id: o.cl_ord_id.map(str::to_owned),
        }
    }
}

/// A [`Correction`] with owned text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedCorrection {
    /// Cancel or correct.
    pub kind: CorrectionKind,
    /// Instrument symbol, when given.
    pub symbol: Option<String>,
    /// The report's own id.
    pub id: Option<String>,
    /// The id of the trade it refers to.
    pub ref_id: Option<String>,
    /// The corrected price mantissa (corrections only).
    pub price: Option<i64>,
    /// The corrected quantity mantissa (corrections only).
    pub qty: Option<i64>,
    /// Position in the source.
    pub arrival: Arrival,
}

impl From<&Correction<'_>> for OwnedCorrection {
    fn from(c: &Correction<'_>) -> Self {
        OwnedCorrection {
            kind: c.kind,
            symbol: c.symbol.map(str::to_owned),
            id: c.id.map(str::to_owned),
            ref_id: c.ref_id.map(str::to_owned),
            price: c.price,
            qty: c.qty,
            arrival: c.arrival,
        }
    }
}

/// One message (or rejected run) of a record with everything decoded from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMessage {
    /// Byte offset within the record.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// MsgType(35) (lossily converted to text), `"json"` for JSON records.
    pub msg_type: Option<String>,
    /// What became of the message.
    pub outcome: Outcome,
    /// Its trades (`Outcome::Trades`).
    pub trades: Vec<OwnedTrade>,
    /// Its order (`Outcome::Order`).
    pub order: Option<OwnedOrder>,
    /// Its correction (`Outcome::Correction`).
    pub correction: Option<OwnedCorrection>,
}

/// A [`DecodeSink`] that collects owned [`DecodedMessage`]s.
#[derive(Debug, Default, Clone)]
pub struct CollectSink {
    /// Messages in input order.
    pub messages: Vec<DecodedMessage>,
}

impl CollectSink {
    /// The message the sink is filling; results always follow a `message` call.
    fn current(&mut self) -> Option<&mut DecodedMessage> {
        self.messages.last_mut()
    }
}

impl<'a> DecodeSink<'a> for CollectSink {
    fn message(&mut self, info: &MessageInfo<'a>) {
        self.messages.push(DecodedMessage {
            offset: info.offset,
            len: info.len,
            msg_type: info
                .msg_type
                .map(|t| String::from_utf8_lossy(t).into_owned()),
            outcome: info.outcome,
            trades: Vec::new(),
            order: None,
            correction: None,
        });
    }

    fn trade(&mut self, trade: &Trade<'a>) {
        if let Some(m) = self.current() {
            m.trades.push(trade.into());
        }
    }

    fn order(&mut self, order: &Order<'a>) {
        if let Some(m) = self.current() {
            m.order = Some(order.into());
        }
    }

    fn correction(&mut self, correction: &Correction<'a>) {
        if let Some(m) = self.current() {
            m.correction = Some(correction.into());
        }
    }
}

/// Decodes a record into owned per-message results (see [`Decoder::decode_record`]).
pub fn decode_to_vec(decoder: &Decoder, record: &[u8], seq: u64) -> Vec<DecodedMessage> {
    let mut sink = CollectSink::default();
    decoder.decode_record(record, seq, &mut sink);
    sink.messages
}
