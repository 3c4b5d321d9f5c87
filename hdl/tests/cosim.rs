//! Every block's exported Verilog, linted by Verilator and run in Icarus Verilog on the same
//! stimulus as the rust-hdl simulation, against the same references.
//!
//! A bug in rust-hdl's Verilog generation would pass the rust-hdl tests and fail here. Each
//! test also replays part of its stimulus in rust-hdl and requires the two traces to agree
//! cycle for cycle, not just in their values.
//!
//! Random inputs come from a seed: `VERITY_SEED` if set, else a fixed one; failures print it.

use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::Digest;
use std::path::PathBuf;
use verity_firmware::image::Image;
use verity_firmware::merkle::{self, Hash, MAX_LEAVES};
use verity_firmware::program::ed25519_verify;
use verity_hdl::crc32::{self, Crc32};
use verity_hdl::ecc_engine::{ECP5_CONTEXTS, ECP5_RATE, MAX_CONTEXTS};
use verity_hdl::ecc_engine_bench as bench;
use verity_hdl::field_linear::{self, FieldLinear, LinearOp};
use verity_hdl::field_mul::{FieldMul, Rate};
use verity_hdl::field_value::{from_fe, modulus, to_fe};
use verity_hdl::flow::cosim::{Compiled, Cosim, Simulator};
use verity_hdl::flow::harness::{self, compare, Beat, Stalls, StreamBlock};
use verity_hdl::image_check::{self, ImageCheck};
use verity_hdl::instr_check::{self, InstrCheck};
use verity_hdl::merkle::Merkle;
use verity_hdl::record_parser::{self, RecordParser};
use verity_hdl::reg_file::{RegFile, Traffic};
use verity_hdl::request_hasher::{self, RequestHasher};
use verity_hdl::scalar_unit::{self, ScalarUnit};
use verity_hdl::sha2::Sha2;
use verity_hdl::Block;

fn seed() -> u64 {
    std::env::var("VERITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7e57_5eed)
}

fn workdir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cosim")
        .join(name)
}

/// Exports `block`, lints it and compiles it in Icarus, in a directory of the test's own.
fn build(block: Block, test: &str) -> Compiled {
    build_with(block, test, Simulator::Icarus)
}

fn build_with(block: Block, test: &str, simulator: Simulator) -> Compiled {
    Cosim::new(block, workdir(test))
        .compile(simulator)
        .unwrap_or_else(|e| panic!("{block}: {e}"))
}

/// Runs the Verilog, checks it against the reference, then replays the first `replay`
/// expected beats' worth of stimulus in rust-hdl and checks the traces agree cycle for cycle.
fn check<B: StreamBlock>(
    compiled: &Compiled,
    mut fresh: impl FnMut() -> B,
    name: &str,
    inputs: &[Beat],
    expected: &[Beat],
    stalls: &Stalls,
    replay: (usize, usize),
) {
    let seed = seed();
    let limit = 400 * inputs.len() as u64 + 100_000;
    let trace = compiled
        .run(name, inputs, stalls, expected.len(), limit)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    if let Err(mismatch) = compare(B::OUTPUTS, &trace, expected) {
        panic!(
            "seed {seed}: Verilog in {:?}: {mismatch}",
            compiled.simulator()
        );
    }
    let (replay_inputs, replay_outputs) = replay;
    let mut uut = fresh();
    uut.connect_all();
    let ours = harness::run(
        &mut uut,
        &inputs[..replay_inputs],
        stalls,
        replay_outputs,
        limit,
    );
    assert_eq!(
        ours.outputs[..],
        trace.outputs[..replay_outputs],
        "seed {seed}: rust-hdl and {:?} traces differ",
        compiled.simulator()
    );
}

