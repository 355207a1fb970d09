//! `FixDecoder`: the batch API for the pipeline and the per-message API for tools and tests.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tickstream_core::batch::{BatchBuilder, BatchError, TradeBatchView};
use tickstream_core::decode::{decode_to_vec, Decoder, DecoderConfig, Outcome};
use tickstream_core::types::CorrectionKind;

use crate::convert::{iso_ns, num, side};
use crate::error::{Error, ErrorCode, Result};

/// Options of a decoder.
#[napi(object)]
pub struct DecoderOptions {
    /// MDEntryType values that are trades, e.g. `"2,3"` (default `"2"`).
    pub md_entry_types: Option<String>,
    /// Longest accepted symbol in bytes (default 64).
    pub max_symbol_len: Option<u32>,
}

/// A trade as the per-message API shows it.
#[napi(object, js_name = "DecodedTrade")]
pub struct TradeJson {
    pub symbol: String,
    pub price: f64,
    pub qty: f64,
    /// Event time, ISO-8601 UTC.
    pub time: String,
    /// Event time, epoch nanoseconds as a decimal string (exact).
    pub time_ns: String,
    pub id: Option<String>,
    pub side: String,
}

/// An order as the per-message API shows it.
#[napi(object, js_name = "DecodedOrder")]
pub struct OrderJson {
    pub symbol: String,
    pub side: String,
    pub qty: f64,
    pub price: Option<f64>,
    pub time: String,
    pub cl_ord_id: Option<String>,
}

/// A trade cancel or correction as the per-message API shows it.
#[napi(object, js_name = "DecodedCorrection")]
pub struct CorrectionJson {
    /// `"cancel"` or `"correct"`.
    pub kind: String,
    pub symbol: Option<String>,
    pub id: Option<String>,
    pub ref_id: Option<String>,
}

/// One message (or run of skipped bytes) of a record.
#[napi(object, js_name = "DecodedMessage")]
pub struct DecodedMessageJson {
    pub offset: u32,
    pub len: u32,
    pub ok: bool,
    /// Stable reject reason when `ok` is false.
    pub reason: Option<String>,
    pub msg_type: Option<String>,
    pub trades: Vec<TradeJson>,
    pub order: Option<OrderJson>,
    pub correction: Option<CorrectionJson>,
}

/// One rejected message of a batch.
#[napi(object, js_name = "Reject")]
pub struct RejectJson {
    /// Index of the record in the batch.
    pub record: u32,
    pub reason: String,
    /// Byte offset of the message within its record.
    pub offset: u32,
}

/// Valid messages without trades, counted by MsgType.
#[napi(object)]
pub struct TypeCount {
    pub msg_type: String,
    pub count: u32,
}

/// The result of decoding a batch: one packed trade batch plus what the decoder saw.
#[napi(object)]
pub struct DecodedBatch {
    /// Packed trades and orders (`TradeBatch` format), ready for `Engine.applyBatch`.
    pub batch: Buffer,
    /// The batch's distinct symbols, in first-seen order (index = symbol index of the batch).
    pub symbols: Vec<String>,
    pub records: u32,
    pub messages: u32,
    pub valid: u32,
    pub trades: u32,
    pub orders: u32,
    pub corrections: u32,
    pub cancels: u32,
    pub corrects: u32,
    /// Cancels and corrections without a trade reference (or a symbol): not applied.
    pub unreferenced: u32,
    pub rejects: Vec<RejectJson>,
    pub ignored: Vec<TypeCount>,
}

/// The Rust FIX/JSON decoder.
#[napi]
pub struct FixDecoder {
    inner: Decoder,
}

