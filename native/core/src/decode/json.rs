//! JSON trades: `{"symbol", "price", "qty", "ts", "side"?, "id"?}`.
//!
//! Numbers are taken as raw text (`serde_json`'s `RawValue`) and parsed by the decimal parser,
//! so `0.1` is exactly `100_000_000` and never goes through `f64`. Symbol and id are borrowed
//! from the record: a JSON string is handed out as-is when it has no escape sequence. A symbol
//! written with escapes (`"A\u0042C"`) would need an owned copy, which the borrowed sink cannot
//! carry, so it is rejected as [`Reason::BadSymbol`]; an id with escapes, or of a type other
//! than string or number, is [`Reason::BadField`]. Producers never need escapes for tickers.
//!
//! Fields:
//! - `symbol`: string (required).
//! - `price`: number or decimal string, > 0 (required).
//! - `qty`: number or decimal string, ≥ 0 (required).
//! - `ts`: RFC 3339 string (`2024-01-02T03:04:05.123456789Z`, any offset, at most nine
//!   fractional digits) or epoch milliseconds as a non-negative number, fractional
//!   milliseconds allowed (to the nanosecond, half-up beyond). Range 1970–2261 as for FIX.
//! - `side` (optional): `"buy"`/`"sell"`/`"b"`/`"s"` in any case, or `1`/`2`; other values
//!   and `null` are unknown, as an unrecognised Side(54) is on a FIX trade.
//! - `id` (optional): string, or number (its text); `null` or `""` is no id.
//!
//! Unknown keys are ignored; duplicate keys and invalid JSON are [`Reason::Garbled`]; a
//! missing or `null` required field is [`Reason::MissingField`]. Checks run in the order
//! symbol, price, qty, ts, id.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::decimal::parse_decimal;
use super::emit::{check_symbol, Emitter, Rules, TradeData};
use super::time::END_NS;
use super::{DecodeSink, MessageInfo, Outcome};
use crate::reason::Reason;
use crate::types::Side;

/// `msg_type` reported for JSON records.
pub const JSON_MSG_TYPE: &[u8] = b"json";

/// The record's fields as raw JSON text.
#[derive(Deserialize)]
struct JsonTrade<'a> {
    #[serde(borrow, default)]
    symbol: Option<&'a RawValue>,
    #[serde(borrow, default)]
    price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    qty: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    side: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// A JSON value seen as text.
enum Text<'a> {
    /// A string without escapes: its content, borrowed from the record.
    Str(&'a str),
    /// A string with escape sequences.
    Escaped,
    /// Any other value (number, boolean, object, array): its raw text.
    Other(&'a str),
}

/// Classifies a raw value. `serde_json` has already validated it as JSON.
fn text(raw: &RawValue) -> Text<'_> {
    let t = raw.get();
    match t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if inner.contains('\\') => Text::Escaped,
        Some(inner) => Text::Str(inner),
        None => Text::Other(t),
    }
}

/// Decodes one JSON record and reports it.
pub(crate) fn decode_json<'a, S: DecodeSink<'a>>(
    rules: &Rules,
    record: &'a [u8],
    out: &mut Emitter<'_, S>,
) {
    let info = |outcome| MessageInfo {
        offset: 0,
        len: record.len(),
        msg_type: Some(JSON_MSG_TYPE),
        outcome,
    };
    match parse_trade(rules, record) {
        Ok(trade) => {
            out.message(info(Outcome::Trades(1)));
            out.trade(&trade);
        }
        Err(reason) => out.message(info(Outcome::Rejected(reason))),
    }
}

