//! The codes of the errors the binding throws: each is the JS error's `code` property, stable
//! for callers to match on (`src/native.ts` lists the same strings); the message is for people.
//!
//! Errors that napi-rs raises itself keep napi's codes: `InvalidArg` for an argument of the
//! wrong JS type, `GenericFailure` for a panic caught at the boundary.

/// A class of error the binding throws; its string is the JS error's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A packed trade batch that does not parse: the sender's fault. The same string as the
    /// service error it becomes (`ERR_BAD_BATCH` in `src/errors.ts`).
    BadBatch,
    /// An exported symbol state that does not import (not a state, unknown version, corrupt
    /// or inconsistent body).
    BadState,
    /// Engine or decoder options that do not parse or are out of range.
    BadConfig,
    /// Another argument that does not parse or is out of range: a time, offsets, seqs, a
    /// source name, an interval, an owner table.
    BadArgument,
    /// The core broke its own contract (a batch it built does not read back): a bug.
    Internal,
}

impl ErrorCode {
    /// The code as JS sees it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadBatch => "ERR_BAD_BATCH",
            ErrorCode::BadState => "ERR_BAD_STATE",
            ErrorCode::BadConfig => "ERR_BAD_CONFIG",
            ErrorCode::BadArgument => "ERR_BAD_ARGUMENT",
            ErrorCode::Internal => "ERR_NATIVE_INTERNAL",
        }
    }
}

/// napi-rs makes the status of an `Error<S>` the JS error's `code`.
impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// An error thrown to JS with one of the codes above.
pub type Error = napi::Error<ErrorCode>;

/// The result of a binding call that can fail with a coded error.
pub type Result<T> = napi::Result<T, ErrorCode>;
