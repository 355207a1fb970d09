//! Packed trade batches: the decoder's output as one little-endian buffer.
//!
//! A batch crosses process boundaries (Moleculer over NATS) as a single binary message and
//! is applied by the engine straight from the bytes, without per-trade allocation.
//!
//! # Format, version 3 (all integers little-endian)
//!
//! ```text
//! header (48 bytes; 32 in versions 1 and 2, which are read too)
//!   0  [u8; 4]  magic "TSTB"
//!   4  u16      version = 3 (1 has no correction rows, 1 and 2 no seq span)
//!   6  u16      header length = 48 (32 for versions 1 and 2; readers require exactly that)
//!   8  u32      source name length (bytes; the name starts the string area)
//!  12  u32      symbol count
//!  16  u32      trade row count
//!  20  u32      order row count
//!  24  u32      string area length
//!  28  u32      correction row count (version 1: reserved, 0)
//!  32  u64      seq span start: every record of the source with start <= seq < end is in
//!  40  u64      seq span end     the batch (as rows or not); end = 0: no span. Rows lie inside.
//! symbol table: symbol count × 8 bytes
//!   0  u32  offset into the string area      4  u32  length (> 0)
//! trade rows: trade count × 56 bytes
//!   0  i64 price    8  i64 qty    16 i64 time_ns    24 u64 arrival.seq
//!  32  u32 symbol index   36 u32 arrival.ord   40 u32 id offset   44 u32 id length
//!      (u32::MAX = no id)  48 u32 record index   52 u8 side (0 unknown, 1 buy, 2 sell)
//!  53  3 reserved bytes, 0
//! order rows: order count × 56 bytes
//!   0  i64 qty      8  i64 price (0 when absent)   16 i64 time_ns   24 u64 arrival.seq
//!  32  u32 symbol index   36 u32 arrival.ord   40 u32 ClOrdID offset   44 u32 ClOrdID length
//!      (u32::MAX = none)  48 u32 record index   52 u8 side   53 u8 has price (0/1)
//!  54  2 reserved bytes, 0
//! correction rows: correction count × 56 bytes (trade cancels and corrections)
//!   0  i64 price (corrections; 0 for cancels)   8  i64 qty (corrections; 0 for cancels)
//!  16  u64 arrival.seq   24 u32 symbol index   28 u32 arrival.ord
//!  32  u32 id offset   36 u32 id length (u32::MAX = none)   40 u32 ref offset   44 u32 ref length
//!  48  u32 record index   52 u8 kind (1 cancel, 2 correct)   53  3 reserved bytes, 0
//! string area: UTF-8; source name, symbols, ids
//! ```
//!
//! The buffer must end exactly after the string area. Rows are fixed-width so that a row is
//! found by multiplication and read with plain loads; strings live in one area validated as
//! UTF-8 once, so that per-row id access is an O(1) boundary check. There is no checksum:
//! the transport (NATS over TCP) already guarantees integrity, and a CRC would cost ~5 ns
//! per trade; [`TradeBatchView::parse`] still validates every bound and string.

use crate::decode::{DecodeSink, MessageInfo, Outcome};
use crate::reason::Reason;
use crate::types::{Arrival, Correction, CorrectionKind, Order, Side, Trade};
use ahash::AHashMap;
use std::collections::BTreeMap;

/// First four bytes of every batch.
pub const BATCH_MAGIC: [u8; 4] = *b"TSTB";
/// Format version written by this crate (2 added correction rows, 3 the seq span).
pub const BATCH_VERSION: u16 = 3;
/// Header length of the version written.
pub const HEADER_LEN: usize = 48;
/// Header length of versions 1 and 2.
pub const HEADER_LEN_V2: usize = 32;
/// Bytes per symbol table entry.
pub const SYMBOL_ENTRY_LEN: usize = 8;
/// Bytes per trade row.
pub const TRADE_ROW_LEN: usize = 56;
/// Bytes per order row.
pub const ORDER_ROW_LEN: usize = 56;
/// Bytes per correction row.
pub const CORRECTION_ROW_LEN: usize = 56;
/// Longest accepted source name.
pub const MAX_SOURCE_LEN: usize = 1024;

const NO_STRING: u32 = u32::MAX;

/// Why a batch could not be built, parsed or partitioned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a header.
    #[error("batch of {0} bytes is shorter than its header")]
    TooShort(usize),
    /// The magic is not `TSTB`.
    #[error("not a trade batch (bad magic)")]
    BadMagic,
    /// The declared seq span is empty or leaves out a row.
    #[error("seq span is empty or leaves out a row")]
    Span,
    /// A version this reader does not know.
    #[error("unsupported batch version {0}")]
    UnsupportedVersion(u16),
    /// A header field is inconsistent.
    #[error("bad batch header: {0}")]
    BadHeader(&'static str),
    /// The buffer length does not match the header.
    #[error("batch length {actual} does not match the header ({expected})")]
    LengthMismatch {
        /// Length implied by the header.
        expected: u64,
        /// Actual length.
        actual: usize,
    },
    /// The string area is not UTF-8.
    #[error("string area is not valid UTF-8")]
    Utf8,
    /// A symbol entry points outside the string area or into the middle of a character.
    #[error("bad symbol entry {0}")]
    BadSymbol(u32),
    /// A row is invalid.
    #[error("bad {what} in row {row}")]
    BadRow {
        /// The offending field.
        what: &'static str,
        /// Row number (trades and orders are numbered separately).
        row: u32,
    },
    /// A batch would exceed a format limit (4 GiB of strings, 2^32 rows or symbols).
    #[error("batch too large: {0}")]
    Overflow(&'static str),
    /// The source name is longer than [`MAX_SOURCE_LEN`].
    #[error("source name longer than 1024 bytes")]
    SourceTooLong,
    /// The owner table does not cover the batch.
    #[error("bad owner table: {0}")]
    Owner(&'static str),
}

#[inline]
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        out.copy_from_slice(s);
    }
    out
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes_at(b, at))
}

#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes_at(b, at))
}

#[inline]
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes_at(b, at))
}

/// Low-level batch writer shared by [`BatchBuilder`] and [`partition`].
#[derive(Debug, Clone)]
struct Writer {
    source_len: u32,
    symbol_table: Vec<u8>,
    n_symbols: u32,
    trades: Vec<u8>,
    n_trades: u32,
    orders: Vec<u8>,
    n_orders: u32,
    corrections: Vec<u8>,
    n_corrections: u32,
    strings: Vec<u8>,
    /// The records' seq span, when known.
    span: Option<(u64, u64)>,
    /// First overflow met while writing; reported by `finish` (sinks cannot return errors).
    error: Option<BatchError>,
}

