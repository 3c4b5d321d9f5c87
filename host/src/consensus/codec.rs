//! How consensus messages travel and are logged: borsh, bounded before it is decoded.
//!
//! Verity's own consensus types and the engine's messages built on them (signed votes and
//! proposals, proposal parts and their streams, liveness messages, polka certificates, sync
//! status and requests) serialize with borsh, whose layout is fixed and canonical (one
//! encoding per value). Two engine types have no borsh encoding in Malachite 0.8.2 — the
//! validator proof and the sync response, whose certificates may carry vote extensions — so
//! they travel as Verity's own wire types ([`WireProof`], [`WireResponse`]), which Verity, not
//! using vote extensions, can give a fixed layout. Every decode first checks the message's
//! length against the codec's bound, so a peer cannot make a replica allocate more than that.

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_codec::{Codec, HasEncodedLen};
use malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_core_types::{
    CommitCertificate, ExtendedCommitCertificate, ExtendedCommitSignature, PolkaCertificate, Round,
    SignedMessage, ValidatorProof,
};
use malachitebft_engine::util::streaming::StreamMessage;
use malachitebft_sync as sync;

use super::context::{Address, BlockId, Height, ProposalPart, Signature, VerityContext, Vote};

/// The longest message decoded: the engine's own bound on a sync response (10 MiB), which
/// carries whole blocks. Gossip (votes, proposal parts) is bounded lower by the transport
/// (4 MiB) before it reaches the codec.
pub const MESSAGE_MAX: usize = 10 << 20;

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
    /// A certificate carries a vote extension, which Verity neither makes nor accepts.
    #[error("a certificate carries a vote extension (Verity uses none)")]
    Extension,
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

    fn decode_borsh<T: BorshDeserialize>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        if bytes.len() > self.max {
            metrics::counter!("verity_consensus_rejected_total", "reason" => "too_long")
                .increment(1);
            return Err(CodecError::TooLong {
                len: bytes.len(),
                max: self.max,
            });
        }
        borsh::from_slice(bytes).map_err(|e| {
            metrics::counter!("verity_consensus_rejected_total", "reason" => "malformed")
                .increment(1);
            CodecError::Malformed(e.to_string())
        })
    }

    fn encode_borsh<T: BorshSerialize>(&self, msg: &T) -> Result<Bytes, CodecError> {
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

/// `Codec<T>` by T's own borsh encoding.
macro_rules! borsh_codec {
    ($($t:ty),* $(,)?) => {$(
        impl Codec<$t> for BorshCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                self.decode_borsh(&bytes)
            }

            fn encode(&self, msg: &$t) -> Result<Bytes, CodecError> {
                self.encode_borsh(msg)
            }
        }
    )*};
}

borsh_codec!(
    ProposalPart,
    SignedConsensusMsg<VerityContext>,
    SignedMessage<VerityContext, Vote>,
    LivenessMsg<VerityContext>,
    StreamMessage<ProposalPart>,
    ProposedValue<VerityContext>,
    PolkaCertificate<VerityContext>,
    CommitCertificate<VerityContext>,
    sync::Status<VerityContext>,
    sync::Request<VerityContext>,
);

/// A validator proof on the wire: a validator's consensus key binding a network peer id.
#[derive(BorshSerialize, BorshDeserialize)]
pub struct WireProof {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: Signature,
}

impl Codec<ValidatorProof<VerityContext>> for BorshCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<VerityContext>, CodecError> {
        let wire: WireProof = self.decode_borsh(&bytes)?;
        Ok(ValidatorProof::new(
            wire.public_key,
            wire.peer_id,
            wire.signature,
        ))
    }

    fn encode(&self, proof: &ValidatorProof<VerityContext>) -> Result<Bytes, CodecError> {
        self.encode_borsh(&WireProof {
            public_key: proof.public_key.clone(),
            peer_id: proof.peer_id.clone(),
            signature: proof.signature,
        })
    }
}

/// A decided block with its commit certificate, as sync serves it. The block is borrowed
/// when encoding (`B = &[u8]`, the same bytes on the wire as `Vec<u8>`), so neither the
/// encoding nor its measured length copies the blocks.
#[derive(BorshSerialize, BorshDeserialize)]
pub struct WireDecided<B = Vec<u8>> {
    block: B,
    height: Height,
    round: Round,
    value_id: BlockId,
    signatures: Vec<(Address, Signature)>,
}

/// A sync response on the wire.
#[derive(BorshSerialize, BorshDeserialize)]
pub enum WireResponse<B = Vec<u8>> {
    /// Decided blocks from `start_height` on, in order.
    Values {
        /// The first block's height.
        start_height: Height,
        /// The blocks.
        values: Vec<WireDecided<B>>,
    },
}

