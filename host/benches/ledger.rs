//! Executing a block of transfers: `Ledger::apply` (receipts and the changed accounts) then
//! `Ledger::merge`, as the sequence stage does for every block — its share of the pipeline's
//! cost per transaction (issue #8).
//!
//! A block is 4,096 transfers from 1,000 senders round-robin to the next one, as the pipeline
//! bench and `verity load` send them, over a ledger of those 1,000 accounts and over one of
//! 100,000 (the same senders among 99,000 others: a venue's deeper account index).
//! Signatures are zero: the ledger does not check them.
//!
//! `make bench` runs it and prints the cost per transaction.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use verity_host::ledger::{AccountId, BookRules, Ledger, PriceRules, Rules};
use verity_host::transaction::{Body, Payload, Transaction, Unsigned, TX_LEN};

const SENDERS: usize = 1000;
const BLOCK: usize = 4096;
const ASSET: u32 = 1;

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

/// Account `n`'s key: distinct, spread over the key space like hashes of public keys.
fn account(n: u64) -> AccountId {
    let mut id = [0u8; 32];
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    for chunk in id.chunks_mut(8) {
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    id
}

fn rules() -> Rules {
    Rules {
        chain_id: 1,
        assets: [ASSET].into(),
        issuers: [].into(),
        prices: PriceRules::default(),
        book: BookRules::default(),
    }
}

/// A ledger of `accounts` funded accounts, the first [`SENDERS`] of them the senders.
fn ledger(accounts: u64) -> Ledger {
    let balances: Vec<_> = (0..accounts)
        .map(|n| (account(n), ASSET, u64::MAX / 2))
        .collect();
    Ledger::genesis(&balances).expect("a valid genesis")
}

/// The first block's transfers: each sender's nonce 0 (then 1, …) to the next sender.
fn block() -> Vec<[u8; TX_LEN]> {
    (0..BLOCK)
        .map(|i| {
            let from = i % SENDERS;
            let unsigned = Unsigned {
                chain_id: 1,
                sender: account(from as u64),
                nonce: (i / SENDERS) as u64,
                payload: Payload::Transfer(Body {
                    asset: ASSET,
                    to: account(((from + 1) % SENDERS) as u64),
                    amount: 1,
                }),
            };
            let mut bytes = [0u8; TX_LEN];
            bytes[..96].copy_from_slice(&unsigned.signed_bytes());
            bytes
        })
        .collect()
}

fn main() {
    let mut criterion = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let mut group = criterion.benchmark_group("ledger");
    let bytes = block();
    let transactions: Vec<Transaction<'_>> = bytes
        .iter()
        .map(|tx| Transaction::decode(tx).expect("decodes"))
        .collect();
    let rules = rules();
    let mut ran = Vec::new();
    for accounts in [SENDERS as u64, 100_000] {
        let base = ledger(accounts);
        let (changes, receipts) = base.apply(&rules, 1, &transactions);
        assert!(
            receipts.iter().all(|r| r.failure.is_none()),
            "every one applies"
        );
        assert_eq!(changes.len(), SENDERS);
        let id = format!("transfers_{}k", accounts / 1000);
        group.throughput(Throughput::Elements(BLOCK as u64));
        group.bench_function(&id, |b| {
            b.iter_batched(
                || base.clone(),
                |mut ledger| {
                    let (changes, receipts) = ledger.apply(&rules, 1, black_box(&transactions));
                    ledger.merge(changes);
                    (ledger, receipts)
                },
                BatchSize::LargeInput,
            )
        });
        ran.push((accounts, id));
    }
    group.finish();
    let mut table = format!(
        "\nexecuting a block of {BLOCK} transfers among {SENDERS} senders (apply + merge)\n"
    );
    for (accounts, id) in ran {
        if let Some(nanos) = mean_nanos(&id) {
            let _ = writeln!(
                table,
                "  ledger of {accounts:>7} accounts: {:>7.0} ns per transaction",
                nanos / BLOCK as f64
            );
        }
    }
    println!("{table}");
}

/// A benchmark's mean time per iteration, from criterion's estimates.
fn mean_nanos(id: &str) -> Option<f64> {
    let path = out_dir().join("ledger").join(id).join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}