impl Writer {
    fn new(source: &str) -> Result<Writer, BatchError> {
        if source.len() > MAX_SOURCE_LEN {
            return Err(BatchError::SourceTooLong);
        }
        Ok(Writer {
            source_len: source.len() as u32,
            symbol_table: Vec::new(),
            n_symbols: 0,
            trades: Vec::new(),
            n_trades: 0,
            orders: Vec::new(),
            n_orders: 0,
            corrections: Vec::new(),
            n_corrections: 0,
            strings: source.as_bytes().to_vec(),
            span: None,
            error: None,
        })
    }

    fn fail(&mut self, e: BatchError) {
        self.error.get_or_insert(e);
    }

    fn add_string(&mut self, s: &str) -> Option<(u32, u32)> {
        let off = u32::try_from(self.strings.len()).ok();
        let end = self
            .strings
            .len()
            .checked_add(s.len())
            .and_then(|e| u32::try_from(e).ok());
        match (off, end) {
            (Some(off), Some(end)) if end != NO_STRING => {
                self.strings.extend_from_slice(s.as_bytes());
                Some((off, end - off))
            }
            _ => {
                self.fail(BatchError::Overflow("string area exceeds 4 GiB"));
                None
            }
        }
    }

    fn add_symbol(&mut self, symbol: &str) -> Option<u32> {
        if self.n_symbols == u32::MAX {
            self.fail(BatchError::Overflow("too many symbols"));
            return None;
        }
        let (off, len) = self.add_string(symbol)?;
        self.symbol_table.extend_from_slice(&off.to_le_bytes());
        self.symbol_table.extend_from_slice(&len.to_le_bytes());
        self.n_symbols += 1;
        Some(self.n_symbols - 1)
    }

    fn add_opt_string(&mut self, s: Option<&str>) -> Option<(u32, u32)> {
        match s {
            Some(s) => self.add_string(s),
            None => Some((0, NO_STRING)),
        }
    }

    fn push_trade(&mut self, symbol: u32, t: &Trade<'_>, record: u32) {
        if self.n_trades == u32::MAX {
            return self.fail(BatchError::Overflow("too many trades"));
        }
        let Some((id_off, id_len)) = self.add_opt_string(t.id) else {
            return;
        };
        let mut row = [0u8; TRADE_ROW_LEN];
        row[0..8].copy_from_slice(&t.price.to_le_bytes());
        row[8..16].copy_from_slice(&t.qty.to_le_bytes());
        row[16..24].copy_from_slice(&t.time_ns.to_le_bytes());
        row[24..32].copy_from_slice(&t.arrival.seq.to_le_bytes());
        row[32..36].copy_from_slice(&symbol.to_le_bytes());
        row[36..40].copy_from_slice(&t.arrival.ord.to_le_bytes());
        row[40..44].copy_from_slice(&id_off.to_le_bytes());
        row[44..48].copy_from_slice(&id_len.to_le_bytes());
        row[48..52].copy_from_slice(&record.to_le_bytes());
        row[52] = t.side as u8;
        self.trades.extend_from_slice(&row);
        self.n_trades += 1;
    }

    fn push_order(&mut self, symbol: u32, o: &Order<'_>, record: u32) {
        if self.n_orders == u32::MAX {
            return self.fail(BatchError::Overflow("too many orders"));
        }
        let Some((id_off, id_len)) = self.add_opt_string(o.cl_ord_id) else {
            return;
        };
        let mut row = [0u8; ORDER_ROW_LEN];
        row[0..8].copy_from_slice(&o.qty.to_le_bytes());
        row[8..16].copy_from_slice(&o.price.unwrap_or(0).to_le_bytes());
        row[16..24].copy_from_slice(&o.time_ns.to_le_bytes());
        row[24..32].copy_from_slice(&o.arrival.seq.to_le_bytes());
        row[32..36].copy_from_slice(&symbol.to_le_bytes());
        row[36..40].copy_from_slice(&o.arrival.ord.to_le_bytes());
        row[40..44].copy_from_slice(&id_off.to_le_bytes());
        row[44..48].copy_from_slice(&id_len.to_le_bytes());
        row[48..52].copy_from_slice(&record.to_le_bytes());
        row[52] = o.side as u8;
        row[53] = u8::from(o.price.is_some());
        self.orders.extend_from_slice(&row);
        self.n_orders += 1;
    }

    /// Appends a correction row; `c.ref_id` must be set (the builder counts the others).
    fn push_correction(&mut self, symbol: u32, c: &Correction<'_>, record: u32) {
        if self.n_corrections == u32::MAX {
            return self.fail(BatchError::Overflow("too many corrections"));
        }
        let Some((id_off, id_len)) = self.add_opt_string(c.id) else {
            return;
        };
        let Some((ref_off, ref_len)) = self.add_opt_string(c.ref_id) else {
            return;
        };
        let mut row = [0u8; CORRECTION_ROW_LEN];
        row[0..8].copy_from_slice(&c.price.unwrap_or(0).to_le_bytes());
        row[8..16].copy_from_slice(&c.qty.unwrap_or(0).to_le_bytes());
        row[16..24].copy_from_slice(&c.arrival.seq.to_le_bytes());
        row[24..28].copy_from_slice(&symbol.to_le_bytes());
        row[28..32].copy_from_slice(&c.arrival.ord.to_le_bytes());
        row[32..36].copy_from_slice(&id_off.to_le_bytes());
        row[36..40].copy_from_slice(&id_len.to_le_bytes());
        row[40..44].copy_from_slice(&ref_off.to_le_bytes());
        row[44..48].copy_from_slice(&ref_len.to_le_bytes());
        row[48..52].copy_from_slice(&record.to_le_bytes());
        row[52] = c.kind as u8;
        self.corrections.extend_from_slice(&row);
        self.n_corrections += 1;
    }

