//! The replica's state store: receipts, and the ledger's accounts under an authenticated
//! state root per block. (The blocks themselves are in the [block log](crate::block_log).)
//!
//! * **redb** holds it: a pure-Rust embedded B-tree whose write transactions are atomic, and
//!   durable when they commit with [`Durability::Immediate`] (fsync), with no C toolchain.
//!   A block's receipts and state are either wholly in the store or not at all; commits may
//!   be made durable later, several at once ([`Durability::None`]), because the block log
//!   already holds every acknowledged block and a reopened chain replays what the store lost.
//! * **jmt**, the Jellyfish Merkle tree (Diem, Aptos, Penumbra), authenticates the accounts:
//!   a versioned sparse Merkle tree over SHA-256 whose version is the block height, giving a
//!   state root per block and a proof of an account's value, or of its absence, against it;
//!   it leaves storage to us, so its nodes live in the same redb transaction as the block's
//!   receipts.
//!
//! An account's leaf is its key hash (SHA-256 of the public key) and its value the account's
//! encoding: public key (32), nonce (u64), number of assets (u32), then (asset u32, amount
//! u64) in asset order, little-endian — deterministic, and it carries its own key so the
//! ledger can be rebuilt from the store alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use jmt::proof::SparseMerkleRangeProof;
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{LeafNode, Node, NodeBatch, NodeKey, TreeReader, TreeWriter};
use jmt::{KeyHash, OwnedValue, RootHash, Sha256Jmt, Version};
pub use redb::Durability;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::Sha256;
use thiserror::Error;

use crate::ledger::{Account, AccountId, Ledger};

mod memory_index;
mod paced_file;
mod receipt_row;
mod receipt_runs;

const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");
/// (key hash, version) → tag byte (0 deleted, 1 present) then the value.
const VALUES: TableDefinition<([u8; 32], u64), &[u8]> = TableDefinition::new("jmt_values");
/// Height → the block's receipts ([`receipt_row`]); absent for a block of no transactions.
const BLOCK_RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("block_receipts");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The layout this build reads and writes, under `layout` in [`META`]: 2 since receipts are
/// stored a row per block (a store of layout 1, from before, has no `layout` key), 3 since
/// their index is in sorted runs ([`receipt_runs`]), 4 since the roots kept are every 256th
/// height's (`crate::block::ROOT_EPOCH`; a chain of layout 3 carried every 64th).
const LAYOUT: u8 = 4;
/// Height → the state root after it (kept when the tree's old nodes are pruned).
const ROOTS: TableDefinition<u64, [u8; 32]> = TableDefinition::new("roots");
/// (version since which a node is stale, its key) → (): what pruning may delete
/// ([`Store::pruning`]).
const STALE: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("jmt_stale");
/// The first byte of a stored leaf: borsh's variant index of [`Node::Leaf`].
const LEAF_TAG: u8 = 2;

/// What went wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database failed.
    #[error("store: {0}")]
    Db(String),
    /// A stored account does not decode.
    #[error("store: a stored account is corrupt ({0} bytes)")]
    Corrupt(usize),
    /// A stored block is not whole transactions.
    #[error("store: block {0} is corrupt")]
    CorruptBlock(u64),
    /// A block (with its certificate) longer than the block log's largest record.
    #[error("block log: block {height} is {bytes} bytes, more than a record holds")]
    BlockTooLarge {
        /// Its height.
        height: u64,
        /// Its length, with its certificate's.
        bytes: usize,
    },
    /// Nothing is committed yet (a chain commits its genesis when it opens).
    #[error("store: no block committed yet")]
    Empty,
    /// A commit of no blocks.
    #[error("store: a commit holds no block")]
    NoBlocks,
    /// A block was committed out of order.
    #[error("store: block {got} committed after {last:?}")]
    OutOfOrder {
        /// The last committed height.
        last: Option<u64>,
        /// The height offered.
        got: u64,
    },
    /// The store was written by a build with another layout.
    #[error(
        "store: written in layout {found} (this build reads layout {LAYOUT}); start from an \
         empty data directory, or sync this replica from its peers"
    )]
    Layout {
        /// The layout found (1: before layouts were recorded).
        found: u8,
    },
    /// A receipt's failure encoding does not fit a receipt row.
    #[error("store: {0}")]
    ReceiptTooLong(#[from] receipt_row::TooLong),
    /// A stored receipt row is not whole receipts.
    #[error("store: the receipts of block {0} are corrupt")]
    CorruptReceipts(u64),
    /// A chunk of the receipt index is not whole entries.
    #[error("store: run {0} of the receipt index is corrupt")]
    CorruptIndex(u64),
    /// A snapshot's chunk or the state it builds does not match the root it was checked
    /// against.
    #[error("snapshot: {0}")]
    Snapshot(String),
}

/// What a prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pruned {
    /// Tree nodes.
    nodes: usize,
    /// Account values.
    values: usize,
}

fn db(error: impl std::fmt::Display) -> StoreError {
    StoreError::Db(error.to_string())
}

pub use crate::ledger::encoding::{decode_account, encode_account};

impl From<crate::ledger::encoding::Corrupt> for StoreError {
    fn from(corrupt: crate::ledger::encoding::Corrupt) -> Self {
        StoreError::Corrupt(corrupt.0)
    }
}

/// The tree's view of the store through one read transaction.
struct Tree<'a> {
    txn: &'a redb::ReadTransaction,
}

/// A node's key in the table: its version big-endian, then its nibble path, so that a commit's
/// new nodes (all of its version) sort after every older one and are appended, not scattered.
fn node_key(key: &NodeKey) -> anyhow::Result<Vec<u8>> {
    let mut out = key.version().to_be_bytes().to_vec();
    borsh::to_writer(&mut out, key.nibble_path())?;
    Ok(out)
}

