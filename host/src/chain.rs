//! The replica's chain: the ledger in memory, the block log and the state store on disk, and
//! the step that takes an ordered block from one height to the next — the stage after
//! ordering, whichever orders (a single sequencer now, BFT consensus later).
//!
//! A block is its transactions' bytes back to back (each as long as its kind says, see
//! [`crate::transaction`]), in the order decided. [`Chain::execute_then`] applies it to the
//! ledger, moves the ledger in memory forward and hands the block to the log stage, a thread
//! that appends the blocks queued behind one another in one durable commit (group commit)
//! and only then says so — what a client is told was committed is on disk, and the next
//! block executes while this one's fsync runs. [`Chain::execute`] waits for that. The state —
//! receipts, accounts, the state root — is committed behind the log by a thread of its own
//! (the state stage), durably at least once a second, so the Merkle tree's scattered writes
//! stay off the acknowledgement's path. Reopening a chain replays the blocks the state store
//! had not made durable, so the ledger and the root are again those of the log's last block.
//!
//! ```text
//! execute ─▶ apply (pure) ─▶ ledger moves ─▶ [log stage: block log (fsync), then Durable]
//!                                                        ─▶ [state stage: jmt + receipts]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use thiserror::Error;
use tracing::{debug, error, info};

use crate::block::{self, BlockError, Header};
use crate::block_log::BlockLog;
use crate::genesis::Genesis;
use crate::ledger::{Account, AccountId, Changes, Event, Ledger, Receipt, Rules};
use crate::snapshot::Snapshots;
use crate::store::{BlockState, Durability, Pruning, Store, StoreError};
use crate::transaction::{self, Transaction, TxError};

/// The block log's directory in the data directory.
pub const LOG_FILE: &str = "blocks";
/// The state store's file in the data directory.
pub const STATE_FILE: &str = "state.redb";
/// The longest the state store goes without a durable commit (what a crash makes the next
/// open replay, at most, besides the state stage's queue).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The heights at which accounts stay provable (those a state commit ended at); older tree
/// nodes are pruned (roots are kept at every height a commit ended at).
pub const KEEP_HEIGHTS: u64 = 10_000;
/// The most tree nodes one state commit prunes: several times what a commit of an epoch of
/// full blocks makes stale, so pruning keeps up and a backlog (after `KEEP_HEIGHTS` is
/// lowered) drains in bounded steps.
const PRUNE_LIMIT: usize = 100_000;
/// Blocks queued for the state stage; what a busy state stage has no room for waits in the
/// log stage's backlog ([`STATE_BACKLOG`]).
const STATE_QUEUE: usize = 64;
/// Blocks the log may fall behind execution before `execute_then` waits for it.
const LOG_QUEUE: usize = 64;

/// Why a block could not be executed or committed.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The store or the log failed: nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log stage or the state stage failed (or stopped): the chain takes no more blocks
    /// (restart replays the log).
    #[error("the chain takes no more blocks: {0}")]
    State(String),
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
    /// Not a block: no header, or not whole transactions.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A block for another height than the next.
    #[error("block {got} offered, the next is {next}")]
    Height {
        /// The next height.
        next: u64,
        /// The block's.
        got: u64,
    },
    /// A block whose state root is not this replica's: executing it would build on a state
    /// the block's proposer (and, once decided, a quorum) does not hold.
    #[error("block {height} carries state root {carried} at height {root_height}; this replica's is {ours}")]
    Diverged {
        /// The block's height.
        height: u64,
        /// The root's height.
        root_height: u64,
        /// The root it carries (hex).
        carried: String,
        /// This replica's (hex).
        ours: String,
    },
    /// The state root of a height is not known (beyond the head).
    #[error("no state root for height {0}")]
    NoRoot(u64),
    /// The state root of a height before the snapshot this replica started from: it has
    /// none (a certificate vouches for the blocks that carry it).
    #[error("height {0} is before this replica's snapshot")]
    BeforeSnapshot(u64),
}

/// A committed block's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its height.
    pub height: u64,
    /// A receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Its transactions' senders: the only accounts whose nonce a block moves.
    pub senders: BTreeSet<AccountId>,
}

/// The queue in front of the log stage and the state stage behind it, shared by the chain and
/// its [`StateFlush`] handles; the chain empties it when it stops the stages, so a handle
/// never keeps them running.
type StateQueue = Arc<Mutex<Option<Sender<LogWork>>>>;

/// Makes the state stage commit every block the chain executed before the call (without an
/// fsync: the log is what is durable), so that a read of the store that follows sees them. The
/// stage holds blocks short of a height that is read (`STATE_HOLD`); a client told its
/// transaction committed expects to read it at once.
#[derive(Clone)]
pub struct StateFlush {
    queue: StateQueue,
}

impl StateFlush {
    /// Waits for the commit; `Err` if the state stage has stopped or failed.
    pub fn flush(&self) -> Result<(), ChainError> {
        flush_queue(&self.queue, &|| ChainError::State("stopped".to_owned()))
    }
}

/// Sends `work` to the stage behind `queue`, or hands it back once the stage has stopped. The
/// sender is a clone dropped on return, so a caller waiting for an answer holds none and the
/// stage can still end when the chain empties the queue. (Boxed: the error path is rare, and
/// a block's work is large.)
fn send_to(queue: &StateQueue, work: LogWork) -> Result<(), Box<LogWork>> {
    let sender = queue.lock().unwrap_or_else(PoisonError::into_inner).clone();
    match sender {
        Some(sender) => sender.send(work).map_err(|unsent| Box::new(unsent.0)),
        None => Err(Box::new(work)),
    }
}

/// Makes the stage behind `queue` commit every block sent to it, and waits for it.
fn flush_queue(queue: &StateQueue, stopped: &dyn Fn() -> ChainError) -> Result<(), ChainError> {
    let (answer, answered) = bounded(1);
    send_to(queue, LogWork::State(StateWork::Flush(answer))).map_err(|_| stopped())?;
    answered
        .recv()
        .map_err(|_| ChainError::State("stopped".to_owned()))
}

