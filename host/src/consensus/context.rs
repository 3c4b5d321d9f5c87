//! Verity's types for the Malachite consensus engine (issue #9): the `Context` that tells
//! the engine what a height, a validator, a value, a proposal and a vote are here.
//!
//! * A **value** is a block's id, the SHA-256 of its bytes; the block itself travels as
//!   proposal parts, so the engine only ever handles 32 bytes.
//! * An **address** is the validator's Ed25519 public key; the validator set comes from the
//!   genesis file, ordered by address, so every replica holds the same order.
//! * The **proposer** of (height, round) is the validator at `(height + round) mod n` in
//!   that order: deterministic, and every validator proposes in turn.
//! * **Signing scheme**: Ed25519, verified as every signature in Verity is (ZIP-215, through
//!   `drivers::Verifier`: the card, or the CPU) — see [`super::signing`].

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};

use malachitebft_core_types::{
    self as core, LinearTimeouts, NilOrVal, Round, SignedExtension, ValueId, VoteType, VotingPower,
};

/// A block height (the engine's height; the chain's height is the same number).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl core::Height for Height {
    const ZERO: Self = Height(0);
    // Block 0 is genesis: consensus decides from block 1 on.
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0 + n)
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its Ed25519 public key.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Address(pub [u8; 32]);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl core::Address for Address {}

/// A block's id: the SHA-256 of its bytes. It is also the value consensus decides.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    /// The id of a block's bytes.
    pub fn of(block: &[u8]) -> Self {
        use sha2::Digest;
        BlockId(sha2::Sha256::digest(block).into())
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl core::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

/// An Ed25519 public key.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature (R ‖ S).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Signature(pub [u8; 64]);

/// An Ed25519 secret key (the RFC 8032 seed).
#[derive(Clone)]
pub struct PrivateKey(pub ed25519_dalek::SigningKey);

/// Why a key or a signature does not decode.
#[derive(Debug, thiserror::Error)]
#[error("{what} of {len} bytes (expected {expected})")]
pub struct DecodingError {
    what: &'static str,
    len: usize,
    expected: usize,
}

/// Ed25519, as the engine sees it; verification is [`super::signing`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl core::SigningScheme for Ed25519 {
    type DecodingError = DecodingError;
    type Signature = Signature;
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, DecodingError> {
        bytes.try_into().map(Signature).map_err(|_| DecodingError {
            what: "a signature",
            len: bytes.len(),
            expected: 64,
        })
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, DecodingError> {
        bytes.try_into().map(PublicKey).map_err(|_| DecodingError {
            what: "a public key",
            len: bytes.len(),
            expected: 32,
        })
    }

    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

/// A validator: its key (which is its address) and its voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Its address.
    pub address: Address,
    /// Its public key (the same bytes).
    pub public_key: PublicKey,
    /// Its voting power.
    pub power: VotingPower,
}

impl Validator {
    /// The validator of key `key` with `power`.
    pub fn new(key: [u8; 32], power: VotingPower) -> Self {
        Self {
            address: Address(key),
            public_key: PublicKey(key),
            power,
        }
    }
}

impl core::Validator<VerityContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn voting_power(&self) -> VotingPower {
        self.power
    }
}

/// Why a validator set is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validator.
    #[error("a validator set needs at least one validator")]
    Empty,
    /// A key listed twice.
    #[error("validator {0} is listed twice")]
    Duplicate(Address),
    /// A validator without power.
    #[error("validator {0} has no voting power")]
    NoPower(Address),
    /// Powers that overflow.
    #[error("the voting powers add up past 2^64")]
    Overflow,
}

/// The validators, ordered by address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total: VotingPower,
}

impl ValidatorSet {
    /// The set of `validators`, in any order: sorted by address, checked.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        validators.sort_by_key(|v| v.address);
        if let Some(pair) = validators.windows(2).find(|w| w[0].address == w[1].address) {
            return Err(ValidatorSetError::Duplicate(pair[0].address));
        }
        if let Some(v) = validators.iter().find(|v| v.power == 0) {
            return Err(ValidatorSetError::NoPower(v.address));
        }
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        let total = validators
            .iter()
            .try_fold(0u64, |sum, v| sum.checked_add(v.power))
            .ok_or(ValidatorSetError::Overflow)?;
        Ok(Self { validators, total })
    }

    /// The validators, ordered by address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }
}

impl core::ValidatorSet<VerityContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.total
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(address, |v| v.address)
            .ok()
            .map(|i| &self.validators[i])
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A proposal: this block, at this height and round, by this proposer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The block proposed.
    pub value: BlockId,
    /// The round of the proof-of-lock the proposer holds for it (`Nil`: none).
    pub pol_round: Round,
    /// The proposer.
    pub proposer: Address,
}

