//! Every verification path against ZIP-215's reference, `ed25519-consensus`: the CPU in single
//! and batch mode and as a backend, and the card's microcode on the firmware's reference
//! interpreter, directly and as the `model` backend, and the simulated card's functional model
//! through the card ABI (`sim` backend).

use std::num::NonZeroUsize;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use verity_drivers::zip215;
use verity_drivers::{
    verify_all, CardConfig, CardVerifier, PoolConfig, PoolVerifier, Request, Verdict,
};
use verity_firmware::image::Image;
use verity_firmware::interp::Engine;
use verity_firmware::program::ed25519_verify;
use verity_sim::FunctionalCard;
use verity_tests::{adversarial, reference, signed, vectors};

fn sized(threads: usize, batch: usize) -> PoolConfig {
    PoolConfig::new(
        NonZeroUsize::new(threads).expect("threads > 0"),
        NonZeroUsize::new(batch).expect("batch > 0"),
    )
}

fn engine() -> Engine {
    Engine::new(Image::new(ed25519_verify()))
}

/// The microcode's verdict on the reference interpreter.
fn interpreted(engine: &Engine, request: &Request) -> Verdict {
    verity_firmware::verify::verify(
        engine,
        &request.public_key,
        &request.signature,
        &request.message,
    )
    .expect("the microcode runs to an outcome")
    .0
}

/// A seed from `$VERITY_TEST_SEED`, or a fresh one; tests print it when they fail.
fn seed() -> u64 {
    std::env::var("VERITY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen())
}

/// The functional card model behind the card driver, with a small in-flight bound so long
/// inputs go through many transfers.
fn sim_card() -> CardVerifier<FunctionalCard> {
    CardVerifier::open(
        FunctionalCard::new(3),
        "sim",
        &Image::new(ed25519_verify()),
        CardConfig {
            max_in_flight: 7,
            ..CardConfig::model()
        },
    )
    .expect("the functional card opens")
}

/// Every path: CPU single, CPU batch (one equation), the CPU backend (batches of 4 on 2
/// threads, so vectors land in different batches and workers), the interpreter, the model
/// backend, and the functional card. All must give the same verdict, reason included.
fn assert_every_path(requests: &[Request], expected: &[bool], what: &str) {
    let single: Vec<Verdict> = requests.iter().map(zip215::verify_single).collect();
    let batch = zip215::verify_batch(requests, &mut ChaCha20Rng::seed_from_u64(1));
    let cpu = verify_all(&mut PoolVerifier::cpu(sized(2, 4)), requests.to_vec()).expect("cpu runs");
    let model =
        verify_all(&mut PoolVerifier::model(sized(2, 4)), requests.to_vec()).expect("model runs");
    let sim = verify_all(&mut sim_card(), requests.to_vec()).expect("sim runs");
    let engine = engine();
    for (i, request) in requests.iter().enumerate() {
        let want = expected[i];
        assert_eq!(
            single[i].is_valid(),
            want,
            "{what} #{i} single: {}",
            single[i]
        );
        assert_eq!(
            batch[i], single[i],
            "{what} #{i}: batch disagrees with single"
        );
        assert_eq!(
            interpreted(&engine, request),
            single[i],
            "{what} #{i}: interpreter disagrees"
        );
        for (name, responses) in [("cpu", &cpu), ("model", &model), ("sim", &sim)] {
            assert_eq!(
                responses[i].tag, request.tag,
                "{what} #{i}: {name} lost the tag"
            );
            assert_eq!(
                responses[i].verdict, single[i],
                "{what} #{i}: {name} disagrees"
            );
        }
    }
}

#[test]
fn every_shared_vector_file_gives_the_zip215_verdict_on_every_path() {
    let mut files: Vec<_> = std::fs::read_dir(vectors::shared_dir())
        .expect("the shared vectors folder lists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("ed25519-speccheck.jsonl")),
        "{files:?}"
    );
    for file in files {
        let vectors = vectors::load(&file);
        if file.ends_with("ed25519-speccheck.jsonl") {
            assert_eq!(vectors.len(), 12, "the speccheck file has 12 cases");
        }
        let requests: Vec<Request> = vectors.iter().zip(0..).map(|(v, i)| v.request(i)).collect();
        let expected: Vec<bool> = vectors.iter().map(|v| v.zip215).collect();
        for (request, vector) in requests.iter().zip(&vectors) {
            assert_eq!(
                reference::accepts(request),
                vector.zip215,
                "{}: reference",
                vector.id
            );
        }
        assert_every_path(&requests, &expected, &file.display().to_string());
    }
}

#[test]
fn a_message_longer_than_a_card_request_holds_is_malformed_on_every_path() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let requests: Vec<Request> = [1024, 1025]
        .into_iter()
        .zip(0..)
        .map(|(len, tag)| signed(tag, &key, vec![0x42; len]))
        .collect();
    // The reference has no bound; Verity's predicate does, so the card and the CPU agree.
    assert!(reference::accepts(&requests[1]));
    assert_every_path(&requests, &[true, false], "message length");
    assert_eq!(
        zip215::verify_single(&requests[1]),
        Verdict::Malformed(verity_drivers::Malformed::MessageTooLong)
    );
}

