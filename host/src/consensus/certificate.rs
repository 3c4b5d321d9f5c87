//! Checking a commit certificate offline: the precommits that decided a block, against the
//! validator set, through `drivers::Verifier`.
//!
//! A certificate holds when every signer is a validator, none signs twice, every signature is
//! a valid precommit for the certified (height, round, block) on this chain, and the signers
//! hold more than two thirds of the voting power. Every signature is checked, in one batch:
//! a certificate with a bad signature in it is refused, not trimmed.

use malachitebft_core_types::{CommitCertificate, NilOrVal, ValidatorSet as _, VoteType};
use verity_drivers::{Verdict, Verifier};

use super::context::{Address, ValidatorSet, VerityContext, Vote};
use super::signing::{check, vote_bytes};

/// Why a certificate does not hold.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A signer that is not a validator.
    #[error("{0} is not a validator")]
    UnknownSigner(Address),
    /// A validator that signs twice.
    #[error("{0} signs twice")]
    Duplicate(Address),
    /// A signature that is not this validator's precommit for the block.
    #[error("{address}'s signature does not verify: {verdict}")]
    BadSignature {
        /// The signer.
        address: Address,
        /// The verifier's verdict.
        verdict: String,
    },
    /// Signers with two thirds of the power or less.
    #[error("signed by {signed} of {total} voting power (more than two thirds needed)")]
    NotEnoughPower {
        /// The signers' power.
        signed: u64,
        /// The set's.
        total: u64,
    },
    /// The verifier failed.
    #[error("the verifier failed: {0}")]
    Verifier(String),
}

/// Checks `certificate` for `chain_id` against `validators`; the signers' power if it holds.
pub fn check_certificate(
    chain_id: u32,
    certificate: &CommitCertificate<VerityContext>,
    validators: &ValidatorSet,
    verifier: &mut dyn Verifier,
) -> Result<u64, CertificateError> {
    let mut signers: Vec<Address> = Vec::with_capacity(certificate.commit_signatures.len());
    let mut signed = Vec::with_capacity(certificate.commit_signatures.len());
    let mut power = 0u64;
    for commit in &certificate.commit_signatures {
        let validator = validators
            .get_by_address(&commit.address)
            .ok_or(CertificateError::UnknownSigner(commit.address))?;
        if signers.contains(&commit.address) {
            return Err(CertificateError::Duplicate(commit.address));
        }
        signers.push(commit.address);
        // Powers add up within the set's total, which `ValidatorSet::new` bounded.
        power += validator.power;
        let precommit = Vote {
            kind: VoteType::Precommit,
            height: certificate.height,
            round: certificate.round,
            value: NilOrVal::Val(certificate.value_id),
            voter: commit.address,
        };
        signed.push((
            validator.public_key,
            commit.signature,
            vote_bytes(chain_id, &precommit),
        ));
    }
    let verdicts =
        check(verifier, signed).map_err(|e| CertificateError::Verifier(e.to_string()))?;
    if let Some((address, verdict)) = signers
        .iter()
        .zip(&verdicts)
        .find(|(_, v)| **v != Verdict::Valid)
    {
        return Err(CertificateError::BadSignature {
            address: *address,
            verdict: verdict.reason().to_owned(),
        });
    }
    let total = validators.total_voting_power();
    // More than two thirds, in integers: 3 × signed > 2 × total.
    if u128::from(power) * 3 <= u128::from(total) * 2 {
        return Err(CertificateError::NotEnoughPower {
            signed: power,
            total,
        });
    }
    Ok(power)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use malachitebft_core_types::{Round, SignedMessage, SignedVote};
    use verity_drivers::{PoolConfig, PoolVerifier};

    use super::*;
    use crate::consensus::context::{BlockId, Height, PrivateKey, Validator};
    use crate::consensus::signing::sign;
    use crate::testing::key;

    const CHAIN: u32 = 3;

    fn address(n: u8) -> Address {
        Address(key(n).verifying_key().to_bytes())
    }

    fn precommit(n: u8, chain_id: u32, block: BlockId) -> SignedVote<VerityContext> {
        let vote = Vote {
            kind: VoteType::Precommit,
            height: Height(12),
            round: Round::new(0),
            value: NilOrVal::Val(block),
            voter: address(n),
        };
        let signature = sign(&PrivateKey(key(n)), &vote_bytes(chain_id, &vote));
        SignedMessage::new(vote, signature)
    }

    fn certificate(votes: Vec<SignedVote<VerityContext>>) -> CommitCertificate<VerityContext> {
        CommitCertificate::new(Height(12), Round::new(0), BlockId([5; 32]), votes)
    }

    #[test]
    fn certificates_hold_with_two_thirds_of_valid_distinct_validators_only() {
        let validators = ValidatorSet::new(
            (1..=4)
                .map(|n| Validator::new(key(n).verifying_key().to_bytes(), 1))
                .collect(),
        )
        .expect("valid");
        let mut cpu = PoolVerifier::cpu(PoolConfig::new(
            NonZeroUsize::MIN,
            NonZeroUsize::new(64).expect("64"),
        ));
        let block = BlockId([5; 32]);
        let good = |n| precommit(n, CHAIN, block);
        let mut check =
            |votes| check_certificate(CHAIN, &certificate(votes), &validators, &mut cpu);
        assert_eq!(check(vec![good(1), good(2), good(3)]), Ok(3));
        assert_eq!(check(vec![good(4), good(2), good(3), good(1)]), Ok(4));
        assert_eq!(
            check(vec![good(1), good(2)]),
            Err(CertificateError::NotEnoughPower {
                signed: 2,
                total: 4
            })
        );
        assert_eq!(
            check(vec![good(1), good(2), good(9)]),
            Err(CertificateError::UnknownSigner(address(9)))
        );
        assert_eq!(
            check(vec![good(1), good(2), good(2)]),
            Err(CertificateError::Duplicate(address(2)))
        );
        // Exactly two thirds is not enough.
        let three = ValidatorSet::new(validators.validators()[..3].to_vec()).expect("valid");
        let two_of_three: Vec<_> = three.validators()[..2]
            .iter()
            .map(|v| {
                let n = (1..=4)
                    .find(|&n| address(n) == v.address)
                    .expect("a test key");
                good(n)
            })
            .collect();
        assert_eq!(
            check_certificate(CHAIN, &certificate(two_of_three), &three, &mut cpu),
            Err(CertificateError::NotEnoughPower {
                signed: 2,
                total: 3
            })
        );
        // A signature made for another chain, or for another block, in the third place.
        for wrong in [
            precommit(3, CHAIN + 1, block),
            precommit(3, CHAIN, BlockId([6; 32])),
        ] {
            let mut forged = certificate(vec![good(1), good(2), good(3)]);
            forged.commit_signatures[2].signature = wrong.signature;
            assert!(matches!(
                check_certificate(CHAIN, &forged, &validators, &mut cpu),
                Err(CertificateError::BadSignature { address: a, .. }) if a == address(3)
            ));
        }
    }
}