impl core::Proposal<VerityContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockId {
        &self.value
    }

    fn take_value(self) -> BlockId {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// A piece of a proposed block as it is streamed to the other validators: a header, the
/// block's bytes in chunks, and the proposer's signature over the whole.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ProposalPart {
    /// First: what is being proposed, where.
    Init {
        /// The height.
        height: Height,
        /// The round.
        round: Round,
        /// The proof-of-lock round.
        pol_round: Round,
        /// The proposer.
        proposer: Address,
    },
    /// Some of the block's transactions, in order.
    Data(Vec<u8>),
    /// Last: the proposer's signature over the header and the block's id.
    Fin(Signature),
}

impl core::ProposalPart<VerityContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }

    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin(_))
    }
}

/// A prevote or a precommit.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteType,
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The block voted for, or nil.
    pub value: NilOrVal<BlockId>,
    /// The voter.
    pub voter: Address,
}

impl core::Vote<VerityContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.kind
    }

    fn validator_address(&self) -> &Address {
        &self.voter
    }

    // Verity extends no vote.
    fn extension(&self) -> Option<&SignedExtension<VerityContext>> {
        None
    }

    fn take_extension(&mut self) -> Option<SignedExtension<VerityContext>> {
        None
    }

    fn extend(self, _extension: SignedExtension<VerityContext>) -> Self {
        self
    }
}

/// Verity's context for the engine. It carries the chain id, which every signed consensus
/// message includes (a vote for one venue is void at another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerityContext {
    /// The chain (venue) id.
    pub chain_id: u32,
}

impl core::Context for VerityContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let n = validator_set.validators.len() as u64;
        // A nil round proposes as round 0; the set is never empty (`ValidatorSet::new`).
        let round = u64::from(round.as_u32().unwrap_or(0));
        &validator_set.validators[((height.0 % n + round % n) % n) as usize]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<ValueId<Self>>,
        address: Address,
    ) -> Vote {
        Vote {
            kind: VoteType::Prevote,
            height,
            round,
            value: value_id,
            voter: address,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<ValueId<Self>>,
        address: Address,
    ) -> Vote {
        Vote {
            kind: VoteType::Precommit,
            height,
            round,
            value: value_id,
            voter: address,
        }
    }
}

#[cfg(test)]
mod tests {
    use malachitebft_core_types::{Context as _, Height as _, ValidatorSet as _};

    use super::*;

    fn set(powers: &[(u8, u64)]) -> Result<ValidatorSet, ValidatorSetError> {
        ValidatorSet::new(
            powers
                .iter()
                .map(|&(k, p)| Validator::new([k; 32], p))
                .collect(),
        )
    }

    #[test]
    fn validator_sets_are_ordered_checked_and_searchable() {
        let validators = set(&[(3, 1), (1, 2), (2, 3)]).expect("valid");
        let order: Vec<u8> = validators
            .validators()
            .iter()
            .map(|v| v.address.0[0])
            .collect();
        assert_eq!(
            order,
            [1, 2, 3],
            "ordered by address whatever the input order"
        );
        assert_eq!(validators.total_voting_power(), 6);
        assert_eq!(
            validators
                .get_by_address(&Address([2; 32]))
                .map(|v| v.power),
            Some(3)
        );
        assert_eq!(validators.get_by_address(&Address([9; 32])), None);
        assert_eq!(set(&[]), Err(ValidatorSetError::Empty));
        assert_eq!(
            set(&[(1, 1), (1, 2)]),
            Err(ValidatorSetError::Duplicate(Address([1; 32])))
        );
        assert_eq!(
            set(&[(1, 0)]),
            Err(ValidatorSetError::NoPower(Address([1; 32])))
        );
        assert_eq!(
            set(&[(1, u64::MAX), (2, 1)]),
            Err(ValidatorSetError::Overflow)
        );
    }

    #[test]
    fn every_validator_proposes_in_turn() {
        let ctx = VerityContext { chain_id: 1 };
        let validators = set(&[(1, 1), (2, 1), (3, 1), (4, 1)]).expect("valid");
        let proposer = |h: u64, r: u32| {
            ctx.select_proposer(&validators, Height(h), Round::new(r))
                .address
                .0[0]
        };
        let by_height: Vec<u8> = (1..=8).map(|h| proposer(h, 0)).collect();
        assert_eq!(by_height, [2, 3, 4, 1, 2, 3, 4, 1]);
        let by_round: Vec<u8> = (0..4).map(|r| proposer(5, r)).collect();
        assert_eq!(by_round, [2, 3, 4, 1], "a failed round passes to the next");
        assert_eq!(
            proposer(u64::MAX, u32::MAX),
            proposer(u64::MAX % 4, u32::MAX % 4)
        );
        assert_eq!(
            ctx.select_proposer(&validators, Height(5), Round::Nil)
                .address,
            ctx.select_proposer(&validators, Height(5), Round::new(0))
                .address
        );
        assert_eq!(Height::INITIAL, Height(1));
        assert_eq!(Height(1).decrement_by(2), None);
    }
}
