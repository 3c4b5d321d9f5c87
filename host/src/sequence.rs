//! The sequence stage: the mempool, the block builder and the chain, on one thread — what
//! turns verified transactions into committed blocks and answers each submission.
//!
//! Who decides the order is the [`Ordering`]:
//!
//! * [`Ordering::Local`] — this replica alone: a block is built when the mempool holds a
//!   block's worth or its first transaction has waited the block interval, and executed at
//!   once; its transactions are answered when the log stage has made it durable, while the
//!   next block is already being built.
//! * [`Ordering::Consensus`] — the replicas together: the consensus engine asks for a block
//!   to propose ([`Order::Propose`]) and hands over each decided block with its commit
//!   certificate ([`Order::Commit`]), whoever proposed it. A client's transaction is answered
//!   when a decided block holds it; one whose nonce another replica's block used is refused.
//!
//! Everything else — the mempool's rules, execution, durability before acknowledgement — is
//! the same under both.

use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, RecvTimeoutError, Sender};
use tokio::sync::oneshot;
use tracing::{debug_span, warn};

use crate::chain::{Chain, ChainError};
use crate::ledger::Failure;
use crate::mempool::Mempool;
use crate::pipeline::{queued, refuse, Outcome, PipelineConfig, Reply};
use crate::transaction::{TxBytes, TxId};

/// The longest the local sequencer sleeps, with a block due, before it looks at the verified
/// queue again: a block that fills meanwhile is built at most this late.
const FILL_POLL: Duration = Duration::from_micros(500);

/// A transaction whose signatures are valid.
pub(crate) struct Valid {
    pub(crate) bytes: TxBytes,
    pub(crate) reply: Reply,
    /// When it was submitted.
    pub(crate) at: Instant,
}

/// What the verify stage sends on: the valid transactions of a verification batch, in order,
/// as one message — one queue operation a batch, not one a transaction.
pub(crate) enum Verified {
    Transactions(Vec<Valid>),
    Stop,
}

/// Who orders the verified transactions.
pub enum Ordering {
    /// This replica alone.
    Local,
    /// The consensus engine, through these orders.
    Consensus(Receiver<Order>),
}

/// What consensus asks of the sequence stage.
pub enum Order {
    /// Build a block to propose from the mempool: as soon as it holds a block's worth, or the
    /// block interval after this request if it holds anything, or at `wait` with what it has
    /// (possibly nothing).
    Propose {
        /// The longest the engine can wait.
        wait: Duration,
        /// The block's bytes, or why there is none (a replica that joined from a snapshot
        /// cannot build the first blocks after it: it lacks the roots they carry).
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// The state root after block `height` (for checking a proposed block's header);
    /// `None` before the snapshot this replica started from.
    Root {
        /// The height.
        height: u64,
        /// Its root, or why there is none.
        reply: oneshot::Sender<Result<Option<[u8; 32]>, String>>,
    },
    /// Execute and commit block `height`, decided with `certificate` (encoded).
    Commit {
        /// Its height: the chain's next.
        height: u64,
        /// Its bytes.
        block: Vec<u8>,
        /// The commit certificate.
        certificate: Vec<u8>,
        /// The height committed, or why not.
        reply: oneshot::Sender<Result<u64, String>>,
    },
}

/// What each transaction in the mempool carries: whom to answer, and since when.
struct Waiting {
    reply: Reply,
    at: Instant,
}

/// A held submission of a block, its id and its receipt's failure.
type Answer = (Waiting, TxId, Option<Failure>);

/// A block on its way to the log: what its answers say, and whom to tell it is durable.
struct BlockDone {
    height: u64,
    transactions: u64,
    began: Instant,
    told: Sender<bool>,
}

impl BlockDone {
    /// Answers the block's submissions once the log stage is done with it: committed, or
    /// refused if the log failed.
    fn answer(self, durable: Result<(), ChainError>, answers: Vec<Answer>) {
        let now = Instant::now();
        match &durable {
            Ok(()) => {
                // One registry lookup a block, not one a transaction.
                let latency = metrics::histogram!("verity_submit_to_commit_seconds");
                let to_block = metrics::histogram!("verity_submit_to_block_seconds");
                for (waiting, id, failure) in answers {
                    latency.record(now.duration_since(waiting.at));
                    to_block.record(self.began.saturating_duration_since(waiting.at));
                    (waiting.reply)(Outcome::Committed {
                        id,
                        height: self.height,
                        failure,
                    });
                }
                metrics::histogram!("verity_block_commit_seconds")
                    .record(now.duration_since(self.began));
                metrics::counter!("verity_blocks_total").increment(1);
                metrics::counter!("verity_committed_total").increment(self.transactions);
                metrics::gauge!("verity_height").set(self.height as f64);
            }
            Err(error) => {
                for (waiting, ..) in answers {
                    refuse(waiting.reply, format!("commit_failed: {error}"));
                }
            }
        }
        let _ = self.told.try_send(durable.is_ok());
    }
}

/// The stage's state.
struct Sequencer {
    chain: Chain,
    mempool: Mempool<Waiting>,
    config: PipelineConfig,
}

impl Sequencer {
    /// Puts verified transactions in the mempool, in order; whether any went in.
    fn admit(&mut self, valid: Vec<Valid>) -> bool {
        let mut admitted = false;
        for Valid { bytes, reply, at } in valid {
            match self
                .mempool
                .insert(bytes, self.chain.ledger(), Waiting { reply, at })
            {
                Ok(evicted) => {
                    if let Some((_, evicted)) = evicted {
                        refuse(evicted.reply, "mempool_full: evicted".to_owned());
                    }
                    admitted = true;
                }
                Err((refusal, refused)) => {
                    metrics::counter!("verity_mempool_refused_total", "reason" => refusal.reason())
                        .increment(1);
                    refuse(refused.reply, format!("{}: {refusal}", refusal.reason()));
                }
            }
        }
        metrics::gauge!("verity_mempool_transactions").set(self.mempool.len() as f64);
        admitted
    }