#[test]
fn rfc8032_vectors_sign_and_verify() {
    use ed25519_dalek::Signer;
    let vectors = vectors::load(&vectors::own_dir().join("rfc8032.jsonl"));
    assert!(!vectors.is_empty());
    let requests: Vec<Request> = vectors.iter().zip(0..).map(|(v, i)| v.request(i)).collect();
    for (vector, request) in vectors.iter().zip(&requests) {
        let seed: [u8; 32] = hex::decode(vector.seed.as_deref().expect("RFC vectors carry a seed"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(
            key.verifying_key().to_bytes(),
            request.public_key,
            "{}",
            vector.id
        );
        assert_eq!(
            key.sign(&request.message).to_bytes(),
            request.signature,
            "{}",
            vector.id
        );
    }
    let expected: Vec<bool> = vectors.iter().map(|v| v.zip215).collect();
    assert_every_path(&requests, &expected, "rfc8032");
}

#[test]
fn ten_thousand_random_valid_signatures_verify_on_the_cpu_and_the_interpreter() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // Fewer keys than signatures, as at a venue: keys repeat within a batch.
    let keys: Vec<ed25519_dalek::SigningKey> = (0..2_000)
        .map(|_| ed25519_dalek::SigningKey::generate(&mut rng))
        .collect();
    let requests: Vec<Request> = (0..10_000u64)
        .map(|i| {
            let key = &keys[rng.gen_range(0..keys.len())];
            let mut message = vec![0u8; rng.gen_range(0..200)];
            rng.fill(&mut message[..]);
            signed(i, key, message)
        })
        .collect();
    assert!(
        reference::accepts_batch(&requests),
        "seed {seed}: reference batch"
    );
    let responses = verify_all(
        &mut PoolVerifier::cpu(PoolConfig::default()),
        requests.clone(),
    )
    .expect("backend runs");
    assert_eq!(responses.len(), requests.len(), "seed {seed}");
    for (i, (response, request)) in responses.iter().zip(&requests).enumerate() {
        assert_eq!(response.tag, request.tag, "seed {seed}: #{i} out of order");
        assert_eq!(response.verdict, Verdict::Valid, "seed {seed}: #{i}");
    }
}

#[test]
fn one_bad_signature_in_a_large_batch_is_found_and_only_it() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut requests: Vec<Request> = (0..1024)
        .map(|i| adversarial::case(0, &mut rng, i))
        .collect();
    let bad = rng.gen_range(0..requests.len());
    requests[bad].message.push(1);
    let verdicts = zip215::verify_batch(&requests, &mut rng);
    for (i, verdict) in verdicts.iter().enumerate() {
        let want = if i == bad {
            Verdict::Invalid
        } else {
            Verdict::Valid
        };
        assert_eq!(*verdict, want, "seed {seed}: #{i} (bad one is #{bad})");
    }
}

#[test]
fn every_adversarial_kind_is_exercised_with_both_outcomes_where_possible() {
    // Guards the generators: a kind that only ever produced valid (or only invalid) cases
    // would make the property test below weaker than it reads.
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for (kind, name) in adversarial::KINDS.iter().enumerate() {
        let outcomes: Vec<bool> = (0..64)
            .map(|i| reference::accepts(&adversarial::case(kind, &mut rng, i)))
            .collect();
        let valid = outcomes.iter().filter(|v| **v).count();
        match kind {
            0..=3 => assert_eq!(valid, 64, "{name}: signed cases are all ZIP-215 valid"),
            5 | 6 => assert_eq!(valid, 0, "{name}: S >= L never verifies"),
            _ => assert!(valid < 64, "{name}: some cases must be rejected"),
        }
    }
}