impl TreeReader for Tree<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let table = self.txn.open_table(NODES)?;
        let key = self::node_key(node_key)?;
        match table.get(key.as_slice())? {
            Some(bytes) => Ok(Some(borsh::from_slice(bytes.value())?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let table = self.txn.open_table(VALUES)?;
        let newest = table
            .range((key_hash.0, 0)..=(key_hash.0, max_version))?
            .next_back()
            .transpose()?;
        Ok(newest.and_then(|(_, value)| match value.value() {
            [1, rest @ ..] => Some(rest.to_vec()),
            _ => None,
        }))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only restoring a tree from a snapshot asks for it; this store never does.
        Ok(None)
    }
}

/// The tree over the database, owned: what a restore (which keeps it beyond one call) needs.
/// Each call is a transaction of its own.
struct OwnedTree {
    db: Arc<Database>,
}

impl TreeReader for OwnedTree {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let txn = self.db.begin_read()?;
        Tree { txn: &txn }.get_node_option(node_key)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let txn = self.db.begin_read()?;
        Tree { txn: &txn }.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // A restore starts on an empty store (`Store::restore` checks), so there is no
        // interrupted restore to resume.
        Ok(None)
    }
}

impl TreeWriter for OwnedTree {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        Batch { txn: &txn }.write_node_batch(batch)?;
        txn.commit()?;
        Ok(())
    }
}

/// A chunk of a state snapshot, as [`Store::restore`] takes it: accounts (key hash, encoded
/// account) in increasing key-hash order, and the proof that they are the tree's at that
/// range.
pub type RestoreChunk = (Vec<(KeyHash, OwnedValue)>, SparseMerkleRangeProof<Sha256>);

/// Nodes and values the tree produced for a commit, written in the commit's transaction.
struct Batch<'a> {
    txn: &'a redb::WriteTransaction,
}

impl TreeWriter for Batch<'_> {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let mut nodes = self.txn.open_table(NODES)?;
        for (key, node) in batch.nodes() {
            nodes.insert(node_key(key)?.as_slice(), borsh::to_vec(node)?.as_slice())?;
        }
        let mut values = self.txn.open_table(VALUES)?;
        for ((version, key_hash), value) in batch.values() {
            values.insert((key_hash.0, *version), stored_value(value).as_slice())?;
        }
        Ok(())
    }
}

impl Batch<'_> {
    /// Writes what version `last` reads: the batch's nodes but those in `replaced` and the
    /// earlier versions' roots, and each key's newest value.
    fn write_last(
        &self,
        batch: &NodeBatch,
        replaced: &BTreeSet<&NodeKey>,
        last: Version,
    ) -> anyhow::Result<()> {
        let mut nodes = self.txn.open_table(NODES)?;
        for (key, node) in batch.nodes() {
            // An earlier version's root is not in the last version's tree. The tree does not
            // mark every one replaced: the copy it makes for a version that changed nothing is
            // not, so it would stay on disk for ever.
            let earlier_root = key.nibble_path().is_empty() && key.version() < last;
            if !replaced.contains(key) && !earlier_root {
                nodes.insert(node_key(key)?.as_slice(), borsh::to_vec(node)?.as_slice())?;
            }
        }
        // Values come ordered by (version, key): the last one seen for a key is its newest.
        let mut newest: BTreeMap<KeyHash, (Version, &Option<OwnedValue>)> = BTreeMap::new();
        for ((version, key_hash), value) in batch.values() {
            newest.insert(*key_hash, (*version, value));
        }
        let mut values = self.txn.open_table(VALUES)?;
        for (key_hash, (version, value)) in newest {
            values.insert((key_hash.0, version), stored_value(value).as_slice())?;
        }
        Ok(())
    }
}

/// A value as the values table holds it: a tag byte (0 deleted, 1 present), then the value.
fn stored_value(value: &Option<OwnedValue>) -> Vec<u8> {
    match value {
        Some(value) => [&[1u8][..], value].concat(),
        None => vec![0u8],
    }
}

/// The first eight bytes of a transaction id: the receipt index's key.
type IdPrefix = [u8; 8];

fn id_prefix(id: &[u8; 32]) -> IdPrefix {
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&id[..8]);
    prefix
}

/// Receipt index entries not yet in a run ([`receipt_runs`]).
type Unsynced = memory_index::MemoryIndex;

/// Index entries held in memory before a durable commit writes them as a run
/// ([`receipt_runs`]). Fewer, larger runs mean fewer merges and fewer runs for a lookup to
/// read; about 30 MB of memory (16-byte entries in a hash map).
const INDEX_FLUSH: usize = 1 << 20;

/// Commits whose roots [`Store::root`] finds in memory: the chain asks for the root of the
/// epoch [`crate::block::ROOT_LAG`] blocks back twice a block, and a read transaction of the
/// store could wait up to 5 ms behind the state stage's commit (a probe at 153,000 tx/s saw
/// 17–24 such waits over 0.5 ms a run). A miss reads the store.
const RECENT_ROOTS: usize = 256;

/// Under this key in [`META`]: the first height whose index entries are not in their table
/// (absent: 0). Opening the store reads them back from the rows above it.
const UNINDEXED: &str = "unindexed";

fn read_height(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    let Some(bytes) = meta.get(key).map_err(db)? else {
        return Ok(None);
    };
    <[u8; 8]>::try_from(bytes.value())
        .map(|b| Some(u64::from_le_bytes(b)))
        .map_err(|_| StoreError::Corrupt(0))
}

/// One block's part of a state commit.
#[derive(Clone, Copy, Debug)]
pub struct BlockState<'a> {
    /// Each transaction's id and failure encoding (empty: applied), in block order.
    pub receipts: &'a [([u8; 32], Vec<u8>)],
    /// The accounts the block changed, with their new values.
    pub changed: &'a [(AccountId, &'a Account)],
}

/// The store. Clones share one database: the chain writes, the API reads beside it (each
/// read is one consistent snapshot).
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    /// The receipt index's entries not yet in their table, read from here until a durable
    /// commit writes them there (see [`Store::commit`]).
    unsynced: Arc<Mutex<Unsynced>>,
    /// Entries that make a durable commit write them ([`INDEX_FLUSH`]).
    index_flush: usize,
    /// The roots of the last [`RECENT_ROOTS`] commits, as [`Store::root`] reads them first.
    recent_roots: Arc<Mutex<BTreeMap<u64, [u8; 32]>>>,
    /// What each commit prunes in its own transaction ([`Store::pruning`]); none if unset.
    pruning: Option<Pruning>,
}

