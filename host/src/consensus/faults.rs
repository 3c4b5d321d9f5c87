//! Faults a replica commits on purpose (`[consensus.faults]`), so that tests can show the
//! others withstand them: equivocation through Malachite's own Byzantine network proxy, and
//! votes whose signatures do not verify. Nothing here runs unless configured.

use async_trait::async_trait;
use malachitebft_core_types::{SignedMessage, ValidatorProof, VoteExtensionScope};
use malachitebft_engine_byzantine::{ByzantineConfig, Trigger};
use malachitebft_signing::{Error, Signer};

use super::context::{BlockId, Proposal, VerityContext, Vote};
use super::keys::ValidatorSigner;
use crate::config::FaultsSection;

/// Malachite's Byzantine proxy's configuration for the equivocations asked for; `None` if
/// none is.
pub fn byzantine(faults: &FaultsSection) -> Option<ByzantineConfig> {
    let on = |yes: bool| if yes { Trigger::Always } else { Trigger::Never };
    (faults.equivocate_votes || faults.equivocate_proposals).then(|| {
        ByzantineConfig::default()
            .with_equivocate_votes(on(faults.equivocate_votes))
            .with_equivocate_proposals(on(faults.equivocate_proposals))
    })
}

/// Another block id than `id`: what an equivocating validator signs second.
pub fn conflicting(id: &BlockId) -> BlockId {
    let mut other = id.0;
    other[31] ^= 1;
    BlockId(other)
}

/// A signer whose votes carry signatures that do not verify (one bit of S flipped); its
/// proposals and validator proof are sound, so it stays connected and proposes.
#[derive(Clone)]
pub struct CorruptingSigner(pub ValidatorSigner);

#[async_trait]
impl Signer<VerityContext> for CorruptingSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<VerityContext, Vote>, Error> {
        let mut signed = self.0.sign_vote(vote).await?;
        signed.signature.0[40] ^= 1;
        metrics::counter!("verity_consensus_faults_total", "fault" => "invalid_vote_signature")
            .increment(1);
        Ok(signed)
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<VerityContext, Proposal>, Error> {
        self.0.sign_proposal(proposal).await
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<VerityContext>,
        extension: (),
    ) -> Result<SignedMessage<VerityContext, ()>, Error> {
        self.0.sign_vote_extension(scope, extension).await
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<VerityContext>, Error> {
        self.0.sign_validator_proof(public_key, peer_id).await
    }
}
