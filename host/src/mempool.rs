//! The mempool: verified transactions waiting for a block, each once, each sender's in nonce
//! order, bounded. Each carries a value of its owner's (the sequence stage's: whom to answer,
//! and since when), handed back when the transaction leaves, so one lookup serves both.
//!
//! * **Dedup**: a transaction whose id is already here is refused (`Duplicate`), and so is a
//!   second transaction for a (sender, nonce) already taken (`NonceTaken`).
//! * **Nonce window**: a nonce below the sender's next (as the ledger knows it) is `Stale`;
//!   one more than [`MempoolConfig::window`] ahead is `TooFarAhead`, so no sender can park an
//!   unbounded future in the pool.
//! * **Bound and eviction**: at most [`MempoolConfig::capacity`] transactions. When full, the
//!   sender holding the most (the greatest key among equals) gives up its furthest-future
//!   one, so a flood from one key evicts its own transactions before anyone else's; if the
//!   newcomer would be that one, it is refused (`Full`).
//! * **Blocks**: [`Mempool::take_block`] takes, for each sender, the run of consecutive
//!   nonces from its next one, merged across senders in order of arrival of each run's head
//!   — first come, first served, never a nonce gap — up to a count.
//!
//! Arrival order is a counter, not a clock; ties cannot happen. Ids and senders are looked up
//! in hash maps keyed at random each process (aHash: both come from outside; std's SipHash was
//! 8 % of the sequence thread in perf), and nothing the pool decides depends on a map's
//! iteration order: blocks are ordered by the unique arrival numbers, and the heaviest sender
//! comes from a heap ordered by (count, key).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use ahash::HashMap;
use thiserror::Error;

use crate::ledger::{AccountId, Ledger};
use crate::transaction::{TxBytes, TxId};

/// How big the pool may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// The most transactions held.
    pub capacity: usize,
    /// How far past a sender's next nonce a transaction may be.
    pub window: u64,
}

impl Default for MempoolConfig {
    /// 100,000 transactions, 64 nonces ahead.
    fn default() -> Self {
        Self {
            capacity: 100_000,
            window: 64,
        }
    }
}

/// Why the pool refused a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    /// It is here already.
    #[error("already in the mempool")]
    Duplicate,
    /// Another transaction of the sender has this nonce.
    #[error("another transaction has nonce {0}")]
    NonceTaken(u64),
    /// The nonce is used up.
    #[error("nonce {got} is below the sender's next, {next}")]
    Stale {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's.
        got: u64,
    },
    /// The nonce is beyond the window.
    #[error("nonce {got} is more than the window past the sender's next, {next}")]
    TooFarAhead {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's.
        got: u64,
    },
    /// The pool is full and this transaction would be the one evicted.
    #[error("the mempool is full")]
    Full,
}

impl Refusal {
    /// A short, stable name for metrics and client replies.
    pub const fn reason(self) -> &'static str {
        match self {
            Refusal::Duplicate => "duplicate",
            Refusal::NonceTaken(_) => "nonce_taken",
            Refusal::Stale { .. } => "stale_nonce",
            Refusal::TooFarAhead { .. } => "nonce_too_far_ahead",
            Refusal::Full => "mempool_full",
        }
    }
}

/// One held transaction.
#[derive(Clone, Debug)]
struct Held<T> {
    bytes: TxBytes,
    arrival: u64,
    sender: AccountId,
    nonce: u64,
    value: T,
}

/// The pool; `T` is what each transaction carries for its owner.
#[derive(Debug)]
pub struct Mempool<T> {
    config: MempoolConfig,
    by_id: HashMap<TxId, Held<T>>,
    /// Each sender's transactions by nonce.
    by_sender: HashMap<AccountId, BTreeMap<u64, TxId>>,
    /// (held count, sender), pushed whenever a sender's count grows, never updated in place:
    /// an entry whose count is no longer the sender's is stale, dropped when it reaches the
    /// top ([`Mempool::heaviest`]), and a shrunk sender's re-pushed at its count. Every
    /// holding sender has an entry at or above its count, so the first entry found current is
    /// the heaviest.
    ///
    /// Kept only while the pool is at least half full, and dropped once it is below a quarter:
    /// only a full pool evicts, and a pool that every block empties would otherwise push an
    /// entry a transaction for nothing (a twentieth of the sequence thread in `perf`). Built
    /// again from the counts when the pool fills past half: at most once a quarter of the
    /// capacity inserted, so still amortized O(1).
    load: Option<BinaryHeap<(usize, AccountId)>>,
    arrivals: u64,
}

