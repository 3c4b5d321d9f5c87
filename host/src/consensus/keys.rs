//! The engine's signer and verifier: a validator's key signs; every consensus signature is
//! checked by the pipeline's verifier — the card, or the CPU behind it — batched with the
//! client transactions, through a [`Checker`].
//!
//! Malachite's verifier is asynchronous; a check is queued on the pipeline (from a blocking
//! task, since a full queue waits) and its verdict comes back on a one-shot channel.

use async_trait::async_trait;
use malachitebft_core_types::{SignedMessage, ValidatorProof, VoteExtensionScope};
use malachitebft_signing::{Error, Signer, VerificationResult, Verifier};
use verity_drivers::Verdict;

use super::context::{PrivateKey, Proposal, PublicKey, Signature, VerityContext, Vote};
use super::signing::{proposal_bytes, sign, vote_bytes};
use crate::pipeline::Checker;

/// A validator's signer.
#[derive(Clone)]
pub struct ValidatorSigner {
    key: PrivateKey,
    chain_id: u32,
}

impl ValidatorSigner {
    /// Signs with `key` for `chain_id`.
    pub fn new(key: PrivateKey, chain_id: u32) -> Self {
        Self { key, chain_id }
    }
}

#[async_trait]
impl Signer<VerityContext> for ValidatorSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<VerityContext, Vote>, Error> {
        let signature = sign(&self.key, &vote_bytes(self.chain_id, &vote));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<VerityContext, Proposal>, Error> {
        let signature = sign(&self.key, &proposal_bytes(self.chain_id, &proposal));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        _scope: VoteExtensionScope<VerityContext>,
        _extension: (),
    ) -> Result<SignedMessage<VerityContext, ()>, Error> {
        Err(Error::from_source("Verity extends no vote"))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<VerityContext>, Error> {
        let bytes = ValidatorProof::<VerityContext>::signing_bytes(&public_key, &peer_id);
        let signature = sign(&self.key, &bytes);
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

/// The engine's verifier: the pipeline's.
#[derive(Clone)]
pub struct PipelineVerifier {
    checker: Checker,
    chain_id: u32,
}

impl PipelineVerifier {
    /// Checks consensus signatures for `chain_id` on `checker`'s verifier.
    pub fn new(checker: Checker, chain_id: u32) -> Self {
        Self { checker, chain_id }
    }

    async fn check(
        &self,
        public_key: [u8; 32],
        signature: &Signature,
        bytes: Vec<u8>,
    ) -> Result<VerificationResult, Error> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let (checker, signature) = (self.checker.clone(), signature.0);
        tokio::task::spawn_blocking(move || {
            checker.check(
                public_key,
                signature,
                bytes,
                Box::new(move |verdict| {
                    let _ = answer.send(verdict);
                }),
            )
        })
        .await
        .map_err(Error::from_source)?;
        match answered.await {
            Ok(Ok(Verdict::Valid)) => Ok(VerificationResult::Valid),
            Ok(Ok(_)) => {
                metrics::counter!("verity_consensus_bad_signatures_total").increment(1);
                Ok(VerificationResult::Invalid)
            }
            Ok(Err(reason)) => Err(Error::from_source(reason)),
            Err(_) => Err(Error::from_source("the verifier dropped the check")),
        }
    }
}

/// Verdicts gathered from one check each, answered once all are in.
struct Gathered {
    verdicts: Vec<Option<Verdict>>,
    missing: usize,
    answer: Option<tokio::sync::oneshot::Sender<Result<Vec<Verdict>, String>>>,
}

impl Gathered {
    fn put(&mut self, index: usize, verdict: Result<Verdict, String>) {
        let Some(answer) = self.answer.take() else {
            return;
        };
        match verdict {
            Ok(verdict) => {
                self.verdicts[index] = Some(verdict);
                self.missing -= 1;
                if self.missing == 0 {
                    let verdicts = self.verdicts.iter().map(|v| v.expect("all in")).collect();
                    let _ = answer.send(Ok(verdicts));
                } else {
                    self.answer = Some(answer);
                }
            }
            // The first failure answers for all.
            Err(reason) => {
                let _ = answer.send(Err(reason));
            }
        }
    }
}

impl PipelineVerifier {
    /// Checks many signatures (a proposed block's transactions) on the pipeline's verifier;
    /// a verdict each, in order.
    pub async fn check_all(
        &self,
        signed: Vec<([u8; 32], [u8; 64], Vec<u8>)>,
    ) -> Result<Vec<Verdict>, Error> {
        if signed.is_empty() {
            return Ok(Vec::new());
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let gathered = std::sync::Arc::new(std::sync::Mutex::new(Gathered {
            verdicts: vec![None; signed.len()],
            missing: signed.len(),
            answer: Some(answer),
        }));
        let checker = self.checker.clone();
        tokio::task::spawn_blocking(move || {
            for (index, (public_key, signature, message)) in signed.into_iter().enumerate() {
                let gathered = std::sync::Arc::clone(&gathered);
                checker.check(
                    public_key,
                    signature,
                    message,
                    Box::new(move |verdict| {
                        gathered
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .put(index, verdict);
                    }),
                );
            }
        })
        .await
        .map_err(Error::from_source)?;
        match answered.await {
            Ok(Ok(verdicts)) => Ok(verdicts),
            Ok(Err(reason)) => Err(Error::from_source(reason)),
            Err(_) => Err(Error::from_source("the verifier dropped the checks")),
        }
    }
}

#[async_trait]
impl Verifier<VerityContext> for PipelineVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, Error> {
        self.check(public_key.0, signature, vote_bytes(self.chain_id, vote))
            .await
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, Error> {
        self.check(
            public_key.0,
            signature,
            proposal_bytes(self.chain_id, proposal),
        )
        .await
    }

    async fn verify_signed_vote_extension(
        &self,
        _scope: &VoteExtensionScope<VerityContext>,
        _extension: &(),
        _signature: &Signature,
        _public_key: &PublicKey,
    ) -> Result<VerificationResult, Error> {
        Ok(VerificationResult::Invalid)
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<VerityContext>,
    ) -> Result<VerificationResult, Error> {
        let Ok(public_key) = <[u8; 32]>::try_from(proof.public_key.as_slice()) else {
            return Ok(VerificationResult::Invalid);
        };
        let bytes =
            ValidatorProof::<VerityContext>::signing_bytes(&proof.public_key, &proof.peer_id);
        self.check(public_key, &proof.signature, bytes).await
    }
}

#[cfg(test)]
mod tests {
    use malachitebft_core_types::{NilOrVal, Round, VoteType};

    use super::*;
    use crate::consensus::context::{Address, BlockId, Height};
    use crate::testing::{self, key};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_validator_signs_the_pipelines_verifier_accepts_and_nothing_else() {
        let (pipeline, _dir) = testing::pipeline("consensus-keys");
        let verifier = PipelineVerifier::new(pipeline.checker(), 5);
        let signer = ValidatorSigner::new(PrivateKey(key(1)), 5);
        let public = PublicKey(key(1).verifying_key().to_bytes());
        let vote = Vote {
            kind: VoteType::Prevote,
            height: Height(3),
            round: Round::new(0),
            value: NilOrVal::Val(BlockId([1; 32])),
            voter: Address(public.0),
        };
        let signed = signer.sign_vote(vote.clone()).await.expect("signs");
        let valid = |r: Result<VerificationResult, Error>| r.expect("a verdict").is_valid();
        assert!(valid(
            verifier
                .verify_signed_vote(&vote, &signed.signature, &public)
                .await
        ));
        let nil = Vote {
            value: NilOrVal::Nil,
            ..vote.clone()
        };
        assert!(!valid(
            verifier
                .verify_signed_vote(&nil, &signed.signature, &public)
                .await
        ));
        let elsewhere = PipelineVerifier::new(pipeline.checker(), 6);
        assert!(!valid(
            elsewhere
                .verify_signed_vote(&vote, &signed.signature, &public)
                .await
        ));

        let proposal = Proposal {
            height: Height(3),
            round: Round::new(0),
            value: BlockId([1; 32]),
            pol_round: Round::Nil,
            proposer: Address(public.0),
        };
        let signed = signer.sign_proposal(proposal.clone()).await.expect("signs");
        assert!(valid(
            verifier
                .verify_signed_proposal(&proposal, &signed.signature, &public)
                .await
        ));
        // A vote's signature is no proposal's.
        let vote_signature = signer.sign_vote(vote).await.expect("signs").signature;
        assert!(!valid(
            verifier
                .verify_signed_proposal(&proposal, &vote_signature, &public)
                .await
        ));

        let proof = signer
            .sign_validator_proof(public.0.to_vec(), b"peer-1".to_vec())
            .await
            .expect("signs");
        assert!(valid(verifier.verify_validator_proof(&proof).await));
        let stolen = ValidatorProof::new(
            proof.public_key.clone(),
            b"peer-2".to_vec(),
            proof.signature,
        );
        assert!(!valid(verifier.verify_validator_proof(&stolen).await));

        // Many at once (a proposed block's transactions): a verdict each, in order.
        let vote_signed = signer.sign_vote(nil.clone()).await.expect("signs");
        let good = (public.0, vote_signed.signature.0, vote_bytes(5, &nil));
        let mut forged = good.clone();
        forged.2[0] ^= 1;
        let verdicts = verifier
            .check_all(vec![good.clone(), forged, good])
            .await
            .expect("verdicts");
        assert_eq!(verdicts[0], Verdict::Valid);
        assert_ne!(verdicts[1], Verdict::Valid);
        assert_eq!(verdicts[2], Verdict::Valid);
        assert!(verifier
            .check_all(Vec::new())
            .await
            .expect("none")
            .is_empty());

        // A stopped pipeline gives no verdict, and says so.
        pipeline.stop();
        let Err(error) = verifier
            .verify_signed_vote(&nil, &signed.signature, &public)
            .await
        else {
            panic!("a verdict from a stopped pipeline");
        };
        assert!(error.to_string().contains("shutting_down"), "{error}");
    }
}