/// One block's state, for the state stage.
struct BlockWork {
    height: u64,
    receipts: Vec<([u8; 32], Vec<u8>)>,
    changes: Changes,
    /// The state at this height is read after its commit (a root a header carries, a
    /// snapshot's): it ends a commit.
    readable: bool,
}

/// Told on the log stage's thread once a block [`Chain::execute_then`] executed is durable in
/// the block log, or will never be; it must not block.
pub type Durable = Box<dyn FnOnce(Result<(), ChainError>) + Send>;

/// A block to make durable, its state for the state stage after that, and whom to tell.
struct Append {
    block: Vec<u8>,
    certificate: Option<Vec<u8>>,
    state: BlockWork,
    durable: Durable,
}

/// What the log stage is given: blocks in height order, and the state stage's requests, which
/// it passes on behind the blocks sent before them.
enum LogWork {
    Append(Append),
    State(StateWork),
}

/// What the state stage is given.
enum StateWork {
    Block(BlockWork),
    /// Make everything so far durable and answer with the state's head.
    Sync(Sender<Result<(u64, [u8; 32]), String>>),
    /// Commit everything so far (not necessarily durably: the log is) and answer.
    Flush(Sender<()>),
}

/// The replica's chain.
pub struct Chain {
    rules: Rules,
    log: BlockLog,
    store: Store,
    ledger: Ledger,
    height: u64,
    /// The log's first height: 0, or the snapshot this replica started from.
    first: u64,
    state: Option<(StateQueue, JoinHandle<()>)>,
    failed: Arc<Mutex<Option<String>>>,
    snapshots: Option<Snapshotting>,
}

/// Snapshots every `every` blocks, written by a thread of their own.
struct Snapshotting {
    every: u64,
    queue: Option<Sender<(u64, BTreeMap<AccountId, Account>)>>,
    writer: Option<JoinHandle<()>>,
}

/// Counts the liquidations and settlements of block `height` (`verity_liquidations_total`,
/// `verity_settlements_total`) and logs them: each at debug, the block's count at info.
fn count_book_events(changes: &Changes, height: u64) {
    let (mut liquidated, mut settled) = (0u64, 0u64);
    for (id, account) in changes {
        for event in account.history.iter().rev() {
            match event {
                Event::Liquidated(l) if l.height == height => {
                    liquidated += 1;
                    debug!(account = %hex::encode(id), height, equity = %l.equity,
                        maintenance = %l.maintenance, shortfall = %l.shortfall, "liquidated");
                }
                Event::Settled(s) if s.height == height => settled += 1,
                _ => break,
            }
        }
    }
    if liquidated + settled > 0 {
        metrics::counter!("verity_liquidations_total").increment(liquidated);
        metrics::counter!("verity_settlements_total").increment(settled);
        info!(height, liquidated, settled, "the options book acted");
    }
}

/// The directory snapshots go in, under the data directory.
pub const SNAPSHOTS_DIR: &str = "snapshots";

fn encoded(receipts: &[Receipt]) -> Vec<([u8; 32], Vec<u8>)> {
    receipts
        .iter()
        .map(|r| (r.tx.0, r.failure.map_or_else(Vec::new, |f| f.encode())))
        .collect()
}

fn decode_block(block: &[u8]) -> Result<(Header, Vec<Transaction<'_>>), ChainError> {
    let (header, transactions) = block::split(block)?;
    let decoded = transaction::split_all(transactions)
        .enumerate()
        .map(|(index, tx)| tx.map_err(|error| ChainError::Transaction { index, error }))
        .collect::<Result<_, _>>()?;
    Ok((header, decoded))
}

