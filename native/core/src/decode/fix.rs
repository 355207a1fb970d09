//! Extraction of trades, orders and corrections from validated FIX frames.
//!
//! Each handler walks the body once, keeping the slices of the few fields it needs (the first
//! occurrence of each tag, so that repeating groups later in the message cannot override a
//! message-level value), then validates them. Syntax errors take precedence over semantic
//! ones: a message is only judged on its content when every field is well formed.
//!
//! Choices where the brief or FIX leaves room:
//! - A body whose first field is not MsgType(35), or whose MsgType is empty, is
//!   [`Reason::MissingField`].
//! - An empty value in a required id field (ExecID) counts as missing; an empty optional id
//!   is `None`.
//! - Ids handed out (ExecID, TradeReportID, ClOrdID, MDEntryID …) must be valid UTF-8, else
//!   [`Reason::Garbled`].
//! - Side: `1` buy, `2` sell, `5`/`6` (sell short, sell short exempt) sell, for trades as for
//!   orders; anything else is unknown on a trade and [`Reason::BadSide`] on an order.

use smallvec::SmallVec;

use super::decimal::parse_decimal;
use super::emit::{check_symbol, Emitter, OrderData, Rules, TradeData};
use super::fields::FieldIter;
use super::frame::GoodFrame;
use super::time::{parse_date_and_time, parse_utc_timestamp_cached, DateCache};
use super::{DecodeSink, MessageInfo, Outcome};
use crate::reason::Reason;
use crate::types::{Arrival, Correction, CorrectionKind, Side};

/// An optional id: empty is `None`, invalid UTF-8 is garbled.
#[inline]
fn opt_id(value: Option<&[u8]>) -> Result<Option<&str>, Reason> {
    match value {
        None | Some([]) => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .map(Some)
            .map_err(|_| Reason::Garbled),
    }
}

/// Side(54) of a trade or order; `None` for values that are neither buy nor sell.
#[inline]
fn side_of(value: &[u8]) -> Option<Side> {
    match value {
        b"1" => Some(Side::Buy),
        // 5 = sell short, 6 = sell short exempt: still sells for order flow and aggressor.
        b"2" | b"5" | b"6" => Some(Side::Sell),
        _ => None,
    }
}

/// A required price: absent is missing, unparseable or ≤ 0 is [`Reason::BadPrice`].
#[inline]
fn positive_price(value: Option<&[u8]>) -> Result<i64, Reason> {
    let v = value.ok_or(Reason::MissingField)?;
    match parse_decimal(v) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Reason::BadPrice),
    }
}

/// A quantity that must be > 0 (`strict`) or ≥ 0.
#[inline]
fn quantity(value: &[u8], strict: bool) -> Result<i64, Reason> {
    match parse_decimal(value) {
        Ok(q) if q > 0 || (q == 0 && !strict) => Ok(q),
        _ => Err(Reason::BadQty),
    }
}

/// A UTCTimestamp field's value, or [`Reason::BadTimestamp`].
#[inline]
fn timestamp(text: &[u8], dates: &mut DateCache) -> Result<i64, Reason> {
    parse_utc_timestamp_cached(text, dates).map_err(|_| Reason::BadTimestamp)
}

/// Event time from TransactTime(60), else SendingTime(52).
#[inline]
fn event_time(
    transact: Option<&[u8]>,
    sending: Option<&[u8]>,
    dates: &mut DateCache,
) -> Result<i64, Reason> {
    timestamp(transact.or(sending).ok_or(Reason::MissingField)?, dates)
}

/// Whether the BeginString predates ExecType F (FIX.4.0–4.2 report fills as 150=1/2).
#[inline]
fn is_legacy(begin_string: &[u8]) -> bool {
    matches!(begin_string, b"FIX.4.0" | b"FIX.4.1" | b"FIX.4.2")
}

/// Decodes one validated frame and reports it to the sink.
#[inline]
pub(crate) fn decode_message<'a, S: DecodeSink<'a>>(
    rules: &Rules,
    frame: GoodFrame<'a>,
    offset: usize,
    len: usize,
    out: &mut Emitter<'_, S>,
) {
    let mut it = FieldIter::new(frame.body);
    let msg_type = match it.next_field() {
        Ok(Some((35, v))) if !v.is_empty() => v,
        Ok(_) => return out.reject(offset, len, None, Reason::MissingField),
        Err(reason) => return out.reject(offset, len, None, reason),
    };
    let info = |outcome| MessageInfo {
        offset,
        len,
        msg_type: Some(msg_type),
        outcome,
    };
    // Filled in place: returning the inline buffer by value would copy it per message.
    let mut trades = MdTrades::new();
    match msg_type {
        b"8" => match execution_report(rules, frame.begin_string, it, &mut out.dates) {
            Ok(Report::Trade(t)) => {
                out.message(info(Outcome::Trades(1)));
                out.trade(&t);
            }
            Ok(Report::Correction(c)) => {
                out.message(info(Outcome::Correction));
                out.correction(&c);
            }
            Ok(Report::Ignored) => out.message(info(Outcome::Ignored)),
            Err(reason) => out.message(info(Outcome::Rejected(reason))),
        },
        b"AE" => match trade_capture_report(rules, it, &mut out.dates) {
            Ok(Report::Trade(t)) => {
                out.message(info(Outcome::Trades(1)));
                out.trade(&t);
            }
            Ok(Report::Correction(c)) => {
                out.message(info(Outcome::Correction));
                out.correction(&c);
            }
            Ok(Report::Ignored) => out.message(info(Outcome::Ignored)),
            Err(reason) => out.message(info(Outcome::Rejected(reason))),
        },
        b"X" => match md_incremental(rules, it, &mut trades, &mut out.dates) {
            Ok(()) => {
                // Entry counts are bounded by the message length, far below u32::MAX.
                out.message(info(Outcome::Trades(trades.len() as u32)));
                for t in &trades {
                    out.trade(&t.resolved());
                }
            }
            Err(reason) => out.message(info(Outcome::Rejected(reason))),
        },
        b"D" => match new_order_single(rules, it, &mut out.dates) {
            Ok(order) => {
                out.message(info(Outcome::Order));
                out.order(&order);
            }
            Err(reason) => out.message(info(Outcome::Rejected(reason))),
        },
        _ => match it.check_rest() {
            Ok(()) => out.message(info(Outcome::Ignored)),
            Err(reason) => out.message(info(Outcome::Rejected(reason))),
        },
    }
}

