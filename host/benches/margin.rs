//! Re-margining after a mark-price change (issue #11's target): 100,000 accounts, each with
//! two to four option positions among 40 instruments (20 strikes, calls and puts, one
//! underlying), long and short. One iteration computes the 40 risk arrays at the new mark
//! and every account's margin, and counts the accounts under maintenance — what the ledger
//! must do within the block that moved the price.
//!
//! `make bench` runs it and prints the time against the 50 ms target.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_host::derivatives::pricing::{Model, OptionKind, OptionTerms};
use verity_host::derivatives::risk::{Margin, Position, RiskArray, RiskParams};

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
    group.finish();
    let estimate = out_dir().join("margin/remargin_100k/new/estimates.json");
    let mean = std::fs::read_to_string(estimate)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["mean"]["point_estimate"].as_f64());
    if let Some(nanos) = mean {
        let ms = nanos / 1e6;
        println!(
            "\nre-margining after a mark change: {ACCOUNTS} accounts, {} instruments: {ms:.2} ms on one core \
             ({under} under maintenance at the last mark); target ≤ 50 ms: {}",
            instruments.len(),
            if ms <= 50.0 { "met" } else { "NOT MET" }
        );
    }
}