impl Chain {
    /// Opens the chain stored in `dir` (created if need be); a new one starts at block 0
    /// with `genesis`'s balances.
    pub fn open(dir: &Path, genesis: &Genesis) -> Result<Self, ChainError> {
        let rules = genesis.rules.clone();
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(e.to_string()))?;
        let log = BlockLog::open(&dir.join(LOG_FILE))?;
        let store = Store::open(&dir.join(STATE_FILE))?.pruning(Pruning {
            keep: KEEP_HEIGHTS,
            limit: PRUNE_LIMIT,
        });
        if log.head()?.is_none() {
            log.append(0, &[])?;
        }
        let mut ledger = match store.head()? {
            Some(_) => store.ledger()?,
            None => {
                let ledger = Ledger::genesis(&genesis.balances).map_err(|_| ChainError::Genesis)?;
                let accounts: Vec<_> = ledger.accounts().map(|(id, a)| (*id, a)).collect();
                let genesis = BlockState {
                    receipts: &[],
                    changed: &accounts,
                };
                store.commit(0, &[genesis], Durability::Immediate)?;
                ledger
            }
        };
        // Replay what the state store lost.
        let (state_height, _) = store.head()?.ok_or(StoreError::Empty)?;
        let height = log.head()?.ok_or(StoreError::Empty)?;
        if height > state_height {
            info!(
                from = state_height + 1,
                to = height,
                "replaying the block log"
            );
        }
        // One commit per span of blocks that ends where a root is carried, as the state stage
        // commits when behind.
        let mut span = Vec::new();
        for h in state_height + 1..=height {
            let block = log.block(h)?.ok_or(StoreError::Empty)?;
            let (_, transactions) = decode_block(&block)?;
            let (changes, receipts) = ledger.apply(&rules, h, &transactions);
            ledger.merge(changes.clone());
            span.push(BlockWork {
                height: h,
                receipts: encoded(&receipts),
                changes,
                readable: block::root_carried(h),
            });
            if block::root_carried(h) || h == height {
                commit_blocks(&store, h + 1 - span.len() as u64, &span, Durability::None)?;
                span.clear();
            }
        }
        store.sync()?;
        let failed = Arc::new(Mutex::new(None));
        let (work, queue) = bounded(STATE_QUEUE);
        let (stage_store, stage_failed) = (store.clone(), Arc::clone(&failed));
        let state_thread = std::thread::Builder::new()
            .name("state".into())
            .spawn(move || state_stage(&stage_store, &queue, &stage_failed, STATE_HOLD))
            .map_err(|e| ChainError::State(e.to_string()))?;
        let (append, appends) = bounded(LOG_QUEUE);
        let (stage_log, stage_failed) = (log.clone(), Arc::clone(&failed));
        let stage = std::thread::Builder::new()
            .name("log".into())
            .spawn(move || {
                log_stage(&stage_log, &appends, &work, &stage_failed);
                // The state stage ends once it has what the log stage passed on.
                drop(work);
                let _ = state_thread.join();
            })
            .map_err(|e| ChainError::State(e.to_string()))?;
        let first = log.first()?.unwrap_or(0);
        Ok(Self {
            rules,
            log,
            store,
            ledger,
            height,
            first,
            state: Some((Arc::new(Mutex::new(Some(append))), stage)),
            failed,
            snapshots: None,
        })
    }

    /// The chain (venue) id: transactions signed for another are void here.
    pub fn chain_id(&self) -> u32 {
        self.rules.chain_id
    }

    /// The last executed height: durable in the log once its [`Durable`] is told
    /// ([`Chain::execute`] returns after that).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The ledger as of that height.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The state store, for reads (receipts, accounts and proofs, roots); it may trail the
    /// log by the state stage's queue.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The block log, for reads.
    pub fn log(&self) -> &BlockLog {
        &self.log
    }

    fn state_failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The error once the state stage has stopped: its failure, if it failed.
    fn stopped(&self) -> ChainError {
        ChainError::State(self.state_failure().unwrap_or_else(|| "stopped".to_owned()))
    }

    fn send(&self, work: LogWork) -> Result<(), ChainError> {
        let (queue, _) = self.state.as_ref().ok_or_else(|| self.stopped())?;
        send_to(queue, work).map_err(|_| self.stopped())
    }

    /// Hands `append` to the log stage; if it has stopped, the block's `Durable` is told so
    /// (each is told exactly once).
    fn append(&self, append: Append) -> Result<(), ChainError> {
        let work = LogWork::Append(append);
        let sent = match &self.state {
            Some((queue, _)) => send_to(queue, work),
            None => Err(Box::new(work)),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(unsent) => {
                if let LogWork::Append(append) = *unsent {
                    (append.durable)(Err(self.stopped()));
                }
                Err(self.stopped())
            }
        }
    }

    /// A handle that makes the state stage commit what it holds, for readers of the store
    /// beside the chain (the API): `None` once the stage has stopped.
    pub fn state_flush(&self) -> Option<StateFlush> {
        self.state.as_ref().map(|(queue, _)| StateFlush {
            queue: Arc::clone(queue),
        })
    }

    /// The state root after block `height`, waiting for the state stage if it has not
    /// committed that height yet.
    pub fn root_at(&self, height: u64) -> Result<[u8; 32], ChainError> {
        if height > self.height {
            return Err(ChainError::NoRoot(height));
        }
        if height < self.first {
            return Err(ChainError::BeforeSnapshot(height));
        }
        if let Some(root) = self.store.root(height)? {
            return Ok(root);
        }
        // The state stage is behind: wait for it to commit what it holds, without the fsync
        // a sync costs (the root is the same either way; the log is what is durable). The
        // block builder waits with it, so the wait is counted.
        let began = Instant::now();
        self.flush()?;
        metrics::histogram!("verity_root_wait_seconds").record(began.elapsed());
        self.store.root(height)?.ok_or(ChainError::NoRoot(height))
    }

    /// The next block, of `transactions`, with its header.
    pub fn next_block<T: AsRef<[u8]>>(&self, transactions: &[T]) -> Result<Vec<u8>, ChainError> {
        let height = self.height + 1;
        let root = self.root_at(block::root_height(height))?;
        Ok(block::assemble(&Header::new(height, root), transactions))
    }

    /// Executes `block` (header and transactions, `block`'s layout) and commits it as the
    /// next height: durable in the log when this returns, its state committed behind. A block
    /// for another height, or whose state root is not this replica's, is refused.
    pub fn execute(&mut self, block: &[u8]) -> Result<Committed, ChainError> {
        self.execute_certified(block, None)
    }

    /// Executes `block`, which consensus decided with `certificate` (encoded), and commits
    /// both as the next height, durable when this returns.
    pub fn execute_certified(
        &mut self,
        block: &[u8],
        certificate: Option<&[u8]>,
    ) -> Result<Committed, ChainError> {
        let (answer, answered) = bounded(1);
        let committed =
            self.execute_then(block.to_vec(), certificate.map(<[u8]>::to_vec), |_| {
                Box::new(move |durable| {
                    let _ = answer.send(durable);
                })
            })?;
        answered.recv().map_err(|_| self.stopped())??;
        Ok(committed)
    }

    /// Executes `block` (with `certificate`, if consensus decided it) as the next height and
    /// returns its outcome at once, before it is durable: the ledger has moved, and the next
    /// block may execute. The log stage then appends it and tells the [`Durable`] that
    /// `then` makes from the outcome — the moment to acknowledge its transactions. A block
    /// for another height, or whose state root is not this replica's, is refused; a failed
    /// append stops the chain (its ledger has moved past the log; reopening replays the log).
    pub fn execute_then(
        &mut self,
        block: Vec<u8>,
        certificate: Option<Vec<u8>>,
        then: impl FnOnce(&Committed) -> Durable,
    ) -> Result<Committed, ChainError> {
        if let Some(reason) = self.state_failure() {
            return Err(ChainError::State(reason));
        }
        let (header, transactions) = decode_block(&block)?;
        let height = self.height + 1;
        if header.height != height {
            return Err(ChainError::Height {
                next: height,
                got: header.height,
            });
        }
        let ours = match self.root_at(header.root_height) {
            Ok(ours) => ours,
            // Joined from a snapshot after that height: the block's certificate vouches.
            Err(ChainError::BeforeSnapshot(_)) => header.state_root,
            Err(error) => return Err(error),
        };
        if ours != header.state_root {
            metrics::counter!("verity_diverged_total").increment(1);
            return Err(ChainError::Diverged {
                height,
                root_height: header.root_height,
                carried: hex::encode(header.state_root),
                ours: hex::encode(ours),
            });
        }
        let (changes, receipts) = self.ledger.apply(&self.rules, height, &transactions);
        count_book_events(&changes, height);
        let senders = transactions.iter().map(|tx| *tx.sender()).collect();
        let committed = Committed {
            height,
            receipts,
            senders,
        };
        let snapshot = self
            .snapshots
            .as_ref()
            .is_some_and(|s| height.is_multiple_of(s.every));
        let state = BlockWork {
            height,
            receipts: encoded(&committed.receipts),
            changes: changes.clone(),
            readable: snapshot || block::root_carried(height),
        };
        self.append(Append {
            block,
            certificate,
            state,
            durable: then(&committed),
        })?;
        self.height = height;
        self.ledger.merge(changes);
        if let Some(snapshotting) = &self.snapshots {
            if snapshot {
                let accounts = self.ledger.accounts().map(|(id, a)| (*id, a.clone()));
                let state = (height, accounts.collect());
                // One at a time: a snapshot still being written makes this one skipped.
                let sent = snapshotting.queue.as_ref().map(|q| q.try_send(state));
                if !matches!(sent, Some(Ok(()))) {
                    metrics::counter!("verity_snapshots_skipped_total").increment(1);
                }
            }
        }
        Ok(committed)
    }

    /// Writes a snapshot of the state in `dir/snapshots` every `every` blocks from here on,
    /// keeping the `keep` newest. Each is written once the state store holds its height's
    /// root, on a thread of its own, so execution does not wait for it.
    pub fn snapshot_every(&mut self, dir: &Path, every: u64, keep: usize) {
        if every == 0 {
            return;
        }
        let snapshots = Snapshots::new(&dir.join(SNAPSHOTS_DIR));
        let store = self.store.clone();
        let (queue, taken) = bounded::<(u64, BTreeMap<AccountId, Account>)>(1);
        let writer = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                crate::priority::background();
                for (height, accounts) in taken {
                    let began = Instant::now();
                    // The state stage commits the root within its checkpoint interval.
                    let root = loop {
                        match store.root(height) {
                            Ok(Some(root)) => break Some(root),
                            Ok(None) if began.elapsed() < 10 * CHECKPOINT_EVERY => {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            _ => break None,
                        }
                    };
                    let Some(root) = root else {
                        metrics::counter!("verity_snapshots_skipped_total").increment(1);
                        continue;
                    };
                    match snapshots.write(height, root, &accounts, &store, keep) {
                        Ok(manifest) => info!(
                            height,
                            accounts = manifest.accounts,
                            chunks = manifest.chunks.len(),
                            seconds = began.elapsed().as_secs_f64(),
                            "snapshot written"
                        ),
                        Err(e) => error!(height, error = %e, "the snapshot was not written"),
                    }
                }
            })
            .ok();
        self.snapshots = Some(Snapshotting {
            every,
            queue: Some(queue),
            writer,
        });
    }

    /// Waits for the state stage to commit every block executed so far, durably, and
    /// returns the height and its state root.
    pub fn sync(&self) -> Result<(u64, [u8; 32]), ChainError> {
        let (answer, answered) = bounded(1);
        self.send(LogWork::State(StateWork::Sync(answer)))?;
        answered
            .recv()
            .map_err(|_| ChainError::State("stopped".to_owned()))?
            .map_err(ChainError::State)
    }

    /// Waits until the state stage has committed every block sent to it.
    fn flush(&self) -> Result<(), ChainError> {
        let (queue, _) = self.state.as_ref().ok_or_else(|| self.stopped())?;
        flush_queue(queue, &|| self.stopped())
    }

    /// Syncs the state, stops the state stage, and returns the head (height, state root).
    pub fn close(mut self) -> Result<(u64, [u8; 32]), ChainError> {
        let head = self.sync();
        self.stop_stage();
        head
    }

    fn stop_stage(&mut self) {
        if let Some(mut snapshotting) = self.snapshots.take() {
            drop(snapshotting.queue.take());
            if let Some(writer) = snapshotting.writer.take() {
                let _ = writer.join();
            }
        }
        if let Some((queue, stage)) = self.state.take() {
            // Handles share the queue; emptying it is what lets the stage end.
            drop(queue.lock().unwrap_or_else(PoisonError::into_inner).take());
            let _ = stage.join();
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.stop_stage();
    }
}

