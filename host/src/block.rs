//! A block's bytes: a 48-byte header, then its transactions back to back.
//!
//! ```text
//! height (u64 LE) ‖ root height (u64 LE) ‖ state root at root height (32) ‖ transactions
//! ```
//!
//! The transactions are back to back, each as long as its own first four bytes say
//! ([`crate::transaction::split_first`]).
//!
//! The header names the state root at an earlier height: [`ROOT_LAG`] blocks back, rounded
//! down to a multiple of [`ROOT_EPOCH`] (the genesis root for the first blocks). The block's
//! proposer knows it without waiting for the state of the block before, which is committed
//! behind the log, and the state stage computes a root only every [`ROOT_EPOCH`] blocks. Since a commit certificate
//! decides the block's id — the SHA-256 of all these bytes — it certifies that root too: a
//! replica that fetches a snapshot checks it against a root a quorum signed for. Every
//! replica checks a proposed block's root against its own before it votes, and refuses to
//! execute a block whose root is not its own (its state would have diverged from the
//! quorum's). Block 0, genesis, is empty.

/// The header's length.
pub const HEADER_LEN: usize = 48;
/// How many blocks back the state root in a header is, so that building a block does not
/// wait for the state stage: it commits an epoch's version after the epoch's last block, and
/// the first block to carry that root comes this many blocks later. This is how long the
/// state stage may trail before the builder waits: 0.65 s of the 1,500–1,600 blocks a second
/// the pipeline cuts at 120,000 tx/s with 250 µs blocks, about 1.7 s of 1 ms blocks. Each
/// second it pauses for a checkpoint (an fsync, 60–120 ms here), and every 2^20 receipts
/// that checkpoint also writes the receipt index's run (150–300 ms more), all under
/// `SCHED_IDLE` beside busy verification workers. With 128 (about 270 ms of 2 ms blocks),
/// that pause made the builder wait 100–140 ms about every 9 s at 120,000 tx/s; with 512 and
/// 64-block epochs, 250 µs blocks made it wait 200–700 ms in most 3 s runs, and even 2,048
/// did not help: the state stage could not keep up (see [`ROOT_EPOCH`]).
pub const ROOT_LAG: u64 = 1024;
/// Headers carry the roots of heights that are multiples of this only. The state of the
/// blocks between is never needed as a root, so the state stage commits this many blocks as
/// one version of the tree: each account and each tree node they changed is hashed and
/// written once, not once a block. A version costs about the same whatever the number of
/// blocks in it when the same accounts trade (25–30 ms for 1,000 accounts here), so this sets
/// how often the state stage pays it. With 64, the 1,000–1,100 blocks a second of 250 µs
/// blocks at 120,000 tx/s made it 4.6–4.8 µs a transaction, more than the sequence stage,
/// and it fell behind; with 256, 2.3 (host/README.md, Figures).
pub const ROOT_EPOCH: u64 = 256;

/// The height whose state root block `height` carries.
pub fn root_height(height: u64) -> u64 {
    height.saturating_sub(ROOT_LAG) / ROOT_EPOCH * ROOT_EPOCH
}

/// Whether some block's header carries the state root at `height`.
pub fn root_carried(height: u64) -> bool {
    height.is_multiple_of(ROOT_EPOCH)
}

/// A block's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The block's height.
    pub height: u64,
    /// The height of the state root it carries.
    pub root_height: u64,
    /// The state root after block `root_height`.
    pub state_root: [u8; 32],
}

/// Why bytes are not a block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Shorter than a header.
    #[error("a block of {0} bytes is shorter than its header")]
    Length(usize),
    /// A root height that is not the one its height gives.
    #[error("block {height} carries the root of height {root_height}, not of {expected}")]
    RootHeight {
        /// The block's height.
        height: u64,
        /// The root height it carries.
        root_height: u64,
        /// The one it should.
        expected: u64,
    },
}

impl Header {
    /// The header of block `height`, carrying `state_root` (the root at
    /// [`root_height`]`(height)`).
    pub fn new(height: u64, state_root: [u8; 32]) -> Self {
        Self {
            height,
            root_height: root_height(height),
            state_root,
        }
    }

    /// Its bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&self.height.to_le_bytes());
        out[8..16].copy_from_slice(&self.root_height.to_le_bytes());
        out[16..].copy_from_slice(&self.state_root);
        out
    }
}

/// A block: `header` then `transactions`.
pub fn assemble<T: AsRef<[u8]>>(header: &Header, transactions: &[T]) -> Vec<u8> {
    let len = transactions
        .iter()
        .map(|tx| tx.as_ref().len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    out.extend_from_slice(&header.encode());
    for tx in transactions {
        out.extend_from_slice(tx.as_ref());
    }
    out
}

/// A block's header and its transactions' bytes; checks the header's length and that the
/// root height is the one the height gives (the transactions are the reader's to split).
pub fn split(block: &[u8]) -> Result<(Header, &[u8]), BlockError> {
    if block.len() < HEADER_LEN {
        return Err(BlockError::Length(block.len()));
    }
    let word = |at: usize| u64::from_le_bytes(block[at..at + 8].try_into().expect("8 bytes"));
    let header = Header {
        height: word(0),
        root_height: word(8),
        state_root: block[16..HEADER_LEN].try_into().expect("32 bytes"),
    };
    let expected = root_height(header.height);
    if header.root_height != expected {
        return Err(BlockError::RootHeight {
            height: header.height,
            root_height: header.root_height,
            expected,
        });
    }
    Ok((header, &block[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_splits_into_its_header_and_transactions() {
        let header = Header::new(ROOT_LAG + ROOT_EPOCH + 3, [9; 32]);
        assert_eq!(header.root_height, ROOT_EPOCH, "rounded down to the epoch");
        let txs = [vec![1u8; 160], vec![2u8; 232]];
        let block = assemble(&header, &txs);
        assert_eq!(block.len(), HEADER_LEN + 160 + 232);
        let (back, rest) = split(&block).expect("a block");
        assert_eq!(back, header);
        assert_eq!(rest, txs.concat());
        assert_eq!(
            Header::new(3, [0; 32]).root_height,
            0,
            "genesis's root early on"
        );

        assert_eq!(split(&block[..47]), Err(BlockError::Length(47)));
        let mut lying = block.clone();
        lying[8] = 35;
        assert!(matches!(split(&lying), Err(BlockError::RootHeight { .. })));
    }

    #[test]
    fn every_carried_root_height_is_an_epoch_and_each_epoch_is_carried() {
        for height in 0..ROOT_LAG + 5 * ROOT_EPOCH {
            let carried = root_height(height);
            assert!(root_carried(carried), "block {height} carries {carried}");
            assert!(carried + ROOT_LAG <= height.max(ROOT_LAG));
            assert!(height < ROOT_LAG + ROOT_EPOCH || carried + ROOT_LAG + ROOT_EPOCH > height);
        }
        // The first block to carry an epoch's root is the one ROOT_LAG later.
        assert_eq!(root_height(ROOT_LAG + 3 * ROOT_EPOCH), 3 * ROOT_EPOCH);
        assert_eq!(root_height(ROOT_LAG + 3 * ROOT_EPOCH - 1), 2 * ROOT_EPOCH);
    }
}
