//! A certified block as a file: the block's bytes and the commit certificate that decided
//! it, which anyone holding the genesis file can check offline (`verity verify-block`).
//!
//! The check: the certificate is for this height and for this block's id (SHA-256 of its
//! bytes); its precommits are valid signatures of distinct validators holding more than two
//! thirds of the power ([`check_certificate`]); and every transaction in the block decodes,
//! is for this chain, and is validly signed. The state root in the block's header — that of
//! an earlier height (`block::root_height`) — is certified with it; the `state_root` field
//! (after this block) is the serving replica's word.

use bytes::Bytes;
use malachitebft_codec::Codec;
use malachitebft_core_types::{CommitCertificate, ValidatorSet as _};
use serde::{Deserialize, Serialize};
use verity_drivers::{Verdict, Verifier};

use super::certificate::{check_certificate, CertificateError};
use super::codec::BorshCodec;
use super::context::{BlockId, ValidatorSet, VerityContext};
use crate::block;
use crate::transaction::{self, TX_LEN};

/// The longest certified-block file read: a block of 65,536 transactions in hex, and more.
pub const FILE_LEN_MAX: u64 = 64 << 20;

/// A certified block, as `GET /v1/blocks/{height}/certified` serves it. Bytes are hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedBlock {
    /// The chain (venue) id.
    pub chain_id: u32,
    /// The height.
    pub height: u64,
    /// The block: its transactions back to back.
    pub block: String,
    /// The commit certificate (borsh).
    pub certificate: String,
    /// The state root after the block, as the serving replica computed it, where it keeps
    /// one (as [`crate::api::Block`]'s).
    pub state_root: Option<String>,
}

/// What a check established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The block's id.
    pub id: BlockId,
    /// The state root its header carries, and its height: certified with the block.
    pub root: (u64, [u8; 32]),
    /// Its transactions.
    pub transactions: usize,
    /// The round that decided it.
    pub round: i64,
    /// The certificate's signers.
    pub signers: usize,
    /// Their power, and the set's.
    pub power: (u64, u64),
}

/// Why a certified block does not hold.
#[derive(Debug, thiserror::Error)]
pub enum CertifiedError {
    /// A field is not what it says.
    #[error("{0}")]
    Malformed(String),
    /// The certificate is for another height or another block.
    #[error("the certificate is for height {height}, block {id}; the file holds height {file_height}, block {file_id}")]
    Mismatch {
        /// The certificate's height.
        height: u64,
        /// The certificate's block id.
        id: BlockId,
        /// The file's height.
        file_height: u64,
        /// The file's block's id.
        file_id: BlockId,
    },
    /// The certificate does not hold.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// A transaction in the block is void.
    #[error("transaction {index}: {reason}")]
    Transaction {
        /// Its place.
        index: usize,
        /// Why.
        reason: String,
    },
}

fn unhex(what: &str, text: &str) -> Result<Vec<u8>, CertifiedError> {
    hex::decode(text).map_err(|e| CertifiedError::Malformed(format!("{what}: {e}")))
}

impl CertifiedBlock {
    /// Checks the block and its certificate for `chain_id` against `validators`, every
    /// signature on `verifier`.
    pub fn check(
        &self,
        chain_id: u32,
        validators: &ValidatorSet,
        verifier: &mut dyn Verifier,
    ) -> Result<Checked, CertifiedError> {
        if self.chain_id != chain_id {
            return Err(CertifiedError::Malformed(format!(
                "a block of chain {}, not {chain_id}",
                self.chain_id
            )));
        }
        let block = unhex("block", &self.block)?;
        let encoded = unhex("certificate", &self.certificate)?;
        let certificate: CommitCertificate<VerityContext> = BorshCodec::default()
            .decode(Bytes::from(encoded))
            .map_err(|e| CertifiedError::Malformed(format!("certificate: {e}")))?;
        let id = BlockId::of(&block);
        if certificate.height.0 != self.height || certificate.value_id != id {
            return Err(CertifiedError::Mismatch {
                height: certificate.height.0,
                id: certificate.value_id,
                file_height: self.height,
                file_id: id,
            });
        }
        let power = check_certificate(chain_id, &certificate, validators, verifier)?;
        let (header, transactions) =
            block::split(&block).map_err(|e| CertifiedError::Malformed(e.to_string()))?;
        if header.height != self.height {
            return Err(CertifiedError::Malformed(format!(
                "the block's header is for height {}",
                header.height
            )));
        }
        let mut requests = Vec::with_capacity(transactions.len() / TX_LEN);
        // The transaction each request checks a signature of (a Trade has two).
        let mut owners = Vec::with_capacity(requests.capacity());
        for (index, tx) in transaction::split_all(transactions).enumerate() {
            let tx = tx.map_err(|e| CertifiedError::Transaction {
                index,
                reason: e.to_string(),
            })?;
            if tx.chain_id() != chain_id {
                return Err(CertifiedError::Transaction {
                    index,
                    reason: format!("signed for chain {}", tx.chain_id()),
                });
            }
            requests.extend(tx.requests(requests.len() as u64));
            owners.resize(requests.len(), index);
        }
        let transactions = owners.last().map_or(0, |last| last + 1);
        let responses = verity_drivers::verify_all(verifier, requests)
            .map_err(|e| CertifiedError::Certificate(CertificateError::Verifier(e.to_string())))?;
        if responses.len() != owners.len() {
            return Err(CertifiedError::Certificate(CertificateError::Verifier(
                format!(
                    "{} verdicts for {} signatures",
                    responses.len(),
                    owners.len()
                ),
            )));
        }
        // `verify_all` answers in request order.
        if let Some((bad, &index)) = responses
            .iter()
            .zip(&owners)
            .find(|(r, _)| r.verdict != Verdict::Valid)
        {
            return Err(CertifiedError::Transaction {
                index,
                reason: format!("signature: {}", bad.verdict.reason()),
            });
        }
        Ok(Checked {
            id,
            root: (header.root_height, header.state_root),
            transactions,
            round: certificate.round.as_i64(),
            signers: certificate.commit_signatures.len(),
            power: (power, validators.total_voting_power()),
        })
    }
}
