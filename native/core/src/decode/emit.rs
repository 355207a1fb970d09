//! What the FIX and JSON message decoders share: the [`Rules`] they check values against, the
//! trades and orders they produce, and the [`Emitter`] that numbers those and hands them to the
//! sink.
//!
//! The decoder builds both and passes them down, so that `fix` and `json` depend on this module
//! and never on the decoder that calls them.

use super::time::DateCache;
use super::{DecodeSink, MessageInfo, Outcome};
use crate::reason::Reason;
use crate::types::{Arrival, Correction, Order, Side, Trade};

/// The configurable checks a message must pass, compiled from a
/// [`DecoderConfig`](super::DecoderConfig).
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Bit `c` set when the one-byte MDEntryType `c` (ASCII) is a trade: the common case is a
    /// single-character type, tested with one shift instead of a list scan.
    md_single: u128,
    /// Trade MDEntryTypes longer than one byte.
    md_multi: Vec<Vec<u8>>,
    max_symbol_len: usize,
}

impl Rules {
    /// Rules treating `md_entry_types` as trades and accepting symbols up to `max_symbol_len`
    /// bytes.
    pub(crate) fn new(md_entry_types: &[Vec<u8>], max_symbol_len: usize) -> Self {
        let mut md_single = 0u128;
        let mut md_multi = Vec::new();
        for t in md_entry_types {
            match t.as_slice() {
                [c] if *c < 128 => md_single |= 1u128 << c,
                _ => md_multi.push(t.clone()),
            }
        }
        Rules {
            md_single,
            md_multi,
            max_symbol_len,
        }
    }

    /// Whether an MDEntryType value denotes a trade.
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
        self.max_symbol_len
    }
}

/// Checks a symbol: non-empty, at most `max_len` bytes, UTF-8 without control characters.
///
/// # Errors
///
/// [`Reason::BadSymbol`].
#[inline]
pub(crate) fn check_symbol(value: &[u8], max_len: usize) -> Result<&str, Reason> {
    if value.is_empty() || value.len() > max_len {
        return Err(Reason::BadSymbol);
    }
    // Printable ASCII is the norm: one pass decides, and skips UTF-8 validation (a call
    // per trade that showed in the decode profile).
    if value.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        // SAFETY: every byte is in 0x20..=0x7E, and ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(value) });
    }
    let s = std::str::from_utf8(value).map_err(|_| Reason::BadSymbol)?;
    if s.chars().any(char::is_control) {
        return Err(Reason::BadSymbol);
    }
    Ok(s)
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
    /// An emitter for the record numbered `seq`.
    #[inline]
    pub(crate) fn new(sink: &'s mut S, seq: u64) -> Self {
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
    fn trade_entry_types() {
        let r = Rules::new(&[b"2".to_vec(), b"3".to_vec(), b"AB".to_vec()], 64);
        assert!(r.is_trade_entry_type(b"3"));
        assert!(r.is_trade_entry_type(b"AB"));
        assert!(!r.is_trade_entry_type(b"0"));
        assert!(!r.is_trade_entry_type(b"A"));
        assert!(!r.is_trade_entry_type(b""));
        assert!(!r.is_trade_entry_type("é".as_bytes()));
        assert_eq!(r.max_symbol_len(), 64);
    }

    #[test]
    fn symbol_rules() {
        assert_eq!(check_symbol(b"BRK.B", 64), Ok("BRK.B"));
        assert_eq!(check_symbol("Æbc".as_bytes(), 64), Ok("Æbc"));
        assert_eq!(check_symbol(b"", 64), Err(Reason::BadSymbol));
        assert_eq!(check_symbol(b"ABCD", 3), Err(Reason::BadSymbol));
        assert_eq!(check_symbol(b"A\tB", 64), Err(Reason::BadSymbol));
        assert_eq!(
            check_symbol("A\u{85}B".as_bytes(), 64),
            Err(Reason::BadSymbol)
        );
        assert_eq!(check_symbol(b"\xff", 64), Err(Reason::BadSymbol));
    }
}
