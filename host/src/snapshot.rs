//! State snapshots: every N blocks a replica writes its whole state at that height — every
//! account, in chunks — so that a replica far behind fetches the state instead of replaying
//! every block since genesis.
//!
//! ```text
//! DIR/snapshots/<height>/manifest.json   height, state root, accounts, each chunk's SHA-256
//! DIR/snapshots/<height>/chunk-<i>       accounts in key order: (u32 LE length ‖ account)…
//! ```
//!
//! An account is encoded as the state tree stores it (`store::encode_account`). A snapshot is
//! written in a temporary directory and renamed into place, so a reader never sees half of
//! one; the oldest are removed beyond the number kept. What a fetching replica checks: each
//! chunk against the manifest's hash, the accounts in strictly increasing key order across
//! chunks, and the whole against a state root a commit certificate covers.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::{Account, AccountId};
use crate::store::{decode_account, encode_account};
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

/// A chunk's bytes.
pub fn encode_chunk<'a>(
    accounts: impl IntoIterator<Item = (&'a AccountId, &'a Account)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, account) in accounts {
        let record = encode_account(id, account);
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(&record);
    }
    out
}

/// Checks chunk `index` against the manifest and reads its accounts, which must all come
/// after `after` (the previous chunk's last key) in increasing order.
pub fn decode_chunk(
    manifest: &Manifest,
    index: usize,
    bytes: &[u8],
    after: Option<AccountId>,
) -> Result<Vec<(AccountId, Account)>, ChunkError> {
    let malformed = |reason: String| ChunkError::Malformed { index, reason };
    let info = manifest
        .chunks
        .get(index)
        .ok_or_else(|| malformed("not in the manifest".to_owned()))?;
    let got = hex::encode(Sha256::digest(bytes));
    if got != info.sha256 {
        return Err(ChunkError::Hash {
            index,
            got,
            expected: info.sha256.clone(),
        });
    }
    let mut accounts = Vec::with_capacity((info.accounts as usize).min(CHUNK_ACCOUNTS));
    let mut last = after;
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = rest
            .get(..4)
            .map(|l| u32::from_le_bytes(l.try_into().expect("four bytes")) as usize)
            .ok_or_else(|| malformed("a truncated length".to_owned()))?;
        if len > RECORD_LEN_MAX || len > rest.len() - 4 {
            return Err(malformed(format!("a record of {len} bytes")));
        }
        let (id, account) =
            decode_account(&rest[4..4 + len]).map_err(|e| malformed(e.to_string()))?;
        if last.is_some_and(|l| l >= id) {
            return Err(malformed("accounts out of key order".to_owned()));
        }
        last = Some(id);
        accounts.push((id, account));
        rest = &rest[4 + len..];
    }
    if accounts.len() != info.accounts as usize {
        return Err(malformed(format!(
            "{} accounts, the manifest says {}",
            accounts.len(),
            info.accounts
        )));
    }
    Ok(accounts)
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

    /// Writes the state `accounts` at `height` with its `root`, then removes all but the
    /// `keep` newest snapshots.
    pub fn write(
        &self,
        height: u64,
        root: [u8; 32],
        accounts: &BTreeMap<AccountId, Account>,
        keep: usize,
    ) -> io::Result<Manifest> {
        let temporary = self.dir.join(format!(".writing-{height}"));
        let _ = std::fs::remove_dir_all(&temporary);
        std::fs::create_dir_all(&temporary)?;
        let mut chunks = Vec::new();
        let all: Vec<_> = accounts.iter().collect();
        for (index, part) in all.chunks(CHUNK_ACCOUNTS).enumerate() {
            let bytes = encode_chunk(part.iter().copied());
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
    use crate::testing;

    fn accounts(n: u32) -> BTreeMap<AccountId, Account> {
        (0..n)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&i.to_be_bytes());
                let account = Account {
                    nonce: u64::from(i),
                    balances: [(1, u64::from(i) * 10)].into(),
                };
                (id, account)
            })
            .collect()
    }

    #[test]
    fn a_snapshot_reads_back_chunk_by_chunk_and_old_ones_go() {
        let dir = testing::scratch("snapshots");
        let snapshots = Snapshots::new(&dir);
        let state = accounts(25_000);
        for height in [10, 20, 30] {
            snapshots
                .write(height, [7; 32], &state, 2)
                .expect("written");
        }
        assert_eq!(snapshots.heights(), [20, 30]);
        let manifest = snapshots.manifest(30).expect("reads").expect("there");
        assert_eq!(manifest.chunks.len(), 3);
        assert_eq!(manifest.accounts, 25_000);
        let mut read = BTreeMap::new();
        let mut after = None;
        for index in 0..manifest.chunks.len() {
            let bytes = snapshots.chunk(30, index).expect("reads").expect("there");
            for (id, account) in decode_chunk(&manifest, index, &bytes, after).expect("checks") {
                after = Some(id);
                read.insert(id, account);
            }
        }
        assert_eq!(read, state);

        // A chunk that is not the manifest's, or whose order is broken, is refused.
        let first = snapshots.chunk(30, 0).expect("reads").expect("there");
        let mut changed = first.clone();
        changed[50] ^= 1;
        assert!(matches!(
            decode_chunk(&manifest, 0, &changed, None),
            Err(ChunkError::Hash { index: 0, .. })
        ));
        let second = snapshots.chunk(30, 1).expect("reads").expect("there");
        assert!(matches!(
            decode_chunk(&manifest, 1, &second, Some([0xff; 32])),
            Err(ChunkError::Malformed { index: 1, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