impl<'a> WireResponse<&'a [u8]> {
    fn of(response: &'a sync::Response<VerityContext>) -> Result<Self, CodecError> {
        let sync::Response::ValueResponse(response) = response;
        let values = response
            .values
            .iter()
            .map(|value| {
                let certificate = &value.certificate;
                let signatures = certificate
                    .commit_signatures
                    .iter()
                    .map(|s| match s.extension {
                        None => Ok((s.address, s.signature)),
                        Some(_) => Err(CodecError::Extension),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(WireDecided {
                    block: &value.value_bytes[..],
                    height: certificate.height,
                    round: certificate.round,
                    value_id: certificate.value_id,
                    signatures,
                })
            })
            .collect::<Result<_, CodecError>>()?;
        Ok(Self::Values {
            start_height: response.start_height,
            values,
        })
    }
}

impl WireResponse {
    fn into_response(self) -> sync::Response<VerityContext> {
        let Self::Values {
            start_height,
            values,
        } = self;
        let values = values
            .into_iter()
            .map(|v| {
                let certificate = ExtendedCommitCertificate {
                    height: v.height,
                    round: v.round,
                    value_id: v.value_id,
                    commit_signatures: v
                        .signatures
                        .into_iter()
                        .map(|(address, signature)| {
                            ExtendedCommitSignature::new(address, signature, None)
                        })
                        .collect(),
                };
                sync::RawDecidedValue::new(Bytes::from(v.block), certificate)
            })
            .collect();
        sync::Response::ValueResponse(sync::ValueResponse::new(start_height, values))
    }
}

impl Codec<sync::Response<VerityContext>> for BorshCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<sync::Response<VerityContext>, CodecError> {
        let wire: WireResponse = self.decode_borsh(&bytes)?;
        Ok(wire.into_response())
    }

    fn encode(&self, response: &sync::Response<VerityContext>) -> Result<Bytes, CodecError> {
        self.encode_borsh(&WireResponse::of(response)?)
    }
}

impl HasEncodedLen<sync::Response<VerityContext>> for BorshCodec {
    fn encoded_len(&self, response: &sync::Response<VerityContext>) -> Result<usize, CodecError> {
        // Measured on the encoding itself: the engine uses it to fill a response up to the
        // bound, so it must be exact.
        let wire = WireResponse::of(response)?;
        let mut counter = ByteCounter(0);
        BorshSerialize::serialize(&wire, &mut counter)
            .map_err(|e| CodecError::Malformed(e.to_string()))?;
        Ok(counter.0)
    }
}

/// A writer that only counts.
struct ByteCounter(usize);

impl borsh::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> borsh::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> borsh::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use malachitebft_core_types::{NilOrVal, SignedVote, VoteType};

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

    /// The engine's network, write-ahead log and sync all take this codec.
    #[test]
    fn the_codec_serves_every_engine_message() {
        fn serves<C>(_: &C)
        where
            C: malachitebft_engine::consensus::ConsensusCodec<VerityContext>
                + malachitebft_engine::sync::SyncCodec<VerityContext>
                + malachitebft_engine::wal::WalCodec<VerityContext>,
        {
        }
        serves(&BorshCodec::default());
    }

    #[test]
    fn sync_responses_and_validator_proofs_round_trip_on_verity_wire_types() {
        let codec = BorshCodec::default();
        let certificate = ExtendedCommitCertificate::<VerityContext> {
            height: Height(9),
            round: Round::new(1),
            value_id: BlockId([4; 32]),
            commit_signatures: (1..=3)
                .map(|v| ExtendedCommitSignature::new(Address([v; 32]), Signature([v; 64]), None))
                .collect(),
        };
        let response = sync::Response::ValueResponse(sync::ValueResponse::new(
            Height(9),
            vec![sync::RawDecidedValue::new(
                Bytes::from(vec![7u8; 320]),
                certificate.clone(),
            )],
        ));
        let bytes = codec.encode(&response).expect("encodes");
        assert_eq!(codec.encoded_len(&response).expect("measures"), bytes.len());
        let back: sync::Response<VerityContext> = codec.decode(bytes).expect("decodes");
        assert_eq!(back, response);

        // Verity extends no vote: a certificate carrying an extension is not sent.
        let mut extended = certificate;
        extended.commit_signatures[0].extension = Some(SignedMessage::new((), Signature([9; 64])));
        let response = sync::Response::ValueResponse(sync::ValueResponse::new(
            Height(9),
            vec![sync::RawDecidedValue::new(Bytes::new(), extended)],
        ));
        assert!(matches!(
            codec.encode(&response),
            Err(CodecError::Extension)
        ));

        let proof =
            ValidatorProof::<VerityContext>::new(vec![1; 32], vec![2; 38], Signature([3; 64]));
        let bytes = codec.encode(&proof).expect("encodes");
        let back: ValidatorProof<VerityContext> = codec.decode(bytes).expect("decodes");
        assert_eq!(back, proof);
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
