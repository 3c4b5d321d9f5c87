//! Signatures per second of the CPU backend beside the crates it must beat, same messages,
//! same run: `make bench` prints the table and the ratios the targets are stated in.
//!
//! Every signature has its own key, the worst case for Verity: senders at a venue repeat, and a
//! worker decodes a key it has met before only once (`key_cache`). So that Verity's workers
//! meet no key twice, each of its iterations takes the next `SIGNATURES` of a workload of
//! `ROUNDS` times as many, far more than a worker keeps.

mod common;

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use verity_drivers::{verify_all, PoolConfig, PoolVerifier, Request, Verdict};

/// Signatures per measured iteration.
const SIGNATURES: usize = 2048;
/// Iterations before Verity's benches meet a signature (and its key) again.
const ROUNDS: usize = 16;
const _: () = assert!(SIGNATURES * ROUNDS >= 4 * verity_drivers::KEYS_KEPT);
const BATCHES: [usize; 3] = [1, 64, 1024];

fn workload() -> Vec<Request> {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    (0..(SIGNATURES * ROUNDS) as u64)
        .map(|i| {
            let key = ed25519_dalek::SigningKey::generate(&mut rng);
            common::signed_request(&mut rng, &key, i, 96)
        })
        .collect()
}

/// The reference crates verify the workload's first `SIGNATURES` every iteration (they keep
/// nothing between calls); Verity's pools take the next `SIGNATURES` of `workload` each time.
fn bench(c: &mut Criterion, workload: &[Request]) {
    let requests = &workload[..SIGNATURES];
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(SIGNATURES as u64));

    group.bench_function("dalek2_verify", |b| {
        b.iter(|| common::dalek2_verify_all(requests))
    });
    group.bench_function("dalek3_verify", |b| {
        b.iter(|| {
            requests.iter().all(|r| {
                ed25519_dalek_3::VerifyingKey::from_bytes(&r.public_key)
                    .and_then(|key| {
                        ed25519_dalek_3::Verifier::verify(
                            &key,
                            &r.message,
                            &ed25519_dalek_3::Signature::from_bytes(&r.signature),
                        )
                    })
                    .is_ok()
            })
        })
    });
    group.bench_function("consensus_single", |b| {
        b.iter(|| {
            requests.iter().all(|r| {
                ed25519_consensus::VerificationKey::try_from(r.public_key)
                    .and_then(|key| {
                        key.verify(&ed25519_consensus::Signature::from(r.signature), &r.message)
                    })
                    .is_ok()
            })
        })
    });
    for batch in BATCHES {
        group.bench_with_input(
            BenchmarkId::new("consensus_batch", batch),
            &batch,
            |b, &batch| {
                let mut rng = ChaCha20Rng::seed_from_u64(3);
                b.iter(|| {
                    requests.chunks(batch).all(|chunk| {
                        let mut verifier = ed25519_consensus::batch::Verifier::new();
                        for r in chunk {
                            verifier.queue((
                                ed25519_consensus::VerificationKeyBytes::from(r.public_key),
                                ed25519_consensus::Signature::from(r.signature),
                                &r.message[..],
                            ));
                        }
                        verifier.verify(&mut rng).is_ok()
                    })
                })
            },
        );
    }
    let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    for (name, threads) in [
        ("verity_1_thread", NonZeroUsize::MIN),
        ("verity_all_cores", cores),
    ] {
        for batch in BATCHES {
            let config = PoolConfig::new(threads, NonZeroUsize::new(batch).expect("batch > 0"));
            let mut verifier = PoolVerifier::cpu(config);
            let mut round = 0;
            group.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, _| {
                b.iter(|| {
                    round = (round + 1) % ROUNDS;
                    let these = &workload[round * SIGNATURES..][..SIGNATURES];
                    let responses =
                        verify_all(&mut verifier, these.iter().cloned()).expect("cpu runs");
                    assert!(responses.iter().all(|r| r.verdict == Verdict::Valid));
                })
            });
        }
    }
    group.finish();
}

/// Mean signatures/s of one benchmark, from the estimates criterion just wrote.
fn rate(id: &str) -> Option<f64> {
    let path = common::out_dir()
        .join("verify")
        .join(id)
        .join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let nanos = json["mean"]["point_estimate"].as_f64()?;
    Some(SIGNATURES as f64 / (nanos * 1e-9))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn table() -> Option<String> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let dalek2 = rate("dalek2_verify")?;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nEd25519 verification, {SIGNATURES} signatures with distinct keys, {} ({cores} cores)",
        cpu_model()
    );
    let _ = writeln!(
        t,
        "{:<34} {:>12} {:>12} {:>14}",
        "", "sig/s", "x dalek2", "x consensus"
    );
    let mut line = |name: String, r: f64, consensus: Option<f64>| {
        let vs = consensus.map_or(String::new(), |c| format!("{:.2}", r / c));
        let _ = writeln!(t, "{name:<34} {r:>12.0} {:>12.2} {vs:>14}", r / dalek2);
    };
    line("ed25519-dalek 2 verify".into(), dalek2, None);
    line(
        "ed25519-dalek 3 verify (IFMA)".into(),
        rate("dalek3_verify")?,
        None,
    );
    line(
        "ed25519-consensus single".into(),
        rate("consensus_single")?,
        None,
    );
    for b in BATCHES {
        line(
            format!("ed25519-consensus batch {b}"),
            rate(&format!("consensus_batch/{b}"))?,
            None,
        );
    }
    for b in BATCHES {
        let consensus = rate(&format!("consensus_batch/{b}"));
        line(
            format!("verity cpu 1 thread, batch {b}"),
            rate(&format!("verity_1_thread/{b}"))?,
            consensus,
        );
    }
    for b in BATCHES {
        let consensus = rate(&format!("consensus_batch/{b}"));
        line(
            format!("verity cpu {cores} threads, batch {b}"),
            rate(&format!("verity_all_cores/{b}"))?,
            consensus,
        );
    }
    let one = rate("verity_1_thread/1024")?;
    let all = rate("verity_all_cores/1024")?;
    let consensus = rate("consensus_batch/1024")?;
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let _ = writeln!(t, "\ntargets (batch 1024):");
    let _ = writeln!(
        t,
        "  1 thread vs ed25519-consensus batch: {:.2}x (>= 1.5x: {})",
        one / consensus,
        verdict(one >= 1.5 * consensus)
    );
    let _ = writeln!(
        t,
        "  1 thread vs ed25519-dalek 2 verify:  {:.2}x (>= 2x: {})",
        one / dalek2,
        verdict(one >= 2.0 * dalek2)
    );
    let _ = writeln!(
        t,
        "  {cores} threads vs 1 thread:              {:.2}x (>= 1.8x on 2 cores: {})",
        all / one,
        verdict(all >= 1.8 * one)
    );
    Some(t)
}

fn main() {
    let workload = workload();
    let mut criterion = Criterion::default()
        .output_directory(&common::out_dir())
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench(&mut criterion, &workload);
    criterion.final_summary();
    match table() {
        Some(table) => println!("{table}"),
        None => println!("(no table: run all benchmarks of the group, without a filter)"),
    }
}