/// Parses and validates one JSON trade.
fn parse_trade<'a>(rules: &Rules, record: &'a [u8]) -> Result<TradeData<'a>, Reason> {
    let raw: JsonTrade<'a> = serde_json::from_slice(record).map_err(|_| Reason::Garbled)?;
    let (Some(symbol), Some(price), Some(qty), Some(ts)) = (raw.symbol, raw.price, raw.qty, raw.ts)
    else {
        return Err(Reason::MissingField);
    };

    let symbol = match text(symbol) {
        Text::Str(s) => check_symbol(s.as_bytes(), rules.max_symbol_len())?,
        Text::Escaped | Text::Other(_) => return Err(Reason::BadSymbol),
    };
    let price = match decimal(price) {
        Some(p) if p > 0 => p,
        _ => return Err(Reason::BadPrice),
    };
    let qty = match decimal(qty) {
        Some(q) if q >= 0 => q,
        _ => return Err(Reason::BadQty),
    };
    let time_ns = match text(ts) {
        Text::Str(s) => parse_rfc3339(s),
        Text::Other(n) => parse_epoch_ms(n),
        Text::Escaped => None,
    }
    .ok_or(Reason::BadTimestamp)?;
    let id = match raw.id.map(text) {
        None => None,
        Some(Text::Str("")) => None,
        Some(Text::Str(s)) => Some(s),
        Some(Text::Other(n)) if n.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => Some(n),
        Some(Text::Other(_) | Text::Escaped) => return Err(Reason::BadField),
    };
    let side = match raw.side.map(text) {
        Some(Text::Str(s)) if s.eq_ignore_ascii_case("buy") || s.eq_ignore_ascii_case("b") => {
            Side::Buy
        }
        Some(Text::Str(s)) if s.eq_ignore_ascii_case("sell") || s.eq_ignore_ascii_case("s") => {
            Side::Sell
        }
        Some(Text::Other("1")) => Side::Buy,
        Some(Text::Other("2")) => Side::Sell,
        _ => Side::Unknown,
    };
    Ok(TradeData {
        symbol,
        price,
        qty,
        time_ns,
        id,
        side,
    })
}

/// A number, or a string holding a decimal, as a mantissa.
fn decimal(raw: &RawValue) -> Option<i64> {
    match text(raw) {
        Text::Str(s) | Text::Other(s) => parse_decimal(s.as_bytes()).ok(),
        Text::Escaped => None,
    }
}

/// An RFC 3339 timestamp with at most nine fractional digits, in the supported range.
fn parse_rfc3339(s: &str) -> Option<i64> {
    // chrono accepts any number of fractional digits and drops the excess; more than nine
    // would silently lose precision, so they are refused here.
    if let Some(dot) = s.find('.') {
        let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits > 9 {
            return None;
        }
    }
    let ns = chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .timestamp_nanos_opt()?;
    (0..END_NS).contains(&ns).then_some(ns)
}

