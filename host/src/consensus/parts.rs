//! A proposed block as the parts it travels in, and their reassembly.
//!
//! The proposer sends `Init` (height, round, proof-of-lock round, proposer), then the block's
//! header (`block::Header`, 48 bytes) in a `Data` part of its own, then its transactions in
//! `Data` parts of whole transactions, then `Fin` — its signature over the parts' header and
//! the block's id:
//!
//! ```text
//! "verity/parts\0" (13) ‖ chain id (u32) ‖ height (u64) ‖ round (i64) ‖ pol round (i64)
//! ‖ proposer (32) ‖ block id (32)                                                = 101 bytes
//! ```
//!
//! [`Assembly`] takes one stream's parts in order and refuses, with a reason, whatever a
//! proposer could not have sent: data before the header, a second header, parts after the
//! end, data that is not whole transactions, or more than the bound (checked before the data
//! is kept). What it returns still needs its signature checked — through the pipeline's
//! verifier, like every signature — and its transactions verified.

use malachitebft_core_types::Round;

use super::context::{Address, BlockId, Height, PrivateKey, ProposalPart, Signature};
use super::signing::sign;
use crate::block::HEADER_LEN;
use crate::transaction::{self, MAX_TX_LEN};

/// The start of the bytes a proposer signs over its parts.
pub const PARTS_DOMAIN: &[u8; 13] = b"verity/parts\0";
/// Transactions per `Data` part (about 10 KiB).
pub const TRANSACTIONS_PER_PART: usize = 64;

/// Where and by whom a block is proposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The proof-of-lock round.
    pub pol_round: Round,
    /// The proposer.
    pub proposer: Address,
}

/// The bytes the `Fin` part's signature covers.
pub fn fin_bytes(chain_id: u32, header: &Header, block: BlockId) -> Vec<u8> {
    let mut out = Vec::with_capacity(101);
    out.extend_from_slice(PARTS_DOMAIN);
    out.extend_from_slice(&chain_id.to_le_bytes());
    out.extend_from_slice(&header.height.0.to_le_bytes());
    out.extend_from_slice(&header.round.as_i64().to_le_bytes());
    out.extend_from_slice(&header.pol_round.as_i64().to_le_bytes());
    out.extend_from_slice(&header.proposer.0);
    out.extend_from_slice(&block.0);
    out
}

/// The parts of `block` (whole transactions, back to back), signed by `key`.
pub fn split(key: &PrivateKey, chain_id: u32, header: Header, block: &[u8]) -> Vec<ProposalPart> {
    let mut parts = vec![ProposalPart::Init {
        height: header.height,
        round: header.round,
        pol_round: header.pol_round,
        proposer: header.proposer,
    }];
    // The block's header alone, then its transactions in parts of whole ones.
    let split_at = block.len().min(HEADER_LEN);
    let (head, transactions) = block.split_at(split_at);
    parts.push(ProposalPart::Data(head.to_vec()));
    // Cut after every TRANSACTIONS_PER_PART whole transactions (each as long as its kind).
    let mut rest = transactions;
    while !rest.is_empty() {
        let mut cut = 0;
        for _ in 0..TRANSACTIONS_PER_PART {
            match transaction::length_of(&rest[cut..]) {
                Ok(len) if cut + len <= rest.len() => cut += len,
                // Not whole transactions: the rest goes as it is, and every replica's
                // assembly refuses it.
                _ => cut = rest.len(),
            }
            if cut == rest.len() {
                break;
            }
        }
        let (part, after) = rest.split_at(cut);
        parts.push(ProposalPart::Data(part.to_vec()));
        rest = after;
    }
    let signature = sign(key, &fin_bytes(chain_id, &header, BlockId::of(block)));
    parts.push(ProposalPart::Fin(signature));
    parts
}