/// What an ExecutionReport or TradeCaptureReport amounts to.
enum Report<'a> {
    Trade(TradeData<'a>),
    Correction(Correction<'a>),
    Ignored,
}

/// Keeps the first occurrence of a field.
#[inline(always)]
fn first<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// The fields of an ExecutionReport that matter here.
#[derive(Default)]
struct ExecFields<'a> {
    exec_type: Option<&'a [u8]>,
    exec_trans_type: Option<&'a [u8]>,
    last_px: Option<&'a [u8]>,
    last_qty: Option<&'a [u8]>,
    symbol: Option<&'a [u8]>,
    exec_id: Option<&'a [u8]>,
    exec_ref_id: Option<&'a [u8]>,
    side: Option<&'a [u8]>,
    transact_time: Option<&'a [u8]>,
    sending_time: Option<&'a [u8]>,
}

/// ExecutionReport (35=8).
///
/// A trade is ExecType(150) `F`, or `1`/`2` (partial fill / fill) under FIX.4.0–4.2, which had
/// no `F`. It needs Symbol(55), LastPx(31) > 0, LastQty(32) > 0 and ExecID(17), checked in
/// that order; its time is TransactTime(60), else SendingTime(52).
///
/// A trade-typed report with LastPx and LastQty both zero or both absent reports no
/// execution: FIX.4.1 engines acknowledge new orders as `150=2` with `31=0|32=0` (see
/// hffix's fix.4.1.set.1), so such a report is [`Outcome::Ignored`], not a reject.
///
/// Under FIX.4.0–4.2 ExecTransType(20) qualifies the report: `1` (cancel) and `2` (correct)
/// make a trade-typed report a [`Correction`], `3` (status) restates an earlier execution and
/// is ignored, so that it is never counted twice.
///
/// ExecType `H` is a trade cancel and `G` a trade correction ([`Correction`] with
/// ExecRefID(19) as its reference). Other ExecTypes are ignored.
fn execution_report<'a>(
    rules: &Rules,
    begin_string: &[u8],
    mut it: FieldIter<'a>,
    dates: &mut DateCache,
) -> Result<Report<'a>, Reason> {
    let mut f = ExecFields::default();
    while let Some((tag, v)) = it.next_field()? {
        match tag {
            17 => first(&mut f.exec_id, v),
            19 => first(&mut f.exec_ref_id, v),
            20 => first(&mut f.exec_trans_type, v),
            31 => first(&mut f.last_px, v),
            32 => first(&mut f.last_qty, v),
            52 => first(&mut f.sending_time, v),
            54 => first(&mut f.side, v),
            55 => first(&mut f.symbol, v),
            60 => first(&mut f.transact_time, v),
            150 => first(&mut f.exec_type, v),
            _ => {}
        }
    }

    let legacy = is_legacy(begin_string);
    let trade_typed = match f.exec_type {
        Some(b"F") => true,
        Some(b"1" | b"2") => legacy,
        Some(b"H") => return correction(rules, CorrectionKind::Cancel, &f),
        Some(b"G") => return correction(rules, CorrectionKind::Correct, &f),
        _ => false,
    };
    if !trade_typed {
        return Ok(Report::Ignored);
    }
    if legacy {
        match f.exec_trans_type {
            None | Some(b"0") => {}
            Some(b"1") => return correction(rules, CorrectionKind::Cancel, &f),
            Some(b"2") => return correction(rules, CorrectionKind::Correct, &f),
            Some(_) => return Ok(Report::Ignored),
        }
    }

    let px = f
        .last_px
        .map(|v| parse_decimal(v).map_err(|_| Reason::BadPrice))
        .transpose()?;
    let qty = f
        .last_qty
        .map(|v| parse_decimal(v).map_err(|_| Reason::BadQty))
        .transpose()?;
    if px.unwrap_or(0) == 0 && qty.unwrap_or(0) == 0 {
        return Ok(Report::Ignored);
    }

    let symbol = check_symbol(
        f.symbol.ok_or(Reason::MissingField)?,
        rules.max_symbol_len(),
    )?;
    let price = match px {
        None => return Err(Reason::MissingField),
        Some(p) if p <= 0 => return Err(Reason::BadPrice),
        Some(p) => p,
    };
    let qty = match qty {
        None => return Err(Reason::MissingField),
        Some(q) if q <= 0 => return Err(Reason::BadQty),
        Some(q) => q,
    };
    let id = opt_id(f.exec_id)?.ok_or(Reason::MissingField)?;
    let time_ns = event_time(f.transact_time, f.sending_time, dates)?;
    Ok(Report::Trade(TradeData {
        symbol,
        price,
        qty,
        time_ns,
        id: Some(id),
        side: f.side.and_then(side_of).unwrap_or_default(),
    }))
}

