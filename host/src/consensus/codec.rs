//! How consensus messages travel and are logged: borsh, bounded before it is decoded.
//!
//! Verity's own consensus types and the core messages built on them (signed votes and
//! proposals, proposal parts, commit and polka certificates) serialize with borsh, whose
//! layout is fixed and canonical (one encoding per value). Every decode first checks the
//! message's length against the codec's bound, so a peer cannot make a replica allocate more
//! than that. (Malachite 0.8.2 gives no borsh encoding for `ValidatorProof` nor for the
//! extended commit certificates inside sync responses; the engine's full codec needs those
//! encoded by hand, type by type — issue #9, next.)

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;

/// The longest message decoded: a proposal part carries at most a chunk of a block.
pub const MESSAGE_MAX: usize = 1 << 20;

/// Why a message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Longer than the bound.
    #[error("a message of {len} bytes (at most {max})")]
    TooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not a message of the type expected, or bytes left over.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// The codec: borsh with a length bound.
#[derive(Clone, Copy, Debug)]
pub struct BorshCodec {
    max: usize,
}

impl Default for BorshCodec {
    /// Bounded at [`MESSAGE_MAX`].
    fn default() -> Self {
        Self { max: MESSAGE_MAX }
    }
}

impl BorshCodec {
    /// A codec that refuses messages over `max` bytes.
    pub fn with_max(max: usize) -> Self {
        Self { max }
    }
}

impl<T> malachitebft_codec::Codec<T> for BorshCodec
where
    T: BorshSerialize + BorshDeserialize,
{
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<T, CodecError> {
        if bytes.len() > self.max {
            metrics::counter!("verity_consensus_rejected_total", "reason" => "too_long")
                .increment(1);
            return Err(CodecError::TooLong {
                len: bytes.len(),
                max: self.max,
            });
        }
        borsh::from_slice(&bytes).map_err(|e| {
            metrics::counter!("verity_consensus_rejected_total", "reason" => "malformed")
                .increment(1);
            CodecError::Malformed(e.to_string())
        })
    }

    fn encode(&self, msg: &T) -> Result<Bytes, CodecError> {
        let bytes = borsh::to_vec(msg).map_err(|e| CodecError::Malformed(e.to_string()))?;
        if bytes.len() > self.max {
            return Err(CodecError::TooLong {
                len: bytes.len(),
                max: self.max,
            });
        }
        Ok(Bytes::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use malachitebft_codec::Codec;
    use malachitebft_core_types::{
        CommitCertificate, NilOrVal, Round, SignedMessage, SignedVote, VoteType,
    };

    use super::*;
    use crate::consensus::context::{
        Address, BlockId, Height, ProposalPart, Signature, VerityContext, Vote,
    };

    fn vote(voter: u8) -> SignedVote<VerityContext> {
        SignedMessage::new(
            Vote {
                kind: VoteType::Precommit,
                height: Height(9),
                round: Round::new(1),
                value: NilOrVal::Val(BlockId([4; 32])),
                voter: Address([voter; 32]),
            },
            Signature([voter; 64]),
        )
    }

    #[test]
    fn messages_round_trip_and_bad_bytes_are_refused_with_a_reason() {
        let codec = BorshCodec::default();
        let signed = vote(1);
        let bytes = codec.encode(&signed).expect("encodes");
        let back: SignedVote<VerityContext> = codec.decode(bytes.clone()).expect("decodes");
        assert_eq!(back, signed);

        let certificate = CommitCertificate::<VerityContext>::new(
            Height(9),
            Round::new(1),
            BlockId([4; 32]),
            vec![vote(1), vote(2), vote(3)],
        );
        let encoded = codec.encode(&certificate).expect("encodes");
        let decoded: CommitCertificate<VerityContext> = codec.decode(encoded).expect("decodes");
        assert_eq!(decoded, certificate);

        let part = ProposalPart::Data(vec![7; 1000]);
        let encoded = codec.encode(&part).expect("encodes");
        let back: ProposalPart = codec.decode(encoded).expect("decodes");
        assert_eq!(back, part);

        // Truncated, trailing bytes, a huge length prefix, over the bound.
        let truncated = bytes.slice(..bytes.len() - 1);
        assert!(matches!(
            Codec::<SignedVote<VerityContext>>::decode(&codec, truncated),
            Err(CodecError::Malformed(_))
        ));
        let trailing = Bytes::from([&bytes[..], &[0]].concat());
        assert!(matches!(
            Codec::<SignedVote<VerityContext>>::decode(&codec, trailing),
            Err(CodecError::Malformed(_))
        ));
        // `Data` (variant 1) claiming 4 GiB: refused at the end of the bytes, not allocated.
        let mut lying = vec![1u8];
        lying.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Codec::<ProposalPart>::decode(&codec, Bytes::from(lying)),
            Err(CodecError::Malformed(_))
        ));
        let small = BorshCodec::with_max(64);
        assert!(matches!(
            Codec::<SignedVote<VerityContext>>::decode(&small, bytes),
            Err(CodecError::TooLong { max: 64, .. })
        ));
        assert!(matches!(
            small.encode(&part),
            Err(CodecError::TooLong { max: 64, .. })
        ));
    }
}
