//! The state store's two costs: receipts once it holds many, and a version of the account
//! tree.
//!
//! **Receipts**: what one second of the state stage costs at 64,000 transactions a second,
//! 2,000,000 receipts into a store's life.
//!
//! The store is filled with `FILL` receipts first (blocks of 1,000, a durable commit every
//! 64 blocks, as the state stage's once-a-second checkpoint), then one iteration is the next
//! second: 64 blocks of 1,000 receipts committed without durability and one durable sync.
//! The reference, in the same run, is the same second with blocks of no transactions: the
//! commits and the fsync alone, so the difference is what the receipts cost. Accounts are
//! left out.
//!
//! **Accounts**: one iteration is an epoch as the pipeline bench's state stage commits it, 64
//! blocks in one commit, each changing 250 of `ACCOUNTS` accounts (every account changed 16
//! times, one version of the tree), pruning the tree's old versions in the same commit as the
//! state stage's store does. The reference is the same 64 blocks changing no account. Building
//! the changed accounts is inside the measurement (a small part of it).
//!
//! `make bench` runs it and prints the cost per receipt and per account.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_host::ledger::{Account, AccountId};
use verity_host::store::{BlockState, Durability, Pruning, Store};

/// Receipts in a block.
const BLOCK: usize = 1_000;
/// Blocks between durable syncs.
const SECOND: u64 = 64;
/// Receipts in the store before measuring.
const FILL: usize = 2_000_000;

fn tmp() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf()
}

type Receipts = Vec<([u8; 32], Vec<u8>)>;

fn block(rng: &mut ChaCha8Rng, size: usize) -> Receipts {
    (0..size)
        // One in ten failed, with a 17-byte failure encoding (a bad nonce).
        .map(|n| (rng.gen(), if n % 10 == 0 { vec![2; 17] } else { vec![] }))
        .collect()
}

/// Commits `SECOND` blocks of `size` receipts from `next` on, then syncs.
fn second(store: &Store, next: &Cell<u64>, rng: &mut ChaCha8Rng, size: usize) {
    let blocks: Vec<Receipts> = (0..SECOND).map(|_| block(rng, size)).collect();
    for receipts in &blocks {
        let state = BlockState {
            receipts,
            changed: &[],
        };
        store
            .commit(next.get(), &[state], Durability::None)
            .expect("commits");
        next.set(next.get() + 1);
    }
    store.sync().expect("syncs");
}

/// Accounts an epoch changes (the pipeline bench's funded accounts).
const ACCOUNTS: usize = 1_000;
/// Accounts each block of an epoch changes.
const PER_BLOCK: usize = 250;
/// Heights whose tree stays provable (the state stage's `KEEP_HEIGHTS` in epochs of 64, scaled
/// down so the bench prunes from its first iterations).
const KEEP: u64 = 640;

/// Commits one epoch from `next` on — 64 blocks, each changing `PER_BLOCK` accounts, or none
/// when `accounts` is empty — pruning in the commit as the state stage's store does.
fn epoch(store: &Store, next: &Cell<u64>, accounts: &mut [(AccountId, Account)]) {
    let height = next.get();
    let mut changed: Vec<Vec<(AccountId, Account)>> = Vec::with_capacity(SECOND as usize);
    for block in 0..SECOND as usize {
        let mut changes = Vec::new();
        for n in 0..PER_BLOCK.min(accounts.len()) {
            let (id, account) = &mut accounts[(block * PER_BLOCK + n) % ACCOUNTS];
            account.nonce += 1;
            *account.balances.entry(0).or_default() += 1;
            changes.push((*id, account.clone()));
        }
        changed.push(changes);
    }
    let views: Vec<Vec<(AccountId, &Account)>> = changed
        .iter()
        .map(|changes| changes.iter().map(|(id, a)| (*id, a)).collect())
        .collect();
    let states: Vec<BlockState<'_>> = views
        .iter()
        .map(|changed| BlockState {
            receipts: &[],
            changed,
        })
        .collect();
    store
        .commit(height, &states, Durability::None)
        .expect("commits");
    next.set(height + SECOND);
}

fn main() {
    let seed = 0x5eed_0008;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tmp().join(format!("store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let store = Store::open(&dir.join("state.redb")).expect("opens");
    let next = Cell::new(0);
    eprintln!("filling the store with {FILL} receipts (seed {seed:#x})");
    while (next.get() as usize) * BLOCK < FILL {
        second(&store, &next, &mut rng, BLOCK);
    }
    let mut criterion = Criterion::default()
        .output_directory(&tmp().join("criterion"))
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let mut group = criterion.benchmark_group("store");
    // Which benchmarks ran in this invocation: a filtered run must not print figures from an
    // earlier run's estimates.
    let mut ran = [false; 4];
    group.bench_function("second_of_receipts", |b| {
        ran[0] = true;
        b.iter(|| second(&store, &next, &mut rng, BLOCK))
    });
    group.bench_function("second_of_empty_blocks", |b| {
        ran[1] = true;
        b.iter(|| second(&store, &next, &mut rng, 0))
    });
    let accounts_dir = dir.join("accounts");
    std::fs::create_dir_all(&accounts_dir).expect("scratch directory");
    let tree = Store::open(&accounts_dir.join("state.redb"))
        .expect("opens")
        .pruning(Pruning {
            keep: KEEP,
            limit: 100_000,
        });
    let mut accounts: Vec<(AccountId, Account)> = (0..ACCOUNTS)
        .map(|_| (rng.gen(), Account::default()))
        .collect();
    let height = Cell::new(0);
    // Past the first prunes, so the tree's old versions are being deleted as it runs.
    for _ in 0..2 * KEEP / SECOND {
        epoch(&tree, &height, &mut accounts);
    }
    group.bench_function("epoch_of_accounts", |b| {
        ran[2] = true;
        b.iter(|| epoch(&tree, &height, &mut accounts))
    });
    group.bench_function("epoch_of_no_accounts", |b| {
        ran[3] = true;
        b.iter(|| epoch(&tree, &height, &mut []))
    });
    group.finish();
    let mean = |name: &str| {
        let estimate = tmp().join(format!("criterion/store/{name}/new/estimates.json"));
        std::fs::read_to_string(estimate)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|json| json["mean"]["point_estimate"].as_f64())
            .map(|nanos| nanos / 1e6)
    };
    let both = |a: usize, b: usize, full: &str, empty: &str| {
        if ran[a] && ran[b] {
            mean(full).zip(mean(empty))
        } else {
            None
        }
    };
    if let Some((full, empty)) = both(0, 1, "second_of_receipts", "second_of_empty_blocks") {
        let receipts = (SECOND as usize * BLOCK) as f64;
        println!(
            "\nstate store, {FILL} receipts in, then one second of {SECOND} blocks × {BLOCK} \
             receipts and a durable sync: {full:.1} ms (the same second of empty blocks, the \
             reference: {empty:.1} ms); the receipts cost {:.2} µs each, {:.0} % of a core \
             at {} tx/s",
            (full - empty) * 1e3 / receipts,
            (full - empty) / 10.0,
            SECOND as usize * BLOCK
        );
    }
    if let Some((full, empty)) = both(2, 3, "epoch_of_accounts", "epoch_of_no_accounts") {
        println!(
            "\nstate store, a version of the account tree: {SECOND} blocks × {PER_BLOCK} changes \
             to {ACCOUNTS} accounts in one commit, with its prune: {full:.2} ms (the same blocks \
             changing no account, the reference: {empty:.2} ms); {:.1} µs an account changed",
            (full - empty) * 1e3 / ACCOUNTS as f64,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