/// Why a stream of parts is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    /// Data or an end before the header.
    #[error("a part before the header")]
    BeforeInit,
    /// A second header.
    #[error("a second header")]
    SecondInit,
    /// Anything after the end.
    #[error("a part after the end")]
    AfterFin,
    /// A block header part of the wrong length, or none.
    #[error("a block header part of {0} bytes (a header is {HEADER_LEN})")]
    Header(usize),
    /// Data that is not whole transactions.
    #[error("a data part of {0} bytes is not whole transactions")]
    NotWhole(usize),
    /// More than the bound.
    #[error("more than {max} bytes of block")]
    TooLarge {
        /// The bound.
        max: usize,
    },
}

/// A block reassembled from its parts; its signature is not checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// Where and by whom.
    pub header: Header,
    /// The block's bytes.
    pub block: Vec<u8>,
    /// Their id.
    pub id: BlockId,
    /// The proposer's signature over [`fin_bytes`].
    pub signature: Signature,
}

/// One stream's parts, taken in order.
#[derive(Debug)]
pub struct Assembly {
    max_bytes: usize,
    header: Option<Header>,
    block: Vec<u8>,
    done: bool,
}

impl Assembly {
    /// An assembly that refuses blocks of more than `max_transactions`.
    pub fn new(max_transactions: usize) -> Self {
        Self {
            max_bytes: HEADER_LEN + max_transactions.saturating_mul(MAX_TX_LEN),
            header: None,
            block: Vec::new(),
            done: false,
        }
    }