/// How much of the tree's history commits keep: [`Store::pruning`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pruning {
    /// The heights back from the head whose accounts stay provable.
    pub keep: u64,
    /// The most tree nodes one commit deletes.
    pub limit: usize,
}

impl Store {
    /// Opens (or creates) the store at `path`. Every table exists from here on, so a read
    /// never has to tell a missing table from an empty one. A store written in another
    /// layout is refused ([`StoreError::Layout`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let database = Database::builder()
            .create_with_backend(paced_file::PacedFile::create(path).map_err(db)?)
            .map_err(db)?;
        let txn = database.begin_write().map_err(db)?;
        txn.open_table(NODES).map_err(db)?;
        txn.open_table(VALUES).map_err(db)?;
        txn.open_table(BLOCK_RECEIPTS).map_err(db)?;
        txn.open_table(receipt_runs::RUNS).map_err(db)?;
        txn.open_table(receipt_runs::MERGING).map_err(db)?;
        txn.open_table(ROOTS).map_err(db)?;
        txn.open_table(STALE).map_err(db)?;
        {
            let mut meta = txn.open_table(META).map_err(db)?;
            let layout = meta.get("layout").map_err(db)?.map(|v| v.value().to_vec());
            let written = meta.get("height").map_err(db)?.is_some();
            match layout.as_deref() {
                Some([LAYOUT]) => {}
                None if !written => {
                    meta.insert("layout", [LAYOUT].as_slice()).map_err(db)?;
                }
                found => {
                    return Err(StoreError::Layout {
                        found: found.and_then(|f| f.first().copied()).unwrap_or(1),
                    })
                }
            }
        }
        txn.commit().map_err(db)?;
        let store = Self {
            db: Arc::new(database),
            unsynced: Arc::default(),
            index_flush: INDEX_FLUSH,
            recent_roots: Arc::default(),
            pruning: None,
        };
        store.reindex()?;
        Ok(store)
    }

    /// Reads back into memory the index entries of the rows above the table's watermark.
    fn reindex(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        let from = read_height(&meta, UNINDEXED)?.unwrap_or(0);
        let rows = txn.open_table(BLOCK_RECEIPTS).map_err(db)?;
        let mut unsynced = self.lock_unsynced();
        for entry in rows.range(from..).map_err(db)? {
            let (height, row) = entry.map_err(db)?;
            let height = height.value();
            for receipt in receipt_row::receipts(row.value()) {
                let (id, _) = receipt.map_err(|_| StoreError::CorruptReceipts(height))?;
                unsynced.insert(id_prefix(id), height);
            }
        }
        Ok(())
    }

    /// The store whose every commit also prunes what `pruning` no longer keeps, in the
    /// commit's own transaction: the values it deletes sit on the pages the commit's new
    /// values were written to (a key's versions are neighbours), so those pages are copied
    /// once, where a prune of its own would copy them again. Counted in
    /// `verity_state_pruned_nodes_total` and `verity_state_pruned_values_total`.
    pub fn pruning(mut self, pruning: Pruning) -> Self {
        self.pruning = Some(pruning);
        self
    }

    /// The store with index flushes every `entries` (tests flush small).
    #[cfg(test)]
    fn flushing_index_at(mut self, entries: usize) -> Self {
        self.index_flush = entries;
        self
    }

    /// The last committed block's height and state root, read in one snapshot.
    pub fn head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        let Some(height) = read_height(&meta, "height")? else {
            return Ok(None);
        };
        let roots = txn.open_table(ROOTS).map_err(db)?;
        let root = roots
            .get(height)
            .map_err(db)?
            .ok_or(StoreError::Corrupt(0))?;
        Ok(Some((height, root.value())))
    }

    /// Commits consecutive blocks from `first` on — each one's receipts and changed accounts —
    /// in one transaction, durable now or with the next durable commit as `durability` says,
    /// and returns the state root after the last. One transaction for several blocks writes
    /// each page the blocks share once: the state stage batches what queued behind a commit.
    ///
    /// The blocks make one version of the tree, at the last height: an account changed by
    /// several of them is hashed and written once, and so is each tree node above the accounts
    /// they changed. The heights before the last get no root, no accounts and no proofs; the
    /// state stage ends a commit at each height whose root a header carries
    /// ([`crate::block::root_carried`]) and at each snapshot's. jmt's tree depends on its
    /// accounts alone, so the root is the same however the blocks were cut into commits.
    ///
    /// A block's receipts are one row under its height ([`receipt_row`]), appended. The index
    /// that finds a transaction's row is keyed by id; its entries are read from memory until
    /// a durable commit finds [`INDEX_FLUSH`] of them there and writes them as one sorted run
    /// ([`receipt_runs`]), with the watermark that says which rows they cover (opening the
    /// store reads the rows above it back). Every commit takes a step of a merge of runs. A
    /// crash loses nothing: the blocks are in the log and replayed, and the rows in the store
    /// are read back.
    pub fn commit(
        &self,
        first: u64,
        blocks: &[BlockState<'_>],
        durability: Durability,
    ) -> Result<[u8; 32], StoreError> {
        let head = self.head()?.map(|(h, _)| h);
        if blocks.is_empty() {
            return Err(StoreError::NoBlocks);
        }
        if head.map_or(first != 0, |h| first != h + 1) {
            return Err(StoreError::OutOfOrder {
                last: head,
                got: first,
            });
        }
        // The last change of each account wins; in key order, so the tree is built alike
        // everywhere.
        let mut net: BTreeMap<AccountId, &Account> = BTreeMap::new();
        for block in blocks {
            net.extend(block.changed.iter().map(|(id, account)| (*id, *account)));
        }
        let read = self.db.begin_read().map_err(db)?;
        let tree = Tree { txn: &read };
        // jmt versions are consecutive: the heights before the last are empty versions, each
        // a copy of the root that the next replaces (so it is never written).
        let empty = (1..blocks.len()).map(|_| Vec::new());
        let changes = net
            .iter()
            .map(|(id, account)| {
                (
                    KeyHash::with::<Sha256>(id),
                    Some(encode_account(id, account)),
                )
            })
            .collect();
        let (roots, update) = Sha256Jmt::new(&tree)
            .put_value_sets(empty.chain([changes]), first)
            .map_err(db)?;
        let root = roots.last().ok_or(StoreError::NoBlocks)?.0;
        // Nodes made by this commit and replaced within it.
        let replaced: BTreeSet<&NodeKey> = update
            .stale_node_index_batch
            .iter()
            .filter(|index| index.node_key.version() >= first)
            .map(|index| &index.node_key)
            .collect();
        let last = first + roots.len() as u64 - 1;
        let mut write = self.db.begin_write().map_err(db)?;
        write.set_durability(durability).map_err(db)?;
        Batch { txn: &write }
            .write_last(&update.node_batch, &replaced, last)
            .map_err(db)?;
        let durable = matches!(durability, Durability::Immediate);
        let mut index = Vec::new();
        {
            let mut rows = write.open_table(BLOCK_RECEIPTS).map_err(db)?;
            for (height, block) in (first..).zip(blocks) {
                if block.receipts.is_empty() {
                    continue;
                }
                let row = receipt_row::encode(block.receipts)?;
                rows.insert(height, row.as_slice()).map_err(db)?;
                index.extend(block.receipts.iter().map(|(id, _)| (id_prefix(id), height)));
            }
        }
        let flush = durable && self.lock_unsynced().len() + index.len() >= self.index_flush;
        if flush {
            self.write_index(&write, &index, last)?;
        }
        // A merge of the index's runs goes a step a commit, so none holds this one for long.
        receipt_runs::step(&write)?;
        let pruned = match self.pruning {
            Some(Pruning { keep, limit }) => match last.checked_sub(keep) {
                Some(cutoff) => Self::prune_in(&write, cutoff, limit)?,
                None => Pruned::default(),
            },
            None => Pruned::default(),
        };
        {
            let mut stale = write.open_table(STALE).map_err(db)?;
            for index in &update.stale_node_index_batch {
                if replaced.contains(&index.node_key) {
                    continue;
                }
                let key = node_key(&index.node_key).map_err(db)?;
                stale
                    .insert((index.stale_since_version, key.as_slice()), ())
                    .map_err(db)?;
            }
            write
                .open_table(ROOTS)
                .map_err(db)?
                .insert(last, root)
                .map_err(db)?;
            let mut meta = write.open_table(META).map_err(db)?;
            meta.insert("height", last.to_le_bytes().as_slice())
                .map_err(db)?;
        }
        write.commit().map_err(db)?;
        {
            // After the commit, so a root read from memory is one a reader of the store sees.
            let mut recent = self.lock_recent_roots();
            recent.insert(last, root);
            if recent.len() > RECENT_ROOTS {
                recent.pop_first();
            }
        }
        metrics::counter!("verity_state_pruned_nodes_total").increment(pruned.nodes as u64);
        metrics::counter!("verity_state_pruned_values_total").increment(pruned.values as u64);
        // After the commit: an entry read from memory names a row a reader can see. (The
        // state stage is the one writer, so nothing joined the entries since they were written.)
        if flush {
            self.lock_unsynced().clear();
        } else {
            let mut unsynced = self.lock_unsynced();
            for (prefix, height) in index {
                unsynced.insert(prefix, height);
            }
        }
        Ok(root)
    }

    /// The proof that the accounts up to `rightmost` (by key hash) are the tree's at
    /// `height`, for a snapshot chunk ending there.
    pub fn range_proof(
        &self,
        rightmost: KeyHash,
        height: u64,
    ) -> Result<SparseMerkleRangeProof<Sha256>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let tree = Tree { txn: &txn };
        Sha256Jmt::new(&tree)
            .get_range_proof(rightmost, height)
            .map_err(db)
    }

    /// Fills an empty store with the state at `height` from snapshot chunks, each checked
    /// against `root` by its range proof as it arrives; the whole is checked against `root`
    /// at the end. Nothing below `height` is there afterwards (no receipts, no older roots).
    pub fn restore(
        &self,
        height: u64,
        root: [u8; 32],
        chunks: impl IntoIterator<Item = Result<RestoreChunk, StoreError>>,
    ) -> Result<(), StoreError> {
        if let Some((last, _)) = self.head()? {
            return Err(StoreError::OutOfOrder {
                last: Some(last),
                got: height,
            });
        }
        let tree = Arc::new(OwnedTree {
            db: Arc::clone(&self.db),
        });
        let mut restore =
            JellyfishMerkleRestore::<Sha256>::new(tree, height, RootHash(root)).map_err(db)?;
        for chunk in chunks {
            let (accounts, proof) = chunk?;
            restore
                .add_chunk(accounts, proof)
                .map_err(|e| StoreError::Snapshot(e.to_string()))?;
        }
        restore
            .finish()
            .map_err(|e| StoreError::Snapshot(e.to_string()))?;
        let txn = self.db.begin_read().map_err(db)?;
        let got = Sha256Jmt::new(&Tree { txn: &txn })
            .get_root_hash(height)
            .map_err(|e| StoreError::Snapshot(e.to_string()))?;
        drop(txn);
        if got.0 != root {
            return Err(StoreError::Snapshot(format!(
                "the restored state's root is {}, not {}",
                hex::encode(got.0),
                hex::encode(root)
            )));
        }
        let write = self.db.begin_write().map_err(db)?;
        {
            write
                .open_table(ROOTS)
                .map_err(db)?
                .insert(height, root)
                .map_err(db)?;
            write
                .open_table(META)
                .map_err(db)?
                .insert("height", height.to_le_bytes().as_slice())
                .map_err(db)?;
        }
        write.commit().map_err(db)
    }

    /// The state root after block `height`; `None` above the head.
    pub fn root(&self, height: u64) -> Result<Option<[u8; 32]>, StoreError> {
        if let Some(root) = self.lock_recent_roots().get(&height) {
            return Ok(Some(*root));
        }
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(ROOTS).map_err(db)?;
        Ok(table.get(height).map_err(db)?.map(|v| v.value()))
    }

    /// A prune in a transaction of its own, up to `head − keep`: what a pruning store's
    /// commits do as they go, for the tests to compare with.
    #[cfg(test)]
    fn prune(&self, keep: u64, limit: usize) -> Result<Pruned, StoreError> {
        let Some((head, _)) = self.head()? else {
            return Ok(Pruned::default());
        };
        let Some(cutoff) = head.checked_sub(keep) else {
            return Ok(Pruned::default());
        };
        // Durable with the next durable commit; a prune lost in a crash is done again.
        let mut write = self.db.begin_write().map_err(db)?;
        write.set_durability(Durability::None).map_err(db)?;
        let pruned = Self::prune_in(&write, cutoff, limit)?;
        write.commit().map_err(db)?;
        Ok(pruned)
    }

    /// Deletes, in `write`, the tree's nodes that no height after `cutoff` needs, at most
    /// `limit` of them, and the values only they led to, and says how many of each it deleted.
    /// Accounts and proofs stay available at the commits' last heights after the cutoff, and
    /// roots at every commit's last height; without pruning every commit's changed paths and
    /// every account's every value would stay on disk for ever.
    fn prune_in(
        write: &redb::WriteTransaction,
        cutoff: u64,
        limit: usize,
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        let mut stale = write.open_table(STALE).map_err(db)?;
        let mut nodes = write.open_table(NODES).map_err(db)?;
        let mut doomed = Vec::new();
        for entry in stale
            .range((0, &[][..])..(cutoff + 1, &[][..]))
            .map_err(db)?
            .take(limit)
        {
            let (key, _) = entry.map_err(db)?;
            let (since, node) = key.value();
            doomed.push((since, node.to_vec()));
        }
        // The keys whose old leaves go: their old values may go with them.
        let mut leaves = BTreeSet::new();
        for (since, node) in &doomed {
            if let Some(bytes) = nodes.remove(node.as_slice()).map_err(db)? {
                // Only a leaf is decoded: borsh writes `Node`'s variant index first, and an
                // internal node (up to 16 children) costs far more to decode than to skip.
                if bytes.value().first() == Some(&LEAF_TAG) {
                    if let Ok(Node::Leaf(leaf)) = borsh::from_slice::<Node>(bytes.value()) {
                        leaves.insert(leaf.key_hash().0);
                    }
                }
            }
            stale.remove((*since, node.as_slice())).map_err(db)?;
            pruned.nodes += 1;
        }
        // A height at or after the cutoff reads a key's newest value at or below it, or a
        // newer one: the older ones are read by no height kept. (A leaf moved down the tree
        // keeps its value's version, so a value goes by this rule, not with its leaf.)
        let mut values = write.open_table(VALUES).map_err(db)?;
        for key in leaves {
            let older: Vec<u64> = {
                let mut versions = values.range((key, 0)..=(key, cutoff)).map_err(db)?;
                versions.next_back();
                versions
                    .map(|entry| entry.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()
                    .map_err(db)?
            };
            for version in older {
                values.remove((key, version)).map_err(db)?;
                pruned.values += 1;
            }
        }
        Ok(pruned)
    }

    /// Makes every commit so far durable (and writes the receipt index's entries from memory
    /// if there are [`INDEX_FLUSH`] of them).
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut write = self.db.begin_write().map_err(db)?;
        write.set_durability(Durability::Immediate).map_err(db)?;
        let flush = self.lock_unsynced().len() >= self.index_flush;
        if flush {
            // Entries in memory come from commits, so there is a head.
            let (head, _) = self.head()?.ok_or(StoreError::Empty)?;
            self.write_index(&write, &[], head)?;
        }
        write.commit().map_err(db)?;
        if flush {
            self.lock_unsynced().clear();
        }
        Ok(())
    }

    /// Writes the index's entries from memory, and `extra`, as a run with the watermark after
    /// `last` — within a durable commit, after which memory is cleared.
    fn write_index(
        &self,
        write: &redb::WriteTransaction,
        extra: &[(IdPrefix, u64)],
        last: u64,
    ) -> Result<(), StoreError> {
        let entries = self.lock_unsynced().sorted_with(extra);
        receipt_runs::add(write, &entries)?;
        write
            .open_table(META)
            .map_err(db)?
            .insert(UNINDEXED, (last + 1).to_le_bytes().as_slice())
            .map_err(db)?;
        Ok(())
    }

    fn lock_unsynced(&self) -> std::sync::MutexGuard<'_, Unsynced> {
        self.unsynced.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_recent_roots(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, [u8; 32]>> {
        self.recent_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A transaction's receipt: its block's height, its index there, its failure encoding
    /// (the latest block's, should one id be in two).
    pub fn receipt(&self, id: &[u8; 32]) -> Result<Option<(u64, u32, Vec<u8>)>, StoreError> {
        let prefix = id_prefix(id);
        // Memory first, then a snapshot: a durable commit between the two has written to
        // its table what it took from memory, so no height falls between them.
        let mut heights: BTreeSet<u64> = self.lock_unsynced().heights(&prefix).collect();
        let txn = self.db.begin_read().map_err(db)?;
        receipt_runs::heights(&txn, &prefix, &mut heights)?;
        let rows = txn.open_table(BLOCK_RECEIPTS).map_err(db)?;
        for height in heights.into_iter().rev() {
            let Some(row) = rows.get(height).map_err(db)? else {
                continue;
            };
            let found = receipt_row::find(row.value(), id)
                .map_err(|_| StoreError::CorruptReceipts(height))?;
            if let Some((index, failure)) = found {
                return Ok(Some((height, index, failure.to_vec())));
            }
        }
        Ok(None)
    }

    /// An account at block `height`, without a proof.
    pub fn account_value(
        &self,
        id: &AccountId,
        height: u64,
    ) -> Result<Option<Account>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let tree = Tree { txn: &txn };
        let value = Sha256Jmt::new(&tree)
            .get(KeyHash::with::<Sha256>(id), height)
            .map_err(db)?;
        Ok(value
            .map(|bytes| decode_account(&bytes).map(|(_, a)| a))
            .transpose()?)
    }

    /// An account at block `height` with the proof of its value (or absence) against that
    /// block's state root.
    pub fn account(
        &self,
        id: &AccountId,
        height: u64,
    ) -> Result<(Option<Account>, jmt::proof::SparseMerkleProof<Sha256>), StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let tree = Tree { txn: &txn };
        let (value, proof) = Sha256Jmt::new(&tree)
            .get_with_proof(KeyHash::with::<Sha256>(id), height)
            .map_err(db)?;
        let account = value
            .map(|bytes| decode_account(&bytes).map(|(_, a)| a))
            .transpose()?;
        Ok((account, proof))
    }

    /// The ledger as of the last committed block: every account's newest value.
    pub fn ledger(&self) -> Result<Ledger, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(VALUES).map_err(db)?;
        // Keys sort by key hash, then version: the last entry of each key hash is its newest.
        let mut newest = BTreeMap::new();
        for entry in table.iter().map_err(db)? {
            let (key, value) = entry.map_err(db)?;
            newest.insert(key.value().0, value.value().to_vec());
        }
        let mut accounts = Vec::with_capacity(newest.len());
        for bytes in newest.values() {
            if let [1, value @ ..] = bytes.as_slice() {
                accounts.push(decode_account(value)?);
            }
        }
        Ok(Ledger::from_accounts(accounts))
    }
}

