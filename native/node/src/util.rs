//! Small stateless functions: framing, CRC32, and a forced panic for tests.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tickstream_core::decode::{frame_stream, Frame};

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

/// Panics inside the core on purpose: proves that a panic becomes a JS error, not an abort.
#[napi(catch_unwind)]
pub fn force_panic(message: String) {
    panic!("{message}");
}
