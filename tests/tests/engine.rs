//! The ECC engine's exported Verilog, compiled by Verilator, against the firmware's
//! interpreter (verdict, flags and all 64 registers after each signature) and against
//! `ed25519-consensus` (the verdict).
//!
//! `make test` runs every shared vector and a sample of random and adversarial signatures;
//! `make test-long` adds the long sweep (200 random valid and 200 adversarial signatures).
//! Random inputs come from `VERITY_SEED` if set, else a fixed seed; failures print it.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::path::PathBuf;
use verity_drivers::Request;
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_firmware::verify::prepare;
use verity_firmware::Verdict;
use verity_hdl::ecc_engine::MAX_CONTEXTS;
use verity_hdl::ecc_engine_bench::{self as bench, Options};
use verity_hdl::flow::cosim::{Compiled, Cosim, Simulator};
use verity_hdl::flow::harness::Stalls;
use verity_hdl::Block;
use verity_tests::{adversarial, reference, signed, vectors};

fn seed() -> u64 {
    std::env::var("VERITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0e6c_c0de)
}

/// The engine's Verilog, linted and compiled by Verilator in a directory of the test's own.
fn engine(test: &str) -> Compiled {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("engine")
        .join(test);
    Cosim::new(Block::EccEngine, dir)
        .compile(Simulator::Verilator)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs every request that reaches the engine through the Verilog, 16 at a time, and checks
/// each context's verdict, flags and 64 registers against the interpreter and the verdict
/// against the reference; returns how many ran on the engine.
fn check(compiled: &Compiled, name: &str, requests: &[Request]) -> usize {
    let image = Image::new(ed25519_verify());
    let mut jobs = Vec::new();
    let mut accepted = Vec::new();
    for request in requests {
        let accepts = reference::accepts(request);
        match prepare(&request.public_key, &request.signature, &request.message) {
            // Rejected before the engine (S ≥ L, a message too long): the reference agrees.
            Err(verdict) => assert!(
                !accepts,
                "{}: {verdict:?} but the reference accepts",
                request.tag
            ),
            Ok(job) => {
                jobs.push(job);
                accepted.push((request.tag, accepts));
            }
        }
    }
    let options = Options {
        debug: false,
        read_registers: true,
        contexts: MAX_CONTEXTS,
    };
    let inputs = bench::stimulus(&image, &jobs, options);
    let beats = bench::output_beats(&image, &jobs, options).unwrap_or_else(|e| panic!("{e}"));
    let trace = compiled
        .run(
            name,
            &inputs,
            &Stalls::none(),
            beats,
            100_000 * (jobs.len() as u64 + 1),
        )
        .unwrap_or_else(|e| panic!("seed {}: {e}", seed()));
    let report = bench::check(&image, &jobs, options, &trace).unwrap_or_else(|e| {
        panic!(
            "seed {}: the engine's Verilog and the interpreter differ: {e}",
            seed()
        )
    });
    for ((tag, accepts), code) in accepted.iter().zip(&report.codes) {
        let verdict = Verdict::from_code(*code).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            verdict == Verdict::Valid,
            *accepts,
            "{tag}: the engine says {verdict:?}, the reference {accepts}"
        );
    }
    jobs.len()
}

fn random_valid(rng: &mut ChaCha20Rng, count: usize, first_tag: u64) -> Vec<Request> {
    use rand::Rng;
    (0..count as u64)
        .map(|i| {
            let key = ed25519_dalek::SigningKey::from_bytes(&rng.gen());
            let message: Vec<u8> = (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect();
            signed(first_tag + i, &key, message)
        })
        .collect()
}

fn adversarial_sample(rng: &mut ChaCha20Rng, per_kind: usize, first_tag: u64) -> Vec<Request> {
    (0..adversarial::KINDS.len())
        .flat_map(|kind| (0..per_kind).map(move |i| (kind, i)))
        .enumerate()
        .map(|(n, (kind, _))| adversarial::case(kind, rng, first_tag + n as u64))
        .collect()
}

#[test]
fn engine_verilog_matches_the_interpreter_on_the_shared_vectors_and_a_sample() {
    let compiled = engine("sample");
    let mut requests: Vec<Request> =
        vectors::load(&vectors::shared_dir().join("ed25519-speccheck.jsonl"))
            .iter()
            .enumerate()
            .map(|(tag, vector)| vector.request(tag as u64))
            .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed());
    requests.extend(random_valid(&mut rng, 4, 100));
    requests.extend(adversarial_sample(&mut rng, 1, 200));
    let ran = check(&compiled, "sample", &requests);
    assert!(ran >= 20, "{ran} signatures reached the engine");
}

/// The shared vectors that reach the engine, all at once, in rust-hdl's own simulation of the
/// engine (the Verilog runs them above).
#[test]
fn engine_in_rust_hdl_matches_the_interpreter_on_the_shared_vectors() {
    let image = Image::new(ed25519_verify());
    let jobs: Vec<_> = vectors::load(&vectors::shared_dir().join("ed25519-speccheck.jsonl"))
        .iter()
        .filter_map(|vector| {
            let request = vector.request(0);
            prepare(&request.public_key, &request.signature, &request.message).ok()
        })
        .collect();
    let options = Options {
        debug: false,
        read_registers: true,
        contexts: MAX_CONTEXTS,
    };
    let report = bench::simulate(&image, &jobs, options, &Stalls::none())
        .unwrap_or_else(|e| panic!("rust-hdl's engine and the interpreter differ: {e}"));
    assert_eq!(report.codes.len(), jobs.len());
    assert!(jobs.len() >= 8, "{} vectors reach the engine", jobs.len());
}

#[test]
#[ignore = "long: about a minute (400 signatures); `make test-long` runs it"]
fn engine_verilog_matches_the_interpreter_on_400_more_signatures() {
    let compiled = engine("long");
    let mut rng = ChaCha20Rng::seed_from_u64(seed() ^ 0x10_0000);
    let mut requests = random_valid(&mut rng, 200, 1_000);
    requests.extend(adversarial_sample(&mut rng, 20, 2_000));
    let ran = check(&compiled, "long", &requests);
    assert!(ran >= 300, "{ran} signatures reached the engine");
}
