//! Small stateless functions: framing, CRC32, and a forced panic for tests.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tickstream_core::decode::{frame_stream, Frame};

use crate::error::{Error, ErrorCode, Result};

/// Frames a FIX stream by BodyLength without decoding fields: `[offset0, len0, offset1, len1, …]`
/// for every frame and every run of skipped bytes, in order.
#[napi(js_name = "frameStream", catch_unwind)]
pub fn frame_stream_offsets(buf: &[u8]) -> Uint32Array {
    let mut frames: Vec<Frame> = Vec::new();
    frame_stream(buf, &mut frames);
    let mut out = Vec::with_capacity(frames.len() * 2);
    for f in frames {
        out.push(f.offset as u32);
        out.push(f.len as u32);
    }
    Uint32Array::new(out)
}

/// CRC32 (IEEE) of a payload.
#[napi(catch_unwind)]
pub fn crc32(buf: &[u8]) -> u32 {
    tickstream_core::crc::crc32(buf)
}

/// Whether a `crc32` record header matches the payload (decimal or 8-digit hex header text).
#[napi(catch_unwind)]
pub fn verify_crc32(payload: &[u8], header: &[u8]) -> bool {
    tickstream_core::crc::verify_crc32_header(payload, header).is_ok()
}

/// `verifyCrc32` for a whole batch in one call. Record `i` is `payload[offsets[i]..offsets[i + 1]]`
/// and its header `headers[headerOffsets[i]..headerOffsets[i + 1]]`; an empty header is not
/// checked. Returns the indices of the records whose header does not match. One call instead of
/// one per record saves the crossing into native code for every record of the ingest path
/// (bench/README.md, "e2e").
#[napi(catch_unwind)]
pub fn verify_crc32_batch(
    payload: &[u8],
    offsets: Uint32Array,
    headers: &[u8],
    header_offsets: Uint32Array,
) -> Result<Uint32Array> {
    if offsets.is_empty() || header_offsets.len() != offsets.len() {
        return Err(Error::new(
            ErrorCode::BadArgument,
            "offsets and headerOffsets must be n + 1 boundaries each, n ≥ 0",
        ));
    }
    let range = |bounds: &[u32], i: usize, len: usize| -> Result<std::ops::Range<usize>> {
        let (from, to) = (bounds[i] as usize, bounds[i + 1] as usize);
        if from > to || to > len {
            return Err(Error::new(
                ErrorCode::BadArgument,
                format!("record {i}: bytes {from}..{to} outside 0..{len}"),
            ));
        }
        Ok(from..to)
    };
    let mut bad = Vec::new();
    for i in 0..offsets.len() - 1 {
        let header = range(&header_offsets, i, headers.len())?;
        let record = range(&offsets, i, payload.len())?;
        if !header.is_empty()
            && tickstream_core::crc::verify_crc32_header(&payload[record], &headers[header])
                .is_err()
        {
            bad.push(i as u32);
        }
    }
    Ok(Uint32Array::new(bad))
}

/// Panics inside the core on purpose: proves that a panic becomes a JS error, not an abort.
#[napi(catch_unwind)]
pub fn force_panic(message: String) {
    panic!("{message}");
}