#[napi]
impl FixDecoder {
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<DecoderOptions>) -> Result<Self> {
        let mut config = match options.as_ref().and_then(|o| o.md_entry_types.as_deref()) {
            Some(spec) => DecoderConfig::with_md_entry_types(spec)
                .map_err(|e| Error::new(ErrorCode::BadConfig, format!("mdEntryTypes: {e}")))?,
            None => DecoderConfig::default(),
        };
        if let Some(n) = options.as_ref().and_then(|o| o.max_symbol_len) {
            config.max_symbol_len = n as usize;
        }
        Ok(FixDecoder {
            inner: Decoder::new(config),
        })
    }

    /// Decodes records `payload[offsets[i]..offsets[i+1]]` (seq = `seqs[i]`, or i) of one source
    /// into a packed trade batch. One call per batch: no per-message JS objects.
    ///
    /// The records must be a contiguous run of the source (every record between the lowest and
    /// the highest seq, as a Kafka fetch or a slice of a file gives them): the batch declares
    /// that seq span, and the engine marks it applied for every symbol with rows.
    #[napi(catch_unwind)]
    pub fn decode_batch(
        &self,
        payload: &[u8],
        offsets: Uint32Array,
        seqs: Option<Float64Array>,
        source: String,
    ) -> Result<DecodedBatch> {
        let offsets: &[u32] = &offsets;
        if offsets.is_empty() {
            return Err(Error::new(
                ErrorCode::BadArgument,
                "offsets must hold n + 1 boundaries",
            ));
        }
        let records = offsets.len() - 1;
        if let Some(s) = seqs.as_ref() {
            if s.len() != records {
                return Err(Error::new(
                    ErrorCode::BadArgument,
                    format!("seqs has {} entries for {records} records", s.len()),
                ));
            }
        }
        let mut builder = BatchBuilder::new(&source)
            .map_err(|e| Error::new(ErrorCode::BadArgument, format!("source: {e}")))?;
        let mut span: Option<(u64, u64)> = None;
        for i in 0..records {
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            if start > end || end > payload.len() {
                return Err(Error::new(
                    ErrorCode::BadArgument,
                    format!(
                        "record {i} spans {start}..{end} outside the payload of {} bytes",
                        payload.len()
                    ),
                ));
            }
            let seq = match seqs.as_ref() {
                Some(s) => {
                    let v = s[i];
                    if !(0.0..=9_007_199_254_740_991.0).contains(&v) || v.fract() != 0.0 {
                        return Err(Error::new(
                            ErrorCode::BadArgument,
                            format!("seqs[{i}] = {v} is not a safe integer"),
                        ));
                    }
                    v as u64
                }
                None => i as u64,
            };
            span = Some(span.map_or((seq, seq + 1), |(lo, hi)| (lo.min(seq), hi.max(seq + 1))));
            builder.begin_record(i as u32);
            self.inner
                .decode_record(&payload[start..end], seq, &mut builder);
        }
        if let Some((lo, hi)) = span {
            builder.set_span(lo, hi);
        }
        let packed = builder.finish().map_err(|e| {
            // Only a payload beyond the batch format's limits (4 GiB of text, 2^32 rows) is
            // refused here; anything else is the builder breaking its contract.
            let code = match e {
                BatchError::Overflow(_) => ErrorCode::BadArgument,
                _ => ErrorCode::Internal,
            };
            Error::new(code, e.to_string())
        })?;
        let symbols = TradeBatchView::parse(&packed.bytes)
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?
            .symbols()
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let summary = packed.summary;
        let n = |v: u64| v.min(u32::MAX as u64) as u32;
        Ok(DecodedBatch {
            symbols,
            records: records as u32,
            messages: n(summary.messages),
            valid: n(summary.valid),
            trades: n(summary.trades),
            orders: n(summary.orders),
            corrections: n(summary.cancels + summary.corrections),
            cancels: n(summary.cancels),
            corrects: n(summary.corrections),
            unreferenced: n(summary.unreferenced),
            rejects: summary
                .rejects
                .iter()
                .map(|r| RejectJson {
                    record: r.record,
                    reason: r.reason.as_str().to_owned(),
                    offset: r.offset as u32,
                })
                .collect(),
            ignored: summary
                .ignored_by_type
                .iter()
                .map(|(t, c)| TypeCount {
                    msg_type: t.clone(),
                    count: n(*c),
                })
                .collect(),
            batch: packed.bytes.into(),
        })
    }

    /// Decodes one record into per-message values (tools and tests; not the hot path).
    #[napi(catch_unwind)]
    pub fn decode_messages(&self, record: &[u8], seq: Option<f64>) -> Vec<DecodedMessageJson> {
        let seq = seq.filter(|s| *s >= 0.0).map(|s| s as u64).unwrap_or(0);
        decode_to_vec(&self.inner, record, seq)
            .into_iter()
            .map(|m| {
                let reason = match m.outcome {
                    Outcome::Rejected(r) => Some(r.as_str().to_owned()),
                    _ => None,
                };
                DecodedMessageJson {
                    offset: m.offset as u32,
                    len: m.len as u32,
                    ok: reason.is_none(),
                    reason,
                    msg_type: m.msg_type,
                    trades: m
                        .trades
                        .iter()
                        .map(|t| TradeJson {
                            symbol: t.symbol.clone(),
                            price: num(t.price),
                            qty: num(t.qty),
                            time: iso_ns(t.time_ns),
                            time_ns: t.time_ns.to_string(),
                            id: t.id.clone(),
                            side: side(t.side),
                        })
                        .collect(),
                    order: m.order.map(|o| OrderJson {
                        symbol: o.symbol,
                        side: side(o.side),
                        qty: num(o.qty),
                        price: o.price.map(num),
                        time: iso_ns(o.time_ns),
                        cl_ord_id: o.cl_ord_id,
                    }),
                    correction: m.correction.map(|c| CorrectionJson {
                        kind: match c.kind {
                            CorrectionKind::Cancel => "cancel".to_owned(),
                            CorrectionKind::Correct => "correct".to_owned(),
                        },
                        symbol: c.symbol,
                        id: c.id,
                        ref_id: c.ref_id,
                    }),
                }
            })
            .collect()
    }
}