/// A trade cancel or correction from an ExecutionReport: a correction carries the corrected
/// LastPx(31) > 0 and LastQty(32) > 0, as a fill does.
fn correction<'a>(
    rules: &Rules,
    kind: CorrectionKind,
    f: &ExecFields<'a>,
) -> Result<Report<'a>, Reason> {
    let (price, qty) = corrected_values(kind, f.last_px, f.last_qty, true)?;
    Ok(Report::Correction(Correction {
        kind,
        symbol: f
            .symbol
            .map(|s| check_symbol(s, rules.max_symbol_len()))
            .transpose()?,
        id: opt_id(f.exec_id)?,
        ref_id: opt_id(f.exec_ref_id)?,
        price,
        qty,
        arrival: Arrival::default(),
    }))
}

/// The new price and quantity of a correction (required, validated like the report type's
/// trades: quantity > 0 when `strict_qty`, else ≥ 0); none for a cancel.
fn corrected_values(
    kind: CorrectionKind,
    px: Option<&[u8]>,
    qty: Option<&[u8]>,
    strict_qty: bool,
) -> Result<(Option<i64>, Option<i64>), Reason> {
    match kind {
        CorrectionKind::Cancel => Ok((None, None)),
        CorrectionKind::Correct => {
            let price = positive_price(px)?;
            let qty = quantity(qty.ok_or(Reason::MissingField)?, strict_qty)?;
            Ok((Some(price), Some(qty)))
        }
    }
}

/// TradeCaptureReport (35=AE).
///
/// TradeReportTransType(487) `0` or absent is a trade: Symbol(55), LastPx(31) > 0 and
/// LastQty(32) ≥ 0 are required; its id is TradeReportID(571), else TradeID(1003) when 571 is
/// absent (FIX 5.0 reports often carry only the venue's TradeID), else none. Time is
/// TransactTime(60), else SendingTime(52). The side is that of the only Side(54) in the
/// message (one NoSides entry); with several sides (buyer and seller) it is unknown.
///
/// `487=1` is a cancel and `487=2` a replace ([`Correction`] referring to
/// TradeReportRefID(572)); other values are ignored.
fn trade_capture_report<'a>(
    rules: &Rules,
    mut it: FieldIter<'a>,
    dates: &mut DateCache,
) -> Result<Report<'a>, Reason> {
    let mut trans_type = None;
    let mut last_px = None;
    let mut last_qty = None;
    let mut symbol = None;
    let mut report_id = None;
    let mut trade_id = None;
    let mut ref_id = None;
    let mut side = None;
    let mut sides = 0u32;
    let mut transact_time = None;
    let mut sending_time = None;
    while let Some((tag, v)) = it.next_field()? {
        match tag {
            31 => first(&mut last_px, v),
            32 => first(&mut last_qty, v),
            52 => first(&mut sending_time, v),
            54 => {
                first(&mut side, v);
                sides += 1;
            }
            55 => first(&mut symbol, v),
            60 => first(&mut transact_time, v),
            487 => first(&mut trans_type, v),
            571 => first(&mut report_id, v),
            572 => first(&mut ref_id, v),
            1003 => first(&mut trade_id, v),
            _ => {}
        }
    }

    let kind = match trans_type {
        None | Some(b"0") => None,
        Some(b"1") => Some(CorrectionKind::Cancel),
        Some(b"2") => Some(CorrectionKind::Correct),
        Some(_) => return Ok(Report::Ignored),
    };
    if let Some(kind) = kind {
        let (price, qty) = corrected_values(kind, last_px, last_qty, false)?;
        return Ok(Report::Correction(Correction {
            kind,
            symbol: symbol
                .map(|s| check_symbol(s, rules.max_symbol_len()))
                .transpose()?,
            id: opt_id(report_id.or(trade_id))?,
            ref_id: opt_id(ref_id)?,
            price,
            qty,
            arrival: Arrival::default(),
        }));
    }

    let symbol = check_symbol(symbol.ok_or(Reason::MissingField)?, rules.max_symbol_len())?;
    let price = positive_price(last_px)?;
    let qty = quantity(last_qty.ok_or(Reason::MissingField)?, false)?;
    let id = opt_id(report_id.or(trade_id))?;
    let time_ns = event_time(transact_time, sending_time, dates)?;
    let side = if sides == 1 {
        side.and_then(side_of).unwrap_or_default()
    } else {
        Side::Unknown
    };
    Ok(Report::Trade(TradeData {
        symbol,
        price,
        qty,
        time_ns,
        id,
        side,
    }))
}

