//! The replica's chain: the ledger in memory, the store on disk, and the step that takes an
//! ordered block from one height to the next — execute, then commit — the stage after
//! ordering, whichever orders (a single sequencer now, BFT consensus later).
//!
//! A block is its transactions' bytes back to back (160 each, `transaction::TX_LEN`), in
//! the order decided. [`Chain::execute`] applies it to the ledger, writes the block, its
//! receipts and every account it touched in one durable transaction, and only then moves the
//! ledger in memory forward: what a client is told was committed is on disk. Reopening a
//! store resumes at its head with the same ledger and root.

use std::collections::BTreeSet;
use std::path::Path;

use thiserror::Error;

use crate::genesis::Genesis;
use crate::ledger::{AccountId, Ledger, Receipt, Rules};
use crate::store::{Store, StoreError};
use crate::transaction::{Body, Payload, Transaction, TxError, TX_LEN};

/// Why a block could not be executed or committed.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The store failed: nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block's bytes are not whole transactions (ordering hands over only decoded ones).
    #[error("block transaction {index}: {error}")]
    Transaction {
        /// Its place in the block.
        index: usize,
        /// Why.
        error: TxError,
    },
    /// Genesis balances overflow.
    #[error("genesis balances overflow")]
    Genesis,
}

/// A committed block's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its height.
    pub height: u64,
    /// The state root after it.
    pub root: [u8; 32],
    /// A receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
}

/// The replica's chain.
pub struct Chain {
    rules: Rules,
    store: Store,
    ledger: Ledger,
    head: (u64, [u8; 32]),
}

impl Chain {
    /// Opens the chain stored at `path`; a new store starts at block 0 with `genesis`'s
    /// balances.
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Self, ChainError> {
        let rules = genesis.rules.clone();
        let store = Store::open(path)?;
        if let Some(head) = store.head()? {
            let ledger = store.ledger()?;
            return Ok(Self {
                rules,
                store,
                ledger,
                head,
            });
        }
        let ledger = Ledger::genesis(&genesis.balances).map_err(|_| ChainError::Genesis)?;
        let accounts: Vec<_> = ledger.accounts.iter().map(|(id, a)| (*id, a)).collect();
        let root = store.commit(0, &[], &[], &accounts)?;
        Ok(Self {
            rules,
            store,
            ledger,
            head: (0, root),
        })
    }

    /// The last committed height and state root.
    pub fn head(&self) -> (u64, [u8; 32]) {
        self.head
    }

    /// The ledger as of the head.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The store, for reads (blocks, receipts, proofs).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Executes `block` and commits it as the next height.
    pub fn execute(&mut self, block: &[u8]) -> Result<Committed, ChainError> {
        let transactions = block
            .chunks(TX_LEN)
            .enumerate()
            .map(|(index, bytes)| {
                Transaction::decode(bytes).map_err(|error| ChainError::Transaction { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (next, receipts) = self.ledger.apply(&self.rules, &transactions);
        // Every account a transaction names, whose value the block changed.
        let named: BTreeSet<AccountId> = transactions
            .iter()
            .flat_map(|tx| {
                let (Payload::Transfer(Body { to, .. }) | Payload::Mint(Body { to, .. })) =
                    tx.payload();
                [*tx.sender(), to]
            })
            .collect();
        let changed: Vec<_> = named
            .iter()
            .filter_map(|id| {
                let after = next.accounts.get(id)?;
                (self.ledger.accounts.get(id) != Some(after)).then_some((*id, after))
            })
            .collect();
        let stored: Vec<([u8; 32], Vec<u8>)> = receipts
            .iter()
            .map(|r| (r.tx.0, r.failure.map_or_else(Vec::new, |f| f.encode())))
            .collect();
        let height = self.head.0 + 1;
        let root = self.store.commit(height, block, &stored, &changed)?;
        self.ledger = next;
        self.head = (height, root);
        Ok(Committed {
            height,
            root,
            receipts,
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::ledger::Failure;
    use crate::store::verify_account;
    use crate::testing::{self, id};

    fn genesis() -> Genesis {
        Genesis {
            rules: Rules {
                chain_id: 3,
                assets: [1].into(),
                issuers: [].into(),
            },
            balances: vec![(id(1), 1, 100)],
        }
    }

    fn transfer(from: u8, nonce: u64, to: u8, amount: u64) -> [u8; TX_LEN] {
        testing::transfer(3, from, nonce, to, 1, amount)
    }

    #[test]
    fn blocks_execute_commit_and_resume_after_reopening() {
        let dir = testing::scratch("chain");
        let path = dir.join("verity.redb");
        let (head, ledger) = {
            let mut chain = Chain::open(&path, &genesis()).expect("opens");
            assert_eq!(chain.head().0, 0);
            let block = [transfer(1, 0, 2, 30), transfer(1, 0, 2, 5)].concat();
            let committed = chain.execute(&block).expect("commits");
            assert_eq!(committed.height, 1);
            assert_eq!(committed.receipts[0].failure, None);
            assert_eq!(
                committed.receipts[1].failure,
                Some(Failure::BadNonce {
                    expected: 1,
                    got: 0
                })
            );
            // Receipts are stored with their failure.
            let (height, index, failure) = chain
                .store()
                .receipt(&committed.receipts[1].tx.0)
                .expect("reads")
                .expect("stored");
            assert_eq!((height, index), (1, 1));
            assert_eq!(Failure::decode(&failure), committed.receipts[1].failure);
            chain.execute(&transfer(2, 0, 3, 10)).expect("commits");
            // A block that is not whole transactions commits nothing.
            assert!(matches!(
                chain.execute(&[0u8; 100]),
                Err(ChainError::Transaction { index: 0, .. })
            ));
            (chain.head(), chain.ledger().clone())
        };
        let chain = Chain::open(&path, &genesis()).expect("reopens");
        assert_eq!(chain.head(), head);
        assert_eq!(chain.ledger(), &ledger);
        assert_eq!(ledger.balance(&id(1), 1), 70);
        assert_eq!(ledger.balance(&id(2), 1), 20);
        assert_eq!(ledger.balance(&id(3), 1), 10);
        let (account, proof) = chain.store().account(&id(2), head.0).expect("reads");
        assert!(verify_account(head.1, &id(2), account.as_ref(), &proof));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
