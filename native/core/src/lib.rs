//! Tickstream's native core: FIX and JSON trade decoding, OHLCV bars and anomaly detection.
//!
//! This crate has no Node dependency; `tickstream-node` wraps it for napi-rs.

pub mod activity;
pub mod anomaly;
pub mod bars;
pub mod batch;
pub mod crc;
pub mod decode;
pub mod dedupe;
pub mod engine;
pub mod journal;
pub mod reason;
pub mod state;
pub mod types;

pub use reason::Reason;
pub use types::*;