/// Fields of one MarketDataIncrementalRefresh entry.
#[derive(Default, Clone, Copy)]
struct MdEntry<'a> {
    update_action: Option<&'a [u8]>,
    entry_type: Option<&'a [u8]>,
    px: Option<&'a [u8]>,
    size: Option<&'a [u8]>,
    symbol: Option<&'a [u8]>,
    entry_id: Option<&'a [u8]>,
    trade_id: Option<&'a [u8]>,
    transact_time: Option<&'a [u8]>,
    date: Option<&'a [u8]>,
    time: Option<&'a [u8]>,
    aggressor: Option<&'a [u8]>,
}

/// A validated MD trade whose time may still fall back to SendingTime(52).
#[derive(Clone, Copy)]
struct MdTrade<'a> {
    symbol: &'a str,
    price: i64,
    qty: i64,
    time_ns: Option<i64>,
    id: Option<&'a str>,
    side: Side,
}

impl<'a> MdTrade<'a> {
    /// The trade to emit; its time has been resolved by then.
    #[inline]
    fn resolved(&self) -> TradeData<'a> {
        TradeData {
            symbol: self.symbol,
            price: self.price,
            qty: self.qty,
            time_ns: self.time_ns.unwrap_or_default(),
            id: self.id,
            side: self.side,
        }
    }
}

/// Trades of one message, inline up to a size that covers real feeds (the JSE corpus has at
/// most three entries per message), so that the common case does not allocate.
type MdTrades<'a> = SmallVec<[MdTrade<'a>; 8]>;

/// Message-level context an MD entry's validation needs.
struct MdContext<'a> {
    symbol: Option<&'a [u8]>,
    transact_time: Option<&'a [u8]>,
    /// Parsed message-level TransactTime, computed once on first use.
    transact_ns: Option<Result<i64, Reason>>,
}

/// Validates one entry; `Ok(None)` when it is not a trade.
#[inline]
fn md_entry<'a>(
    rules: &Rules,
    e: &MdEntry<'a>,
    ctx: &mut MdContext<'a>,
    dates: &mut DateCache,
) -> Result<Option<MdTrade<'a>>, Reason> {
    if !matches!(e.update_action, None | Some(b"0")) {
        return Ok(None);
    }
    match e.entry_type {
        Some(t) if rules.is_trade_entry_type(t) => {}
        _ => return Ok(None),
    }
    let symbol = check_symbol(
        e.symbol.or(ctx.symbol).ok_or(Reason::MissingField)?,
        rules.max_symbol_len(),
    )?;
    let price = positive_price(e.px)?;
    let qty = match e.size {
        None => 0,
        Some(v) => quantity(v, false)?,
    };
    let id = opt_id(e.entry_id.or(e.trade_id))?;
    let time_ns = if let Some(t) = e.transact_time {
        Some(timestamp(t, dates)?)
    } else if let Some(t) = ctx.transact_time {
        Some(
            *ctx.transact_ns
                .get_or_insert_with(|| timestamp(t, dates))
                .as_ref()
                .map_err(|&r| r)?,
        )
    } else if let (Some(d), Some(t)) = (e.date, e.time) {
        Some(parse_date_and_time(d, t).map_err(|_| Reason::BadTimestamp)?)
    } else {
        None
    };
    Ok(Some(MdTrade {
        symbol,
        price,
        qty,
        time_ns,
        id,
        side: e.aggressor.and_then(side_of).unwrap_or_default(),
    }))
}

