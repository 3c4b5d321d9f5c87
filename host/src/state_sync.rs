//! Joining from a snapshot: a replica that starts with no data, or more than a configured
//! number of blocks behind its peers' newest snapshot, fetches that snapshot, checked
//! against a state root a commit certificate covers, instead of replaying every block since
//! its own head. Consensus's value sync brings the blocks after it; a replica less far
//! behind catches up by those blocks alone.
//!
//! ```text
//! peers' /v1/snapshots ─▶ newest height S whose certifying block S + ROOT_LAG a peer holds
//! /v1/blocks/{S+ROOT_LAG}/certified ─▶ certificate checked against genesis ─▶ its header's root(S)
//! /v1/blocks/{S}/certified   ─▶ checked too: the first block of this replica's log
//! /v1/snapshots/{S}/chunks/i ─▶ hash, key order, range proof against root(S) ─▶ state store
//! ```
//!
//! Snapshots fall on multiples of `block::ROOT_EPOCH` (the configuration refuses others), the
//! heights whose roots headers carry: block S + ROOT_LAG is the first to carry S's.
//!
//! Every signature is checked on the replica's own verifier. Nothing is kept unless all of
//! it checks: a failure removes what was written and leaves the replica to start from
//! genesis.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use tracing::{info, warn};
use verity_drivers::Verifier;

use crate::block::{self, ROOT_LAG};
use crate::block_log::BlockLog;
use crate::chain::{LOG_FILE, STATE_FILE};
use crate::cli::client::Client;
use crate::consensus::certified::CertifiedBlock;
use crate::genesis::Genesis;
use crate::snapshot::{decode_chunk, Manifest, CHUNK_LEN_MAX};
use crate::store::{Store, StoreError};

/// What a sync did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced {
    /// The snapshot's height: the first block this replica holds.
    pub height: u64,
    /// Accounts restored.
    pub accounts: u64,
    /// Bytes fetched (certified blocks and chunks).
    pub bytes: u64,
}

