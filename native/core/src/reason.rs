//! Stable reject reason codes.
//!
//! A reason is part of Tickstream's public contract: it is written into dead-letter headers,
//! metric labels and REST output. Codes are never renumbered; new reasons are appended.

use serde::{Deserialize, Serialize};

macro_rules! reasons {
    ($($variant:ident = $code:literal => $name:literal, $doc:literal;)*) => {
        /// Why a message, record or trade was rejected.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum Reason {
            $(#[doc = $doc] $variant = $code,)*
        }

        impl Reason {
            /// Every reason, in code order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable upper-case name (`"CHECKSUM"`, …).
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }

            /// The stable numeric code used in columnar output.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// Maps a numeric code back to its reason.
            pub fn from_code(code: u8) -> Option<Reason> {
                match code { $($code => Some(Reason::$variant),)* _ => None }
            }

            /// Maps a stable name back to its reason.
            pub fn from_name(name: &str) -> Option<Reason> {
                match name { $($name => Some(Reason::$variant),)* _ => None }
            }
        }
    };
}

reasons! {
    Checksum = 1 => "CHECKSUM", "CheckSum(10) is not three digits or does not match the byte sum.";
    BodyLength = 2 => "BODY_LENGTH", "BodyLength(9) is missing, not a number, or does not end at `10=`.";
    Truncated = 3 => "TRUNCATED", "The buffer ends before the message does.";
    Garbled = 4 => "GARBLED", "Bytes that are not a FIX field (`tag=value<SOH>`) or not JSON; skipped bytes.";
    BadBeginString = 5 => "BAD_BEGIN_STRING", "BeginString(8) is not FIX.4.0–FIX.4.4 or FIXT.1.1.";
    MissingField = 6 => "MISSING_FIELD", "A field the message type requires is absent.";
    BadPrice = 7 => "BAD_PRICE", "The price is not a decimal, out of range, or not > 0.";
    BadQty = 8 => "BAD_QTY", "The quantity is not a decimal, out of range, or negative (zero where > 0 is required).";
    BadTimestamp = 9 => "BAD_TIMESTAMP", "The event time is not a valid UTC timestamp.";
    BadSymbol = 10 => "BAD_SYMBOL", "The symbol is empty, too long, or not printable UTF-8.";
    BadSide = 11 => "BAD_SIDE", "An order's Side(54) is not buy or sell.";
    BadField = 12 => "BAD_FIELD", "A field's value has the wrong form (e.g. a non-numeric group count).";
    Crc32 = 13 => "CRC32", "The record's `crc32` header does not match its payload.";
    TooLate = 14 => "TOO_LATE", "The trade falls before the retention window of every interval.";
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for &r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert_eq!(Reason::from_name(r.as_str()), Some(r));
        }
        assert_eq!(Reason::from_code(0), None);
    }
}