    fn finish(self) -> Result<Vec<u8>, BatchError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some((start, end)) = self.span {
            let rows = (self
                .trades
                .chunks_exact(TRADE_ROW_LEN)
                .map(|r| u64_at(r, 24)))
            .chain(
                self.orders
                    .chunks_exact(ORDER_ROW_LEN)
                    .map(|r| u64_at(r, 24)),
            )
            .chain((self.corrections.chunks_exact(CORRECTION_ROW_LEN)).map(|r| u64_at(r, 16)));
            if start >= end || rows.into_iter().any(|seq| seq < start || seq >= end) {
                return Err(BatchError::Span);
            }
        }
        let strings_len = u32::try_from(self.strings.len())
            .map_err(|_| BatchError::Overflow("string area exceeds 4 GiB"))?;
        let (span_start, span_end) = self.span.unwrap_or((0, 0));
        let total = HEADER_LEN
            + self.symbol_table.len()
            + self.trades.len()
            + self.orders.len()
            + self.corrections.len()
            + self.strings.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&BATCH_MAGIC);
        out.extend_from_slice(&BATCH_VERSION.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&self.source_len.to_le_bytes());
        out.extend_from_slice(&self.n_symbols.to_le_bytes());
        out.extend_from_slice(&self.n_trades.to_le_bytes());
        out.extend_from_slice(&self.n_orders.to_le_bytes());
        out.extend_from_slice(&strings_len.to_le_bytes());
        out.extend_from_slice(&self.n_corrections.to_le_bytes());
        out.extend_from_slice(&span_start.to_le_bytes());
        out.extend_from_slice(&span_end.to_le_bytes());
        out.extend_from_slice(&self.symbol_table);
        out.extend_from_slice(&self.trades);
        out.extend_from_slice(&self.orders);
        out.extend_from_slice(&self.corrections);
        out.extend_from_slice(&self.strings);
        Ok(out)
    }
}

/// One rejected message (or run of skipped bytes) seen while building a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// Index of the record (as given to [`BatchBuilder::begin_record`]).
    pub record: u32,
    /// Why it was rejected.
    pub reason: Reason,
    /// Byte offset of the message within its record.
    pub offset: usize,
}

/// Counts and rejects of one decode call, kept beside the packed bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Framed messages and skipped-byte runs seen.
    pub messages: u64,
    /// Valid messages (trades, orders, corrections, ignored types).
    pub valid: u64,
    /// Rejected messages and skipped-byte runs.
    pub rejected: u64,
    /// Trades written.
    pub trades: u64,
    /// Orders written.
    pub orders: u64,
    /// Valid messages of types that carry no trade, by MsgType.
    pub ignored_by_type: BTreeMap<String, u64>,
    /// Trade cancels seen.
    pub cancels: u64,
    /// Trade corrections seen.
    pub corrections: u64,
    /// Cancels and corrections that name no trade (no ExecRefID / TradeReportRefID) or no
    /// symbol: they stay non-trades and are not written.
    pub unreferenced: u64,
    /// Every reject, in input order.
    pub rejects: Vec<Reject>,
}

/// A finished batch: the bytes to ship and the summary to report locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedBatch {
    /// The packed batch (see the module documentation).
    pub bytes: Vec<u8>,
    /// Counts and rejects of the decode call.
    pub summary: DecodeSummary,
}

/// Packs the decoder's trades and orders into a batch while it decodes.
///
/// Call [`BatchBuilder::begin_record`] before decoding each record so that rows and rejects
/// carry their record index; then [`BatchBuilder::finish`].
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    writer: Writer,
    symbols: AHashMap<Box<str>, u32>,
    /// Consecutive trades usually share a symbol: (string offset, length, index).
    last_symbol: Option<(u32, u32, u32)>,
    record: u32,
    summary: DecodeSummary,
}

impl BatchBuilder {
    /// Starts a batch for `source` (the record source, e.g. `"trades/3"` for topic/partition).
    ///
    /// # Errors
    /// [`BatchError::SourceTooLong`] when the name exceeds [`MAX_SOURCE_LEN`] bytes.
    pub fn new(source: &str) -> Result<BatchBuilder, BatchError> {
        Ok(BatchBuilder {
            writer: Writer::new(source)?,
            symbols: AHashMap::new(),
            last_symbol: None,
            record: 0,
            summary: DecodeSummary::default(),
        })
    }

    /// Declares that every record of the source with `start <= seq < end` is in this batch
    /// (the caller decoded each of them, whatever it held). The engine then marks the whole
    /// span applied for each symbol with rows, which keeps consecutive batches one range.
    /// `finish` fails with [`BatchError::Span`] if a row lies outside it.
    pub fn set_span(&mut self, start: u64, end: u64) {
        self.writer.span = Some((start, end));
    }

    /// Sets the record index attached to the following rows and rejects.
    pub fn begin_record(&mut self, index: u32) {
        self.record = index;
    }

    /// Trades written so far.
    pub fn trade_count(&self) -> u32 {
        self.writer.n_trades
    }

    /// Orders written so far.
    pub fn order_count(&self) -> u32 {
        self.writer.n_orders
    }

    /// The summary so far.
    pub fn summary(&self) -> &DecodeSummary {
        &self.summary
    }

    fn symbol_index(&mut self, symbol: &str) -> Option<u32> {
        if let Some((off, len, idx)) = self.last_symbol {
            let (off, len) = (off as usize, len as usize);
            if self.writer.strings.get(off..off + len) == Some(symbol.as_bytes()) {
                return Some(idx);
            }
        }
        let idx = match self.symbols.get(symbol) {
            Some(&idx) => idx,
            None => {
                let idx = self.writer.add_symbol(symbol)?;
                self.symbols.insert(symbol.into(), idx);
                idx
            }
        };
        let at = idx as usize * SYMBOL_ENTRY_LEN;
        self.last_symbol = Some((
            u32_at(&self.writer.symbol_table, at),
            u32_at(&self.writer.symbol_table, at + 4),
            idx,
        ));
        Some(idx)
    }

    /// Appends a trade (what [`DecodeSink::trade`] does).
    pub fn push_trade(&mut self, trade: &Trade<'_>) {
        if let Some(sym) = self.symbol_index(trade.symbol) {
            self.writer.push_trade(sym, trade, self.record);
            self.summary.trades += 1;
        }
    }

    /// Appends an order (what [`DecodeSink::order`] does).
    pub fn push_order(&mut self, order: &Order<'_>) {
        if let Some(sym) = self.symbol_index(order.symbol) {
            self.writer.push_order(sym, order, self.record);
            self.summary.orders += 1;
        }
    }

    /// Finishes the batch.
    ///
    /// # Errors
    /// [`BatchError::Overflow`] when the batch exceeded a format limit.
    pub fn finish(self) -> Result<PackedBatch, BatchError> {
        Ok(PackedBatch {
            bytes: self.writer.finish()?,
            summary: self.summary,
        })
    }
}