    /// Takes the next part; the block once its `Fin` arrives.
    pub fn push(&mut self, part: ProposalPart) -> Result<Option<Assembled>, PartError> {
        if self.done {
            return Err(PartError::AfterFin);
        }
        match (part, self.header) {
            (
                ProposalPart::Init {
                    height,
                    round,
                    pol_round,
                    proposer,
                },
                None,
            ) => {
                self.header = Some(Header {
                    height,
                    round,
                    pol_round,
                    proposer,
                });
                Ok(None)
            }
            (ProposalPart::Init { .. }, Some(_)) => Err(PartError::SecondInit),
            (_, None) => Err(PartError::BeforeInit),
            (ProposalPart::Data(data), Some(_)) if self.block.is_empty() => {
                if data.len() != HEADER_LEN {
                    return Err(PartError::Header(data.len()));
                }
                self.block.extend_from_slice(&data);
                Ok(None)
            }
            (ProposalPart::Data(data), Some(_)) => {
                if data.is_empty() || transaction::split_all(&data).any(|tx| tx.is_err()) {
                    return Err(PartError::NotWhole(data.len()));
                }
                if self.block.len() + data.len() > self.max_bytes {
                    return Err(PartError::TooLarge {
                        max: self.max_bytes,
                    });
                }
                self.block.extend_from_slice(&data);
                Ok(None)
            }
            (ProposalPart::Fin(_), Some(_)) if self.block.is_empty() => Err(PartError::Header(0)),
            (ProposalPart::Fin(signature), Some(header)) => {
                self.done = true;
                let block = std::mem::take(&mut self.block);
                Ok(Some(Assembled {
                    header,
                    id: BlockId::of(&block),
                    block,
                    signature,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use verity_drivers::{PoolConfig, PoolVerifier, Verdict};

    use super::*;
    use crate::consensus::context::PublicKey;
    use crate::consensus::signing::check;
    use crate::testing::{self, key};

    fn header() -> Header {
        Header {
            height: Height(4),
            round: Round::new(1),
            pol_round: Round::Nil,
            proposer: Address(key(1).verifying_key().to_bytes()),
        }
    }

    fn block(n: u64) -> Vec<u8> {
        let transactions: Vec<_> = (0..n)
            .map(|nonce| testing::transfer(5, 2, nonce, 3, 1, 1))
            .collect();
        crate::block::assemble(&crate::block::Header::new(4, [6; 32]), &transactions)
    }

    #[test]
    fn a_block_splits_into_parts_that_reassemble_and_verify() {
        let block = block(150);
        let parts = split(&PrivateKey(key(1)), 5, header(), &block);
        assert_eq!(
            parts.len(),
            1 + 1 + 3 + 1,
            "a header, 150 transactions in parts of 64"
        );
        let mut assembly = Assembly::new(4096);
        let mut assembled = None;
        for part in parts {
            assembled = assembly.push(part).expect("in order");
        }
        let assembled = assembled.expect("the end gives the block");
        assert_eq!(assembled.block, block);
        assert_eq!(assembled.id, BlockId::of(&block));
        assert_eq!(assembled.header, header());
        let mut cpu = PoolVerifier::cpu(PoolConfig::new(
            NonZeroUsize::MIN,
            NonZeroUsize::new(8).expect("8"),
        ));
        let public = PublicKey(assembled.header.proposer.0);
        let verdicts = check(
            &mut cpu,
            [
                (
                    public,
                    assembled.signature,
                    fin_bytes(5, &assembled.header, assembled.id),
                ),
                // The same signature claimed for another block, or at another chain.
                (
                    public,
                    assembled.signature,
                    fin_bytes(5, &assembled.header, BlockId([0; 32])),
                ),
                (
                    public,
                    assembled.signature,
                    fin_bytes(6, &assembled.header, assembled.id),
                ),
            ],
        )
        .expect("verified");
        assert_eq!(
            verdicts,
            [Verdict::Valid, Verdict::Invalid, Verdict::Invalid]
        );
        // An empty block is the parts' header, the block's header and an end.
        let empty = self::block(0);
        assert_eq!(split(&PrivateKey(key(1)), 5, header(), &empty).len(), 3);
    }

    #[test]
    fn streams_a_proposer_could_not_have_sent_are_refused() {
        let init = ProposalPart::Init {
            height: Height(4),
            round: Round::new(1),
            pol_round: Round::Nil,
            proposer: Address([1; 32]),
        };
        let fin = ProposalPart::Fin(Signature([0; 64]));
        // `n` whole transactions, a Transfer and a Trade by turns; `bytes(n)` anything.
        let txs = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|i| {
                    if i % 2 == 0 {
                        testing::transfer(5, 2, i as u64, 3, 1, 1).to_vec()
                    } else {
                        testing::trade(5, 2, i as u64, 3, 100, 1, 10).to_vec()
                    }
                })
                .collect()
        };
        let data = |n: usize| ProposalPart::Data(txs(n));
        let bytes = |n: usize| ProposalPart::Data(vec![1; n]);
        let refusal = |parts: Vec<ProposalPart>, max: usize| {
            let mut assembly = Assembly::new(max);
            parts
                .into_iter()
                .map(|p| assembly.push(p))
                .find_map(Result::err)
        };
        assert_eq!(refusal(vec![data(1)], 8), Some(PartError::BeforeInit));
        assert_eq!(refusal(vec![fin.clone()], 8), Some(PartError::BeforeInit));
        assert_eq!(
            refusal(vec![init.clone(), init.clone()], 8),
            Some(PartError::SecondInit)
        );
        let head = bytes(HEADER_LEN);
        assert_eq!(
            refusal(vec![init.clone(), data(1)], 8),
            Some(PartError::Header(160))
        );
        assert_eq!(
            refusal(vec![init.clone(), fin.clone()], 8),
            Some(PartError::Header(0))
        );
        assert_eq!(
            refusal(vec![init.clone(), head.clone(), data(2)], 8),
            None,
            "a Transfer and a Trade: whole"
        );
        let cut = txs(2)[..160 + 231].to_vec();
        assert_eq!(
            refusal(vec![init.clone(), head.clone(), ProposalPart::Data(cut)], 8),
            Some(PartError::NotWhole(391))
        );
        assert_eq!(
            refusal(vec![init.clone(), head.clone(), bytes(160)], 8),
            Some(PartError::NotWhole(160))
        );
        assert_eq!(
            refusal(vec![init.clone(), head.clone(), bytes(0)], 8),
            Some(PartError::NotWhole(0))
        );
        assert_eq!(
            refusal(vec![init.clone(), head.clone(), data(2), data(2)], 2),
            Some(PartError::TooLarge {
                max: HEADER_LEN + 2 * MAX_TX_LEN
            })
        );
        assert_eq!(
            refusal(vec![init.clone(), head.clone(), fin.clone(), data(1)], 8),
            Some(PartError::AfterFin)
        );
        assert_eq!(refusal(vec![init, head, data(2), fin], 2), None);
    }
}
