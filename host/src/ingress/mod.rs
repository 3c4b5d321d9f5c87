//! Ingress: transactions in over real sockets, one reply per transaction out.
//!
//! Two transports carry the same reply:
//!
//! ```text
//! TCP request frame:  length (u32 LE, 1..=MAX_FRAME) ‖ transaction bytes
//! UDP request:        one datagram (1..=MAX_FRAME bytes) = one transaction
//! reply (TCP: length (u32 LE) ‖ reply; UDP: one datagram to the sender):
//!   0 ‖ id (32) ‖ height (u64 LE) ‖ failure (ledger encoding; empty: applied)  — committed
//!   1 ‖ reason (UTF-8, `name: detail`)                                          — refused
//! ```
//!
//! A reply comes once the outcome is known: committed means the block is on disk. A
//! transaction that was committed but did not apply (a bad nonce, insufficient funds) is
//! reported committed with its failure; a refused one was never ordered.

pub mod capture;
pub mod tcp;
pub mod udp;

use thiserror::Error;

use crate::ledger::Failure;
use crate::pipeline::Outcome;
use crate::transaction::TxId;

/// The longest frame or datagram taken: a v1 transaction is at most 232 bytes
/// ([`crate::transaction::MAX_TX_LEN`]); room for later versions.
pub const MAX_FRAME: usize = 4096;

/// A reply's bytes for `outcome` (without TCP's length).
pub fn reply(outcome: &Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Committed {
            id,
            height,
            failure,
        } => {
            let mut out = vec![0];
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&height.to_le_bytes());
            if let Some(failure) = failure {
                out.extend_from_slice(&failure.encode());
            }
            out
        }
        Outcome::Refused { reason } => [&[1u8][..], reason.as_bytes()].concat(),
    }
}

/// Why a reply could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// Empty, or not one of the two kinds.
    #[error("a reply of {len} bytes starting {first:?} is neither committed nor refused")]
    Kind {
        /// Its length.
        len: usize,
        /// Its first byte.
        first: Option<u8>,
    },
    /// A committed reply shorter than its fixed part.
    #[error("a committed reply of {0} bytes (at least 41)")]
    Short(usize),
    /// A failure encoding the ledger never writes.
    #[error("a committed reply with an unknown failure encoding")]
    Failure,
    /// A reason that is not UTF-8.
    #[error("a refusal whose reason is not UTF-8")]
    Reason,
}

/// Reads a reply's bytes (without TCP's length) back into the outcome.
pub fn parse_reply(bytes: &[u8]) -> Result<Outcome, ReplyError> {
    match bytes {
        [0, rest @ ..] => {
            let (Some(id), Some(height)) = (rest.get(..32), rest.get(32..40)) else {
                return Err(ReplyError::Short(bytes.len()));
            };
            let failure = match &rest[40..] {
                [] => None,
                encoded => Some(Failure::decode(encoded).ok_or(ReplyError::Failure)?),
            };
            Ok(Outcome::Committed {
                id: TxId(id.try_into().map_err(|_| ReplyError::Short(bytes.len()))?),
                height: u64::from_le_bytes(
                    height
                        .try_into()
                        .map_err(|_| ReplyError::Short(bytes.len()))?,
                ),
                failure,
            })
        }
        [1, reason @ ..] => Ok(Outcome::Refused {
            reason: std::str::from_utf8(reason)
                .map_err(|_| ReplyError::Reason)?
                .to_owned(),
        }),
        _ => Err(ReplyError::Kind {
            len: bytes.len(),
            first: bytes.first().copied(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_back_and_bad_ones_are_named() {
        let outcomes = [
            Outcome::Committed {
                id: TxId([7; 32]),
                height: 12,
                failure: None,
            },
            Outcome::Committed {
                id: TxId([8; 32]),
                height: u64::MAX,
                failure: Some(Failure::InsufficientFunds {
                    balance: 3,
                    amount: 4,
                }),
            },
            Outcome::Refused {
                reason: "stale_nonce: nonce 3 is below the sender's next, 4".to_owned(),
            },
        ];
        for outcome in outcomes {
            assert_eq!(parse_reply(&reply(&outcome)), Ok(outcome));
        }
        let committed = reply(&Outcome::Committed {
            id: TxId([7; 32]),
            height: 1,
            failure: None,
        });
        assert_eq!(parse_reply(&committed[..40]), Err(ReplyError::Short(40)));
        assert_eq!(
            parse_reply(&[committed.as_slice(), &[9]].concat()),
            Err(ReplyError::Failure)
        );
        assert_eq!(
            parse_reply(&[]),
            Err(ReplyError::Kind {
                len: 0,
                first: None
            })
        );
        assert_eq!(
            parse_reply(&[2, 0]),
            Err(ReplyError::Kind {
                len: 2,
                first: Some(2)
            })
        );
        assert_eq!(parse_reply(&[1, 0xff]), Err(ReplyError::Reason));
    }
}