/// Commits consecutive blocks from `first` on in one store transaction ([`Store::commit`]).
fn commit_blocks(
    store: &Store,
    first: u64,
    blocks: &[BlockWork],
    durability: Durability,
) -> Result<[u8; 32], StoreError> {
    let changed: Vec<Vec<_>> = blocks
        .iter()
        .map(|work| work.changes.iter().map(|(id, a)| (*id, a)).collect())
        .collect();
    let states: Vec<BlockState<'_>> = blocks
        .iter()
        .zip(&changed)
        .map(|(work, changed)| BlockState {
            receipts: &work.receipts,
            changed,
        })
        .collect();
    store.commit(first, &states, durability)
}

/// The most blocks the state stage commits in one transaction: an epoch, so that a commit
/// that starts where the last one ended ends at a height that is read.
const STATE_BATCH: usize = block::ROOT_EPOCH as usize;
/// How long the state stage holds blocks that end short of a height that is read, for the
/// rest of their epoch: the heights between carry no root, so committing them alone buys
/// nothing and costs a tree update of every account they touched (an account changed in each
/// of the epoch's blocks is then hashed once, not once a block). An epoch of blocks takes
/// 160–260 ms at 120,000 tx/s; at saturation, where each block is a verification batch of
/// 2,048, several seconds on two cores, so there the hold commits a second's blocks at a time.
/// As long as a checkpoint's interval, not longer: held blocks are not in the store, and a
/// crash replays them from the log.
pub const STATE_HOLD: Duration = CHECKPOINT_EVERY;

/// The most blocks the log stage appends in one durable commit.
const LOG_BATCH: usize = 256;

