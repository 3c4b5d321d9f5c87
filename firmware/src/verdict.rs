//! The answer to one signature under Verity's single predicate, ZIP-215.

use std::fmt;

/// Why a request could not be checked at all: an input is not a valid encoding.
///
/// Checks run in this order, and the first failing one is reported, on every path (CPU,
/// interpreter, simulated card, HDL): message length, S, A, R. The order is part of the contract
/// because the reason travels in the response record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// S, the second half of the signature, is not below the group order L.
    NonCanonicalS,
    /// The public key A is not the encoding of a curve point (no square root for its y).
    PublicKeyNotOnCurve,
    /// R, the first half of the signature, is not the encoding of a curve point.
    RNotOnCurve,
    /// The message is longer than [`MAX_MESSAGE_LEN`](crate::abi::MAX_MESSAGE_LEN). Every path
    /// checks this first, so the card (whose request record bounds the length) and the CPU
    /// agree on long messages too.
    MessageTooLong,
}

/// The verdict on one request. Not a `bool`: a consensus fork hides in the difference
/// between "the equation failed" and "the input was not an encoding".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `[8](S·B − k·A − R)` is the identity, with `k = SHA-512(R ‖ A ‖ M) mod L`.
    Valid,
    /// The inputs decode but the cofactored equation does not hold.
    Invalid,
    /// An input does not decode; the signature was not checked.
    Malformed(Malformed),
}

/// A verdict code read from a record that names no verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown verdict code {0:#04x}")]
pub struct UnknownVerdictCode(pub u8);

impl Verdict {
    /// Every verdict, in code order.
    pub const ALL: [Verdict; 6] = [
        Verdict::Valid,
        Verdict::Invalid,
        Verdict::Malformed(Malformed::NonCanonicalS),
        Verdict::Malformed(Malformed::PublicKeyNotOnCurve),
        Verdict::Malformed(Malformed::RNotOnCurve),
        Verdict::Malformed(Malformed::MessageTooLong),
    ];

    /// The one-byte code carried in a response record.
    pub const fn code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Malformed(Malformed::NonCanonicalS) => 2,
            Verdict::Malformed(Malformed::PublicKeyNotOnCurve) => 3,
            Verdict::Malformed(Malformed::RNotOnCurve) => 4,
            Verdict::Malformed(Malformed::MessageTooLong) => 5,
        }
    }

    /// Decodes a response record's verdict byte.
    pub const fn from_code(code: u8) -> Result<Self, UnknownVerdictCode> {
        match code {
            0 => Ok(Verdict::Valid),
            1 => Ok(Verdict::Invalid),
            2 => Ok(Verdict::Malformed(Malformed::NonCanonicalS)),
            3 => Ok(Verdict::Malformed(Malformed::PublicKeyNotOnCurve)),
            4 => Ok(Verdict::Malformed(Malformed::RNotOnCurve)),
            5 => Ok(Verdict::Malformed(Malformed::MessageTooLong)),
            other => Err(UnknownVerdictCode(other)),
        }
    }

    /// `true` only for [`Verdict::Valid`].
    pub const fn is_valid(self) -> bool {
        matches!(self, Verdict::Valid)
    }

    /// The verdict's class as written in JSON output: `valid`, `invalid` or `malformed`.
    pub const fn class(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Malformed(_) => "malformed",
        }
    }

    /// One sentence for a person reading the output.
    pub const fn reason(self) -> &'static str {
        match self {
            Verdict::Valid => "the signature verifies under ZIP-215",
            Verdict::Invalid => "the cofactored verification equation does not hold",
            Verdict::Malformed(Malformed::NonCanonicalS) => "S is not canonical (S >= L)",
            Verdict::Malformed(Malformed::PublicKeyNotOnCurve) => {
                "the public key is not a curve point encoding"
            }
            Verdict::Malformed(Malformed::RNotOnCurve) => "R is not a curve point encoding",
            Verdict::Malformed(Malformed::MessageTooLong) => {
                "the message is longer than the 1024 bytes a request may carry"
            }
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class(), self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_codes_are_dense() {
        for (i, verdict) in Verdict::ALL.iter().enumerate() {
            assert_eq!(usize::from(verdict.code()), i);
            assert_eq!(Verdict::from_code(verdict.code()), Ok(*verdict));
        }
    }

    #[test]
    fn unknown_codes_are_rejected_not_guessed() {
        for code in Verdict::ALL.len() as u8..=u8::MAX {
            assert_eq!(Verdict::from_code(code), Err(UnknownVerdictCode(code)));
        }
    }
}