/// Checks `account` (or its absence) for `id` against `root` with `proof`.
pub fn verify_account(
    root: [u8; 32],
    id: &AccountId,
    account: Option<&Account>,
    proof: &jmt::proof::SparseMerkleProof<Sha256>,
) -> bool {
    let value = account.map(|a| encode_account(id, a));
    proof
        .verify(RootHash(root), KeyHash::with::<Sha256>(id), value)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;
    use crate::testing;

    fn account(nonce: u64, balances: &[(u32, u64)]) -> Account {
        Account {
            nonce,
            balances: balances.iter().copied().collect(),
            ..Account::default()
        }
    }

    fn state<'a>(
        receipts: &'a [([u8; 32], Vec<u8>)],
        changed: &'a [(AccountId, &'a Account)],
    ) -> BlockState<'a> {
        BlockState { receipts, changed }
    }

    #[test]
    fn blocks_committed_together_give_the_root_they_give_one_by_one() {
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        let accounts: Vec<Account> = (0..4).map(|n| account(n, &[(1, 100 - n)])).collect();
        let blocks = [
            vec![(alice, &accounts[0]), (bob, &accounts[1])],
            vec![(alice, &accounts[2])],
            vec![],
            vec![(bob, &accounts[3])],
        ];
        let receipts = [([7u8; 32], vec![])];
        let (_one_by_one_dir, one_by_one) = open("one-by-one");
        let roots: Vec<[u8; 32]> = (0..)
            .zip(&blocks)
            .map(|(height, changed)| {
                one_by_one
                    .commit(height, &[state(&receipts[..0], changed)], Durability::None)
                    .expect("commits")
            })
            .collect();
        let (_together_dir, together) = open("together");
        let first = together
            .commit(0, &[state(&[], &blocks[0])], Durability::None)
            .expect("commits");
        let rest: Vec<_> = blocks[1..].iter().map(|c| state(&receipts, c)).collect();
        let batched = together
            .commit(1, &rest, Durability::None)
            .expect("commits");
        assert_eq!([first, batched], [roots[0], roots[3]]);
        assert_eq!(together.head().expect("reads"), Some((3, roots[3])));
        // A root at each commit's last height only.
        for height in 0..4 {
            let kept = [0, 3].contains(&height).then_some(roots[height as usize]);
            assert_eq!(together.root(height).expect("reads"), kept);
        }
        // The receipt is the last block's: a later block's replaces the same id's.
        assert_eq!(
            together.receipt(&[7; 32]).expect("reads"),
            Some((3, 0, vec![]))
        );
        // Each commit's last height is readable; the heights inside one are not.
        for height in [0, 3] {
            let (value, proof) = together.account(&alice, height).expect("reads");
            assert!(verify_account(
                roots[height as usize],
                &alice,
                value.as_ref(),
                &proof
            ));
        }
        assert!(together.account(&alice, 1).is_err());
        assert!(together.account(&alice, 2).is_err());
        // Nothing the last height does not read was written: the nodes, values and stale
        // entries are those of one commit of the three blocks' net change.
        fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
            store: &Store,
            table: TableDefinition<K, V>,
        ) -> u64 {
            let txn = store.db.begin_read().expect("reads");
            ReadableTableMetadata::len(&txn.open_table(table).expect("table")).expect("counts")
        }
        let (_direct_dir, direct) = open("direct");
        direct
            .commit(0, &[state(&[], &blocks[0])], Durability::None)
            .expect("commits");
        let last = [(alice, &accounts[2]), (bob, &accounts[3])];
        direct
            .commit(1, &[state(&[], &last)], Durability::None)
            .expect("commits");
        assert_eq!(count(&together, NODES), count(&direct, NODES));
        assert_eq!(count(&together, VALUES), count(&direct, VALUES));
        assert_eq!(count(&together, STALE), count(&direct, STALE));
    }

    #[test]
    fn pruning_keeps_the_last_heights_provable_and_every_root() {
        let (_store_dir, store) = open("prune");
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        let mut roots = Vec::new();
        for height in 0..=30u64 {
            let a = account(height, &[(1, 100 + height)]);
            let b = account(0, &[(1, height)]);
            let changed = [(alice, &a), (bob, &b)];
            let root = store
                .commit(height, &[state(&[], &changed)], Durability::None)
                .expect("commits");
            roots.push(root);
        }
        let nodes = |store: &Store| {
            let txn = store.db.begin_read().expect("reads");
            let table = txn.open_table(NODES).expect("table");
            ReadableTableMetadata::len(&table).expect("counts")
        };
        let before = nodes(&store);
        let pruned = store.prune(5, usize::MAX).expect("prunes");
        assert!(pruned.nodes > 0);
        assert_eq!(nodes(&store), before - pruned.nodes as u64);
        assert_eq!(
            store.prune(5, usize::MAX).expect("prunes"),
            Pruned::default(),
            "nothing new"
        );
        for height in 25..=30u64 {
            let (got, proof) = store.account(&alice, height).expect("still provable");
            assert_eq!(got, Some(account(height, &[(1, 100 + height)])));
            assert!(verify_account(
                roots[height as usize],
                &alice,
                got.as_ref(),
                &proof
            ));
        }
        for (height, root) in roots.iter().enumerate() {
            assert_eq!(store.root(height as u64).expect("reads"), Some(*root));
        }
        assert!(
            store.account(&alice, 3).is_err(),
            "a pruned height's paths are gone"
        );
    }

    #[test]
    fn a_pruning_store_prunes_in_its_commits_what_a_prune_after_them_would() {
        let (_pruning_dir, pruning) = open("prune-in-commit");
        let pruning = pruning.pruning(Pruning {
            keep: 5,
            limit: usize::MAX,
        });
        let (_plain_dir, plain) = open("prune-after");
        let ids: Vec<[u8; 32]> = (1u8..=40).map(|n| [n; 32]).collect();
        for height in 0..=30u64 {
            let values: Vec<Account> = (0..8)
                .map(|n| account(height, &[(1, height * 8 + n)]))
                .collect();
            // Eight accounts a height, cycling through forty: old leaves and values go stale.
            let changed: Vec<_> = (0..8)
                .map(|n| (ids[(height as usize * 8 + n) % ids.len()], &values[n]))
                .collect();
            for store in [&pruning, &plain] {
                store
                    .commit(height, &[state(&[], &changed)], Durability::None)
                    .expect("commits");
            }
        }
        assert!(plain.prune(5, usize::MAX).expect("prunes").nodes > 0);
        let counts = |store: &Store| {
            let txn = store.db.begin_read().expect("reads");
            let nodes = ReadableTableMetadata::len(&txn.open_table(NODES).expect("table"));
            let values = ReadableTableMetadata::len(&txn.open_table(VALUES).expect("table"));
            let stale = ReadableTableMetadata::len(&txn.open_table(STALE).expect("table"));
            (
                nodes.expect("counts"),
                values.expect("counts"),
                stale.expect("counts"),
            )
        };
        assert_eq!(counts(&pruning), counts(&plain));
        assert_eq!(
            pruning.prune(5, usize::MAX).expect("prunes"),
            Pruned::default(),
            "the commits left nothing to prune"
        );
        for id in &ids {
            let (got, proof) = pruning.account(id, 30).expect("provable");
            let root = pruning.root(30).expect("reads").expect("a root");
            assert!(verify_account(root, id, got.as_ref(), &proof));
        }
    }

    #[test]
    fn pruning_drops_the_values_no_kept_height_reads_and_keeps_a_moved_leafs_value() {
        let (_store_dir, store) = open("prune-values");
        let nibble = |id: &[u8; 32]| KeyHash::with::<Sha256>(id).0[0] >> 4;
        let alice = [1u8; 32];
        // Carol, written once, alone under her first nibble until Dave arrives under the same
        // one: her leaf moves down the tree (a new node, stale old one) with her value's
        // version unchanged.
        let carol = (2u8..)
            .map(|n| [n; 32])
            .find(|id| nibble(id) != nibble(&alice))
            .expect("a key");
        let dave = (2u8..)
            .map(|n| [n; 32])
            .find(|id| *id != carol && nibble(id) == nibble(&carol))
            .expect("a key");
        let (carols, daves) = (account(0, &[(1, 7)]), account(0, &[(1, 9)]));
        for height in 0..=30u64 {
            let a = account(height, &[(1, 100 + height)]);
            let mut changed = vec![(alice, &a)];
            match height {
                0 => changed.push((carol, &carols)),
                10 => changed.push((dave, &daves)),
                _ => {}
            }
            store
                .commit(height, &[state(&[], &changed)], Durability::None)
                .expect("commits");
        }
        let pruned = store.prune(5, usize::MAX).expect("prunes");
        // Alice's values 0..=24 go; 25..=30 are read by the kept heights.
        assert_eq!(pruned.values, 25, "{pruned:?}");
        let txn = store.db.begin_read().expect("reads");
        let values = txn.open_table(VALUES).expect("table");
        assert_eq!(
            ReadableTableMetadata::len(&values).expect("counts"),
            6 + 1 + 1
        );
        drop(values);
        drop(txn);
        for (id, want) in [(carol, &carols), (dave, &daves)] {
            let root = store.root(30).expect("reads").expect("a root");
            let (got, proof) = store.account(&id, 30).expect("provable");
            assert_eq!(got.as_ref(), Some(want));
            assert!(verify_account(root, &id, got.as_ref(), &proof));
        }
        let ledger = store.ledger().expect("rebuilds");
        assert_eq!(ledger.account(&carol), Some(&carols));
        assert_eq!(ledger.account(&alice), Some(&account(30, &[(1, 130)])));
    }

    /// A store file's path in a new scratch directory, which the test keeps while it uses it.
    fn scratch(name: &str) -> (testing::Scratch, std::path::PathBuf) {
        let dir = testing::scratch(&format!("store-{name}"));
        let path = dir.join("verity.redb");
        (dir, path)
    }

    /// A new store in [`scratch`]`(name)`, after its directory in drop order.
    fn open(name: &str) -> (testing::Scratch, Store) {
        let (dir, path) = scratch(name);
        (dir, Store::open(&path).expect("opens"))
    }

    /// Two ids that share the index's eight-byte prefix, in blocks committed without and
    /// with durability: each is found in its own block, before and after reopening — with
    /// the index flushed to its table by every durable commit, and with it left in memory
    /// (read back from the rows at the reopen).
    #[test]
    fn receipts_are_found_by_id_through_shared_prefixes_and_a_reopen() {
        receipts_are_found(1, "receipts-flushed");
        receipts_are_found(INDEX_FLUSH, "receipts-in-memory");
    }

    fn receipts_are_found(flush: usize, name: &str) {
        let (_dir, path) = scratch(name);
        let mut twin = [5u8; 32];
        twin[31] = 6;
        let other = [6u8; 32];
        let receipt = |store: &Store, id| store.receipt(id).expect("reads");
        {
            let store = Store::open(&path).expect("opens").flushing_index_at(flush);
            store
                .commit(
                    0,
                    &[state(&[([5; 32], vec![3, 9, 0, 0, 0])], &[])],
                    Durability::None,
                )
                .expect("commits");
            store
                .commit(
                    1,
                    &[
                        state(&[], &[]),
                        state(&[(other, vec![]), (twin, vec![5])], &[]),
                    ],
                    Durability::None,
                )
                .expect("commits");
            assert_eq!(receipt(&store, &[5; 32]), Some((0, 0, vec![3, 9, 0, 0, 0])));
            assert_eq!(receipt(&store, &twin), Some((2, 1, vec![5])));
            store
                .commit(
                    3,
                    &[state(&[([7; 32], vec![])], &[])],
                    Durability::Immediate,
                )
                .expect("commits");
            assert_eq!(receipt(&store, &twin), Some((2, 1, vec![5])));
            assert_eq!(receipt(&store, &[7; 32]), Some((3, 0, vec![])));
        }
        let store = Store::open(&path).expect("reopens");
        let in_memory = store.lock_unsynced().len();
        assert_eq!(in_memory, if flush == 1 { 0 } else { 4 }, "{name}");
        assert_eq!(receipt(&store, &[5; 32]), Some((0, 0, vec![3, 9, 0, 0, 0])));
        assert_eq!(receipt(&store, &twin), Some((2, 1, vec![5])));
        assert_eq!(receipt(&store, &other), Some((2, 0, vec![])));
        let mut stranger = twin;
        stranger[31] = 7;
        assert_eq!(
            receipt(&store, &stranger),
            None,
            "a prefix alone finds nothing"
        );
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    /// A store from before layouts were recorded (a height, no `layout`), one of layout 2 (its
    /// receipt index in one B-tree) and one of layout 3 (roots of every 64th height) are
    /// refused with the layout they have, not read as if they had this one.
    #[test]
    fn a_store_of_an_older_layout_is_refused() {
        for (name, layout) in [
            ("layout-1", None),
            ("layout-2", Some(2u8)),
            ("layout-3", Some(3u8)),
        ] {
            let (_dir, path) = scratch(name);
            {
                let database = Database::create(&path).expect("creates");
                let txn = database.begin_write().expect("writes");
                {
                    let mut meta = txn.open_table(META).expect("table");
                    meta.insert("height", 4u64.to_le_bytes().as_slice())
                        .expect("inserts");
                    if let Some(layout) = layout {
                        meta.insert("layout", [layout].as_slice()).expect("inserts");
                    }
                }
                txn.commit().expect("commits");
            }
            let refused = Store::open(&path).err().expect("refused");
            let found = layout.unwrap_or(1);
            assert!(
                matches!(refused, StoreError::Layout { found: f } if f == found),
                "{refused}"
            );
            assert!(refused.to_string().contains("empty data directory"));
        }
    }

    #[test]
    fn a_block_that_changes_no_account_keeps_the_root_and_its_proofs() {
        let (_dir, path) = scratch("empty");
        let store = Store::open(&path).expect("opens");
        let alice = [1u8; 32];
        let first = account(0, &[(1, 5)]);
        let r0 = store
            .commit(0, &[state(&[], &[(alice, &first)])], Durability::Immediate)
            .expect("commits");
        let r1 = store
            .commit(
                1,
                &[state(&[([1; 32], vec![5])], &[])],
                Durability::Immediate,
            )
            .expect("commits");
        assert_eq!(r0, r1, "nothing changed");
        let (got, proof) = store.account(&alice, 1).expect("reads at the new height");
        assert!(verify_account(r1, &alice, got.as_ref(), &proof));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn blocks_commit_durably_with_roots_and_proofs_that_survive_reopening() {
        let (_dir, path) = scratch("commit");
        let (alice, bob, carol) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let roots = {
            let store = Store::open(&path).expect("opens");
            assert_eq!(store.head().expect("reads"), None);
            let r0 = store
                .commit(
                    0,
                    &[state(&[], &[(alice, &account(0, &[(1, 100)]))])],
                    Durability::Immediate,
                )
                .expect("commits");
            let r1 = store
                .commit(
                    1,
                    &[state(
                        &[([9; 32], vec![]), ([8; 32], vec![2, 1])],
                        &[
                            (alice, &account(1, &[(1, 60)])),
                            (bob, &account(0, &[(1, 40)])),
                        ],
                    )],
                    Durability::None,
                )
                .expect("commits");
            // Seen at once by readers, durable with the next durable commit.
            assert_eq!(store.head().expect("reads"), Some((1, r1)));
            assert_eq!(
                store.receipt(&[8; 32]).expect("reads"),
                Some((1, 1, vec![2, 1]))
            );
            store.sync().expect("syncs");
            assert_ne!(r0, r1);
            assert!(matches!(
                store.commit(3, &[state(&[], &[])], Durability::Immediate),
                Err(StoreError::OutOfOrder {
                    last: Some(1),
                    got: 3
                })
            ));
            (r0, r1)
        };
        // Reopened: the head, the receipts, the accounts and their proofs.
        let store = Store::open(&path).expect("reopens");
        assert_eq!(store.head().expect("reads"), Some((1, roots.1)));
        assert_eq!(store.root(0).expect("reads"), Some(roots.0));
        assert_eq!(store.root(1).expect("reads"), Some(roots.1));
        assert_eq!(store.root(2).expect("reads"), None);
        assert_eq!(
            store.receipt(&[8; 32]).expect("reads"),
            Some((1, 1, vec![2, 1]))
        );
        for (height, root, want) in [
            (0, roots.0, account(0, &[(1, 100)])),
            (1, roots.1, account(1, &[(1, 60)])),
        ] {
            let (got, proof) = store.account(&alice, height).expect("reads");
            assert_eq!(got.as_ref(), Some(&want), "height {height}");
            assert!(verify_account(root, &alice, got.as_ref(), &proof));
            // The proof does not prove another value, nor the value against another root.
            let other = account(9, &[]);
            assert!(!verify_account(root, &alice, Some(&other), &proof));
            let wrong_root = if height == 0 { roots.1 } else { roots.0 };
            assert!(!verify_account(wrong_root, &alice, got.as_ref(), &proof));
        }
        // Carol never existed: her absence is proven too.
        let (none, proof) = store.account(&carol, 1).expect("reads");
        assert_eq!(none, None);
        assert!(verify_account(roots.1, &carol, None, &proof));
        let ledger = store.ledger().expect("rebuilds");
        assert_eq!(ledger.balance(&alice, 1), 60);
        assert_eq!(ledger.balance(&bob, 1), 40);
        assert_eq!(ledger.nonce(&alice), 1);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