static ENGINE: std::sync::LazyLock<Engine> = std::sync::LazyLock::new(engine);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// One adversarial case at a time: our single verdict is the reference's, the
    /// interpreter's is ours (reason included), and a rejected key is reported as malformed.
    #[test]
    fn single_verdicts_match_the_reference(kind in 0..adversarial::KINDS.len(), seed in any::<u64>()) {
        let request = adversarial::case(kind, &mut ChaCha20Rng::seed_from_u64(seed), 0);
        let ours = zip215::verify_single(&request);
        prop_assert_eq!(interpreted(&ENGINE, &request), ours, "kind {} seed {}", adversarial::KINDS[kind], seed);
        prop_assert_eq!(ours.is_valid(), reference::accepts(&request),
            "kind {} seed {}: ours {}", adversarial::KINDS[kind], seed, ours);
        if ed25519_consensus::VerificationKey::try_from(request.public_key).is_err() {
            prop_assert!(matches!(ours, Verdict::Malformed(_)), "kind {} seed {}", adversarial::KINDS[kind], seed);
        }
    }

    /// Batches mixing every kind: batch verdicts equal single verdicts item by item, and the
    /// whole batch passes exactly when the reference's batch passes.
    #[test]
    fn batch_verdicts_match_single_and_the_reference(seed in any::<u64>(), len in 1usize..48) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let requests: Vec<Request> = (0..len as u64)
            .map(|i| { let kind = rng.gen_range(0..adversarial::KINDS.len()); adversarial::case(kind, &mut rng, i) })
            .collect();
        let batch = zip215::verify_batch(&requests, &mut rng);
        for (i, request) in requests.iter().enumerate() {
            prop_assert_eq!(batch[i], zip215::verify_single(request), "seed {} #{}", seed, i);
            prop_assert_eq!(batch[i].is_valid(), reference::accepts(request), "seed {} #{}", seed, i);
        }
        prop_assert_eq!(batch.iter().all(|v| v.is_valid()), reference::accepts_batch(&requests), "seed {}", seed);
    }
}

#[test]
fn random_and_adversarial_batches_agree_on_the_cpu_and_the_simulated_card() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let requests: Vec<Request> = (0..1_500u64)
        .map(|i| {
            let kind = rng.gen_range(0..adversarial::KINDS.len());
            adversarial::case(kind, &mut rng, i)
        })
        .collect();
    let cpu = verify_all(&mut PoolVerifier::cpu(sized(2, 64)), requests.clone()).expect("cpu");
    let mut card = sim_card();
    let sim = verify_all(&mut card, requests.clone()).expect("sim");
    assert_eq!(sim.len(), requests.len(), "seed {seed}");
    for (i, request) in requests.iter().enumerate() {
        assert_eq!(sim[i].tag, request.tag, "seed {seed}: #{i} out of order");
        assert_eq!(sim[i].verdict, cpu[i].verdict, "seed {seed}: #{i}");
    }
    // The card counted what it was sent: every request went to it (none is over 1,024 bytes).
    use verity_firmware::regs;
    use verity_sim::Card;
    let card = card.card_mut();
    let count =
        |verdict: fn(&Verdict) -> bool| cpu.iter().filter(|r| verdict(&r.verdict)).count() as u32;
    assert_eq!(
        card.read_register(regs::REQUESTS_IN),
        requests.len() as u32,
        "seed {seed}"
    );
    assert_eq!(
        card.read_register(regs::RESPONSES_OUT),
        requests.len() as u32,
        "seed {seed}"
    );
    assert_eq!(
        card.read_register(regs::VALID),
        count(|v| *v == Verdict::Valid),
        "seed {seed}"
    );
    assert_eq!(
        card.read_register(regs::INVALID),
        count(|v| *v == Verdict::Invalid),
        "seed {seed}"
    );
    assert_eq!(
        card.read_register(regs::MALFORMED),
        count(|v| matches!(v, Verdict::Malformed(_))),
        "seed {seed}"
    );
    assert_eq!(card.read_register(regs::RECORDS_REJECTED), 0, "seed {seed}");
}