fn sha_stimulus<const W: usize, const B: usize, const D: usize>(
    reference: fn(&[u8]) -> Vec<u8>,
    random_messages: usize,
) -> (Vec<Beat>, Vec<Beat>, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let max = verity_firmware::abi::MAX_MESSAGE_LEN + 64;
    let boundaries = [
        0usize, 1, 55, 56, 63, 64, 111, 112, 119, 120, 127, 128, 239, 240, 247, 248,
    ];
    let lengths: Vec<usize> = boundaries
        .into_iter()
        .chain((0..random_messages).map(|_| rng.gen_range(0..=max)))
        .collect();
    let mut inputs = Vec::new();
    let mut expected = Vec::new();
    let mut first_boundary_inputs = 0;
    for (i, len) in lengths.iter().enumerate() {
        let message: Vec<u8> = (0..*len).map(|_| rng.gen()).collect();
        let tag = i as u16;
        inputs.extend(Sha2::<W, B, D>::message_beats(&message, tag));
        expected.push(Sha2::<W, B, D>::digest_beat(&reference(&message), tag));
        if i + 1 == boundaries.len() {
            first_boundary_inputs = inputs.len();
        }
    }
    (inputs, expected, first_boundary_inputs)
}

/// The SHA unit's Verilog on the boundary lengths and 200 random ones, back to back and then
/// under random stalls on both sides.
fn sha_cosim<const W: usize, const B: usize, const D: usize>(
    block: Block,
    reference: fn(&[u8]) -> Vec<u8>,
) {
    let compiled = build(block, block.name());
    let (inputs, expected, replay) = sha_stimulus::<W, B, D>(reference, 200);
    let stall_patterns = [
        ("back-to-back", Stalls::none()),
        ("stalled", Stalls::random(seed(), 35, 35)),
    ];
    for (name, stalls) in stall_patterns {
        check(
            &compiled,
            Sha2::<W, B, D>::default,
            name,
            &inputs,
            &expected,
            &stalls,
            (replay, 16),
        );
    }
}

#[test]
fn sha512_verilog_matches_the_sha2_crate() {
    sha_cosim::<64, 1024, 512>(Block::Sha512, |m| sha2::Sha512::digest(m).to_vec());
}

#[test]
fn sha256_verilog_matches_the_sha2_crate() {
    sha_cosim::<32, 512, 256>(Block::Sha256, |m| sha2::Sha256::digest(m).to_vec());
}

fn ids(rng: &mut ChaCha8Rng, n: usize) -> Vec<Hash> {
    (0..n).map(|_| rng.gen()).collect()
}

fn merkle_sizes(simulator: Simulator, test: &str, sizes: std::ops::RangeInclusive<usize>) {
    let compiled = build_with(Block::Merkle, test, simulator);
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let batches: Vec<Vec<Hash>> = sizes.map(|n| ids(&mut rng, n)).collect();
    let (inputs, expected) = Merkle::stimulus(&batches);
    let replay = (batches[0].len(), 1);
    let stalls = Stalls::random(seed(), 30, 30);
    check(
        &compiled,
        Merkle::default,
        "sizes",
        &inputs,
        &expected,
        &stalls,
        replay,
    );
}

#[test]
fn merkle_verilog_matches_the_firmware_rule_in_icarus() {
    merkle_sizes(Simulator::Icarus, "merkle-icarus", 1..=12);
}

#[test]
fn merkle_verilog_matches_the_firmware_rule_for_every_size_to_70() {
    // 700,000 cycles: Verilator's compiled model, where Icarus would take a minute.
    merkle_sizes(Simulator::Verilator, "merkle-sizes", 1..=70);
}