    /// The next block, of transactions from the mempool (they stay there until committed);
    /// with how many it holds.
    fn build(&self) -> Result<(Vec<u8>, usize), ChainError> {
        let transactions = self
            .mempool
            .take_block(self.config.block_max, self.chain.ledger());
        Ok((self.chain.next_block(&transactions)?, transactions.len()))
    }

    /// Executes `block` and forgets what it made obsolete: the submissions it holds are
    /// answered once it is durable, on the log stage's thread, and those it superseded are
    /// refused at once. Returns its height and whether it became durable, told then.
    fn commit(
        &mut self,
        block: Vec<u8>,
        certificate: Option<Vec<u8>>,
    ) -> Result<(u64, Receiver<bool>), ChainError> {
        let _span = debug_span!(
            "block",
            height = self.chain.height() + 1,
            bytes = block.len()
        )
        .entered();
        let began = Instant::now();
        let (told, durable) = bounded(1);
        let mempool = &mut self.mempool;
        let committed = self.chain.execute_then(block, certificate, |committed| {
            // A transaction not held came in another replica's block; its own replica answers.
            let answers: Vec<Answer> = committed
                .receipts
                .iter()
                .filter_map(|receipt| {
                    let waiting = mempool.remove(&receipt.tx)?;
                    Some((waiting, receipt.tx, receipt.failure))
                })
                .collect();
            let block = BlockDone {
                height: committed.height,
                transactions: committed.receipts.len() as u64,
                began,
                told,
            };
            Box::new(move |durable| block.answer(durable, answers))
        });
        let committed = match committed {
            Ok(committed) => committed,
            Err(error) => {
                metrics::counter!("verity_commit_failures_total").increment(1);
                return Err(error);
            }
        };
        for (_, waiting) in self
            .mempool
            .superseded(&committed.senders, self.chain.ledger())
        {
            refuse(
                waiting.reply,
                "superseded: another transaction used its nonce".to_owned(),
            );
        }
        metrics::gauge!("verity_mempool_transactions").set(self.mempool.len() as f64);
        Ok((committed.height, durable))
    }

