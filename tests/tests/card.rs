//! The card's exported Verilog (`Block::Card`: one engine of 16 contexts), compiled by
//! Verilator, against the functional model (`verity_sim::FunctionalCard`): the same host
//! session — identity reads, the image upload, enable, then a stream of transfers mixing good
//! requests, every kind of bad signature, record errors and an unframeable record in the
//! middle — must give the same register values and the same response records (by tag; only
//! the cycles differ, which the functional model does not count).
//!
//! Random inputs come from `VERITY_SEED` if set, else a fixed seed; failures print it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use verity_drivers::Request;
use verity_firmware::abi::{self, NO_ENGINE, RESPONSE_LEN};
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_firmware::regs;
use verity_hdl::card_bench;
use verity_hdl::flow::cosim::{Cosim, Simulator};
use verity_hdl::flow::harness::Stalls;
use verity_hdl::Block;
use verity_sim::{Card, CycleCard, FunctionalCard};
use verity_tests::{adversarial, signed};

fn seed() -> u64 {
    std::env::var("VERITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0ca2_d5e5)
}

fn record(request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    abi::Request {
        tag: request.tag,
        public_key: request.public_key,
        signature: request.signature,
        message: &request.message,
    }
    .encode(&mut out)
    .expect("messages of at most 1,024 bytes");
    out
}

/// Three transfers: good and bad signatures with a record error among them; a record with a
/// bad magic after a good one (the rest of that transfer is dropped); then more requests and
/// a record with non-zero padding, to show the stream recovers.
fn transfers(rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    let key = SigningKey::from_bytes(&rng.gen());
    let mut tag = 0x7a90;
    let mut next = || {
        tag += 1;
        tag
    };
    let good = |tag: u64, len: usize, rng: &mut ChaCha20Rng| {
        let message: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        record(&signed(tag, &key, message))
    };
    let bad = |tag: u64, kind: &str, rng: &mut ChaCha20Rng| {
        let k = adversarial::KINDS
            .iter()
            .position(|&name| name == kind)
            .expect("a kind the generator has");
        record(&adversarial::case(k, rng, tag))
    };
    let mut first = good(next(), 0, rng);
    first.extend(bad(next(), "flipped bit", rng));
    let mut reserved = good(next(), 40, rng);
    reserved[3] = 0x01;
    first.extend(reserved);
    first.extend(bad(next(), "S + L", rng));
    first.extend(good(next(), 200, rng));
    let mut second = bad(next(), "random A bytes", rng);
    let mut magic = good(next(), 10, rng);
    magic[0] ^= 0xff;
    second.extend(magic);
    second.extend(good(next(), 33, rng));
    let mut third = good(next(), 1024, rng);
    third.extend(bad(next(), "small-order A and R", rng));
    let mut padded = good(next(), 5, rng);
    let end = padded.len() - 1;
    padded[end] = 0x5a;
    third.extend(padded);
    third.extend(good(next(), 64, rng));
    vec![first, second, third]
}

/// Records for the request window: a good request, one with a reserved flag set (a record
/// error), and one with a non-canonical S.
fn window_records(rng: &mut ChaCha20Rng, with_engine: bool) -> Vec<u8> {
    let key = SigningKey::from_bytes(&rng.gen());
    let s_plus_l = adversarial::KINDS
        .iter()
        .position(|&name| name == "S + L")
        .expect("a kind the generator has");
    let mut reserved = record(&signed(0x7b02, &key, b"window".to_vec()));
    reserved[3] = 0x01;
    let mut records = [reserved, record(&adversarial::case(s_plus_l, rng, 0x7b03))].concat();
    if with_engine {
        records.extend(record(&signed(0x7b01, &key, b"through the BAR".to_vec())));
    }
    records
}

/// A session through the card interface, as `card_bench::open`, `card_bench::stream` and
/// `card_bench::window` play it on the host port: the values read, and the response records
/// by tag.
fn card_session(
    card: &mut impl Card,
    image: &[u8],
    transfers: &[Vec<u8>],
    window: &[u8],
) -> (Vec<u32>, BTreeMap<[u8; 8], Vec<u8>>) {
    let mut reads: Vec<u32> = card_bench::IDENTITY
        .iter()
        .map(|&r| card.read_register(r))
        .collect();
    card.load_image(image);
    card.write_register(regs::CONTROL, regs::control::ENABLE);
    reads.push(card.read_register(regs::STATUS));
    reads.push(card.read_register(regs::ERRORS));
    for transfer in transfers {
        card.write_stream(transfer)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // Then submission 1 through the BAR's request window, as `card_bench::window` plays it.
    for (offset, word) in regs::window_writes(1, window) {
        card.write_register(offset, word);
    }
    let words = (window.len() / abi::WORD) as u16;
    card.write_register(regs::DOORBELL, regs::doorbell(1, words));
    let mut answers = Vec::new();
    while card
        .read_stream(&mut answers, 64, Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}"))
        > 0
    {}
    let responses = answers
        .chunks(RESPONSE_LEN)
        .map(|r| (r[..8].try_into().expect("8 bytes"), r.to_vec()))
        .collect();
    (reads, responses)
}

/// The card's session against the model's: the same values read and, by tag, the same
/// responses but for the cycles (counted only by the card, and only when an engine ran).
fn compare(
    seed: u64,
    session: &card_bench::Session,
    reads: &[u32],
    expected: &BTreeMap<[u8; 8], Vec<u8>>,
) {
    assert_eq!(session.reads, reads, "seed {seed}: register values");
    let missing: Vec<String> = expected
        .keys()
        .filter(|tag| !session.responses.iter().any(|r| r[..8] == tag[..]))
        .map(|tag| format!("{:#x}", u64::from_le_bytes(*tag)))
        .collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: no response to {missing:?}"
    );
    assert_eq!(
        session.responses.len(),
        expected.len(),
        "seed {seed}: responses"
    );
    for got in &session.responses {
        let tag: [u8; 8] = got[..8].try_into().expect("8 bytes");
        let want = &expected[&tag];
        let cycles = u32::from_le_bytes(got[12..16].try_into().expect("4 bytes"));
        assert_eq!(
            cycles > 0,
            got[10] != NO_ENGINE,
            "seed {seed}: {cycles} cycles on engine {}",
            got[10]
        );
        // The card sealed what it sent; without its cycles, the record is resealed.
        assert!(
            verity_firmware::abi::Response::decode(got).is_ok(),
            "seed {seed}: the card's response to tag {tag:02x?} does not decode"
        );
        let mut without_cycles = *got;
        without_cycles[12..16].fill(0);
        verity_firmware::abi::seal_response(&mut without_cycles);
        assert_eq!(
            without_cycles[..],
            want[..],
            "seed {seed}: the response to tag {tag:02x?}"
        );
    }
}

#[test]
fn card_verilog_answers_as_the_functional_model() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let transfers = transfers(&mut rng);
    let window = window_records(&mut rng, true);
    let image = Image::new(ed25519_verify()).encode();
    let (reads, expected) = card_session(&mut FunctionalCard::new(1), &image, &transfers, &window);
    assert_eq!(
        expected.len(),
        13,
        "every record but the dropped ones answered once"
    );

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("card");
    let compiled = Cosim::new(Block::Card, dir)
        .compile(Simulator::Verilator)
        .unwrap_or_else(|e| panic!("{e}"));
    let inputs = [
        card_bench::open(&image),
        card_bench::stream(&transfers),
        card_bench::window(1, &window),
    ]
    .concat();
    let trace = compiled
        .run(
            "session",
            &inputs,
            &Stalls::random(seed, 20, 20),
            reads.len() + expected.len(),
            2_000_000,
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    println!(
        "card: {} outputs in {} cycles",
        trace.outputs.len(),
        trace.cycles
    );
    compare(seed, &card_bench::session(&trace), &reads, &expected);
}

/// The same design in rust-hdl's own simulator behind the card interface
/// (`CycleCard::in_rust_hdl`), on a session short enough for it (a verification's 40,000
/// engine cycles are not): identity, upload, enable, and records the card answers before any
/// engine runs — record errors, a non-canonical S, and an unframeable record that drops the
/// rest of its transfer — on one hasher and one lane, and on two of each (records to the
/// lowest free hasher, jobs to the lowest free lane, both merged round-robin).
fn rust_hdl_session(hashers: usize, lanes: usize) {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let key = SigningKey::from_bytes(&rng.gen());
    let good = |tag: u64, rng: &mut ChaCha20Rng| {
        let message: Vec<u8> = (0..rng.gen_range(0..90)).map(|_| rng.gen()).collect();
        record(&signed(tag, &key, message))
    };
    let mut reserved = good(1, &mut rng);
    reserved[6] = 1;
    let s_plus_l = {
        let k = adversarial::KINDS
            .iter()
            .position(|&name| name == "S + L")
            .expect("a kind the generator has");
        record(&adversarial::case(k, &mut rng, 2))
    };
    let mut long = good(3, &mut rng);
    long[4..6].copy_from_slice(&2000u16.to_le_bytes());
    let mut magic = good(4, &mut rng);
    magic[1] = 0;
    let transfers = vec![
        [reserved, s_plus_l, long].concat(),
        [magic, good(5, &mut rng)].concat(),
    ];
    let window = window_records(&mut rng, false);
    let image = Image::new(ed25519_verify()).encode();
    let (reads, expected) = card_session(
        &mut FunctionalCard::new(lanes as u8),
        &image,
        &transfers,
        &window,
    );
    assert_eq!(
        expected.len(),
        5,
        "the rejected records and the non-canonical S, by stream and by window"
    );
    let mut card = CycleCard::in_rust_hdl(hashers, lanes);
    let (got_reads, got) = card_session(&mut card, &image, &transfers, &window);
    println!("rust-hdl card: {} cycles", card.cycles());
    assert_eq!(got_reads, reads, "seed {seed}: register values");
    let session = card_bench::Session {
        reads: got_reads,
        responses: got
            .values()
            .map(|r| r[..].try_into().expect("64 bytes"))
            .collect(),
    };
    compare(seed, &session, &reads, &expected);
}

#[test]
fn card_in_rust_hdl_answers_as_the_functional_model_before_the_engines() {
    rust_hdl_session(1, 1);
}

#[test]
fn card_of_two_hashers_and_two_lanes_in_rust_hdl_answers_as_the_functional_model() {
    rust_hdl_session(2, 2);
}

/// `CONTROL.RESET` drops every response not yet read — in the card, those to jobs taken
/// before it, as they leave — and the card answers what comes after it; the same design in
/// rust-hdl against the functional model.
#[test]
fn reset_drops_the_unread_responses_in_rust_hdl_as_in_the_functional_model() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let s_plus_l = |tag: u64, rng: &mut ChaCha20Rng| {
        let k = adversarial::KINDS
            .iter()
            .position(|&name| name == "S + L")
            .expect("a kind the generator has");
        record(&adversarial::case(k, rng, tag))
    };
    let before = [s_plus_l(1, &mut rng), s_plus_l(2, &mut rng)].concat();
    let after = s_plus_l(3, &mut rng);
    let image = Image::new(ed25519_verify()).encode();
    let run = |card: &mut dyn Card| -> Vec<u8> {
        card.load_image(&image);
        card.write_register(regs::CONTROL, regs::control::ENABLE);
        card.write_stream(&before).unwrap_or_else(|e| panic!("{e}"));
        card.write_register(regs::CONTROL, regs::control::ENABLE | regs::control::RESET);
        card.write_stream(&after).unwrap_or_else(|e| panic!("{e}"));
        let mut answers = Vec::new();
        while card
            .read_stream(&mut answers, 64, Duration::ZERO)
            .unwrap_or_else(|e| panic!("{e}"))
            > 0
        {}
        answers
    };
    let want = run(&mut FunctionalCard::new(1));
    assert_eq!(
        want.len(),
        RESPONSE_LEN,
        "only the request after the reset is answered"
    );
    let got = run(&mut CycleCard::in_rust_hdl(1, 1));
    assert_eq!(got, want, "seed {seed}");
}

