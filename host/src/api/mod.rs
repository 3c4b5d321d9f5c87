//! The HTTP API's JSON: what the daemon answers ([`server`]) and what `verity`'s clients
//! read back. Keys, ids and roots are lowercase hex.
//!
//! | method and path | answer |
//! |---|---|
//! | `POST /v1/transactions` `{"transaction": HEX}` | [`Submitted`] once committed or refused (422) |
//! | `GET /v1/transactions/{id}` | [`TxReceipt`], or 404 |
//! | `GET /v1/accounts/{key}` | [`AccountState`] with its proof against the head's root |
//! | `GET /v1/blocks/{height}` | [`Block`], or 404 |
//! | `GET /v1/blocks/{height}/certified` | [`CertifiedBlock`](crate::consensus::certified::CertifiedBlock) (consensus only), or 404 |
//! | `GET /v1/evidence` | the latest 1,000 [`EvidenceView`](crate::consensus::evidence::EvidenceView)s of misbehaviour this replica saw |
//! | `GET /v1/snapshots` | the [`Manifest`](crate::snapshot::Manifest)s of the snapshots this replica holds |
//! | `GET /v1/snapshots/{height}/chunks/{i}` | a snapshot's chunk (bytes), or 404 |
//! | `GET /status` | [`Status`] |
//! | `GET /metrics` | Prometheus text |

pub mod server;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ledger::{Account, Event, Failure, MarginState, Quote};
use crate::store::verify_account;

/// The longest proof a client decodes (a path of 256 siblings and a leaf is far less).
pub const PROOF_LEN_MAX: usize = 16 << 10;

/// Why a transaction did not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureView {
    /// Its short name (`bad_nonce`, `insufficient_funds`, …).
    pub name: String,
    /// Its details.
    pub detail: String,
}

impl From<&Failure> for FailureView {
    fn from(failure: &Failure) -> Self {
        Self {
            name: failure.name().to_owned(),
            detail: failure.to_string(),
        }
    }
}

/// `POST /v1/transactions`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submit {
    /// The signed transaction's bytes.
    pub transaction: String,
}

/// What became of a submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Submitted {
    /// In a block on disk.
    Committed {
        /// Its id.
        id: String,
        /// The block.
        height: u64,
        /// Why it did not apply; `None`: it applied.
        failure: Option<FailureView>,
    },
    /// Never ordered.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A committed transaction's receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxReceipt {
    /// Its id.
    pub id: String,
    /// Its block.
    pub height: u64,
    /// Its place in the block.
    pub index: u32,
    /// Why it did not apply; `None`: it applied.
    pub failure: Option<FailureView>,
}

/// An account at a height, with the proof of its value (or absence) against that height's
/// state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Its public key.
    pub account: String,
    /// The height read.
    pub height: u64,
    /// The state root after that height.
    pub state_root: String,
    /// Whether the account exists.
    pub exists: bool,
    /// Its next nonce.
    pub nonce: u64,
    /// Its balances by asset.
    pub balances: BTreeMap<u32, u64>,
    /// An oracle's newest prices by asset (absent for other accounts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<u32, QuoteView>,
    /// Option positions by instrument (contracts; negative: short).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub positions: BTreeMap<u32, i64>,
    /// Its newest liquidations and settlements, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Event>,
    /// Its margin at the height, computed by the replica (not covered by the proof; absent
    /// without positions, or when an instrument it holds has no mark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<MarginState>,
    /// The Jellyfish Merkle proof (borsh).
    pub proof: String,
}

/// An oracle's price and the height of the block that took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteView {
    /// Quote units per unit.
    pub price: u64,
    /// The block's height.
    pub height: u64,
}

impl From<Quote> for QuoteView {
    fn from(q: Quote) -> Self {
        Self {
            price: q.price,
            height: q.height,
        }
    }
}

/// `GET /v1/marks/{asset}`: the mark price and the prices it is the median of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkView {
    /// The asset.
    pub asset: u32,
    /// The height it is the mark after.
    pub height: u64,
    /// The median of the fresh prices; `None` when none is fresh.
    pub mark: Option<u64>,
    /// Blocks a price counts for.
    pub max_age: u64,
    /// Each oracle's newest price of the asset, by oracle key (hex).
    pub quotes: BTreeMap<String, QuoteView>,
}