/// Why no snapshot was installed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No peer offers a snapshot whose certifying block it holds.
    #[error("no peer offers a certified snapshot")]
    NoSnapshot,
    /// A peer could not be asked.
    #[error("{peer}: {reason}")]
    Peer {
        /// Which.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// What a peer sent does not check.
    #[error("{peer}: {reason}")]
    Refused {
        /// Which.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// Writing the state or the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The newest snapshot among `peers` whose certifying block the offering peer holds.
fn newest(peers: &[SocketAddr]) -> Option<(SocketAddr, Manifest)> {
    let mut best: Option<(SocketAddr, Manifest)> = None;
    for peer in peers {
        let client = Client::new(*peer);
        let (Ok(manifests), Ok(status)) = (
            client.get::<Vec<Manifest>>("/v1/snapshots"),
            client.status(),
        ) else {
            warn!(%peer, "a snapshot peer did not answer");
            continue;
        };
        let certified = manifests
            .into_iter()
            .filter(|m| m.height + ROOT_LAG <= status.height)
            .max_by_key(|m| m.height);
        if let Some(manifest) = certified {
            if best
                .as_ref()
                .is_none_or(|(_, b)| manifest.height > b.height)
            {
                best = Some((*peer, manifest));
            }
        }
    }
    best
}

/// Fetches and checks a certified block from `peer`; its bytes and certificate.
fn certified(
    peer: SocketAddr,
    height: u64,
    genesis: &Genesis,
    verifier: &mut dyn Verifier,
    fetched: &mut u64,
) -> Result<(CertifiedBlock, block::Header), SyncError> {
    let refused = |reason: String| SyncError::Refused { peer, reason };
    let certified: CertifiedBlock = Client::new(peer)
        .get(&format!("/v1/blocks/{height}/certified"))
        .map_err(|e| SyncError::Peer {
            peer,
            reason: format!("{e:#}"),
        })?;
    *fetched += (certified.block.len() + certified.certificate.len()) as u64 / 2;
    if certified.height != height {
        return Err(refused(format!(
            "asked block {height}, got {}",
            certified.height
        )));
    }
    let validators = genesis
        .validator_set()
        .map_err(|e| refused(format!("genesis validators: {e}")))?;
    certified
        .check(genesis.rules.chain_id, &validators, verifier)
        .map_err(|e| refused(format!("block {height}: {e}")))?;
    let bytes = hex::decode(&certified.block).map_err(|e| refused(e.to_string()))?;
    let (header, _) = block::split(&bytes).map_err(|e| refused(e.to_string()))?;
    Ok((certified, header))
}

/// Joins from the newest certified snapshot of `peers` if `data` is empty, or if its head is
/// more than `behind` blocks below that snapshot — then the old data is moved aside
/// (`<data>.replaced-at-<height>`, kept for the operator) and put back if the sync fails.
/// `None`: no snapshot was needed.
pub fn join(
    peers: &[SocketAddr],
    data: &Path,
    behind: u64,
    genesis: &Genesis,
    verifier: &mut dyn Verifier,
) -> Result<Option<Synced>, SyncError> {
    // The peers are asked once: the snapshot chosen here is the one installed.
    let newest = newest(peers);
    if !data.join(LOG_FILE).exists() {
        let (peer, manifest) = newest.ok_or(SyncError::NoSnapshot)?;
        return install(peer, &manifest, data, genesis, verifier).map(Some);
    }
    let head = BlockLog::open(&data.join(LOG_FILE))?.head()?.unwrap_or(0);
    let Some((peer, manifest)) = newest else {
        return Ok(None);
    };
    if manifest.height <= head.saturating_add(behind) {
        return Ok(None);
    }
    let name = data.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let aside = data.with_file_name(format!("{name}.replaced-at-{head}"));
    warn!(
        head,
        snapshot = manifest.height,
        aside = %aside.display(),
        "far behind: joining from a snapshot, the old data moved aside"
    );
    std::fs::rename(data, &aside).map_err(|e| StoreError::Db(e.to_string()))?;
    match install(peer, &manifest, data, genesis, verifier) {
        Ok(synced) => Ok(Some(synced)),
        Err(error) => {
            let _ = std::fs::remove_dir_all(data);
            std::fs::rename(&aside, data).map_err(|e| StoreError::Db(e.to_string()))?;
            Err(error)
        }
    }
}

/// Installs the snapshot `manifest` from `peer` into the empty data directory `data`; what
/// the peer sent that does not check is counted (`verity_state_sync_refused_total`).
fn install(
    peer: SocketAddr,
    manifest: &Manifest,
    data: &Path,
    genesis: &Genesis,
    verifier: &mut dyn Verifier,
) -> Result<Synced, SyncError> {
    let synced = fetch(peer, manifest, data, genesis, verifier);
    if let Err(SyncError::Refused { .. }) = &synced {
        metrics::counter!("verity_state_sync_refused_total").increment(1);
    }
    synced
}

fn fetch(
    peer: SocketAddr,
    manifest: &Manifest,
    data: &Path,
    genesis: &Genesis,
    verifier: &mut dyn Verifier,
) -> Result<Synced, SyncError> {
    let began = Instant::now();
    let refused = |reason: String| SyncError::Refused { peer, reason };
    let height = manifest.height;
    let mut fetched = 0u64;
    let (_, certifying) = certified(peer, height + ROOT_LAG, genesis, verifier, &mut fetched)?;
    if certifying.root_height != height {
        return Err(refused(format!(
            "block {} certifies the root of {}, not {height}",
            height + ROOT_LAG,
            certifying.root_height
        )));
    }
    let (first, _) = certified(peer, height, genesis, verifier, &mut fetched)?;
    std::fs::create_dir_all(data).map_err(|e| StoreError::Db(e.to_string()))?;
    let result = (|| {
        let store = Store::open(&data.join(STATE_FILE))?;
        let client = Client::new(peer);
        let mut after = None;
        let mut failure = None;
        let chunks = (0..manifest.chunks.len()).map_while(|index| {
            let fetched_chunk = client
                .bytes(
                    &format!("/v1/snapshots/{height}/chunks/{index}"),
                    CHUNK_LEN_MAX,
                )
                .map_err(|e| format!("chunk {index}: {e:#}"))
                .and_then(|bytes| {
                    fetched += bytes.len() as u64;
                    decode_chunk(manifest, index, &bytes, after).map_err(|e| e.to_string())
                });
            match fetched_chunk {
                Ok(chunk) => {
                    after = chunk.0.last().map(|(key, _)| *key);
                    Some(Ok(chunk))
                }
                Err(reason) => {
                    failure = Some(reason);
                    None
                }
            }
        });
        let restored = store.restore(height, certifying.state_root, chunks);
        if let Some(reason) = failure {
            return Err(refused(reason));
        }
        restored?;
        let block = hex::decode(&first.block).map_err(|e| refused(e.to_string()))?;
        let certificate = hex::decode(&first.certificate).map_err(|e| refused(e.to_string()))?;
        BlockLog::open(&data.join(LOG_FILE))?.start_at(height, &block, &certificate)?;
        Ok::<_, SyncError>(())
    })();
    if let Err(error) = result {
        // Nothing half-installed: the replica starts from genesis instead.
        let _ = std::fs::remove_file(data.join(STATE_FILE));
        let _ = std::fs::remove_dir_all(data.join(LOG_FILE));
        return Err(error);
    }
    let synced = Synced {
        height,
        accounts: manifest.accounts,
        bytes: fetched,
    };
    info!(
        %peer,
        height,
        accounts = synced.accounts,
        bytes = synced.bytes,
        seconds = began.elapsed().as_secs_f64(),
        "state synced from a certified snapshot"
    );
    Ok(synced)
}