/// Appends the blocks the chain executed — those queued behind one another in one durable
/// commit — then tells each one's [`Durable`] and hands its state to the state stage; the
/// state stage's requests go on in order, behind the blocks sent before them. A state stage
/// busy with a long commit (a checkpoint's fsync, tens of ms) does not hold appends up: what
/// it has no room for waits here, in order, up to [`STATE_BACKLOG`]. After a failed append
/// every block is refused (the chain's ledger has moved past the log), and the chain takes no
/// more.
fn log_stage(
    log: &BlockLog,
    queue: &Receiver<LogWork>,
    state: &Sender<StateWork>,
    failed: &Mutex<Option<String>>,
) {
    let mut appends: Vec<Append> = Vec::with_capacity(LOG_BATCH);
    let mut broken: Option<String> = None;
    let mut backlog = StateBacklog::default();
    while let Some(work) = backlog.next_work(queue, state) {
        let mut request = match work {
            LogWork::Append(append) => {
                appends.push(append);
                None
            }
            LogWork::State(work) => Some(work),
        };
        while request.is_none() && appends.len() < LOG_BATCH {
            match queue.try_recv() {
                Ok(LogWork::Append(append)) => appends.push(append),
                Ok(LogWork::State(work)) => request = Some(work),
                Err(_) => break,
            }
        }
        if let Some(first) = appends.first().map(|append| append.state.height) {
            let began = Instant::now();
            let consecutive = (first..)
                .zip(&appends)
                .all(|(height, append)| append.state.height == height);
            let appended = match &broken {
                Some(reason) => Err(reason.clone()),
                // The chain sends them in order; a gap would put a block at another height.
                None if !consecutive => Err(format!(
                    "the block log: blocks out of order after {}",
                    first
                )),
                None => log
                    .append_all(
                        first,
                        appends
                            .iter()
                            .map(|a| (a.block.as_slice(), a.certificate.as_deref())),
                    )
                    .map_err(|error| format!("the block log: {error}")),
            };
            metrics::histogram!("verity_log_append_seconds").record(began.elapsed());
            metrics::histogram!("verity_log_append_blocks").record(appends.len() as f64);
            match appended {
                Ok(()) => {
                    for append in appends.drain(..) {
                        (append.durable)(Ok(()));
                        backlog.push(StateWork::Block(append.state));
                    }
                }
                Err(reason) => {
                    if broken.is_none() {
                        error!(%reason, height = first, "the block log failed");
                        metrics::counter!("verity_log_failures_total").increment(1);
                        *failed.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(reason.clone());
                        broken = Some(reason.clone());
                    }
                    for append in appends.drain(..) {
                        (append.durable)(Err(ChainError::State(reason.clone())));
                    }
                }
            }
        }
        if let Some(work) = request {
            backlog.push(work);
        }
        backlog.hand_off(state);
    }
    // The chain has stopped sending: the state stage gets everything before it stops.
    for work in backlog.waiting.drain(..) {
        let _ = state.send(work);
    }
}

/// The most transactions' state (a block counts at least one) the log stage holds for a
/// state stage that is busy, before it takes no more appends: a second of the pipeline's top
/// rate, tens of MB.
const STATE_BACKLOG: usize = 1 << 18;

/// What the log stage holds for the state stage, in order.
#[derive(Default)]
struct StateBacklog {
    waiting: std::collections::VecDeque<StateWork>,
    /// Their weight: transactions, at least one a block.
    weight: usize,
}

impl StateBacklog {
    fn weight(work: &StateWork) -> usize {
        match work {
            StateWork::Block(block) => block.receipts.len().max(1),
            StateWork::Sync(_) | StateWork::Flush(_) => 0,
        }
    }

    fn push(&mut self, work: StateWork) {
        self.weight += Self::weight(&work);
        self.waiting.push_back(work);
    }

    /// Drops what waits: the state stage has gone. A failed one has said so in `failed`; the
    /// blocks are durable.
    fn forget(&mut self) {
        self.waiting.clear();
        self.weight = 0;
    }

    /// Hands the state stage what it has room for.
    fn hand_off(&mut self, state: &Sender<StateWork>) {
        while let Some(work) = self.waiting.pop_front() {
            let weight = Self::weight(&work);
            match state.try_send(work) {
                Ok(()) => self.weight -= weight,
                Err(crossbeam_channel::TrySendError::Full(work)) => {
                    self.waiting.push_front(work);
                    return;
                }
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                    self.forget();
                    return;
                }
            }
        }
    }

    /// The log stage's next work, handing the state stage what it waits for meanwhile; over
    /// [`STATE_BACKLOG`], only once the state stage has taken enough. `None` once the chain
    /// has stopped sending.
    fn next_work(
        &mut self,
        queue: &Receiver<LogWork>,
        state: &Sender<StateWork>,
    ) -> Option<LogWork> {
        loop {
            if self.waiting.is_empty() {
                return queue.recv().ok();
            }
            let mut select = crossbeam_channel::Select::new();
            let to_state = select.send(state);
            let from_chain = (self.weight < STATE_BACKLOG).then(|| select.recv(queue));
            let ready = select.select();
            if ready.index() == to_state {
                let work = self.waiting.pop_front()?;
                self.weight -= Self::weight(&work);
                if ready.send(state, work).is_err() {
                    self.forget();
                }
            } else if Some(ready.index()) == from_chain {
                return ready.recv(queue).ok();
            }
        }
    }
}