impl<T> Mempool<T> {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            by_id: HashMap::default(),
            by_sender: HashMap::default(),
            load: None,
            arrivals: 0,
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: &TxId) -> bool {
        self.by_id.contains_key(id)
    }

    fn count(&self, sender: &AccountId) -> usize {
        self.by_sender.get(sender).map_or(0, BTreeMap::len)
    }

    /// The sender holding the most, with its count (the greatest key among equals).
    fn heaviest(&mut self) -> Option<(usize, AccountId)> {
        let by_sender = &self.by_sender;
        let load = self.load.get_or_insert_with(|| loads(by_sender));
        while let Some(&(count, sender)) = load.peek() {
            let now = by_sender.get(&sender).map_or(0, BTreeMap::len);
            if now == count {
                return Some((count, sender));
            }
            load.pop();
            if now > 0 && now < count {
                load.push((now, sender));
            }
        }
        None
    }

    /// Records that `sender` now holds `count`: in the heap if it is kept (rebuilt from the
    /// counts once stale entries outnumber the senders: amortized O(1), and never more than
    /// twice the capacity and 17 entries), or in a heap built now if the pool is half full.
    fn grew(&mut self, sender: AccountId, count: usize) {
        match &mut self.load {
            Some(load) => {
                load.push((count, sender));
                if load.len() > 2 * self.by_sender.len() + 16 {
                    *load = loads(&self.by_sender);
                }
            }
            None if 2 * self.by_id.len() >= self.config.capacity => {
                self.load = Some(loads(&self.by_sender));
            }
            None => {}
        }
    }

    /// Takes `id` out of the pool (its block committed, or it was evicted) and returns its
    /// value; `None` if it was not held (a block from another replica may hold transactions
    /// this one never saw).
    pub fn remove(&mut self, id: &TxId) -> Option<T> {
        let held = self.by_id.remove(id)?;
        if let Some(nonces) = self.by_sender.get_mut(&held.sender) {
            nonces.remove(&held.nonce);
            if nonces.is_empty() {
                self.by_sender.remove(&held.sender);
            }
        }
        if 4 * self.by_id.len() < self.config.capacity {
            self.load = None;
        }
        Some(held.value)
    }

    /// Takes a verified transaction carrying `value`, given the sender's next nonce per the
    /// ledger; it keeps `bytes` as they are. Returns the id and value of a transaction evicted
    /// to make room, if one was; a refusal hands `value` back.
    pub fn insert(
        &mut self,
        bytes: TxBytes,
        ledger: &Ledger,
        value: T,
    ) -> Result<Option<(TxId, T)>, (Refusal, T)> {
        let id = bytes.id();
        let (sender, nonce) = {
            let tx = bytes.transaction();
            (*tx.sender(), tx.nonce())
        };
        if let Err(refusal) = self.admissible(id, sender, nonce, ledger) {
            return Err((refusal, value));
        }
        let mut evicted = None;
        if self.by_id.len() >= self.config.capacity {
            let Some((most, victim)) = self.heaviest() else {
                return Err((Refusal::Full, value));
            };
            let furthest = self
                .by_sender
                .get(&victim)
                .and_then(|n| n.last_key_value())
                .map(|(nonce, id)| (*nonce, *id));
            // The newcomer would be the one to go: the same sender's further nonce, or a
            // sender already holding as many.
            let newcomer_loses = match furthest {
                Some((far, _)) if victim == sender => nonce > far,
                _ => self.count(&sender) + 1 > most,
            };
            if newcomer_loses {
                return Err((Refusal::Full, value));
            }
            if let Some((_, id)) = furthest {
                evicted = self.remove(&id).map(|value| (id, value));
            }
        }
        let nonces = self.by_sender.entry(sender).or_default();
        nonces.insert(nonce, id);
        let count = nonces.len();
        self.grew(sender, count);
        self.arrivals += 1;
        self.by_id.insert(
            id,
            Held {
                bytes,
                arrival: self.arrivals,
                sender,
                nonce,
                value,
            },
        );
        Ok(evicted)
    }

    /// The rules a newcomer must pass before the bound is considered.
    fn admissible(
        &self,
        id: TxId,
        sender: AccountId,
        nonce: u64,
        ledger: &Ledger,
    ) -> Result<(), Refusal> {
        if self.by_id.contains_key(&id) {
            return Err(Refusal::Duplicate);
        }
        let next = ledger.nonce(&sender);
        if nonce < next {
            return Err(Refusal::Stale { next, got: nonce });
        }
        if nonce - next > self.config.window {
            return Err(Refusal::TooFarAhead { next, got: nonce });
        }
        if self
            .by_sender
            .get(&sender)
            .is_some_and(|n| n.contains_key(&nonce))
        {
            return Err(Refusal::NonceTaken(nonce));
        }
        Ok(())
    }

    /// Up to `max` transactions for the next block, each sender's consecutive from its next
    /// nonce, merged by arrival; they stay held until removed.
    pub fn take_block(&self, max: usize, ledger: &Ledger) -> Vec<TxBytes> {
        // Each sender's ready run. The runs' order is the map's, but it decides nothing: the
        // merge below is by arrival, and no two transactions share one.
        let mut runs: Vec<Vec<&Held<T>>> = Vec::new();
        for (sender, nonces) in &self.by_sender {
            let mut next = ledger.nonce(sender);
            let run: Vec<&Held<T>> = nonces
                .range(next..)
                .map_while(|(nonce, id)| {
                    let ready = *nonce == next;
                    next += 1;
                    ready.then(|| &self.by_id[id])
                })
                .collect();
            if !run.is_empty() {
                runs.push(run);
            }
        }
        let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = runs
            .iter()
            .enumerate()
            .map(|(r, run)| Reverse((run[0].arrival, r, 0)))
            .collect();
        let mut block = Vec::new();
        while block.len() < max {
            let Some(Reverse((_, r, i))) = heads.pop() else {
                break;
            };
            block.push(runs[r][i].bytes.clone());
            if let Some(next) = runs[r].get(i + 1) {
                heads.push(Reverse((next.arrival, r, i + 1)));
            }
        }
        block
    }

    /// After a committed block's own transactions were removed: takes out every other
    /// transaction of its `senders` (the only accounts whose nonce a block moves) whose nonce
    /// the ledger has now used, and returns them with their values — no block will hold them
    /// (under consensus, another replica's block used the nonce). In `senders`' order, each
    /// sender's by nonce.
    pub fn superseded(&mut self, senders: &BTreeSet<AccountId>, ledger: &Ledger) -> Vec<(TxId, T)> {
        let mut ids = Vec::new();
        for sender in senders {
            if let Some(nonces) = self.by_sender.get(sender) {
                let next = ledger.nonce(sender);
                ids.extend(nonces.range(..next).map(|(_, id)| *id));
            }
        }
        ids.into_iter()
            .filter_map(|id| self.remove(&id).map(|value| (id, value)))
            .collect()
    }

    /// Empties the pool, returning every value held (in no particular order).
    pub fn drain(&mut self) -> Vec<T> {
        self.by_sender.clear();
        self.load = None;
        self.by_id.drain().map(|(_, held)| held.value).collect()
    }
}

