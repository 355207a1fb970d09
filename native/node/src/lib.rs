//! napi-rs binding of `tickstream-core`: wrappers, conversions and error mapping only.
//!
//! Every entry point is `catch_unwind`: a panic in the core becomes a JS exception instead of
//! aborting the Node process. Bad input is never a panic: it comes back as a reason code (decoder)
//! or as a JS error whose `code` names its class ([`error::ErrorCode`]: a malformed batch or
//! state, bad options, a bad argument).

pub mod convert;
pub mod decoder;
pub mod engine;
pub mod error;
pub mod util;
