//! Re-margining after a mark-price change (issue #11's target): 100,000 accounts, each with
//! two to four option positions among 40 instruments (20 strikes, calls and puts, one
//! underlying), long and short. One iteration computes the 40 risk arrays at the new mark
//! and every account's margin, and counts the accounts under maintenance — what the ledger
//! must do within the block that moved the price.
//!
//! A second figure is the ledger's own: the same accounts in a `Ledger`, and a block of one
//! oracle price moving the mark — `Ledger::apply` re-margins every account holding positions
//! and liquidates those under maintenance, as every replica does after that block.
//!
//! `make bench` runs it and prints the times against the 50 ms target.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_host::derivatives::pricing::{Model, OptionKind, OptionTerms};
use verity_host::derivatives::risk::{Margin, Position, RiskArray, RiskParams};
use verity_host::ledger::{Account, BookRules, Instrument, Ledger, PriceRules, Rules};
use verity_host::transaction::{Payload, Transaction, Unsigned};

const ACCOUNTS: usize = 100_000;
const STRIKES: u64 = 20;
/// One block a second.
const YEAR: u64 = 31_536_000;

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

fn main() {
    let model = Model {
        vol_bp: 6000,
        blocks_per_year: YEAR,
    };
    let params = RiskParams {
        shock_bp: 1500,
        short_minimum_bp: 100,
        initial_bp: 15_000,
    };
    // Strikes around 50,000.00 (quote units of 0.01), a month out.
    let instruments: Vec<OptionTerms> = (0..STRIKES)
        .flat_map(|i| {
            [OptionKind::Call, OptionKind::Put].map(|kind| OptionTerms {
                kind,
                strike: 4_000_000 + i * 100_000,
                expiry: YEAR / 12,
                size: 10,
            })
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let accounts: Vec<(u64, Vec<Position>)> = (0..ACCOUNTS)
        .map(|_| {
            let positions = (0..rng.gen_range(2..=4))
                .map(|_| Position {
                    instrument: rng.gen_range(0..instruments.len()),
                    contracts: rng.gen_range(-50..=50),
                })
                .collect();
            (rng.gen_range(0..2_000_000_000), positions)
        })
        .collect();
    let remargin = |mark: u64, height: u64| {
        let arrays: Vec<RiskArray> = instruments
            .iter()
            .map(|terms| RiskArray::new(terms, &model, &params, mark, height))
            .collect();
        accounts
            .iter()
            .filter(|(collateral, positions)| {
                Margin::of(positions, &arrays, &params).under_maintenance(*collateral)
            })
            .count()
    };
    let mut criterion = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let mut marks = [4_500_000u64, 5_000_000, 5_500_000].into_iter().cycle();
    let mut under = 0;
    let mut group = criterion.benchmark_group("margin");
    group.bench_function("remargin_100k", |b| {
        b.iter(|| {
            under = remargin(black_box(marks.next().unwrap_or(5_000_000)), 1000);
        })
    });

    // The same book in a ledger: instrument i is `instruments[i]`, one oracle gives the mark.
    let oracle = ed25519_dalek::SigningKey::from_bytes(&[200; 32]);
    let rules = Rules {
        chain_id: 1,
        assets: [1, 2].into(),
        issuers: [].into(),
        prices: PriceRules {
            oracles: [oracle.verifying_key().to_bytes()].into(),
            max_age: 100,
        },
        book: BookRules {
            quote: 1,
            fund: [0xff; 32],
            instruments: instruments
                .iter()
                .enumerate()
                .map(|(i, terms)| {
                    (
                        i as u32,
                        Instrument {
                            underlying: 2,
                            terms: *terms,
                        },
                    )
                })
                .collect(),
            model,
            risk: params,
            penalty_bp: 200,
        },
    };
    let ledger = Ledger::from_accounts(accounts.iter().enumerate().map(
        |(n, (collateral, positions))| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            let mut account = Account {
                balances: [(1, *collateral)].into(),
                ..Account::default()
            };
            for p in positions {
                *account.positions.entry(p.instrument as u32).or_insert(0) += p.contracts;
            }
            account.positions.retain(|_, c| *c != 0);
            (id, account)
        },
    ));
    let holders = ledger
        .accounts()
        .map(|(_, a)| a)
        .filter(|a| !a.positions.is_empty())
        .count();
    let price = Unsigned {
        chain_id: 1,
        sender: oracle.verifying_key().to_bytes(),
        nonce: 0,
        payload: Payload::Price {
            asset: 2,
            price: 5_500_000,
        },
    }
    .sign(&oracle);
    let block = [Transaction::decode(&price).expect("well formed")];
    let mut liquidated = 0;
    group.bench_function("ledger_block_100k", |b| {
        b.iter(|| {
            let (changes, _) = ledger.apply(&rules, black_box(1000), &block);
            liquidated = changes
                .values()
                .filter(|a| a.positions.is_empty() && !a.history.is_empty())
                .count();
        })
    });
    group.finish();
    let mean = |name: &str| {
        let estimate = out_dir().join(format!("margin/{name}/new/estimates.json"));
        std::fs::read_to_string(estimate)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|json| json["mean"]["point_estimate"].as_f64())
            .map(|nanos| nanos / 1e6)
    };
    let verdict = |ms: f64| if ms <= 50.0 { "met" } else { "NOT MET" };
    if let Some(ms) = mean("remargin_100k") {
        println!(
            "\nre-margining after a mark change: {ACCOUNTS} accounts, {} instruments: {ms:.2} ms on one core \
             ({under} under maintenance at the last mark); target ≤ 50 ms: {}",
            instruments.len(),
            verdict(ms)
        );
    }
    if let Some(ms) = mean("ledger_block_100k") {
        println!(
            "the ledger's block after the mark moved: {holders} accounts with positions re-margined, \
             {liquidated} liquidated, in {ms:.2} ms on one core; target ≤ 50 ms: {}",
            verdict(ms)
        );
    }
}