/// MarketDataIncrementalRefresh (35=X).
///
/// NoMDEntries(268) is required (absent → [`Reason::MissingField`], not a count →
/// [`Reason::BadField`]); its entries are delimited by the first tag after it, each recurrence
/// starting a new entry, and their number must equal the count ([`Reason::BadField`]). Fields
/// before 268 are message-level (Symbol 55, TransactTime 60); every field after it belongs to
/// the current entry, since without a dictionary the end of the group cannot be known.
///
/// An entry is a trade when MDUpdateAction(279) is `0` or absent and MDEntryType(269) is one
/// of the configured types. Its price MDEntryPx(270) is required and > 0, its size
/// MDEntrySize(271) ≥ 0 (absent = 0), its symbol the entry's 55 or the message's, its id
/// MDEntryID(278), else TradeID(1003), else none, its side AggressorSide(2446) when present.
/// Its time is the entry's TransactTime, else the message's, else MDEntryDate(272) +
/// MDEntryTime(273) when the entry has both, else SendingTime(52).
///
/// One invalid trade entry rejects the whole message (records are dead-lettered whole), with
/// the reason of the first such entry.
fn md_incremental<'a>(
    rules: &Rules,
    mut it: FieldIter<'a>,
    trades: &mut MdTrades<'a>,
    dates: &mut DateCache,
) -> Result<(), Reason> {
    let mut ctx = MdContext {
        symbol: None,
        transact_time: None,
        transact_ns: None,
    };
    let mut sending_time = None;
    let mut count: Option<u64> = None;
    let mut in_group = false;
    let mut delimiter = 0u32;
    let mut entries = 0u64;
    let mut entry = MdEntry::default();
    let mut error: Option<Reason> = None;

    // Folds a finished entry into the result, keeping only the first semantic error.
    let mut finish = |entry: &MdEntry<'a>, ctx: &mut MdContext<'a>, error: &mut Option<Reason>| {
        if error.is_none() {
            match md_entry(rules, entry, ctx, dates) {
                Ok(Some(t)) => trades.push(t),
                Ok(None) => {}
                Err(r) => *error = Some(r),
            }
        }
    };

    while let Some((tag, v)) = it.next_field()? {
        if in_group {
            if delimiter == 0 {
                delimiter = tag;
            }
            if tag == delimiter {
                if entries > 0 {
                    finish(&entry, &mut ctx, &mut error);
                }
                entry = MdEntry::default();
                entries += 1;
            }
            match tag {
                52 => first(&mut sending_time, v),
                55 => first(&mut entry.symbol, v),
                60 => first(&mut entry.transact_time, v),
                269 => first(&mut entry.entry_type, v),
                270 => first(&mut entry.px, v),
                271 => first(&mut entry.size, v),
                272 => first(&mut entry.date, v),
                273 => first(&mut entry.time, v),
                278 => first(&mut entry.entry_id, v),
                279 => first(&mut entry.update_action, v),
                1003 => first(&mut entry.trade_id, v),
                2446 => first(&mut entry.aggressor, v),
                _ => {}
            }
        } else {
            match tag {
                52 => first(&mut sending_time, v),
                55 => first(&mut ctx.symbol, v),
                60 => first(&mut ctx.transact_time, v),
                268 => {
                    if count.is_some() {
                        error.get_or_insert(Reason::BadField);
                        continue;
                    }
                    match parse_count(v) {
                        Some(n) => {
                            count = Some(n);
                            in_group = n > 0;
                        }
                        None => {
                            // Keep walking for syntax; the count stays unknown.
                            count = Some(0);
                            error.get_or_insert(Reason::BadField);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if entries > 0 {
        finish(&entry, &mut ctx, &mut error);
    }
    if let Some(r) = error {
        return Err(r);
    }
    match count {
        None => return Err(Reason::MissingField),
        Some(n) if n != entries => return Err(Reason::BadField),
        Some(_) => {}
    }

    if trades.iter().any(|t| t.time_ns.is_none()) {
        let sent = timestamp(sending_time.ok_or(Reason::MissingField)?, dates)?;
        for t in trades.iter_mut() {
            t.time_ns.get_or_insert(sent);
        }
    }
    Ok(())
}

/// A group count: 1–9 ASCII digits.
#[inline]
fn parse_count(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 9 {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then_some(n * 10 + u64::from(d))
    })
}

/// NewOrderSingle (35=D).
///
/// Symbol(55) required; Side(54) buy (`1`) or sell (`2`, `5`, `6`), else
/// [`Reason::BadSide`]; OrderQty(38) required and > 0; Price(44) optional, > 0 when present;
/// ClOrdID(11) optional; time from TransactTime(60), else SendingTime(52). Checked in that
/// order.
fn new_order_single<'a>(
    rules: &Rules,
    mut it: FieldIter<'a>,
    dates: &mut DateCache,
) -> Result<OrderData<'a>, Reason> {
    let mut symbol = None;
    let mut side = None;
    let mut order_qty = None;
    let mut price = None;
    let mut cl_ord_id = None;
    let mut transact_time = None;
    let mut sending_time = None;
    while let Some((tag, v)) = it.next_field()? {
        match tag {
            11 => first(&mut cl_ord_id, v),
            38 => first(&mut order_qty, v),
            44 => first(&mut price, v),
            52 => first(&mut sending_time, v),
            54 => first(&mut side, v),
            55 => first(&mut symbol, v),
            60 => first(&mut transact_time, v),
            _ => {}
        }
    }
    let symbol = check_symbol(symbol.ok_or(Reason::MissingField)?, rules.max_symbol_len())?;
    let side = side.and_then(side_of).ok_or(Reason::BadSide)?;
    let qty = quantity(order_qty.ok_or(Reason::MissingField)?, true)?;
    let price = price.map(|p| positive_price(Some(p))).transpose()?;
    let cl_ord_id = opt_id(cl_ord_id)?;
    let time_ns = event_time(transact_time, sending_time, dates)?;
    Ok(OrderData {
        symbol,
        side,
        qty,
        price,
        time_ns,
        cl_ord_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_to_vec, DecodedMessage, Decoder, DecoderConfig};
    use crate::types::SCALE;

    /// Builds a frame from a `|`-separated body, computing BodyLength and CheckSum.
    fn msg(begin: &str, body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8={begin}\x019={}\x01{body}", body.len()).into_bytes();
        let sum = crate::decode::checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        m
    }

    fn decode_with(types: &str, m: &[u8]) -> DecodedMessage {
        let dec = Decoder::new(DecoderConfig::with_md_entry_types(types).unwrap());
        let mut out = decode_to_vec(&dec, m, 7);
        assert_eq!(out.len(), 1, "{out:?}");
        out.pop().unwrap()
    }

    fn decode(m: &[u8]) -> DecodedMessage {
        decode_with("2", m)
    }

    fn outcome(begin: &str, body: &str) -> Outcome {
        decode(&msg(begin, body)).outcome
    }

    const ER44: &str = "35=8|17=E1|150=F|55=IBM|54=2|31=101.5|32=200|60=20240102-03:04:05.006|";

    #[test]
    fn execution_report_trade() {
        let m = decode(&msg("FIX.4.4", ER44));
        assert_eq!(m.outcome, Outcome::Trades(1));
        let t = &m.trades[0];
        assert_eq!(t.symbol, "IBM");
        assert_eq!((t.price, t.qty), (101_500_000_000, 200 * SCALE));
        assert_eq!(t.id.as_deref(), Some("E1"));
        assert_eq!(t.side, Side::Sell);
        assert_eq!(t.time_ns, 1_704_164_645_006_000_000);
        assert_eq!((t.arrival.seq, t.arrival.ord), (7, 0));
    }

    #[test]
    fn execution_report_types() {
        // 150=2 is a fill only before FIX.4.3.
        let fill42 = "35=8|17=E1|150=2|20=0|55=IBM|31=1|32=1|52=20240102-03:04:05|";
        assert_eq!(outcome("FIX.4.2", fill42), Outcome::Trades(1));
        assert_eq!(outcome("FIX.4.4", fill42), Outcome::Ignored);
        assert_eq!(
            outcome("FIX.4.2", &fill42.replace("20=0", "20=3")),
            Outcome::Ignored
        );
        assert_eq!(
            outcome("FIX.4.2", &fill42.replace("20=0", "20=1")),
            Outcome::Correction
        );
        assert_eq!(
            outcome("FIX.4.4", &ER44.replace("150=F", "150=0")),
            Outcome::Ignored
        );
        // No execution: LastPx and LastQty both zero or both absent.
        assert_eq!(
            outcome(
                "FIX.4.4",
                &ER44.replace("31=101.5", "31=0").replace("32=200", "32=0")
            ),
            Outcome::Ignored
        );
        assert_eq!(
            outcome(
                "FIX.4.4",
                &ER44.replace("31=101.5|", "").replace("32=200|", "")
            ),
            Outcome::Ignored
        );
    }

    #[test]
    fn execution_report_corrections() {
        let m = decode(&msg("FIX.4.4", &ER44.replace("150=F", "150=H|19=E0")));
        assert_eq!(m.outcome, Outcome::Correction);
        let c = m.correction.unwrap();
        assert_eq!(c.kind, CorrectionKind::Cancel);
        assert_eq!(
            (c.id.as_deref(), c.ref_id.as_deref()),
            (Some("E1"), Some("E0"))
        );
        assert_eq!(c.symbol.as_deref(), Some("IBM"));
        let m = decode(&msg("FIX.4.4", &ER44.replace("150=F", "150=G")));
        assert_eq!(m.correction.unwrap().kind, CorrectionKind::Correct);
    }

    #[test]
    fn execution_report_rejects() {
        let r = |body: String| outcome("FIX.4.4", &body);
        assert_eq!(
            r(ER44.replace("55=IBM|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(ER44.replace("55=IBM", "55=")),
            Outcome::Rejected(Reason::BadSymbol)
        );
        assert_eq!(
            r(ER44.replace("31=101.5", "31=-1")),
            Outcome::Rejected(Reason::BadPrice)
        );
        assert_eq!(
            r(ER44.replace("31=101.5", "31=0")),
            Outcome::Rejected(Reason::BadPrice)
        );
        assert_eq!(
            r(ER44.replace("31=101.5", "31=1e2")),
            Outcome::Rejected(Reason::BadPrice)
        );
        assert_eq!(
            r(ER44.replace("31=101.5|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(ER44.replace("32=200", "32=0")),
            Outcome::Rejected(Reason::BadQty)
        );
        assert_eq!(
            r(ER44.replace("32=200", "32=-5")),
            Outcome::Rejected(Reason::BadQty)
        );
        assert_eq!(
            r(ER44.replace("17=E1|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(ER44.replace("17=E1", "17=")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(ER44.replace("60=20240102-03:04:05.006|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(ER44.replace(".006", ".06")),
            Outcome::Rejected(Reason::BadTimestamp)
        );
        assert_eq!(
            r(ER44.replace("20240102", "00000000")),
            Outcome::Rejected(Reason::BadTimestamp)
        );
        // Non-UTF-8 id.
        let mut bytes = msg("FIX.4.4", &ER44.replace("17=E1", "17=E\u{7f}"));
        let at = bytes.windows(4).position(|w| w == b"17=E").unwrap() + 4;
        bytes[at] = 0xff;
        let len = bytes.len();
        let sum = crate::decode::checksum(&bytes[..len - 7]);
        bytes[len - 4..len - 1].copy_from_slice(format!("{sum:03}").as_bytes());
        assert_eq!(decode(&bytes).outcome, Outcome::Rejected(Reason::Garbled));
    }

    const AE: &str = "35=AE|571=R1|487=0|55=ANZ|31=27|32=5000|60=20220210-02:43:27.796|552=1|54=1|";

    #[test]
    fn trade_capture_report() {
        let m = decode(&msg("FIX.4.4", AE));
        assert_eq!(m.outcome, Outcome::Trades(1));
        let t = &m.trades[0];
        assert_eq!(
            (t.id.as_deref(), t.side, t.price),
            (Some("R1"), Side::Buy, 27 * SCALE)
        );
        // TradeID when there is no TradeReportID; no id at all is allowed.
        let t = &decode(&msg("FIX.4.4", &AE.replace("571=R1", "1003=T9"))).trades[0];
        assert_eq!(t.id.as_deref(), Some("T9"));
        let t = &decode(&msg("FIX.4.4", &AE.replace("571=R1|", ""))).trades[0];
        assert_eq!(t.id, None);
        // Two sides: unknown aggressor; zero quantity allowed; 487 absent is new.
        let t = &decode(&msg(
            "FIX.4.4",
            &AE.replace("552=1|54=1|", "552=2|54=1|54=2|"),
        ))
        .trades[0];
        assert_eq!(t.side, Side::Unknown);
        assert_eq!(
            outcome("FIX.4.4", &AE.replace("32=5000", "32=0")),
            Outcome::Trades(1)
        );
        assert_eq!(
            outcome("FIX.4.4", &AE.replace("487=0|", "")),
            Outcome::Trades(1)
        );
    }

    #[test]
    fn trade_capture_report_types_and_rejects() {
        let m = decode(&msg("FIX.4.4", &AE.replace("487=0", "487=1|572=R0")));
        let c = m.correction.unwrap();
        assert_eq!(
            (c.kind, c.ref_id.as_deref()),
            (CorrectionKind::Cancel, Some("R0"))
        );
        let c = decode(&msg("FIX.4.4", &AE.replace("487=0", "487=2")))
            .correction
            .unwrap();
        assert_eq!(c.kind, CorrectionKind::Correct);
        assert_eq!(
            outcome("FIX.4.4", &AE.replace("487=0", "487=5")),
            Outcome::Ignored
        );
        let r = |body: String| outcome("FIX.4.4", &body);
        assert_eq!(
            r(AE.replace("55=ANZ|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(AE.replace("31=27", "31=0")),
            Outcome::Rejected(Reason::BadPrice)
        );
        assert_eq!(
            r(AE.replace("31=27|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(AE.replace("32=5000", "32=-1")),
            Outcome::Rejected(Reason::BadQty)
        );
        assert_eq!(
            r(AE.replace("32=5000|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(r(AE.replace(".796", "")), Outcome::Trades(1));
        assert_eq!(
            r(AE.replace("02:43", "25:43")),
            Outcome::Rejected(Reason::BadTimestamp)
        );
    }

    const X: &str = "35=X|52=20111124-06:58:56.460|268=3|279=0|55=J200|269=x|270=1|279=0|55=J200|269=3|270=25929.169999999996|279=0|55=J201|269=2|270=5|271=10|278=M1|";

    #[test]
    fn md_incremental_entries() {
        assert_eq!(outcome("FIXT.1.1", X), Outcome::Trades(1));
        let m = decode_with("2,3", &msg("FIXT.1.1", X));
        assert_eq!(m.outcome, Outcome::Trades(2));
        let (a, b) = (&m.trades[0], &m.trades[1]);
        assert_eq!(
            (a.symbol.as_str(), a.price, a.qty, a.id.as_deref()),
            ("J200", 25_929_170_000_000, 0, None)
        );
        assert_eq!(
            (b.symbol.as_str(), b.qty, b.id.as_deref()),
            ("J201", 10 * SCALE, Some("M1"))
        );
        assert_eq!((a.arrival.ord, b.arrival.ord), (0, 1));
        assert_eq!(a.time_ns, 1_322_117_936_460_000_000);
        // Entries delimited by 269 when it comes first; message-level symbol.
        let m = decode(&msg(
            "FIX.4.4",
            "35=X|55=EUR/USD|52=20240102-03:04:05|268=2|269=2|270=1.1|269=2|270=1.2|271=3|",
        ));
        assert_eq!(m.outcome, Outcome::Trades(2));
        assert_eq!(m.trades[1].symbol, "EUR/USD");
        // Updates other than New are not trades.
        assert_eq!(
            outcome("FIXT.1.1", &X.replace("279=0|55=J201", "279=2|55=J201")),
            Outcome::Trades(0)
        );
        // No entries.
        assert_eq!(outcome("FIX.4.4", "35=X|268=0|346=1|"), Outcome::Trades(0));
    }

    #[test]
    fn md_incremental_times() {
        let base = "35=X|52=20240102-03:04:05|268=1|279=0|269=2|55=A|270=1|";
        let t = |body: &str| decode(&msg("FIX.4.4", body)).trades[0].time_ns;
        let sent = 1_704_164_645_000_000_000;
        assert_eq!(t(base), sent);
        assert_eq!(
            t(&format!("{base}272=20240102|273=03:04:06.500|")),
            sent + 1_500_000_000
        );
        assert_eq!(t(&format!("{base}273=03:04:06.500|")), sent);
        assert_eq!(
            t(&format!("{base}60=20240102-03:04:07|")),
            sent + 2_000_000_000
        );
        let msg_level = base.replace("268=1", "60=20240102-03:04:08|268=1");
        assert_eq!(t(&msg_level), sent + 3_000_000_000);
        assert_eq!(
            t(&format!("{msg_level}272=20240102|273=03:04:06.500|")),
            sent + 3_000_000_000
        );
    }

    #[test]
    fn md_incremental_rejects() {
        let r = |body: String| outcome("FIXT.1.1", &body);
        // One bad trade entry rejects the whole message.
        assert_eq!(
            r(X.replace("270=5", "270=0")),
            Outcome::Rejected(Reason::BadPrice)
        );
        assert_eq!(
            r(X.replace("270=5|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(X.replace("271=10", "271=-10")),
            Outcome::Rejected(Reason::BadQty)
        );
        assert_eq!(
            r(X.replace("55=J201|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(X.replace("55=J201", "55=J\u{1}01")
                .replace('\u{1}', "\u{7f}")),
            Outcome::Rejected(Reason::BadSymbol)
        );
        assert_eq!(
            r(X.replace("52=20111124-06:58:56.460|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(X.replace(".460", ".4")),
            Outcome::Rejected(Reason::BadTimestamp)
        );
        assert_eq!(
            r(format!("{X}60=2011|")),
            Outcome::Rejected(Reason::BadTimestamp)
        );
        assert_eq!(
            r(X.replace("268=3", "268=x")),
            Outcome::Rejected(Reason::BadField)
        );
        assert_eq!(
            r(X.replace("268=3", "268=4")),
            Outcome::Rejected(Reason::BadField)
        );
        assert_eq!(
            r(X.replace("268=3|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        // Invalid non-trade entries do not matter.
        assert_eq!(r(X.replace("270=1|", "270=-1|")), Outcome::Trades(1));
    }

    const D: &str = "35=D|11=C1|55=MSFT|54=1|38=100|40=2|44=10.5|60=20240102-03:04:05|";

    #[test]
    fn new_order_single() {
        let m = decode(&msg("FIX.4.4", D));
        let o = m.order.unwrap();
        assert_eq!(
            (o.symbol.as_str(), o.side, o.qty, o.price),
            ("MSFT", Side::Buy, 100 * SCALE, Some(10_500_000_000))
        );
        assert_eq!(o.cl_ord_id.as_deref(), Some("C1"));
        for (side, want) in [("2", Side::Sell), ("5", Side::Sell), ("6", Side::Sell)] {
            let o = decode(&msg("FIX.4.4", &D.replace("54=1", &format!("54={side}"))))
                .order
                .unwrap();
            assert_eq!(o.side, want);
        }
        assert_eq!(
            decode(&msg("FIX.4.4", &D.replace("44=10.5|", "")))
                .order
                .unwrap()
                .price,
            None
        );
    }

    #[test]
    fn new_order_single_rejects() {
        let r = |body: String| outcome("FIX.4.4", &body);
        assert_eq!(
            r(D.replace("55=MSFT|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(D.replace("54=1", "54=3")),
            Outcome::Rejected(Reason::BadSide)
        );
        assert_eq!(
            r(D.replace("54=1|", "")),
            Outcome::Rejected(Reason::BadSide)
        );
        assert_eq!(
            r(D.replace("38=100|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            r(D.replace("38=100", "38=0")),
            Outcome::Rejected(Reason::BadQty)
        );
        assert_eq!(
            r(D.replace("44=10.5", "44=0")),
            Outcome::Rejected(Reason::BadPrice)
        );
        assert_eq!(
            r(D.replace("60=20240102", "60=19000101")),
            Outcome::Rejected(Reason::BadTimestamp)
        );
        assert_eq!(
            r(D.replace("60=20240102-03:04:05|", "")),
            Outcome::Rejected(Reason::MissingField)
        );
    }

    #[test]
    fn body_syntax_and_msg_type() {
        assert_eq!(
            outcome("FIX.4.4", "35=0|49garbled=TW|"),
            Outcome::Rejected(Reason::Garbled)
        );
        assert_eq!(
            outcome("FIX.4.4", "35=0|95=3|96=ab|"),
            Outcome::Rejected(Reason::Garbled)
        );
        assert_eq!(
            outcome("FIX.4.4", "34=1|35=0|"),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            outcome("FIX.4.4", "35=|"),
            Outcome::Rejected(Reason::MissingField)
        );
        assert_eq!(
            outcome("FIX.4.4", ""),
            Outcome::Rejected(Reason::MissingField)
        );
        let m = decode(&msg("FIX.4.4", "35=B|148=x|95=5|96=a\x01b=c|"));
        assert_eq!(
            (m.msg_type.as_deref(), m.outcome),
            (Some("B"), Outcome::Ignored)
        );
        // Syntax errors win over semantic ones.
        assert_eq!(
            outcome("FIX.4.4", &format!("{}x|", ER44.replace("55=IBM|", ""))),
            Outcome::Rejected(Reason::Garbled)
        );
    }
}
