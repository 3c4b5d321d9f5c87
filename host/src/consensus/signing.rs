//! What a validator signs, and how its signature is checked: like every signature in
//! Verity, by a `drivers::Verifier` (the card, or the CPU), under ZIP-215.
//!
//! Signed bytes are fixed-layout and domain-separated, little-endian:
//!
//! ```text
//! vote:     "verity/vote\0" (12) ‖ chain id (u32) ‖ kind (u8: 1 prevote, 2 precommit)
//!           ‖ height (u64) ‖ round (i64, -1 nil) ‖ value (u8: 0 nil, 1 block) ‖ block id (32,
//!           zeros for nil) ‖ voter (32)                                               = 98 bytes
//! proposal: "verity/proposal\0" (16) ‖ chain id (u32) ‖ height (u64) ‖ round (i64)
//!           ‖ proof-of-lock round (i64) ‖ block id (32) ‖ proposer (32)              = 108 bytes
//! ```
//!
//! The chain id makes a vote for one venue void at another; the domains keep a vote's bytes
//! from ever reading as a proposal's, or as a transaction's (which start with version 1).

use malachitebft_core_types::{NilOrVal, Round, VoteType};
use verity_drivers::{verify_all, Request, Tag, Verdict, Verifier, VerifierError};

use super::context::{PrivateKey, Proposal, PublicKey, Signature, Vote};

/// The start of every vote's signed bytes.
pub const VOTE_DOMAIN: &[u8; 12] = b"verity/vote\0";
/// The start of every proposal's signed bytes.
pub const PROPOSAL_DOMAIN: &[u8; 16] = b"verity/proposal\0";

fn round_bytes(round: Round) -> [u8; 8] {
    round.as_i64().to_le_bytes()
}

/// The bytes a vote's signature covers.
pub fn vote_bytes(chain_id: u32, vote: &Vote) -> Vec<u8> {
    let mut out = Vec::with_capacity(98);
    out.extend_from_slice(VOTE_DOMAIN);
    out.extend_from_slice(&chain_id.to_le_bytes());
    out.push(match vote.kind {
        VoteType::Prevote => 1,
        VoteType::Precommit => 2,
    });
    out.extend_from_slice(&vote.height.0.to_le_bytes());
    out.extend_from_slice(&round_bytes(vote.round));
    match vote.value {
        NilOrVal::Nil => {
            out.push(0);
            out.extend_from_slice(&[0; 32]);
        }
        NilOrVal::Val(id) => {
            out.push(1);
            out.extend_from_slice(&id.0);
        }
    }
    out.extend_from_slice(&vote.voter.0);
    out
}

/// The bytes a proposal's signature covers.
pub fn proposal_bytes(chain_id: u32, proposal: &Proposal) -> Vec<u8> {
    let mut out = Vec::with_capacity(108);
    out.extend_from_slice(PROPOSAL_DOMAIN);
    out.extend_from_slice(&chain_id.to_le_bytes());
    out.extend_from_slice(&proposal.height.0.to_le_bytes());
    out.extend_from_slice(&round_bytes(proposal.round));
    out.extend_from_slice(&round_bytes(proposal.pol_round));
    out.extend_from_slice(&proposal.value.0);
    out.extend_from_slice(&proposal.proposer.0);
    out
}

/// Signs `bytes`.
pub fn sign(key: &PrivateKey, bytes: &[u8]) -> Signature {
    Signature(ed25519_dalek::Signer::sign(&key.0, bytes).to_bytes())
}

/// Checks signatures over their bytes on `verifier`, in one batch; a verdict each, in order.
pub fn check(
    verifier: &mut dyn Verifier,
    signed: impl IntoIterator<Item = (PublicKey, Signature, Vec<u8>)>,
) -> Result<Vec<Verdict>, VerifierError> {
    let requests = signed
        .into_iter()
        .enumerate()
        .map(|(i, (key, signature, bytes))| {
            Request::new(Tag::new(i as u64), key.0, signature.0, bytes)
        });
    Ok(verify_all(verifier, requests)?
        .into_iter()
        .map(|r| r.verdict)
        .collect())
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use verity_drivers::{PoolConfig, PoolVerifier};

    use super::*;
    use crate::consensus::context::{Address, BlockId, Height};
    use crate::testing::key;

    fn vote(kind: VoteType, value: NilOrVal<BlockId>) -> Vote {
        Vote {
            kind,
            height: Height(7),
            round: Round::new(2),
            value,
            voter: Address(key(1).verifying_key().to_bytes()),
        }
    }

    #[test]
    fn signed_bytes_have_their_fixed_layout() {
        let block = BlockId([0xab; 32]);
        let bytes = vote_bytes(5, &vote(VoteType::Precommit, NilOrVal::Val(block)));
        assert_eq!(bytes.len(), 98);
        assert_eq!(&bytes[..12], VOTE_DOMAIN);
        assert_eq!(&bytes[12..16], &5u32.to_le_bytes());
        assert_eq!(bytes[16], 2);
        assert_eq!(&bytes[17..25], &7u64.to_le_bytes());
        assert_eq!(&bytes[25..33], &2i64.to_le_bytes());
        assert_eq!(bytes[33], 1);
        assert_eq!(&bytes[34..66], &[0xab; 32]);
        let nil = vote_bytes(5, &vote(VoteType::Precommit, NilOrVal::Nil));
        let zero = vote_bytes(
            5,
            &vote(VoteType::Precommit, NilOrVal::Val(BlockId([0; 32]))),
        );
        assert_ne!(nil, zero, "nil is not the zero block");
        let proposal = Proposal {
            height: Height(7),
            round: Round::new(0),
            value: block,
            pol_round: Round::Nil,
            proposer: Address([3; 32]),
        };
        let bytes = proposal_bytes(5, &proposal);
        assert_eq!(bytes.len(), 108);
        assert_eq!(&bytes[..16], PROPOSAL_DOMAIN);
        assert_eq!(&bytes[36..44], &(-1i64).to_le_bytes(), "no proof-of-lock");
    }

    #[test]
    fn signatures_verify_through_the_drivers_and_any_change_voids_them() {
        let mut cpu = PoolVerifier::cpu(PoolConfig::new(
            NonZeroUsize::MIN,
            NonZeroUsize::new(64).expect("64"),
        ));
        let signer = PrivateKey(key(1));
        let public = PublicKey(key(1).verifying_key().to_bytes());
        let block = BlockId::of(b"a block");
        let base = vote(VoteType::Prevote, NilOrVal::Val(block));
        let signature = sign(&signer, &vote_bytes(5, &base));
        let changed = [
            base.clone(),
            Vote {
                kind: VoteType::Precommit,
                ..base.clone()
            },
            Vote {
                round: Round::new(3),
                ..base.clone()
            },
            Vote {
                value: NilOrVal::Nil,
                ..base.clone()
            },
            Vote {
                height: Height(8),
                ..base.clone()
            },
        ];
        let mut signed: Vec<_> = changed
            .iter()
            .map(|v| (public, signature, vote_bytes(5, v)))
            .collect();
        // The same vote presented at another chain.
        signed.push((public, signature, vote_bytes(6, &base)));
        let verdicts = check(&mut cpu, signed).expect("verified");
        assert_eq!(verdicts[0], Verdict::Valid);
        assert!(
            verdicts[1..].iter().all(|v| *v == Verdict::Invalid),
            "{verdicts:?}"
        );
    }
}