impl<'a> DecodeSink<'a> for BatchBuilder {
    fn message(&mut self, info: &MessageInfo<'a>) {
        let s = &mut self.summary;
        s.messages += 1;
        match info.outcome {
            Outcome::Trades(_) | Outcome::Order | Outcome::Correction => s.valid += 1,
            Outcome::Ignored => {
                s.valid += 1;
                let ty = String::from_utf8_lossy(info.msg_type.unwrap_or(b"?"));
                match s.ignored_by_type.get_mut(ty.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        s.ignored_by_type.insert(ty.into_owned(), 1);
                    }
                }
            }
            Outcome::Rejected(reason) => {
                s.rejected += 1;
                s.rejects.push(Reject {
                    record: self.record,
                    reason,
                    offset: info.offset,
                });
            }
        }
    }

    fn trade(&mut self, trade: &Trade<'a>) {
        self.push_trade(trade);
    }

    fn order(&mut self, order: &Order<'a>) {
        self.push_order(order);
    }

    fn correction(&mut self, correction: &Correction<'a>) {
        match correction.kind {
            CorrectionKind::Cancel => self.summary.cancels += 1,
            CorrectionKind::Correct => self.summary.corrections += 1,
        }
        let (Some(symbol), Some(_)) = (correction.symbol, correction.ref_id) else {
            self.summary.unreferenced += 1;
            return;
        };
        if let Some(sym) = self.symbol_index(symbol) {
            self.writer.push_correction(sym, correction, self.record);
        }
    }
}

/// A trade row with its batch coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeRow<'a> {
    /// Index into [`TradeBatchView::symbols`].
    pub symbol_index: u32,
    /// Record index within the decode call.
    pub record: u32,
    /// The trade.
    pub trade: Trade<'a>,
}

/// An order row with its batch coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRow<'a> {
    /// Index into [`TradeBatchView::symbols`].
    pub symbol_index: u32,
    /// Record index within the decode call.
    pub record: u32,
    /// The order.
    pub order: Order<'a>,
}

/// A correction row with its batch coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrectionRow<'a> {
    /// Index into [`TradeBatchView::symbols`].
    pub symbol_index: u32,
    /// Record index within the decode call.
    pub record: u32,
    /// The cancel or correction; `symbol` and `ref_id` are always set.
    pub correction: Correction<'a>,
}

/// A validated, zero-copy view of a packed batch.
#[derive(Debug, Clone)]
pub struct TradeBatchView<'a> {
    version: u16,
    span: Option<(u64, u64)>,
    source: &'a str,
    symbols: Vec<&'a str>,
    trade_rows: &'a [u8],
    order_rows: &'a [u8],
    correction_rows: &'a [u8],
    strings: &'a str,
}

/// Looks up a validated string reference (`len == NO_STRING` means none).
#[inline]
fn opt_str(strings: &str, off: u32, len: u32) -> Result<Option<&str>, ()> {
    if len == NO_STRING {
        return Ok(None);
    }
    let start = off as usize;
    let end = start.checked_add(len as usize).ok_or(())?;
    strings.get(start..end).map(Some).ok_or(())
}

