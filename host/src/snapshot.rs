//! State snapshots: every N blocks a replica writes its whole state at that height — every
//! account, in chunks — so that a replica far behind fetches the state instead of replaying
//! every block since genesis.
//!
//! ```text
//! DIR/snapshots/<height>/manifest.json   height, state root, accounts, each chunk's SHA-256
//! DIR/snapshots/<height>/chunk-<i>       borsh: accounts in key-hash order, range proof
//! ```
//!
//! Accounts are ordered as the state tree orders them (by the SHA-256 of their key) and
//! encoded as it stores them (`store::encode_account`); each chunk carries the tree's range
//! proof for its last key at that height. A fetching replica checks each chunk as it arrives
//! against a state root a commit certificate covers (jmt's restore verifies the range proof),
//! and the whole against that root at the end — the manifest only says where to look. A
//! snapshot is written in a temporary directory and renamed into place, so a reader never
//! sees half of one; the oldest are removed beyond the number kept.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::proof::SparseMerkleRangeProof;
use jmt::KeyHash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::{Account, AccountId};
use crate::store::{decode_account, encode_account, RestoreChunk, Store};
use crate::text_file::read_at_most;

/// Accounts per chunk (about 600 KiB for accounts holding one asset).
pub const CHUNK_ACCOUNTS: usize = 10_000;
/// The largest chunk read or accepted.
pub const CHUNK_LEN_MAX: u64 = 16 << 20;
/// The largest manifest read or accepted.
pub const MANIFEST_LEN_MAX: u64 = 4 << 20;
/// The longest account record in a chunk (an account of 4,096 assets).
const RECORD_LEN_MAX: usize = 44 + 12 * 4096;

/// One chunk, as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkInfo {
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Accounts in it.
    pub accounts: u32,
    /// Its length.
    pub bytes: u64,
}

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The height whose state it is.
    pub height: u64,
    /// The state root at that height, as the writing replica computed it (hex); a fetching
    /// replica trusts a certified root instead.
    pub state_root: String,
    /// Accounts in all.
    pub accounts: u64,
    /// The chunks, in order.
    pub chunks: Vec<ChunkInfo>,
}