#[test]
fn merkle_verilog_closes_a_full_batch_itself() {
    // 850,000 cycles: Verilator's compiled model runs them in a fraction of a second, where
    // Icarus would take a minute.
    let compiled = build_with(Block::Merkle, "merkle-full", Simulator::Verilator);
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let all = ids(&mut rng, MAX_LEAVES + 3);
    // One stream with `last` only on the final id: the unit must cut it after MAX_LEAVES.
    let inputs = Merkle::batch_beats(&all);
    let (full, rest) = all.split_at(MAX_LEAVES);
    let expected = [
        Merkle::root_beat(&merkle::root(full), MAX_LEAVES),
        Merkle::root_beat(&merkle::root(rest), rest.len()),
    ];
    let trace = compiled
        .run(
            "overflow",
            &inputs,
            &Stalls::none(),
            2,
            300 * inputs.len() as u64,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(mismatch) = compare(Merkle::OUTPUTS, &trace, &expected) {
        panic!("seed {}: {mismatch}", seed());
    }
}

/// Operand pairs for the multiplier: every pair of edge values (0, 1, 2, 19, p − 1, p, p + 1,
/// 2^254, 2^255 − 1, the values just below and at 2^k limb boundaries), then random ones.
fn field_operands(random: usize) -> Vec<(BigUint, BigUint)> {
    let p = modulus();
    let one = BigUint::from(1u8);
    let edges = [
        BigUint::from(0u8),
        one.clone(),
        BigUint::from(2u8),
        BigUint::from(19u8),
        &p - 1u8,
        p.clone(),
        &p + 1u8,
        &one << 254,
        (&one << 255) - 1u8,
        (&one << 26) - 1u8,
        (&one << 17) - 1u8,
        (&one << 234) - 1u8,
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let mut pairs: Vec<(BigUint, BigUint)> = edges
        .iter()
        .flat_map(|a| edges.iter().map(move |b| (a.clone(), b.clone())))
        .collect();
    pairs.extend((0..random).map(|_| {
        let mut draw = || BigUint::from_bytes_le(&rng.gen::<[u8; 32]>()) >> 1u8;
        (draw(), draw())
    }));
    pairs
}

/// The product the firmware's reference arithmetic gives (the interpreter's `Mul`).
fn firmware_product(a: &BigUint, b: &BigUint) -> BigUint {
    from_fe(to_fe(a) * to_fe(b))
}

fn field_mul_cosim(block: Block, simulator: Simulator, test: &str, random: usize) {
    let rate = if block == Block::FieldMul {
        Rate::Full
    } else {
        ECP5_RATE
    };
    let compiled = build_with(block, test, simulator);
    let pairs = field_operands(random);
    let inputs: Vec<Beat> = pairs
        .iter()
        .enumerate()
        .map(|(n, (a, b))| FieldMul::operation(a, b, n as u16))
        .collect();
    let p = modulus();
    let expected: Vec<Beat> = pairs
        .iter()
        .enumerate()
        .map(|(n, (a, b))| {
            let product = firmware_product(a, b);
            // The firmware's field and the big-integer oracle agree before either judges.
            assert_eq!(product, a * b % &p, "firmware field on {a:#x} · {b:#x}");
            vec![product, BigUint::from(n as u16)]
        })
        .collect();
    // Gaps in the issue stream: the pipeline must not mix operations up. A slower rate takes
    // an operation at most every `interval` cycles.
    let stalls = Stalls::random(seed(), 25, 0).spaced(rate.interval());
    check(
        &compiled,
        || FieldMul::new(rate),
        "products",
        &inputs,
        &expected,
        &stalls,
        (144, 144),
    );
}

#[test]
fn field_mul_verilog_matches_the_firmware_field_in_icarus() {
    field_mul_cosim(Block::FieldMul, Simulator::Icarus, "field-mul-icarus", 200);
}

#[test]
fn field_mul_verilog_matches_the_firmware_field_on_10000_products() {
    field_mul_cosim(
        Block::FieldMul,
        Simulator::Verilator,
        "field-mul-verilator",
        10_000,
    );
}

#[test]
fn ecp5_field_mul_verilog_matches_the_firmware_field_in_icarus() {
    field_mul_cosim(
        Block::FieldMulEcp5,
        Simulator::Icarus,
        "field-mul-ecp5-icarus",
        100,
    );
}

#[test]
fn ecp5_field_mul_verilog_matches_the_firmware_field_on_10000_products() {
    field_mul_cosim(
        Block::FieldMulEcp5,
        Simulator::Verilator,
        "field-mul-ecp5-verilator",
        10_000,
    );
}

#[test]
fn field_linear_verilog_matches_the_firmware_field_in_icarus() {
    let compiled = build(Block::FieldLinear, "field-linear");
    let p = modulus();
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let mut inputs = Vec::new();
    let mut expected = Vec::new();
    // The multiplier's edge pairs, reduced for the operations that take canonical operands,
    // and random ones; every operation on each.
    for (n, (a, b)) in field_operands(300).into_iter().enumerate() {
        let op = [
            LinearOp::Add,
            LinearOp::Sub,
            LinearOp::Reduce,
            LinearOp::PassB,
        ][rng.gen_range(0..4)];
        let (a, b) = match op {
            LinearOp::Reduce => (a, BigUint::from(0u8)),
            _ => (a % &p, b % &p),
        };
        inputs.push(FieldLinear::operation(op, &a, &b, n as u16));
        expected.push(field_linear::reference(op, &a, &b, n as u16));
    }
    let stalls = Stalls::random(seed(), 25, 0);
    check(
        &compiled,
        FieldLinear::default,
        "operations",
        &inputs,
        &expected,
        &stalls,
        (100, 100),
    );
}

#[test]
fn reg_file_verilog_reads_the_last_write_of_either_port() {
    let compiled = build(Block::RegFile, "reg-file");
    let (inputs, expected) = Traffic::random(
        &mut ChaCha8Rng::seed_from_u64(seed()),
        2_000,
        24,
        verity_hdl::reg_file::MAX_CONTEXTS,
    );
    check(
        &compiled,
        RegFile::default,
        "traffic",
        &inputs,
        &expected,
        &Stalls::random(seed(), 20, 0),
        (200, 200),
    );
}

/// `count` signatures from `rng`; with `forge`, every third one has a forged R (invalid, or not
/// on the curve).
fn engine_jobs(
    rng: &mut ChaCha8Rng,
    count: usize,
    forge: bool,
) -> Vec<verity_firmware::interp::Inputs> {
    use ed25519_dalek::{Signer, SigningKey};
    use verity_firmware::verify::prepare;
    (0..count)
        .map(|n| {
            let key = SigningKey::from_bytes(&rng.gen());
            let message: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
            let mut signature = key.sign(&message).to_bytes();
            if forge && n % 3 == 1 {
                signature[5] ^= 1;
            }
            prepare(key.verifying_key().as_bytes(), &signature, &message)
                .unwrap_or_else(|verdict| panic!("prepared before the engine: {verdict:?}"))
        })
        .collect()
}

/// Runs `jobs` through the engine's Verilog and checks them against the interpreter.
fn engine_batch(
    compiled: &Compiled,
    name: &str,
    jobs: &[verity_firmware::interp::Inputs],
    options: bench::Options,
) -> (Vec<Beat>, bench::Report) {
    let image = Image::new(ed25519_verify());
    let inputs = bench::stimulus(&image, jobs, options);
    let beats = bench::output_beats(&image, jobs, options).unwrap_or_else(|e| panic!("{e}"));
    let trace = compiled
        .run(name, &inputs, &Stalls::none(), beats, 50_000_000)
        .unwrap_or_else(|e| panic!("{e}"));
    let report = bench::check(&image, jobs, options, &trace)
        .unwrap_or_else(|e| panic!("seed {}: {e}", seed()));
    (inputs, report)
}

#[test]
fn ecc_engine_verilog_agrees_with_the_interpreter_after_every_instruction() {
    let compiled = build_with(Block::EccEngine, "ecc-engine-debug", Simulator::Verilator);
    let jobs = engine_jobs(&mut ChaCha8Rng::seed_from_u64(seed()), 3, true);
    let options = bench::Options {
        debug: true,
        read_registers: true,
        contexts: MAX_CONTEXTS,
    };
    let (_, report) = engine_batch(&compiled, "debug", &jobs, options);
    assert!(
        report.retired > 15_000,
        "{} instructions retired",
        report.retired
    );
    assert_eq!(report.codes.iter().filter(|&&c| c == 0).count(), 2);
}

/// Cycles per verification at steady state, over the whole batch, and the latency of one
/// signature alone, from the Verilog. Steady state is what 32 more signatures add to a batch
/// of 16 (`(T(48) − T(16)) / 32`, T(n) the last verdict's cycle), the same measure as
/// [`model_cycles`] takes of the cost model.
fn engine_cycles(
    compiled: &Compiled,
    jobs: &[verity_firmware::interp::Inputs],
    contexts: usize,
) -> (u64, u64, u64) {
    assert_eq!(jobs.len(), 48);
    let options = bench::Options {
        debug: false,
        read_registers: false,
        contexts,
    };
    let last = |name: &str, jobs: &[verity_firmware::interp::Inputs]| {
        let (_, report) = engine_batch(compiled, name, jobs, options);
        report.verdict_cycles.into_iter().max().unwrap_or(0)
    };
    let (t16, t48) = (last("sixteen", &jobs[..16]), last("steady", jobs));
    let (inputs, alone) = engine_batch(compiled, "alone", &jobs[..1], options);
    // The run command is the last input beat; with no stalls the engine takes one a cycle.
    let latency = alone.verdict_cycles[0] - (inputs.len() as u64 - 1);
    ((t48 - t16) / 32, t48 / 48, latency)
}

/// The cost model's figures by the same measure as [`engine_cycles`].
fn model_cycles(jobs: &[verity_firmware::interp::Inputs]) -> (u64, u64, u64) {
    use verity_firmware::interp::{CostModel, Engine};
    let model = Engine::new(Image::new(ed25519_verify()));
    let last = |jobs: &[verity_firmware::interp::Inputs], contexts: usize| {
        let model_of = CostModel {
            contexts,
            ..CostModel::default()
        };
        model
            .schedule(model_of, jobs)
            .unwrap_or_else(|e| panic!("{e}"))
            .cycles
    };
    let (t16, t48) = (last(&jobs[..16], 16), last(jobs, 16));
    ((t48 - t16) / 32, t48 / 48, last(&jobs[..1], 1))
}

#[test]
fn ecc_engine_verilog_cycles_per_verification() {
    let compiled = build_with(Block::EccEngine, "ecc-engine-cycles", Simulator::Verilator);
    let jobs = engine_jobs(&mut ChaCha8Rng::seed_from_u64(seed() ^ 1), 48, false);
    let (steady, batch, latency) = engine_cycles(&compiled, &jobs, MAX_CONTEXTS);
    let (model_steady, model_batch, model_latency) = model_cycles(&jobs);
    println!(
        "engine: {steady} cycles per verification at steady state, {batch} over the batch of \
         48, {latency} for one alone; the cost model: {model_steady}, {model_batch} and \
         {model_latency}"
    );
    assert!(steady <= 4_000, "{steady} cycles per verification");
    assert!(
        steady * 10 <= model_steady * 11,
        "{steady} cycles per verification, more than 10 % above the model's {model_steady}"
    );
}

/// The ECP5 build (quarter-rate multiplier): the same answers, and its cycle figures.
#[test]
fn ecc_engine_ecp5_verilog_agrees_with_the_interpreter() {
    let compiled = build_with(
        Block::EccEngineEcp5,
        "ecc-engine-ecp5",
        Simulator::Verilator,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 2);
    let options = bench::Options {
        debug: false,
        read_registers: true,
        contexts: ECP5_CONTEXTS,
    };
    engine_batch(
        &compiled,
        "registers",
        &engine_jobs(&mut rng, 18, true),
        options,
    );
    let (steady, batch, latency) =
        engine_cycles(&compiled, &engine_jobs(&mut rng, 48, false), ECP5_CONTEXTS);
    println!(
        "ECP5 engine: {steady} cycles per verification at steady state, {batch} over the batch \
         of 48; {latency} cycles for one alone"
    );
    // The multiplier's bound: about 3,035 multiplications a signature, one every fourth cycle
    // (12,140); four contexts hide less of a result's latency.
    assert!(steady <= 14_000, "{steady} cycles per verification");
}

#[test]
fn scalar_unit_verilog_matches_the_firmware_reduction_and_recoding() {
    let compiled = build(Block::ScalarUnit, "scalar-unit");
    let jobs = scalar_unit::sample_jobs(15, seed());
    let inputs: Vec<Beat> = jobs.iter().map(|(h, s)| scalar_unit::job(h, s)).collect();
    let expected: Vec<Beat> = jobs
        .iter()
        .flat_map(|(h, s)| scalar_unit::expected(h, s))
        .collect();
    check(
        &compiled,
        ScalarUnit::default,
        "jobs",
        &inputs,
        &expected,
        &Stalls::random(seed(), 30, 30),
        (1, 256),
    );
}

#[test]
fn record_parser_verilog_classifies_records_as_the_firmware_decodes_them() {
    let compiled = build(Block::RecordParser, "record-parser");
    let transfers = record_parser::sample_transfers(60, seed());
    let inputs = record_parser::beats(&transfers);
    let expected = record_parser::expected(&transfers);
    let replay = record_parser::beats(&transfers[..4]).len();
    let replay_out = record_parser::expected(&transfers[..4]).len();
    check(
        &compiled,
        RecordParser::default,
        "transfers",
        &inputs,
        &expected,
        &Stalls::random(seed(), 30, 30),
        (replay, replay_out),
    );
}

#[test]
fn request_hasher_verilog_hashes_the_records() {
    let compiled = build(Block::RequestHasher, "request-hasher");
    let seed = seed();
    let transfers = request_hasher::sample_transfers(12, seed);
    let inputs = request_hasher::inputs(&transfers);
    let expected = request_hasher::expected(&transfers);
    let stalls = Stalls::random(seed, 30, 30);
    let limit = 400 * inputs.len() as u64 + 100_000;
    let trace = compiled
        .run("records", &inputs, &stalls, expected.len(), limit)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    if let Err(mismatch) = request_hasher::check(&trace, &expected) {
        panic!(
            "seed {seed}: Verilog in {:?}: {mismatch}",
            compiled.simulator()
        );
    }
    let replay = request_hasher::inputs(&transfers[..3]);
    let replay_out = request_hasher::expected(&transfers[..3]).len();
    let mut uut = RequestHasher::default();
    let ours = harness::run(&mut uut, &replay, &stalls, replay_out, limit);
    assert_eq!(
        ours.outputs[..],
        trace.outputs[..replay_out],
        "seed {seed}: rust-hdl and {:?} traces differ",
        compiled.simulator()
    );
}

#[test]
fn crc32_verilog_matches_crc32fast() {
    let compiled = build(Block::Crc32, "crc32");
    let messages = crc32::sample_messages(30, seed());
    let (inputs, expected) = crc32::stimulus(&messages);
    let (replay_in, replay_out) = crc32::stimulus(&messages[..9]);
    check(
        &compiled,
        Crc32::default,
        "messages",
        &inputs,
        &expected,
        &Stalls::random(seed(), 30, 30),
        (replay_in.len(), replay_out.len()),
    );
}

#[test]
fn instr_check_verilog_matches_the_firmware_decoder() {
    let compiled = build(Block::InstrCheck, "instr-check");
    let words = instr_check::sample_words(seed());
    let (inputs, expected) = instr_check::stimulus(&words);
    check(
        &compiled,
        InstrCheck::default,
        "words",
        &inputs,
        &expected,
        &Stalls::random(seed(), 30, 30),
        (200, 200),
    );
}

#[test]
fn image_check_verilog_matches_the_firmware_image_decoder() {
    // 45,000 input beats: Icarus runs this block at about 115 cycles/s (its 256-bit constant
    // path is re-evaluated on every event), Verilator in a fraction of a second.
    let compiled = build_with(Block::ImageCheck, "image-check", Simulator::Verilator);
    let uploads = image_check::sample_uploads();
    let inputs = image_check::beats(&uploads);
    let expected = image_check::expected(&uploads);
    let replay_in = image_check::beats(&uploads[..1]).len();
    let replay_out = image_check::expected(&uploads[..1]).len();
    check(
        &compiled,
        ImageCheck::default,
        "uploads",
        &inputs,
        &expected,
        &Stalls::random(seed(), 30, 30),
        (replay_in, replay_out),
    );
}

/// A card of two hashers and two lanes (the pool's routing and merge, the lanes' merge) lints
/// clean under the card's waivers; the co-simulated card has one of each.
#[test]
fn card_of_two_hashers_and_two_lanes_lints_clean() {
    use verity_hdl::flow::tools;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("card-2x2");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("card.v");
    tools::write(&file, verity_hdl::flow::export::card_verilog(2, 2, 1))
        .unwrap_or_else(|e| panic!("{e}"));
    tools::lint(&file, Block::Card).unwrap_or_else(|e| panic!("{e}"));
}