/// Epoch milliseconds as JSON number text: `digits[.digits]`, no sign or exponent.
fn parse_epoch_ms(n: &str) -> Option<i64> {
    let (int, frac) = match n.split_once('.') {
        Some((i, f)) => (i, f),
        None => (n, ""),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (n.contains('.') && frac.is_empty()) {
        return None;
    }
    let ms: i64 = int.parse().ok()?;
    // Nanoseconds within the millisecond: six digits, rounded half-up on the seventh.
    let mut sub_ns = 0i64;
    for (i, b) in frac.bytes().enumerate() {
        let d = i64::from(b - b'0');
        match i {
            0..=5 => sub_ns = sub_ns * 10 + d,
            6 => sub_ns += i64::from(d >= 5),
            _ => break,
        }
    }
    let width = frac.len().min(6) as u32;
    if width < 6 {
        sub_ns *= 10i64.pow(6 - width);
    }
    let ns = ms.checked_mul(1_000_000)?.checked_add(sub_ns)?;
    (0..END_NS).contains(&ns).then_some(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecoderConfig;
    use crate::types::SCALE;

    fn parse(s: &str) -> Result<TradeData<'_>, Reason> {
        let c = DecoderConfig::default();
        parse_trade(
            &Rules::new(&c.md_entry_types, c.max_symbol_len),
            s.as_bytes(),
        )
    }

    #[test]
    fn parses_a_full_trade() {
        let t = parse(
            r#"{"symbol":"AAPL","price":189.25,"qty":"100","ts":"2024-01-02T03:04:05.123456789Z","side":"B","id":"T1"}"#,
        )
        .unwrap();
        assert_eq!(t.symbol, "AAPL");
        assert_eq!(t.price, 189_250_000_000);
        assert_eq!(t.qty, 100 * SCALE);
        assert_eq!(t.time_ns, 1_704_164_645_123_456_789);
        assert_eq!(t.side, Side::Buy);
        assert_eq!(t.id, Some("T1"));
    }

    #[test]
    fn epoch_millis_and_offsets() {
        let t = parse(r#"{"symbol":"X","price":1,"qty":0,"ts":1704164645123.5,"id":42}"#).unwrap();
        assert_eq!(t.time_ns, 1_704_164_645_123_500_000);
        assert_eq!(t.id, Some("42"));
        assert_eq!(t.side, Side::Unknown);
        let t =
            parse(r#"{"symbol":"X","price":1,"qty":0,"ts":"2024-01-02T05:04:05+02:00"}"#).unwrap();
        assert_eq!(t.time_ns, 1_704_164_645_000_000_000);
        assert_eq!(parse_epoch_ms("1.0000005"), Some(1_000_001));
        assert_eq!(parse_epoch_ms("1e3"), None);
        assert_eq!(parse_epoch_ms("-1"), None);
        assert_eq!(parse_epoch_ms("1."), None);
    }

    #[test]
    fn reason_garbled() {
        for bad in [
            r#"{"symbol":"X""#,
            "{",
            r#"{"symbol":"X","symbol":"Y"}"#,
            "{} x",
        ] {
            assert_eq!(parse(bad).err(), Some(Reason::Garbled), "{bad}");
        }
    }

    #[test]
    fn reason_missing_field() {
        for bad in [
            r#"{"price":1,"qty":1,"ts":0}"#,
            r#"{"symbol":"X","qty":1,"ts":0}"#,
            r#"{"symbol":"X","price":1,"ts":0}"#,
            r#"{"symbol":"X","price":1,"qty":1}"#,
            r#"{"symbol":null,"price":1,"qty":1,"ts":0}"#,
        ] {
            assert_eq!(parse(bad).err(), Some(Reason::MissingField), "{bad}");
        }
    }

    #[test]
    fn reason_bad_values() {
        let cases = [
            (
                r#"{"symbol":"X","price":0,"qty":1,"ts":0}"#,
                Reason::BadPrice,
            ),
            (
                r#"{"symbol":"X","price":1e2,"qty":1,"ts":0}"#,
                Reason::BadPrice,
            ),
            (
                r#"{"symbol":"X","price":"abc","qty":1,"ts":0}"#,
                Reason::BadPrice,
            ),
            (
                r#"{"symbol":"X","price":1,"qty":-1,"ts":0}"#,
                Reason::BadQty,
            ),
            (
                r#"{"symbol":"X","price":1,"qty":true,"ts":0}"#,
                Reason::BadQty,
            ),
            (
                r#"{"symbol":"X","price":1,"qty":1,"ts":"yesterday"}"#,
                Reason::BadTimestamp,
            ),
            (
                r#"{"symbol":"X","price":1,"qty":1,"ts":-5}"#,
                Reason::BadTimestamp,
            ),
            (
                r#"{"symbol":"X","price":1,"qty":1,"ts":"2024-01-02T03:04:05.1234567891Z"}"#,
                Reason::BadTimestamp,
            ),
            (
                r#"{"symbol":"","price":1,"qty":1,"ts":0}"#,
                Reason::BadSymbol,
            ),
            (
                r#"{"symbol":"A\u0042","price":1,"qty":1,"ts":0}"#,
                Reason::BadSymbol,
            ),
            (
                r#"{"symbol":7,"price":1,"qty":1,"ts":0}"#,
                Reason::BadSymbol,
            ),
            (
                r#"{"symbol":"X","price":1,"qty":1,"ts":0,"id":true}"#,
                Reason::BadField,
            ),
            (
                r#"{"symbol":"X","price":1,"qty":1,"ts":0,"id":"a\"b"}"#,
                Reason::BadField,
            ),
        ];
        for (json, reason) in cases {
            assert_eq!(parse(json).err(), Some(reason), "{json}");
        }
    }

    #[test]
    fn sides() {
        for (s, side) in [
            (r#""sell""#, Side::Sell),
            (r#""S""#, Side::Sell),
            (r#""BUY""#, Side::Buy),
            ("2", Side::Sell),
            ("1", Side::Buy),
            ("null", Side::Unknown),
            (r#""x""#, Side::Unknown),
        ] {
            let json = format!(r#"{{"symbol":"X","price":1,"qty":1,"ts":0,"side":{s}}}"#);
            assert_eq!(parse(&json).unwrap().side, side, "{s}");
        }
    }
}