/// Why a chunk was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Its hash is not the manifest's.
    #[error("chunk {index}: SHA-256 {got}, the manifest says {expected}")]
    Hash {
        /// Which.
        index: usize,
        /// What it hashes to.
        got: String,
        /// What the manifest says.
        expected: String,
    },
    /// Not accounts, or not in increasing key order.
    #[error("chunk {index}: {reason}")]
    Malformed {
        /// Which.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// A chunk as it is stored and sent.
#[derive(BorshSerialize, BorshDeserialize)]
struct ChunkFile {
    /// Encoded accounts, in key-hash order.
    accounts: Vec<Vec<u8>>,
    /// The tree's range proof for the last of them.
    proof: SparseMerkleRangeProof<Sha256>,
}

/// Checks chunk `index` against the manifest's hash and reads it: its accounts (key hash,
/// encoded account), which must all decode and come after `after` (the previous chunk's last
/// key hash) in increasing order, and its range proof.
pub fn decode_chunk(
    manifest: &Manifest,
    index: usize,
    bytes: &[u8],
    after: Option<KeyHash>,
) -> Result<RestoreChunk, ChunkError> {
    let malformed = |reason: String| ChunkError::Malformed { index, reason };
    let info = manifest
        .chunks
        .get(index)
        .ok_or_else(|| malformed("not in the manifest".to_owned()))?;
    if bytes.len() as u64 > CHUNK_LEN_MAX {
        return Err(malformed(format!("{} bytes", bytes.len())));
    }
    let got = hex::encode(Sha256::digest(bytes));
    if got != info.sha256 {
        return Err(ChunkError::Hash {
            index,
            got,
            expected: info.sha256.clone(),
        });
    }
    let file: ChunkFile = borsh::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if file.accounts.len() != info.accounts as usize {
        return Err(malformed(format!(
            "{} accounts, the manifest says {}",
            file.accounts.len(),
            info.accounts
        )));
    }
    let mut last = after;
    let mut accounts = Vec::with_capacity(file.accounts.len());
    for record in file.accounts {
        if record.len() > RECORD_LEN_MAX {
            return Err(malformed(format!("an account of {} bytes", record.len())));
        }
        let (id, _) = decode_account(&record).map_err(|e| malformed(e.to_string()))?;
        let key = KeyHash::with::<Sha256>(id);
        if last.is_some_and(|l| l.0 >= key.0) {
            return Err(malformed("accounts out of key-hash order".to_owned()));
        }
        last = Some(key);
        accounts.push((key, record));
    }
    Ok((accounts, file.proof))
}

/// A replica's snapshots directory.
#[derive(Clone, Debug)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// The snapshots under `dir` (created when the first is written).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, height: u64) -> PathBuf {
        self.dir.join(height.to_string())
    }

    /// Writes the state `accounts` at `height` with its `root` and each chunk's range proof
    /// from `store`, then removes all but the `keep` newest snapshots.
    pub fn write(
        &self,
        height: u64,
        root: [u8; 32],
        accounts: &BTreeMap<AccountId, Account>,
        store: &Store,
        keep: usize,
    ) -> io::Result<Manifest> {
        let temporary = self.dir.join(format!(".writing-{height}"));
        let _ = std::fs::remove_dir_all(&temporary);
        std::fs::create_dir_all(&temporary)?;
        let mut ordered: Vec<(KeyHash, Vec<u8>)> = accounts
            .iter()
            .map(|(id, account)| (KeyHash::with::<Sha256>(id), encode_account(id, account)))
            .collect();
        ordered.sort_unstable_by_key(|(key, _)| key.0);
        let mut chunks = Vec::new();
        for (index, part) in ordered.chunks(CHUNK_ACCOUNTS).enumerate() {
            let last = part.last().expect("chunks are not empty").0;
            let proof = store.range_proof(last, height).map_err(io::Error::other)?;
            let file = ChunkFile {
                accounts: part.iter().map(|(_, record)| record.clone()).collect(),
                proof,
            };
            let bytes = borsh::to_vec(&file)?;
            std::fs::write(temporary.join(format!("chunk-{index}")), &bytes)?;
            chunks.push(ChunkInfo {
                sha256: hex::encode(Sha256::digest(&bytes)),
                accounts: part.len() as u32,
                bytes: bytes.len() as u64,
            });
        }
        let manifest = Manifest {
            height,
            state_root: hex::encode(root),
            accounts: accounts.len() as u64,
            chunks,
        };
        let text = serde_json::to_string_pretty(&manifest).map_err(io::Error::other)?;
        std::fs::write(temporary.join("manifest.json"), text)?;
        let _ = std::fs::remove_dir_all(self.path(height));
        std::fs::rename(&temporary, self.path(height))?;
        for old in self.heights().into_iter().rev().skip(keep.max(1)) {
            let _ = std::fs::remove_dir_all(self.path(old));
        }
        Ok(manifest)
    }

    /// The heights of the snapshots there are, oldest first.
    pub fn heights(&self) -> Vec<u64> {
        let mut heights: Vec<u64> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        heights.sort_unstable();
        heights
    }

    /// The manifest of the snapshot at `height`.
    pub fn manifest(&self, height: u64) -> io::Result<Option<Manifest>> {
        let path = self.path(height).join("manifest.json");
        if !path.is_file() {
            return Ok(None);
        }
        let text = read_at_most(&path, MANIFEST_LEN_MAX)?
            .map_err(|len| io::Error::other(format!("a manifest of {len} bytes")))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(io::Error::other)
    }

    /// Chunk `index` of the snapshot at `height`.
    pub fn chunk(&self, height: u64, index: usize) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(height).join(format!("chunk-{index}"));
        if !path.is_file() {
            return Ok(None);
        }
        let len = std::fs::metadata(&path)?.len();
        if len > CHUNK_LEN_MAX {
            return Err(io::Error::other(format!("a chunk of {len} bytes")));
        }
        std::fs::read(path).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BlockState, Durability};
    use crate::testing;

    fn accounts(n: u32) -> BTreeMap<AccountId, Account> {
        (0..n)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&i.to_be_bytes());
                let account = Account {
                    nonce: u64::from(i),
                    balances: [(1, u64::from(i) * 10)].into(),
                    ..Account::default()
                };
                (id, account)
            })
            .collect()
    }

    /// A store holding `state` at height 0; its root.
    fn stored(dir: &Path, state: &BTreeMap<AccountId, Account>) -> (Store, [u8; 32]) {
        let store = Store::open(&dir.join("source.redb")).expect("opens");
        let changed: Vec<_> = state.iter().map(|(id, a)| (*id, a)).collect();
        let block = BlockState {
            receipts: &[],
            changed: &changed,
        };
        let root = store
            .commit(0, &[block], Durability::Immediate)
            .expect("commits");
        (store, root)
    }

    #[test]
    fn a_snapshot_restores_chunk_by_chunk_against_its_root_and_old_ones_go() {
        let dir = testing::scratch("snapshots");
        let state = accounts(25_000);
        let (source, root) = stored(&dir, &state);
        let snapshots = Snapshots::new(&dir.join("snapshots"));
        for _ in 0..3 {
            snapshots
                .write(0, root, &state, &source, 2)
                .expect("written");
        }
        assert_eq!(snapshots.heights(), [0]);
        let manifest = snapshots.manifest(0).expect("reads").expect("there");
        assert_eq!(manifest.chunks.len(), 3);
        assert_eq!(manifest.accounts, 25_000);

        let chunks: Vec<Vec<u8>> = (0..3)
            .map(|i| snapshots.chunk(0, i).expect("reads").expect("there"))
            .collect();
        let mut after = None;
        let mut decoded = Vec::new();
        for (index, bytes) in chunks.iter().enumerate() {
            let chunk = decode_chunk(&manifest, index, bytes, after).expect("checks");
            after = chunk.0.last().map(|(key, _)| *key);
            decoded.push(Ok(chunk));
        }
        let target = Store::open(&dir.join("target.redb")).expect("opens");
        target.restore(0, root, decoded).expect("restores");
        assert_eq!(target.head().expect("reads"), Some((0, root)));
        let restored = target.ledger().expect("reads");
        assert!(
            restored.accounts().eq(state.iter()),
            "the same accounts, in key order"
        );

        // A chunk that is not the manifest's, out of order, or checked against another root
        // is refused.
        let mut changed = chunks[0].clone();
        changed[50] ^= 1;
        assert!(matches!(
            decode_chunk(&manifest, 0, &changed, None),
            Err(ChunkError::Hash { index: 0, .. })
        ));
        assert!(matches!(
            decode_chunk(&manifest, 1, &chunks[1], Some(KeyHash([0xff; 32]))),
            Err(ChunkError::Malformed { index: 1, .. })
        ));
        let other = Store::open(&dir.join("other.redb")).expect("opens");
        let first = decode_chunk(&manifest, 0, &chunks[0], None).expect("checks");
        let mut wrong_root = root;
        wrong_root[0] ^= 1;
        assert!(matches!(
            other.restore(0, wrong_root, [Ok(first)]),
            Err(crate::store::StoreError::Snapshot(_))
        ));
    }
}