impl<'a> TradeBatchView<'a> {
    /// Validates a batch and returns a view of it. Never panics, whatever the bytes.
    ///
    /// # Errors
    /// A [`BatchError`] describing the first problem: short buffer, magic, version, header,
    /// length, UTF-8, symbol entries, row fields (symbol index, id range, side, reserved bytes).
    pub fn parse(bytes: &'a [u8]) -> Result<TradeBatchView<'a>, BatchError> {
        if bytes.len() < HEADER_LEN_V2 {
            return Err(BatchError::TooShort(bytes.len()));
        }
        if bytes[0..4] != BATCH_MAGIC {
            return Err(BatchError::BadMagic);
        }
        let version = u16::from_le_bytes(bytes_at(bytes, 4));
        if !(1..=BATCH_VERSION).contains(&version) {
            return Err(BatchError::UnsupportedVersion(version));
        }
        let header_len = if version >= 3 {
            HEADER_LEN
        } else {
            HEADER_LEN_V2
        };
        if bytes.len() < header_len {
            return Err(BatchError::TooShort(bytes.len()));
        }
        if usize::from(u16::from_le_bytes(bytes_at(bytes, 6))) != header_len {
            return Err(BatchError::BadHeader(
                "header length does not match the version",
            ));
        }
        let span = if version >= 3 {
            let (start, end) = (u64_at(bytes, 32), u64_at(bytes, 40));
            match (start, end) {
                (0, 0) => None,
                (s, e) if s < e => Some((s, e)),
                _ => return Err(BatchError::BadHeader("empty seq span")),
            }
        } else {
            None
        };
        let in_span = |seq: u64| span.is_none_or(|(s, e)| s <= seq && seq < e);
        let source_len = u64::from(u32_at(bytes, 8));
        let n_symbols = u64::from(u32_at(bytes, 12));
        let n_trades = u64::from(u32_at(bytes, 16));
        let n_orders = u64::from(u32_at(bytes, 20));
        let strings_len = u64::from(u32_at(bytes, 24));
        let n_corrections = u64::from(u32_at(bytes, 28));
        if version == 1 && n_corrections != 0 {
            return Err(BatchError::BadHeader("reserved field is not 0"));
        }
        if source_len > MAX_SOURCE_LEN as u64 || source_len > strings_len {
            return Err(BatchError::BadHeader("source name does not fit"));
        }
        // u64 arithmetic cannot overflow: every term is < 2^32 × 56.
        let sym_end = header_len as u64 + n_symbols * SYMBOL_ENTRY_LEN as u64;
        let trades_end = sym_end + n_trades * TRADE_ROW_LEN as u64;
        let orders_end = trades_end + n_orders * ORDER_ROW_LEN as u64;
        let corrections_end = orders_end + n_corrections * CORRECTION_ROW_LEN as u64;
        let total = corrections_end + strings_len;
        if total != bytes.len() as u64 {
            return Err(BatchError::LengthMismatch {
                expected: total,
                actual: bytes.len(),
            });
        }
        // All offsets are ≤ bytes.len() now, so the casts are lossless.
        let (sym_end, trades_end, orders_end, corrections_end) = (
            sym_end as usize,
            trades_end as usize,
            orders_end as usize,
            corrections_end as usize,
        );
        let strings =
            std::str::from_utf8(&bytes[corrections_end..]).map_err(|_| BatchError::Utf8)?;
        let source = strings
            .get(..source_len as usize)
            .ok_or(BatchError::BadHeader("source name splits a character"))?;

        let mut symbols = Vec::with_capacity(n_symbols as usize);
        for (i, e) in bytes[header_len..sym_end]
            .chunks_exact(SYMBOL_ENTRY_LEN)
            .enumerate()
        {
            let sym = match opt_str(strings, u32_at(e, 0), u32_at(e, 4)) {
                Ok(Some(s)) if !s.is_empty() => s,
                _ => return Err(BatchError::BadSymbol(i as u32)),
            };
            symbols.push(sym);
        }

        let trade_rows = &bytes[sym_end..trades_end];
        for (i, r) in trade_rows.chunks_exact(TRADE_ROW_LEN).enumerate() {
            let bad = |what| BatchError::BadRow {
                what,
                row: i as u32,
            };
            if u64::from(u32_at(r, 32)) >= n_symbols {
                return Err(bad("symbol index"));
            }
            if !in_span(u64_at(r, 24)) {
                return Err(bad("seq outside the seq span"));
            }
            if opt_str(strings, u32_at(r, 40), u32_at(r, 44)).is_err() {
                return Err(bad("id"));
            }
            if r[52] > 2 || r[53..56] != [0, 0, 0] {
                return Err(bad("side or reserved bytes"));
            }
        }

        let order_rows = &bytes[trades_end..orders_end];
        for (i, r) in order_rows.chunks_exact(ORDER_ROW_LEN).enumerate() {
            let bad = |what| BatchError::BadRow {
                what,
                row: i as u32,
            };
            if u64::from(u32_at(r, 32)) >= n_symbols {
                return Err(bad("symbol index"));
            }
            if !in_span(u64_at(r, 24)) {
                return Err(bad("seq outside the seq span"));
            }
            if opt_str(strings, u32_at(r, 40), u32_at(r, 44)).is_err() {
                return Err(bad("ClOrdID"));
            }
            if r[52] > 2 || r[53] > 1 || r[54..56] != [0, 0] || (r[53] == 0 && i64_at(r, 8) != 0) {
                return Err(bad("side, price flag or reserved bytes"));
            }
        }

        let correction_rows = &bytes[orders_end..corrections_end];
        for (i, r) in correction_rows.chunks_exact(CORRECTION_ROW_LEN).enumerate() {
            let bad = |what| BatchError::BadRow {
                what,
                row: i as u32,
            };
            if u64::from(u32_at(r, 24)) >= n_symbols {
                return Err(bad("symbol index"));
            }
            if !in_span(u64_at(r, 16)) {
                return Err(bad("seq outside the seq span"));
            }
            if opt_str(strings, u32_at(r, 32), u32_at(r, 36)).is_err() {
                return Err(bad("correction id"));
            }
            if !matches!(opt_str(strings, u32_at(r, 40), u32_at(r, 44)), Ok(Some(_))) {
                return Err(bad("correction reference"));
            }
            let values_ok = match r[52] {
                1 => i64_at(r, 0) == 0 && i64_at(r, 8) == 0,
                2 => i64_at(r, 0) > 0 && i64_at(r, 8) >= 0,
                _ => false,
            };
            if !values_ok || r[53..56] != [0, 0, 0] {
                return Err(bad("correction kind, values or reserved bytes"));
            }
        }

        Ok(TradeBatchView {
            version,
            span,
            source,
            symbols,
            trade_rows,
            order_rows,
            correction_rows,
            strings,
        })
    }

    /// Format version of the batch.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Source name (for offset watermarks).
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// The batch's symbol table (unique symbols when written by [`BatchBuilder`]).
    pub fn symbols(&self) -> &[&'a str] {
        &self.symbols
    }

    /// Number of trade rows.
    pub fn trade_count(&self) -> usize {
        self.trade_rows.len() / TRADE_ROW_LEN
    }

    /// Number of order rows.
    pub fn order_count(&self) -> usize {
        self.order_rows.len() / ORDER_ROW_LEN
    }

    /// Number of correction rows.
    pub fn correction_count(&self) -> usize {
        self.correction_rows.len() / CORRECTION_ROW_LEN
    }

    /// Whether the batch has no rows at all.
    pub fn is_empty(&self) -> bool {
        self.trade_rows.is_empty() && self.order_rows.is_empty() && self.correction_rows.is_empty()
    }

    /// The raw bytes of trade row `i` (for the engine's prefetching and decoding).
    #[inline]
    pub(crate) fn trade_row_bytes_at(&self, i: usize) -> Option<&'a [u8]> {
        let at = i.checked_mul(TRADE_ROW_LEN)?;
        self.trade_rows.get(at..at.checked_add(TRADE_ROW_LEN)?)
    }