/// Commits each block's state in order — what queued behind a commit goes in the next one
/// together, and blocks short of a height that is read wait up to `hold` for the rest of
/// their epoch — durably once [`CHECKPOINT_EVERY`], when asked, and at the end.
fn state_stage(
    store: &Store,
    queue: &Receiver<StateWork>,
    failed: &Mutex<Option<String>>,
    hold: Duration,
) {
    crate::priority::background();
    let mut synced = Instant::now();
    let mut pending = false;
    let fail = |error: StoreError| {
        error!(%error, "the state stage failed");
        metrics::counter!("verity_state_failures_total").increment(1);
        *failed.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(format!("the state stage: {error}"));
    };
    let mut batch = Vec::with_capacity(STATE_BATCH);
    // When the oldest block of `batch` arrived.
    let mut held_since = Instant::now();
    loop {
        let mut sync = None;
        let mut flush = None;
        let mut stopping = false;
        let wait = if batch.is_empty() {
            CHECKPOINT_EVERY
        } else {
            hold.saturating_sub(held_since.elapsed())
        };
        match queue.recv_timeout(wait) {
            Ok(StateWork::Block(work)) => {
                if batch.is_empty() {
                    held_since = Instant::now();
                }
                batch.push(work);
            }
            Ok(StateWork::Sync(answer)) => sync = Some(answer),
            Ok(StateWork::Flush(answer)) => flush = Some(answer),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stopping = true,
        }
        // A commit leaves only its last height readable (with a root), so one ends at a height
        // that is read.
        while !stopping
            && sync.is_none()
            && flush.is_none()
            && batch.last().is_some_and(|work| !work.readable)
            && batch.len() < STATE_BATCH
        {
            match queue.try_recv() {
                Ok(StateWork::Block(work)) => batch.push(work),
                Ok(StateWork::Sync(answer)) => sync = Some(answer),
                Ok(StateWork::Flush(answer)) => flush = Some(answer),
                Err(_) => break,
            }
        }
        let commit_now = stopping
            || sync.is_some()
            || flush.is_some()
            || batch.len() >= STATE_BATCH
            || batch.last().is_some_and(|work| work.readable)
            || held_since.elapsed() >= hold;
        if commit_now {
            if let Some(first) = batch.first().map(|work| work.height) {
                let began = Instant::now();
                let due = stopping || synced.elapsed() >= CHECKPOINT_EVERY;
                let durability = if due {
                    Durability::Immediate
                } else {
                    Durability::None
                };
                if let Err(error) = commit_blocks(store, first, &batch, durability) {
                    return fail(error);
                }
                metrics::histogram!("verity_state_commit_seconds").record(began.elapsed());
                metrics::histogram!("verity_state_commit_blocks").record(batch.len() as f64);
                metrics::gauge!("verity_state_height").set((first + batch.len() as u64 - 1) as f64);
                batch.clear();
                pending = !due;
                if due {
                    synced = Instant::now();
                }
            }
        }
        if stopping {
            if pending {
                if let Err(error) = store.sync() {
                    fail(error);
                }
            }
            return;
        }
        if let Some(answer) = flush {
            let _ = answer.send(());
        }
        if let Some(answer) = sync {
            let head = store
                .sync()
                .and_then(|()| store.head()?.ok_or(StoreError::Empty))
                .map_err(|e| e.to_string());
            pending = false;
            synced = Instant::now();
            let _ = answer.send(head);
        } else if pending && synced.elapsed() >= CHECKPOINT_EVERY {
            if let Err(error) = store.sync() {
                return fail(error);
            }
            pending = false;
            synced = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::ledger::{BookRules, Failure, PriceRules};
    use crate::store::verify_account;
    use crate::testing::{self, id};
    use crate::transaction::TX_LEN;

    fn genesis() -> Genesis {
        Genesis {
            rules: Rules {
                chain_id: 3,
                assets: [1].into(),
                issuers: [].into(),
                prices: PriceRules::default(),
                book: BookRules::default(),
            },
            balances: vec![(id(1), 1, 100)],
            validators: vec![],
        }
    }

    fn transfer(from: u8, nonce: u64, to: u8, amount: u64) -> [u8; TX_LEN] {
        testing::transfer(3, from, nonce, to, 1, amount)
    }

    /// Account 1 after block `n`, for the state stage's tests.
    fn account(n: u64) -> Account {
        Account {
            nonce: n,
            balances: [(1, 100 + n)].into(),
            ..Account::default()
        }
    }

    /// A state store in `dir` with genesis (account 1 as `account(0)`) committed.
    fn stage_store(dir: &Path) -> Store {
        let store = Store::open(&dir.join(STATE_FILE)).expect("opens");
        store
            .commit(
                0,
                &[BlockState {
                    receipts: &[],
                    changed: &[(id(1), &account(0))],
                }],
                Durability::None,
            )
            .expect("commits");
        store
    }

    #[test]
    fn the_state_stage_ends_a_commit_at_each_height_that_is_read() {
        let dir = testing::scratch("stage-cut");
        let store = stage_store(&dir);
        // Queued before the stage starts, so it takes them in as few commits as it may.
        let (work, queue) = bounded(STATE_QUEUE);
        for height in 1..=20u64 {
            let changes: Changes = [(id(1), account(height))].into();
            work.send(StateWork::Block(BlockWork {
                height,
                receipts: Vec::new(),
                changes,
                readable: height.is_multiple_of(6),
            }))
            .expect("queued");
        }
        drop(work);
        let failed = Mutex::new(None);
        state_stage(&store, &queue, &failed, STATE_HOLD);
        assert_eq!(*failed.lock().expect("lock"), None);
        // The same blocks committed one by one give the same roots where the stage kept one.
        let single = Store::open(&dir.join("single.redb")).expect("opens");
        let mut roots = Vec::new();
        for height in 0..=20u64 {
            let value = account(height);
            let state = BlockState {
                receipts: &[],
                changed: &[(id(1), &value)],
            };
            roots.push(
                single
                    .commit(height, &[state], Durability::None)
                    .expect("commits"),
            );
        }
        for height in [6, 12, 18, 20] {
            let root = store.root(height).expect("reads").expect("a root");
            assert_eq!(root, roots[height as usize], "height {height}");
            let (got, proof) = store.account(&id(1), height).expect("readable");
            assert_eq!(got, Some(account(height)), "height {height}");
            assert!(verify_account(root, &id(1), got.as_ref(), &proof));
        }
        assert!(
            store.account(&id(1), 5).is_err(),
            "a height inside a commit is not kept"
        );
        assert_eq!(store.root(5).expect("reads"), None);
    }

    #[test]
    fn the_state_stage_holds_blocks_short_of_a_read_height_for_their_epoch() {
        let dir = testing::scratch("stage-hold");
        let store = stage_store(&dir);
        let block = |height: u64| {
            StateWork::Block(BlockWork {
                height,
                receipts: Vec::new(),
                changes: [(id(1), account(height))].into(),
                readable: height == 4,
            })
        };
        let flushed = |work: &Sender<StateWork>| {
            let (answer, answered) = bounded(1);
            work.send(StateWork::Flush(answer)).expect("queued");
            answered.recv().expect("answered");
        };
        let (work, queue) = bounded(STATE_QUEUE);
        let failed = Mutex::new(None);
        std::thread::scope(|scope| {
            // Held for longer than the test takes: only the epoch's end or a flush commits.
            scope.spawn(|| state_stage(&store, &queue, &failed, Duration::from_secs(3600)));
            // Block 1 arrives alone, and the stage has the time to commit it alone.
            work.send(block(1)).expect("queued");
            std::thread::sleep(Duration::from_millis(50));
            for height in 2..=4 {
                work.send(block(height)).expect("queued");
            }
            // Blocks 5 and 6 are held until a flush asks for them.
            work.send(block(5)).expect("queued");
            work.send(block(6)).expect("queued");
            flushed(&work);
            assert_eq!(store.head().expect("reads").map(|(h, _)| h), Some(6));
            drop(work);
        });
        assert_eq!(*failed.lock().expect("lock"), None);
        assert_eq!(
            store.root(1).expect("reads"),
            None,
            "block 1 waited for its epoch's end at 4"
        );
        assert!(store.root(4).expect("reads").is_some());
        assert!(store.root(6).expect("reads").is_some());
        assert_eq!(store.root(5).expect("reads"), None);
        // With a short hold, a held block is committed without anything after it.
        let (work, queue) = bounded(STATE_QUEUE);
        std::thread::scope(|scope| {
            scope.spawn(|| state_stage(&store, &queue, &failed, Duration::from_millis(1)));
            work.send(block(7)).expect("queued");
            let began = std::time::Instant::now();
            while store.root(7).expect("reads").is_none() {
                assert!(
                    began.elapsed() < Duration::from_secs(30),
                    "block 7 was never committed"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(work);
        });
        assert_eq!(*failed.lock().expect("lock"), None);
    }

    #[test]
    fn a_flush_handle_shows_readers_the_held_blocks_and_does_not_keep_the_stage_alive() {
        let dir = testing::scratch("chain-flush");
        let mut chain = Chain::open(&dir, &genesis()).expect("opens");
        let handle = chain.state_flush().expect("the stage runs");
        let block = chain.next_block(&[transfer(1, 0, 2, 30)]).expect("a block");
        assert_eq!(chain.execute(&block).expect("commits").height, 1);
        // Height 1 carries no root: the stage would hold it for up to STATE_HOLD.
        handle.flush().expect("flushes");
        assert_eq!(chain.store.head().expect("reads").map(|(h, _)| h), Some(1));
        assert_eq!(chain.close().expect("closes").0, 1);
        assert!(handle.flush().is_err(), "the stage has stopped");
    }

    #[test]
    fn blocks_executed_ahead_of_the_log_are_told_durable_in_order_and_survive_reopening() {
        let dir = testing::scratch("chain-pipelined");
        let (told, durable) = bounded(8);
        {
            let mut chain = Chain::open(&dir, &genesis()).expect("opens");
            for nonce in 0..5 {
                let block = chain
                    .next_block(&[transfer(1, nonce, 2, 1)])
                    .expect("a block");
                let told = told.clone();
                let committed = chain
                    .execute_then(block, None, |committed| {
                        let height = committed.height;
                        Box::new(move |result| told.send((height, result.is_ok())).expect("sent"))
                    })
                    .expect("executes");
                // The ledger has moved already: the next block builds on it.
                assert_eq!(committed.height, nonce + 1);
                assert_eq!(chain.ledger().nonce(&id(1)), nonce + 1);
            }
            // `close` syncs through the log stage: every block is told before it returns.
            assert_eq!(chain.close().expect("closes").0, 5);
        }
        drop(told);
        assert_eq!(
            durable.iter().collect::<Vec<_>>(),
            (1..=5).map(|h| (h, true)).collect::<Vec<_>>()
        );
        let chain = Chain::open(&dir, &genesis()).expect("reopens");
        assert_eq!(chain.height(), 5);
        assert_eq!(chain.log().head().expect("reads"), Some(5));
        assert_eq!(chain.ledger().nonce(&id(1)), 5);
    }

    /// A state block of `transactions` receipts at `height`.
    fn state_block(height: u64, transactions: usize) -> StateWork {
        StateWork::Block(BlockWork {
            height,
            receipts: vec![([0; 32], Vec::new()); transactions],
            changes: Changes::new(),
            readable: false,
        })
    }

    #[test]
    fn a_busy_state_stage_holds_appends_up_only_past_the_backlog_and_gets_its_work_in_order() {
        let (state, state_queue) = bounded(1);
        let (chain, queue) = bounded(4);
        let mut backlog = StateBacklog::default();
        for height in 1..=3 {
            backlog.push(state_block(height, 10));
        }
        backlog.hand_off(&state);
        assert_eq!((backlog.waiting.len(), backlog.weight), (2, 20));
        // The state stage takes nothing; the log stage still takes the chain's next work.
        let (flushed, _) = bounded(1);
        chain
            .send(LogWork::State(StateWork::Flush(flushed)))
            .expect("sends");
        assert!(matches!(
            backlog.next_work(&queue, &state),
            Some(LogWork::State(StateWork::Flush(_)))
        ));
        // Past the backlog, it takes nothing more from the chain until the state stage has
        // taken enough, and what the state stage gets comes in order.
        backlog.push(state_block(4, STATE_BACKLOG));
        let (flushed, _) = bounded(1);
        chain
            .send(LogWork::State(StateWork::Flush(flushed)))
            .expect("sends");
        let heights = std::thread::scope(|scope| {
            let taker = scope.spawn(|| {
                let mut heights = Vec::new();
                while let Ok(StateWork::Block(block)) = state_queue.recv() {
                    heights.push(block.height);
                    if block.height == 4 {
                        break;
                    }
                }
                heights
            });
            let next = backlog.next_work(&queue, &state);
            assert!(matches!(next, Some(LogWork::State(StateWork::Flush(_)))));
            assert!(backlog.weight < STATE_BACKLOG, "{}", backlog.weight);
            taker.join().expect("takes")
        });
        assert_eq!(heights, [1, 2, 3, 4]);
        assert_eq!(backlog.weight, 0);
        drop(chain);
        assert!(
            backlog.next_work(&queue, &state).is_none(),
            "the chain stopped"
        );
    }

    #[test]
    fn after_a_failed_append_the_log_stage_refuses_every_block_and_says_why() {
        let dir = testing::scratch("chain-log-fails");
        std::fs::create_dir_all(&dir).expect("a directory");
        let log = BlockLog::open(&dir.join(LOG_FILE)).expect("opens");
        log.append(0, &[]).expect("appends");
        let (work, queue) = bounded(16);
        let (state, to_state) = bounded(16);
        let (told, durable) = bounded(16);
        let failed = Mutex::new(None);
        let append = |height: u64| {
            let told = told.clone();
            LogWork::Append(Append {
                block: vec![height as u8],
                certificate: None,
                state: BlockWork {
                    height,
                    receipts: Vec::new(),
                    changes: Changes::default(),
                    readable: false,
                },
                durable: Box::new(move |result| told.send((height, result)).expect("sent")),
            })
        };
        // Height 1 appends; 3 skips 2, so the log refuses it; then 2, which the log would take,
        // is refused too: after a failure the chain's ledger has moved past the log.
        let told: Vec<_> = std::thread::scope(|scope| {
            scope.spawn(|| log_stage(&log, &queue, &state, &failed));
            work.send(append(1)).expect("queued");
            let first = durable.recv().expect("told");
            // One at a time, so that each is an append of its own.
            let rest: Vec<_> = [3, 2]
                .map(|height| {
                    work.send(append(height)).expect("queued");
                    durable.recv().expect("told")
                })
                .into();
            drop(work);
            std::iter::once(first).chain(rest).collect()
        });
        assert!(matches!(told[0], (1, Ok(()))));
        assert!(matches!(&told[1], (3, Err(ChainError::State(why))) if why.contains("block log")));
        assert!(matches!(&told[2], (2, Err(ChainError::State(_)))));
        assert!(durable.try_recv().is_err(), "each block told once");
        let reason = failed.lock().expect("lock").clone().expect("a failure");
        assert!(reason.contains("block log"), "{reason}");
        assert_eq!(log.head().expect("reads"), Some(1));
        // Only the durable block reached the state stage.
        drop(state);
        let passed: Vec<u64> = to_state
            .iter()
            .map(|work| match work {
                StateWork::Block(block) => block.height,
                _ => u64::MAX,
            })
            .collect();
        assert_eq!(passed, [1]);
    }

    #[test]
    fn blocks_execute_commit_and_resume_after_reopening() {
        let dir = testing::scratch("chain");
        let (head, ledger) = {
            let mut chain = Chain::open(&dir, &genesis()).expect("opens");
            assert_eq!(chain.height(), 0);
            let block = chain
                .next_block(&[transfer(1, 0, 2, 30), transfer(1, 0, 2, 5)])
                .expect("a block");
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
            let next = chain.next_block(&[transfer(2, 0, 3, 10)]).expect("a block");
            // A block for another height, with another root, not whole transactions, or with
            // a transaction that does not decode, commits nothing.
            let mut elsewhere = next.clone();
            elsewhere[0] = 3;
            assert!(matches!(
                chain.execute(&elsewhere),
                Err(ChainError::Height { next: 2, got: 3 })
            ));
            let mut forked = next.clone();
            forked[20] ^= 1;
            assert!(matches!(
                chain.execute(&forked),
                Err(ChainError::Diverged { height: 2, .. })
            ));
            assert!(matches!(
                chain.execute(&next[..47]),
                Err(ChainError::Block(BlockError::Length(47)))
            ));
            assert!(matches!(
                chain.execute(&next[..100]),
                Err(ChainError::Transaction {
                    index: 0,
                    error: TxError::Length {
                        got: 52,
                        expected: 160
                    }
                })
            ));
            let mut garbled = next.clone();
            garbled[block::HEADER_LEN] ^= 0xff;
            assert!(matches!(
                chain.execute(&garbled),
                Err(ChainError::Transaction { index: 0, .. })
            ));
            chain.execute(&next).expect("commits");
            // Receipts are stored with their failure once the state has caught up.
            let head = chain.sync().expect("syncs");
            assert_eq!(head.0, 2);
            let (height, index, failure) = chain
                .store()
                .receipt(&committed.receipts[1].tx.0)
                .expect("reads")
                .expect("stored");
            assert_eq!((height, index), (1, 1));
            assert_eq!(Failure::decode(&failure), committed.receipts[1].failure);
            assert_eq!(chain.log().block(1).expect("reads"), Some(block.to_vec()));
            let ledger = chain.ledger().clone();
            (chain.close().expect("closes"), ledger)
        };
        let chain = Chain::open(&dir, &genesis()).expect("reopens");
        assert_eq!(chain.height(), head.0);
        assert_eq!(chain.sync().expect("syncs"), head);
        assert_eq!(chain.ledger(), &ledger);
        assert_eq!(ledger.balance(&id(1), 1), 70);
        assert_eq!(ledger.balance(&id(2), 1), 20);
        assert_eq!(ledger.balance(&id(3), 1), 10);
        let (account, proof) = chain.store().account(&id(2), head.0).expect("reads");
        assert!(verify_account(head.1, &id(2), account.as_ref(), &proof));
    }

    #[test]
    fn blocks_the_state_store_lost_are_replayed_from_the_log() {
        let dir = testing::scratch("chain-replay");
        let blocks = [
            transfer(1, 0, 2, 30),
            transfer(2, 0, 3, 10),
            transfer(1, 1, 3, 1),
        ];
        let head = {
            let mut chain = Chain::open(&dir, &genesis()).expect("opens");
            for tx in &blocks {
                let block = chain.next_block(&[*tx]).expect("a block");
                chain.execute(&block).expect("commits");
            }
            chain.close().expect("closes")
        };
        // A state store that lost everything after genesis (as a crash before its durable
        // commit would leave it): the log alone brings the chain back to the same root.
        std::fs::remove_file(dir.join(STATE_FILE)).expect("removes");
        let chain = Chain::open(&dir, &genesis()).expect("reopens");
        assert_eq!(chain.height(), 3);
        assert_eq!(chain.sync().expect("syncs"), head);
        assert_eq!(chain.ledger().balance(&id(3), 1), 11);
    }
}