impl AccountState {
    /// Checks the proof: the account's value (or absence) against `state_root`. A client
    /// that trusts the root (from replicas it trusts, or a certified block) trusts the
    /// account.
    pub fn verify(&self) -> Result<(), String> {
        let id: [u8; 32] = hex32(&self.account).ok_or("the account is not 32 bytes of hex")?;
        let root = hex32(&self.state_root).ok_or("the state root is not 32 bytes of hex")?;
        if self.proof.len() > 2 * PROOF_LEN_MAX {
            return Err(format!("a proof of {} hex digits", self.proof.len()));
        }
        let proof = hex::decode(&self.proof).map_err(|e| format!("proof: {e}"))?;
        let proof: jmt::proof::SparseMerkleProof<sha2::Sha256> =
            borsh::from_slice(&proof).map_err(|e| format!("proof: {e}"))?;
        let account = self.exists.then(|| Account {
            nonce: self.nonce,
            balances: self.balances.clone(),
            prices: self
                .prices
                .iter()
                .map(|(asset, q)| {
                    (
                        *asset,
                        Quote {
                            price: q.price,
                            height: q.height,
                        },
                    )
                })
                .collect(),
            positions: self.positions.clone(),
            history: self.history.clone(),
        });
        if verify_account(root, &id, account.as_ref(), &proof) {
            Ok(())
        } else {
            Err("the proof does not match the state root".to_owned())
        }
    }
}

/// One transaction of a block, decoded, with its receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTx {
    /// Its id.
    pub id: String,
    /// Who signed it.
    pub sender: String,
    /// Its nonce.
    pub nonce: u64,
    /// `transfer`, `mint`, `price` or `trade`.
    pub kind: String,
    /// The asset moved or priced; a trade's instrument.
    pub asset: u32,
    /// The receiving account; a trade's counterparty (the seller).
    pub to: String,
    /// How much; a price; a trade's premium per contract.
    pub amount: u64,
    /// A trade's contracts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contracts: Option<u32>,
    /// A trade's last height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_height: Option<u64>,
    /// Why it did not apply; `None`: it applied.
    pub failure: Option<FailureView>,
}

/// One signature of a commit certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSignatureView {
    /// The validator (its public key).
    pub validator: String,
    /// Its precommit's signature.
    pub signature: String,
}

/// The commit certificate that decided a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    /// The round that decided it.
    pub round: i64,
    /// The precommits.
    pub signatures: Vec<CommitSignatureView>,
}

/// A block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Its height.
    pub height: u64,
    /// Its id: the SHA-256 of its bytes, what consensus decided.
    pub id: String,
    /// The state root after it, where this replica keeps one: at each height whose root
    /// headers carry (multiples of 16), each snapshot's and the head's, once its state is
    /// committed; `null` elsewhere (several blocks committed together make one root).
    pub state_root: Option<String>,
    /// The earlier height whose state root its header carries (and a certificate covers).
    pub header_root_height: u64,
    /// That root (genesis's block carries none: empty).
    pub header_state_root: String,
    /// The certificate that decided it; `None` where one replica ordered alone.
    pub certificate: Option<CertificateView>,
    /// Its transactions, in order.
    pub transactions: Vec<BlockTx>,
}

/// The verification backend as `/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierView {
    /// The backend serving (`cpu`, `sim`, `xdma`, …).
    pub backend: String,
    /// `ready`, `degraded` or `failed`.
    pub state: String,
    /// Why it is not ready.
    pub reason: Option<String>,
}

/// `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The chain (venue) id.
    pub chain_id: u32,
    /// The last committed height.
    pub height: u64,
    /// The first block this replica holds: 0 (genesis), or the snapshot it joined from.
    pub first_height: u64,
    /// The state root after it.
    pub state_root: String,
    /// The verification backend.
    pub verifier: VerifierView,
    /// The daemon's version.
    pub version: String,
}

/// An error's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
}

/// 32 bytes from 64 hex digits.
pub fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}