    /// The bytes of a trade row's id plus the following byte, without reading them (for
    /// prefetching: the UTF-8 boundary checks of [`TradeBatchView::trade_id`] read both ends).
    #[inline]
    pub(crate) fn trade_id_span(&self, r: &[u8]) -> Option<&'a [u8]> {
        let (off, len) = (u32_at(r, 40), u32_at(r, 44));
        if len == NO_STRING {
            return None;
        }
        let start = off as usize;
        let end = start.checked_add(len as usize + 1)?.min(self.strings.len());
        self.strings.as_bytes().get(start..end)
    }

    /// The id of a trade row of this batch, without decoding the rest.
    #[inline]
    pub(crate) fn trade_id(&self, r: &[u8]) -> Option<&'a str> {
        opt_str(self.strings, u32_at(r, 40), u32_at(r, 44)).unwrap_or(None)
    }

    /// Decodes the bytes of one of this batch's trade rows.
    #[inline]
    pub(crate) fn decode_trade(&self, r: &[u8]) -> TradeRow<'a> {
        let symbol_index = u32_at(r, 32);
        // Validated by `parse`; the fallbacks are unreachable.
        let symbol = self
            .symbols
            .get(symbol_index as usize)
            .copied()
            .unwrap_or("");
        let id = opt_str(self.strings, u32_at(r, 40), u32_at(r, 44)).unwrap_or(None);
        TradeRow {
            symbol_index,
            record: u32_at(r, 48),
            trade: Trade {
                symbol,
                price: i64_at(r, 0),
                qty: i64_at(r, 8),
                time_ns: i64_at(r, 16),
                arrival: Arrival {
                    seq: u64_at(r, 24),
                    ord: u32_at(r, 36),
                },
                id,
                side: Side::from_code(r.get(52).copied().unwrap_or(0)),
            },
        }
    }

    #[inline]
    fn decode_order(&self, r: &[u8]) -> OrderRow<'a> {
        let symbol_index = u32_at(r, 32);
        let symbol = self
            .symbols
            .get(symbol_index as usize)
            .copied()
            .unwrap_or("");
        let cl_ord_id = opt_str(self.strings, u32_at(r, 40), u32_at(r, 44)).unwrap_or(None);
        let has_price = r.get(53).is_some_and(|&b| b == 1);
        OrderRow {
            symbol_index,
            record: u32_at(r, 48),
            order: Order {
                symbol,
                side: Side::from_code(r.get(52).copied().unwrap_or(0)),
                qty: i64_at(r, 0),
                price: has_price.then(|| i64_at(r, 8)),
                time_ns: i64_at(r, 16),
                arrival: Arrival {
                    seq: u64_at(r, 24),
                    ord: u32_at(r, 36),
                },
                cl_ord_id,
            },
        }
    }

    /// The symbol index of every trade row, in batch order (cheaper than decoding rows).
    pub fn trade_symbol_indices(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.trade_rows
            .chunks_exact(TRADE_ROW_LEN)
            .map(|r| u32_at(r, 32))
    }

    /// The seq span the batch covers: the declared one (version 3), else `(min seq, max seq +
    /// 1)` over every row (trades, orders, cancels and corrections); `None` when neither.
    /// A batch holds a contiguous run of its source, so no record of a symbol with rows here
    /// lies in this span outside the batch.
    pub fn seq_span(&self) -> Option<(u64, u64)> {
        if self.span.is_some() {
            return self.span;
        }
        let seqs = (self
            .trade_rows
            .chunks_exact(TRADE_ROW_LEN)
            .map(|r| u64_at(r, 24)))
        .chain(
            self.order_rows
                .chunks_exact(ORDER_ROW_LEN)
                .map(|r| u64_at(r, 24)),
        )
        .chain((self.correction_rows.chunks_exact(CORRECTION_ROW_LEN)).map(|r| u64_at(r, 16)));
        seqs.fold(None, |span, seq| match span {
            None => Some((seq, seq.saturating_add(1))),
            Some((lo, hi)) => Some((lo.min(seq), hi.max(seq.saturating_add(1)))),
        })
    }

    /// Trade rows in batch order.
    pub fn trade_rows(&self) -> impl ExactSizeIterator<Item = TradeRow<'a>> + '_ {
        self.trade_rows
            .chunks_exact(TRADE_ROW_LEN)
            .map(|r| self.decode_trade(r))
    }

    /// Trades in batch order.
    pub fn trades(&self) -> impl ExactSizeIterator<Item = Trade<'a>> + '_ {
        self.trade_rows().map(|r| r.trade)
    }

    /// The `i`-th trade row.
    pub fn trade_row(&self, i: usize) -> Option<TradeRow<'a>> {
        let at = i.checked_mul(TRADE_ROW_LEN)?;
        self.trade_rows
            .get(at..at + TRADE_ROW_LEN)
            .map(|r| self.decode_trade(r))
    }

    /// Order rows in batch order.
    pub fn order_rows(&self) -> impl ExactSizeIterator<Item = OrderRow<'a>> + '_ {
        self.order_rows
            .chunks_exact(ORDER_ROW_LEN)
            .map(|r| self.decode_order(r))
    }

    /// Orders in batch order.
    pub fn orders(&self) -> impl ExactSizeIterator<Item = Order<'a>> + '_ {
        self.order_rows().map(|r| r.order)
    }

    fn decode_correction(&self, r: &[u8]) -> CorrectionRow<'a> {
        let symbol_index = u32_at(r, 24);
        let symbol = self.symbols.get(symbol_index as usize).copied();
        let kind = if r.get(52) == Some(&2) {
            CorrectionKind::Correct
        } else {
            CorrectionKind::Cancel
        };
        let values = kind == CorrectionKind::Correct;
        CorrectionRow {
            symbol_index,
            record: u32_at(r, 48),
            correction: Correction {
                kind,
                symbol,
                id: opt_str(self.strings, u32_at(r, 32), u32_at(r, 36)).unwrap_or(None),
                ref_id: opt_str(self.strings, u32_at(r, 40), u32_at(r, 44)).unwrap_or(None),
                price: values.then(|| i64_at(r, 0)),
                qty: values.then(|| i64_at(r, 8)),
                arrival: Arrival {
                    seq: u64_at(r, 16),
                    ord: u32_at(r, 28),
                },
            },
        }
    }

    /// Correction rows in batch order.
    pub fn correction_rows(&self) -> impl ExactSizeIterator<Item = CorrectionRow<'a>> + '_ {
        self.correction_rows
            .chunks_exact(CORRECTION_ROW_LEN)
            .map(|r| self.decode_correction(r))
    }
}