    /// Refuses what is still waiting and returns the chain.
    fn finish(mut self, reason: &str) -> Chain {
        for waiting in self.mempool.drain() {
            refuse(waiting.reply, reason.to_owned());
        }
        self.chain
    }
}

/// Runs the stage until the verify stage stops (or, under consensus, the engine goes), and
/// returns the chain.
pub(crate) fn run(
    chain: Chain,
    verified: &Receiver<Verified>,
    ordering: Ordering,
    config: PipelineConfig,
) -> Chain {
    let sequencer = Sequencer {
        chain,
        mempool: Mempool::new(config.mempool),
        config,
    };
    match ordering {
        Ordering::Local => run_local(sequencer, verified),
        Ordering::Consensus(orders) => run_ordered(sequencer, verified, &orders),
    }
}

/// One replica: blocks by size or deadline, committed at once.
fn run_local(mut s: Sequencer, verified: &Receiver<Verified>) -> Chain {
    let config = s.config;
    let mut first_waiting: Option<Instant> = None;
    let mut stopping = false;
    loop {
        let wait = match first_waiting {
            Some(since) => config.block_interval.saturating_sub(since.elapsed()),
            None if stopping => Duration::ZERO,
            None => Duration::from_secs(3600),
        };
        // One batch, then what else is queued, up to a block's worth: the clock is read once
        // for them all, not once a transaction. With a block due, sleep towards it (at most
        // `FILL_POLL`) rather than wake for each verification batch: below saturation they
        // come every few hundred microseconds, and a wake-up each cost more than admitting
        // them together (host/README, "sleeping towards a deadline").
        let mut next = if first_waiting.is_some() {
            std::thread::sleep(wait.min(FILL_POLL));
            queued(verified)
        } else {
            verified.recv_timeout(wait)
        };
        loop {
            match next {
                Ok(Verified::Transactions(valid)) => {
                    if s.admit(valid) {
                        first_waiting.get_or_insert_with(Instant::now);
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Ok(Verified::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    stopping = true;
                    break;
                }
            }
            if s.mempool.len() >= config.block_max {
                break;
            }
            // Nothing more queued: a timeout, which ends the burst.
            next = queued(verified);
        }
        let due = s.mempool.len() >= config.block_max
            || first_waiting.is_some_and(|since| since.elapsed() >= config.block_interval)
            || (stopping && !s.mempool.is_empty());
        if due {
            let (block, count) = match s.build() {
                Ok(built) => built,
                Err(error) => {
                    warn!(%error, "no block could be built");
                    (Vec::new(), 0)
                }
            };
            if count == 0 {
                // Only transactions waiting for an earlier nonce: they wait for it.
                first_waiting = None;
            } else {
                let began = Instant::now();
                match s.commit(block, None) {
                    // What arrived while this block executed has waited since it began at
                    // most, whether admitted already or still queued: the next block is due
                    // an interval after this one began, not after it ended. The block's fsync
                    // runs on the log stage meanwhile, which appends the blocks queued behind
                    // a slow one together (group commit).
                    Ok(_) => {
                        let waiting = !s.mempool.is_empty() || !verified.is_empty();
                        first_waiting = waiting.then_some(began);
                    }
                    Err(error) => {
                        // Nothing was committed: the block's transactions stay and the next
                        // attempt may succeed; a store that keeps failing is an operator's
                        // problem, logged and counted.
                        warn!(%error, "commit failed");
                        first_waiting = Some(Instant::now());
                    }
                }
            }
        }
        if stopping && (s.mempool.is_empty() || first_waiting.is_none()) {
            // What cannot be ordered (a nonce gap) is refused at shutdown, not lost silently.
            return s.finish("shutdown: waiting for an earlier nonce");
        }
    }
}

/// A block consensus asked for, not yet handed over.
struct Proposing {
    asked: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// Consensus: blocks when the engine asks, commits as it decides.
fn run_ordered(mut s: Sequencer, verified: &Receiver<Verified>, orders: &Receiver<Order>) -> Chain {
    let config = s.config;
    let mut proposing: Option<Proposing> = None;
    loop {
        let wait = match &proposing {
            Some(p) if s.mempool.is_empty() => p.deadline.saturating_duration_since(Instant::now()),
            Some(p) => (p.asked + config.block_interval).saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        let stopping = select! {
            recv(verified) -> message => match message {
                Ok(Verified::Transactions(valid)) => {
                    s.admit(valid);
                    false
                }
                Ok(Verified::Stop) | Err(_) => true,
            },
            recv(orders) -> order => match order {
                Ok(Order::Propose { wait, reply }) => {
                    let asked = Instant::now();
                    proposing = Some(Proposing { asked, deadline: asked + wait, reply });
                    false
                }
                Ok(Order::Root { height, reply }) => {
                    let root = match s.chain.root_at(height) {
                        Ok(root) => Ok(Some(root)),
                        Err(ChainError::BeforeSnapshot(_)) => Ok(None),
                        Err(error) => Err(error.to_string()),
                    };
                    let _ = reply.send(root);
                    false
                }
                Ok(Order::Commit { height, block, certificate, reply }) => {
                    let next = s.chain.height() + 1;
                    let result = if height == next {
                        // Answered once durable: the engine moves on to the next height then.
                        s.commit(block, Some(certificate))
                            .map_err(|e| e.to_string())
                            .and_then(|(height, durable)| match durable.recv() {
                                Ok(true) => Ok(height),
                                _ => Err(format!("block {height} was not made durable")),
                            })
                    } else {
                        Err(format!("block {height} decided, the chain's next is {next}"))
                    };
                    if let Err(error) = &result {
                        warn!(%error, height, "a decided block was not committed");
                    }
                    let _ = reply.send(result);
                    false
                }
                // The engine is gone: nothing will be ordered any more.
                Err(_) => true,
            },
            default(wait) => false,
        };
        if let Some(p) = proposing.take() {
            let now = Instant::now();
            let due = s.mempool.len() >= config.block_max
                || (!s.mempool.is_empty() && now >= p.asked + config.block_interval)
                || now >= p.deadline;
            if due {
                let built = s.build().map(|(block, _)| block).map_err(|e| e.to_string());
                let _ = p.reply.send(built);
            } else {
                proposing = Some(p);
            }
        }
        if stopping {
            return s.finish("shutdown: not decided before the replica stopped");
        }
    }
}