/// The cycle model behind the card driver gives the CPU's verdicts on every shared vector and
/// on random and adversarial requests, and its counters say what it was sent.
#[test]
fn cycle_model_gives_the_cpus_verdicts() {
    use std::num::NonZeroUsize;
    use verity_drivers::{verify_all, CardConfig, CardVerifier, PoolConfig, PoolVerifier, Verdict};
    use verity_tests::vectors;

    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut requests: Vec<Request> =
        vectors::load(&vectors::shared_dir().join("ed25519-speccheck.jsonl"))
            .iter()
            .enumerate()
            .map(|(i, v)| v.request(i as u64))
            .collect();
    let first = requests.len() as u64;
    requests.extend((0..24u64).map(|i| {
        let kind = rng.gen_range(0..adversarial::KINDS.len());
        adversarial::case(kind, &mut rng, first + i)
    }));
    let one = NonZeroUsize::new(1).expect("1 > 0");
    let cpu = verify_all(
        &mut PoolVerifier::cpu(PoolConfig::new(one, one)),
        requests.clone(),
    )
    .expect("cpu");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cycle-card");
    let mut card = CycleCard::open(dir).unwrap_or_else(|e| panic!("{e}"));
    // An image with a byte changed after its checksum was computed is refused, and the card
    // does not take requests.
    let mut corrupt = Image::new(ed25519_verify()).encode();
    let at = corrupt.len() - 5;
    corrupt[at] ^= 0x10;
    card.load_image(&corrupt);
    card.write_register(regs::CONTROL, regs::control::ENABLE);
    assert_eq!(card.read_register(regs::STATUS) & regs::status::IMAGE_OK, 0);
    assert_eq!(
        card.read_register(regs::ERRORS),
        regs::errors::IMAGE_CHECKSUM
    );
    assert_eq!(
        card.write_stream(&record(&requests[0])),
        Err(verity_sim::StreamError::NotRunning)
    );
    let mut verifier = CardVerifier::open(
        card,
        "sim-cycle",
        &Image::new(ed25519_verify()),
        CardConfig {
            max_in_flight: 32,
            ..CardConfig::model()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    let cycle = verify_all(&mut verifier, requests.clone()).expect("sim-cycle");
    // 32 in flight: the first batch by DMA, the stragglers through the request window.
    let paths = verifier.paths();
    assert!(
        paths.dma_requests > 0 && paths.window_requests > 0,
        "{paths:?}"
    );
    let card = verifier.card_mut();
    println!(
        "cycle model: {} requests, {} cycles, {:.1} s",
        requests.len(),
        card.cycles(),
        started.elapsed().as_secs_f64()
    );
    for (i, request) in requests.iter().enumerate() {
        assert_eq!(cycle[i].tag, request.tag, "seed {seed}: #{i} out of order");
        assert_eq!(cycle[i].verdict, cpu[i].verdict, "seed {seed}: #{i}");
    }
    let count =
        |verdict: fn(&Verdict) -> bool| cpu.iter().filter(|r| verdict(&r.verdict)).count() as u32;
    let n = requests.len() as u32;
    for (register, want) in [
        (regs::REQUESTS_IN, n),
        (regs::RESPONSES_OUT, n),
        (regs::VALID, count(|v| *v == Verdict::Valid)),
        (regs::INVALID, count(|v| *v == Verdict::Invalid)),
        (
            regs::MALFORMED,
            count(|v| matches!(v, Verdict::Malformed(_))),
        ),
        (regs::RECORDS_REJECTED, 0),
        (regs::FRAMING_DROPS, 0),
    ] {
        assert_eq!(
            card.read_register(register),
            want,
            "seed {seed}: register {register:?}"
        );
    }
}