/// Splits a batch into one batch per owner, keeping row order within each owner.
///
/// `owner_of_symbol[i]` is the owner (< `n_owners`) of the batch's symbol `i`. Every owner gets
/// a valid batch with the same source; owners without rows get an empty one. Symbol tables
/// are rebuilt per owner (only the symbols it received) and record indices are kept.
///
/// # Errors
/// [`BatchError::Owner`] when the table is shorter than the symbol table or names an owner
/// ≥ `n_owners`; [`BatchError::Overflow`] cannot occur for a valid input.
pub fn partition(
    view: &TradeBatchView<'_>,
    owner_of_symbol: &[u32],
    n_owners: usize,
) -> Result<Vec<Vec<u8>>, BatchError> {
    let n_symbols = view.symbols.len();
    if owner_of_symbol.len() < n_symbols {
        return Err(BatchError::Owner("fewer owners than symbols"));
    }
    if owner_of_symbol[..n_symbols]
        .iter()
        .any(|&o| o as usize >= n_owners)
    {
        return Err(BatchError::Owner("owner out of range"));
    }
    // Each part keeps the whole batch's span: a symbol's records in it all go to one part.
    let mut writers = (0..n_owners)
        .map(|_| {
            Writer::new(view.source).map(|mut w| {
                w.span = view.span;
                w
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Batch symbol index → index in its owner's table (u32::MAX until first use).
    let mut remap = vec![u32::MAX; n_symbols];
    let mut target = |si: u32, writers: &mut [Writer]| -> Option<(usize, u32)> {
        let si = si as usize;
        let owner = *owner_of_symbol.get(si)? as usize;
        let w = writers.get_mut(owner)?;
        let slot = remap.get_mut(si)?;
        if *slot == u32::MAX {
            *slot = w.add_symbol(view.symbols.get(si)?)?;
        }
        Some((owner, *slot))
    };
    for row in view.trade_rows() {
        if let Some((owner, sym)) = target(row.symbol_index, &mut writers) {
            writers[owner].push_trade(sym, &row.trade, row.record);
        }
    }
    for row in view.order_rows() {
        if let Some((owner, sym)) = target(row.symbol_index, &mut writers) {
            writers[owner].push_order(sym, &row.order, row.record);
        }
    }
    for row in view.correction_rows() {
        if let Some((owner, sym)) = target(row.symbol_index, &mut writers) {
            writers[owner].push_correction(sym, &row.correction, row.record);
        }
    }
    writers.into_iter().map(Writer::finish).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::test_support::{batch, OwnedOrder, OwnedTrade, T0};
    use crate::types::SCALE;
    use proptest::prelude::*;

    fn arb_trade() -> impl Strategy<Value = OwnedTrade> {
        (
            prop::sample::select(vec!["AAPL", "MSFT", "BTC-USD", "€/¥", "Z"]),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            any::<u64>(),
            any::<u32>(),
            prop::option::of("[a-zé0-9-]{0,12}"),
            0u8..3,
        )
            .prop_map(
                |(symbol, price, qty, time_ns, seq, ord, id, side)| OwnedTrade {
                    symbol: symbol.to_owned(),
                    price,
                    qty,
                    time_ns,
                    seq,
                    ord,
                    id,
                    side: Side::from_code(side),
                },
            )
    }

    fn owned(t: &Trade<'_>) -> OwnedTrade {
        OwnedTrade {
            symbol: t.symbol.to_owned(),
            price: t.price,
            qty: t.qty,
            time_ns: t.time_ns,
            seq: t.arrival.seq,
            ord: t.arrival.ord,
            id: t.id.map(str::to_owned),
            side: t.side,
        }
    }

    fn sample() -> Vec<u8> {
        let trades: Vec<OwnedTrade> = (0..6)
            .map(|i| OwnedTrade {
                symbol: ["A", "B", "C"][i % 3].into(),
                price: (100 + i as i64) * SCALE,
                qty: SCALE,
                time_ns: T0 + i as i64,
                seq: i as u64,
                ord: 0,
                id: (i % 2 == 0).then(|| format!("x{i}")),
                side: Side::Buy,
            })
            .collect();
        let orders = vec![OwnedOrder {
            symbol: "B".into(),
            side: Side::Sell,
            qty: 3,
            price: Some(7),
            time_ns: T0,
            seq: 9,
        }];
        batch("trades/3", &trades, &orders)
    }

    #[test]
    fn round_trip_with_orders_and_header_fields() {
        let bytes = sample();
        let v = TradeBatchView::parse(&bytes).unwrap();
        assert_eq!(
            (v.version(), v.source(), v.symbols()),
            (3, "trades/3", &["A", "B", "C"][..])
        );
        assert_eq!((v.trade_count(), v.order_count()), (6, 1));
        let rows: Vec<TradeRow<'_>> = v.trade_rows().collect();
        assert_eq!(rows[4].trade.symbol, "B");
        assert_eq!(rows[4].symbol_index, 1);
        assert_eq!(rows[4].record, 4);
        assert_eq!(rows[4].trade.id, Some("x4"));
        assert_eq!(rows[3].trade.id, None);
        assert_eq!(v.trade_row(4), Some(rows[4]));
        assert_eq!(v.trade_row(6), None);
        let o = v.orders().next().unwrap();
        assert_eq!(
            (o.symbol, o.side, o.qty, o.price, o.arrival.seq),
            ("B", Side::Sell, 3, Some(7), 9)
        );
    }

    #[test]
    fn malformed_batches_are_errors() {
        let good = sample();
        assert_eq!(
            TradeBatchView::parse(&good[..10]).unwrap_err(),
            BatchError::TooShort(10)
        );
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(TradeBatchView::parse(&b).unwrap_err(), BatchError::BadMagic);
        let mut b = good.clone();
        b[4] = 4;
        assert_eq!(
            TradeBatchView::parse(&b).unwrap_err(),
            BatchError::UnsupportedVersion(4)
        );
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(
            TradeBatchView::parse(&b),
            Err(BatchError::LengthMismatch { .. })
        ));
        // Symbol index of trade row 0 out of range.
        let mut b = good.clone();
        let row0 = HEADER_LEN + 3 * SYMBOL_ENTRY_LEN;
        b[row0 + 32] = 9;
        assert_eq!(
            TradeBatchView::parse(&b).unwrap_err(),
            BatchError::BadRow {
                what: "symbol index",
                row: 0
            }
        );
        // Side code 7.
        let mut b = good.clone();
        b[row0 + 52] = 7;
        assert!(matches!(
            TradeBatchView::parse(&b),
            Err(BatchError::BadRow { .. })
        ));
        // Id length past the string area.
        let mut b = good.clone();
        b[row0 + 44..row0 + 48].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            TradeBatchView::parse(&b).unwrap_err(),
            BatchError::BadRow { what: "id", row: 0 }
        );
        // Invalid UTF-8 in the string area.
        let mut b = good.clone();
        let last = b.len() - 1;
        b[last] = 0xff;
        assert_eq!(TradeBatchView::parse(&b).unwrap_err(), BatchError::Utf8);
        assert!(BatchBuilder::new(&"s".repeat(MAX_SOURCE_LEN + 1)).is_err());
        // A declared span that leaves out a row (the sample's seqs are 0..=9).
        let mut b = good.clone();
        b[32..40].copy_from_slice(&1u64.to_le_bytes());
        b[40..48].copy_from_slice(&100u64.to_le_bytes());
        assert_eq!(
            TradeBatchView::parse(&b).unwrap_err(),
            BatchError::BadRow {
                what: "seq outside the seq span",
                row: 0
            }
        );
        b[32..40].copy_from_slice(&100u64.to_le_bytes());
        assert!(matches!(
            TradeBatchView::parse(&b),
            Err(BatchError::BadHeader(_))
        ));
    }

    /// The same batch in version 2 (no span), as older writers sent it.
    fn as_version_2(v3: &[u8]) -> Vec<u8> {
        let mut b = v3[..HEADER_LEN_V2].to_vec();
        b[4..6].copy_from_slice(&2u16.to_le_bytes());
        b[6..8].copy_from_slice(&(HEADER_LEN_V2 as u16).to_le_bytes());
        b.extend_from_slice(&v3[HEADER_LEN..]);
        b
    }

    #[test]
    fn the_seq_span_is_declared_checked_and_kept_by_partitions() {
        let trade = |seq: u64, symbol: &'static str| Trade {
            symbol,
            price: SCALE,
            qty: SCALE,
            time_ns: T0,
            arrival: Arrival { seq, ord: 0 },
            id: None,
            side: Side::Unknown,
        };
        let mut b = BatchBuilder::new("t/0").unwrap();
        b.set_span(100, 200);
        b.push_trade(&trade(120, "A"));
        b.push_trade(&trade(130, "B"));
        let bytes = b.finish().unwrap().bytes;
        let v = TradeBatchView::parse(&bytes).unwrap();
        assert_eq!(v.seq_span(), Some((100, 200)));
        let parts = partition(&v, &[0, 1], 2).unwrap();
        for part in &parts {
            assert_eq!(
                TradeBatchView::parse(part).unwrap().seq_span(),
                Some((100, 200))
            );
        }
        // Without a declared span, the rows' own.
        let v2 = as_version_2(&bytes);
        let v = TradeBatchView::parse(&v2).unwrap();
        assert_eq!((v.version(), v.seq_span()), (2, Some((120, 131))));
        assert_eq!(v.trade_count(), 2);
        // A row outside the declared span is the writer's error.
        let mut b = BatchBuilder::new("t/0").unwrap();
        b.set_span(100, 200);
        b.push_trade(&trade(200, "A"));
        assert_eq!(b.finish().unwrap_err(), BatchError::Span);
    }

    #[test]
    fn sink_collects_rejects_and_counts() {
        let mut b = BatchBuilder::new("fix/0").unwrap();
        b.begin_record(3);
        let msg = |outcome, msg_type: Option<&'static [u8]>| MessageInfo {
            offset: 17,
            len: 5,
            msg_type,
            outcome,
        };
        b.message(&msg(Outcome::Rejected(Reason::Checksum), Some(b"8")));
        b.message(&msg(Outcome::Ignored, Some(b"0")));
        b.message(&msg(Outcome::Ignored, Some(b"0")));
        b.message(&msg(Outcome::Trades(1), Some(b"8")));
        let t = OwnedTrade {
            symbol: "S".into(),
            price: 1,
            qty: 1,
            time_ns: 1,
            seq: 1,
            ord: 0,
            id: None,
            side: Side::Sell,
        };
        b.trade(&t.as_trade());
        b.message(&msg(Outcome::Correction, Some(b"8")));
        b.correction(&Correction {
            kind: CorrectionKind::Cancel,
            symbol: Some("S"),
            id: None,
            ref_id: Some("r"),
            price: None,
            qty: None,
            arrival: Arrival { seq: 1, ord: 1 },
        });
        b.message(&msg(Outcome::Correction, Some(b"8")));
        b.correction(&Correction {
            kind: CorrectionKind::Correct,
            symbol: Some("S"),
            id: Some("c2"),
            ref_id: None,
            price: Some(2),
            qty: Some(1),
            arrival: Arrival { seq: 2, ord: 0 },
        });
        let p = b.finish().unwrap();
        let v = TradeBatchView::parse(&p.bytes).unwrap();
        let rows: Vec<CorrectionRow<'_>> = v.correction_rows().collect();
        assert_eq!(
            rows.len(),
            1,
            "a correction without a reference is not written"
        );
        assert_eq!(
            (
                rows[0].correction.kind,
                rows[0].correction.ref_id,
                rows[0].correction.arrival.ord
            ),
            (CorrectionKind::Cancel, Some("r"), 1)
        );
        assert_eq!(p.summary.unreferenced, 1);
        let s = &p.summary;
        assert_eq!(
            (
                s.messages,
                s.valid,
                s.rejected,
                s.trades,
                s.cancels,
                s.corrections
            ),
            (6, 5, 1, 1, 1, 1)
        );
        assert_eq!(s.ignored_by_type.get("0"), Some(&2));
        assert_eq!(
            s.rejects,
            vec![Reject {
                record: 3,
                reason: Reason::Checksum,
                offset: 17
            }]
        );
        let v = TradeBatchView::parse(&p.bytes).unwrap();
        assert_eq!(v.trade_row(0).unwrap().record, 3);
    }

    #[test]
    fn partition_validates_the_owner_table() {
        let bytes = sample();
        let v = TradeBatchView::parse(&bytes).unwrap();
        assert!(matches!(
            partition(&v, &[0, 1], 2),
            Err(BatchError::Owner(_))
        ));
        assert!(matches!(
            partition(&v, &[0, 1, 2], 2),
            Err(BatchError::Owner(_))
        ));
        let parts = partition(&v, &[0, 0, 0], 3).unwrap();
        assert_eq!(parts.len(), 3);
        assert!(TradeBatchView::parse(&parts[1]).unwrap().is_empty());
        assert_eq!(TradeBatchView::parse(&parts[0]).unwrap().trade_count(), 6);
    }

    proptest! {
        #[test]
        fn build_parse_round_trip(trades in prop::collection::vec(arb_trade(), 0..40)) {
            let bytes = batch("trades/7", &trades, &[]);
            let v = TradeBatchView::parse(&bytes).unwrap();
            let back: Vec<OwnedTrade> = v.trades().map(|t| owned(&t)).collect();
            prop_assert_eq!(back, trades.clone());
            let mut unique: Vec<&str> = trades.iter().map(|t| t.symbol.as_str()).collect();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(v.symbols().len(), unique.len());
        }

        #[test]
        fn partition_keeps_every_row_once_in_order(
            trades in prop::collection::vec(arb_trade(), 0..40),
            owners in prop::collection::vec(0u32..3, 5),
        ) {
            let bytes = batch("trades/7", &trades, &[]);
            let v = TradeBatchView::parse(&bytes).unwrap();
            let table: Vec<u32> = v.symbols().iter().map(|s| {
                let i = ["AAPL", "MSFT", "BTC-USD", "€/¥", "Z"].iter().position(|x| x == s).unwrap_or(0);
                owners[i]
            }).collect();
            let parts = partition(&v, &table, 3).unwrap();
            for (owner, part) in parts.iter().enumerate() {
                let pv = TradeBatchView::parse(part).unwrap();
                prop_assert_eq!(pv.source(), "trades/7");
                let got: Vec<(OwnedTrade, u32)> = pv.trade_rows().map(|r| (owned(&r.trade), r.record)).collect();
                let want: Vec<(OwnedTrade, u32)> = v
                    .trade_rows()
                    .filter(|r| table[r.symbol_index as usize] as usize == owner)
                    .map(|r| (owned(&r.trade), r.record))
                    .collect();
                prop_assert_eq!(got, want);
            }
            let total: usize = parts.iter().map(|p| TradeBatchView::parse(p).unwrap().trade_count()).sum();
            prop_assert_eq!(total, trades.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(v) = TradeBatchView::parse(&bytes) {
                let _ = v.trades().count() + v.orders().count();
            }
        }

        #[test]
        fn mutated_batches_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut bytes = sample();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            for b in [&bytes[..], &bytes[..cut.index(bytes.len())]] {
                if let Ok(v) = TradeBatchView::parse(b) {
                    let _ = v.trades().count() + v.orders().count();
                    let _ = partition(&v, &vec![0; v.symbols().len()], 1);
                }
            }
        }
    }
}