/// Each holding sender's (count, sender): a heap with no stale entry.
fn loads(by_sender: &HashMap<AccountId, BTreeMap<u64, TxId>>) -> BinaryHeap<(usize, AccountId)> {
    by_sender
        .iter()
        .map(|(sender, nonces)| (nonces.len(), *sender))
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::ledger::{BookRules, Ledger, PriceRules, Rules};
    use crate::testing::{self, key};
    use crate::transaction::{Transaction, TX_LEN};

    fn tx(from: u8, nonce: u64, amount: u64) -> [u8; TX_LEN] {
        testing::transfer(1, from, nonce, 0, 1, amount)
    }

    fn insert(
        pool: &mut Mempool<()>,
        bytes: &[u8; TX_LEN],
        ledger: &Ledger,
    ) -> Result<Option<TxId>, Refusal> {
        let tx = Transaction::decode(bytes).expect("well formed");
        pool.insert(tx.to_owned(), ledger, ())
            .map(|evicted| evicted.map(|(id, ())| id))
            .map_err(|(refusal, ())| refusal)
    }

    fn nonces(block: &[TxBytes]) -> Vec<(u8, u64)> {
        block
            .iter()
            .map(|b| {
                let tx = b.transaction();
                let from = (1..=9)
                    .find(|n| key(*n).verifying_key().to_bytes() == *tx.sender())
                    .expect("a test key");
                (from, tx.nonce())
            })
            .collect()
    }

    #[test]
    fn dedup_nonce_window_and_blocks_in_arrival_order_without_gaps() {
        let ledger = Ledger::default();
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 100,
            window: 3,
        });
        let a0 = tx(1, 0, 1);
        assert_eq!(insert(&mut pool, &a0, &ledger), Ok(None));
        assert_eq!(insert(&mut pool, &a0, &ledger), Err(Refusal::Duplicate));
        assert_eq!(
            insert(&mut pool, &tx(1, 0, 2), &ledger),
            Err(Refusal::NonceTaken(0))
        );
        assert_eq!(
            insert(&mut pool, &tx(1, 4, 1), &ledger),
            Err(Refusal::TooFarAhead { next: 0, got: 4 })
        );
        // Sender 2 arrives, then sender 1's nonce 2 (a gap at 1), then sender 1's nonce 1.
        insert(&mut pool, &tx(2, 0, 1), &ledger).expect("room");
        insert(&mut pool, &tx(1, 2, 1), &ledger).expect("room");
        insert(&mut pool, &tx(2, 1, 1), &ledger).expect("room");
        insert(&mut pool, &tx(1, 1, 1), &ledger).expect("room");
        assert_eq!(pool.len(), 5);
        let block = pool.take_block(10, &ledger);
        assert_eq!(nonces(&block), [(1, 0), (2, 0), (2, 1), (1, 1), (1, 2)]);
        assert_eq!(nonces(&pool.take_block(2, &ledger)), [(1, 0), (2, 0)]);
        // Committed: the ledger moved on; the block's transactions and any stale one go.
        let rules = Rules {
            chain_id: 1,
            assets: [1].into(),
            issuers: [].into(),
            prices: PriceRules::default(),
            book: BookRules::default(),
        };
        let genesis = Ledger::genesis(&[
            (key(1).verifying_key().to_bytes(), 1, 10),
            (key(2).verifying_key().to_bytes(), 1, 10),
        ])
        .expect("genesis");
        let first: Vec<_> = block[..2].to_vec();
        let txs: Vec<_> = first.iter().map(|b| b.transaction()).collect();
        let (changes, _) = genesis.apply(&rules, 1, &txs);
        let mut after = genesis.clone();
        after.merge(changes);
        // Only the first is removed: the second's nonce was used all the same (as when another
        // replica's block held it), so it is superseded.
        assert_eq!(pool.remove(&txs[0].id()), Some(()));
        let senders = txs.iter().map(|tx| *tx.sender()).collect();
        let superseded = pool.superseded(&senders, &after);
        assert_eq!(superseded, [(txs[1].id(), ())]);
        assert_eq!(pool.len(), 3);
        assert_eq!(
            insert(&mut pool, &tx(1, 0, 9), &after),
            Err(Refusal::Stale { next: 1, got: 0 })
        );
        assert_eq!(
            nonces(&pool.take_block(10, &after)),
            [(2, 1), (1, 1), (1, 2)]
        );
    }

    proptest::proptest! {
        /// Whatever arrives: never more than the capacity, every sender's block run starts at
        /// its next nonce without a gap, and no transaction twice.
        #[test]
        fn the_pool_stays_bounded_and_blocks_have_no_gaps(
            arrivals in proptest::collection::vec((1u8..5, 0u64..8), 0..60),
        ) {
            let ledger = Ledger::default();
            let mut pool = Mempool::new(MempoolConfig { capacity: 6, window: 5 });
            for (from, nonce) in arrivals {
                let _ = insert(&mut pool, &tx(from, nonce, 1), &ledger);
                proptest::prop_assert!(pool.len() <= 6);
            }
            let block = nonces(&pool.take_block(100, &ledger));
            let mut expected_next = [0u64; 10];
            for (from, nonce) in &block {
                proptest::prop_assert_eq!(*nonce, expected_next[usize::from(*from)]);
                expected_next[usize::from(*from)] += 1;
            }
        }
    }

    proptest::proptest! {
        /// Under any mix of arrivals and removals, a full pool's victim is the furthest nonce
        /// of the sender holding the most (the greatest key among equals), found here by
        /// brute force over the pool: the heap's stale entries never pick another, before or
        /// after it is rebuilt.
        #[test]
        fn eviction_always_takes_the_heaviest_senders_furthest_nonce(
            ops in proptest::collection::vec((0u8..3, 1u8..6, 0u64..6), 0..400),
        ) {
            let ledger = Ledger::default();
            let mut pool = Mempool::new(MempoolConfig { capacity: 5, window: 10 });
            for (op, from, nonce) in ops {
                let bytes = tx(from, nonce, 1);
                let newcomer = Transaction::decode(&bytes).expect("well formed");
                if op == 0 {
                    pool.remove(&newcomer.id());
                    continue;
                }
                let expected = (pool.len() >= 5).then(|| {
                    let (count, sender) = pool
                        .by_sender
                        .iter()
                        .map(|(sender, nonces)| (nonces.len(), *sender))
                        .max()
                        .expect("a full pool has senders");
                    let (far, id) = pool.by_sender[&sender]
                        .last_key_value()
                        .map(|(nonce, id)| (*nonce, *id))
                        .expect("a sender holds one");
                    (count, sender, far, id)
                });
                match (expected, insert(&mut pool, &bytes, &ledger)) {
                    (Some((.., id)), Ok(Some(evicted))) => proptest::prop_assert_eq!(evicted, id),
                    (Some((count, sender, far, _)), Err(Refusal::Full)) => {
                        let newcomer_loses = if sender == *newcomer.sender() {
                            nonce > far
                        } else {
                            pool.count(newcomer.sender()) + 1 > count
                        };
                        proptest::prop_assert!(newcomer_loses);
                    }
                    (Some(_), Ok(None)) => proptest::prop_assert!(false, "none evicted when full"),
                    (None, Ok(Some(_)) | Err(Refusal::Full)) => {
                        proptest::prop_assert!(false, "eviction below capacity")
                    }
                    _ => {}
                }
                proptest::prop_assert!(pool.len() <= 5);
                // Bounded by the pool's capacity, however many senders have left since a rebuild.
                proptest::prop_assert!(pool.load.as_ref().map_or(0, BinaryHeap::len) <= 2 * 5 + 17);
                let heaviest = pool
                    .by_sender
                    .iter()
                    .map(|(sender, nonces)| (nonces.len(), *sender))
                    .max();
                proptest::prop_assert_eq!(pool.heaviest(), heaviest);
            }
        }
    }

    #[test]
    fn the_eviction_heap_is_kept_only_while_the_pool_is_half_full() {
        let ledger = Ledger::default();
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 8,
            window: 10,
        });
        let ids: Vec<TxId> = (0..5)
            .map(|nonce| {
                let bytes = tx(1, nonce, 1);
                insert(&mut pool, &bytes, &ledger).expect("room");
                Transaction::decode(&bytes).expect("ok").id()
            })
            .collect();
        // The fifth insert found four held, half the capacity, and built the heap: one sender.
        assert_eq!(pool.load.as_ref().map(BinaryHeap::len), Some(1));
        pool.remove(&ids[4]);
        pool.remove(&ids[3]);
        assert!(
            pool.load.is_some(),
            "three of eight: not yet below a quarter"
        );
        pool.remove(&ids[2]);
        assert!(pool.load.is_some(), "two of eight: a quarter, not below");
        pool.remove(&ids[1]);
        assert!(pool.load.is_none(), "one of eight: dropped");
        // Eviction builds it when needed, whatever the fill.
        assert_eq!(
            pool.heaviest(),
            Some((1, key(1).verifying_key().to_bytes()))
        );
    }

    #[test]
    fn a_full_pool_evicts_the_heaviest_senders_furthest_nonce() {
        let ledger = Ledger::default();
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 4,
            window: 10,
        });
        for nonce in 0..3 {
            insert(&mut pool, &tx(1, nonce, 1), &ledger).expect("room");
        }
        insert(&mut pool, &tx(2, 0, 1), &ledger).expect("room");
        // Full. Sender 3 comes: sender 1 (three held) gives up nonce 2.
        let evicted = insert(&mut pool, &tx(3, 0, 1), &ledger).expect("room made");
        let nonce_2 = Transaction::decode(&tx(1, 2, 1)).expect("ok").id();
        assert_eq!(evicted, Some(nonce_2));
        assert!(!pool.contains(&nonce_2));
        // Sender 1 sending further ahead would evict itself: refused.
        assert_eq!(insert(&mut pool, &tx(1, 5, 1), &ledger), Err(Refusal::Full));
        // Sender 1 is still the heaviest (two held), and nonce 2 would again be its furthest.
        assert_eq!(insert(&mut pool, &tx(1, 2, 1), &ledger), Err(Refusal::Full));
        assert_eq!(pool.len(), 4);
        assert_eq!(
            nonces(&pool.take_block(10, &ledger)),
            [(1, 0), (1, 1), (2, 0), (3, 0)]
        );
    }
}
