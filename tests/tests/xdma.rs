//! The XDMA backend's own code against the virtual XDMA endpoint: FIFOs for the two DMA
//! streams, a shared file for the BAR, the functional model behind them.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_drivers::{
    verify_all, CardConfig, CardState, CardVerifier, PoolConfig, PoolVerifier, Request, Verifier,
    VerifierError, XdmaCard, XdmaConfig, XdmaError,
};
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_sim::{Card, Endpoint, Faults, FunctionalCard};
use verity_tests::devices::{mixed, seed, DeviceDir as Dir};
use verity_tests::vectors;

fn serve(dir: &Dir) -> Endpoint {
    Endpoint::serve(&dir.prefix(), Box::new(FunctionalCard::new(4))).expect("endpoint starts")
}

fn xdma(dir: &Dir, timeout: Duration) -> CardVerifier<XdmaCard> {
    let card = XdmaCard::open(XdmaConfig {
        prefix: dir.prefix(),
        ..XdmaConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    CardVerifier::open(
        card,
        "xdma",
        &Image::new(ed25519_verify()),
        CardConfig {
            max_in_flight: 256,
            response_timeout: timeout,
            ..CardConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The shared vectors, then `n` requests, valid and adversarial mixed.
fn workload(n: u64, seed: u64) -> Vec<Request> {
    let speccheck = vectors::load(&vectors::shared_dir().join("ed25519-speccheck.jsonl"));
    let vectors = speccheck.iter().zip(0..).map(|(v, i)| v.request(i));
    vectors.chain(mixed(n, seed, 0.5)).collect()
}

#[test]
fn the_xdma_backend_through_the_virtual_endpoint_gives_the_cpus_verdicts() {
    let seed = seed();
    let dir = Dir::new("xdma", "agree");
    let _endpoint = serve(&dir);
    let requests = workload(600, seed);
    let want = verify_all(
        &mut PoolVerifier::cpu(PoolConfig::default()),
        requests.clone(),
    )
    .expect("the CPU runs");
    let count = |verdict: fn(&verity_drivers::Verdict) -> bool| {
        want.iter().filter(|r| verdict(&r.verdict)).count() as u32
    };
    // Two sessions one after the other: the endpoint serves a host after another.
    for session in 0..2 {
        let mut card = xdma(&dir, Duration::from_secs(5));
        let got = verify_all(&mut card, requests.clone()).expect("the card answers");
        assert_eq!(got, want, "session {session}, seed {seed}");
        assert_eq!(card.state(), CardState::Ready);
        // The card's own counters, read through the BAR file, say what was sent.
        let counters = card.counters();
        let n = requests.len() as u32;
        assert_eq!(
            (counters.requests_in, counters.responses_out),
            (n, n),
            "session {session}: each session starts the counters from zero"
        );
        assert_eq!(counters.valid, count(|v| v.is_valid()));
        assert_eq!(
            counters.malformed,
            count(|v| matches!(v, verity_drivers::Verdict::Malformed(_)))
        );
    }
    // A transfer the card cannot frame is flagged: still answering, but degraded.
    let mut card = xdma(&dir, Duration::from_secs(5));
    card.card_mut()
        .write_stream(&[0xee; 128])
        .expect("the stream takes it");
    let start = std::time::Instant::now();
    while card.state() == CardState::Ready {
        assert!(start.elapsed() < Duration::from_secs(5), "never flagged");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        card.state(),
        CardState::Degraded {
            errors: verity_firmware::regs::errors::FRAMING
        }
    );
    assert_eq!(
        card.backend_state().reason(),
        Some("the card flagged errors (ERRORS = 0x00000001)")
    );
}

#[test]
fn small_batches_through_the_bar_window_get_the_cpus_verdicts() {
    let seed = seed();
    let dir = Dir::new("xdma", "window");
    let _endpoint = serve(&dir);
    let requests = workload(300, seed);
    let want = verify_all(
        &mut PoolVerifier::cpu(PoolConfig::default()),
        requests.clone(),
    )
    .expect("the CPU runs");
    let mut card = xdma(&dir, Duration::from_secs(5));
    let mut got = Vec::new();
    // Batches of 1 to 8: each through a half of the window, the halves alternating.
    let mut rest = &requests[..];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    while !rest.is_empty() {
        let (batch, tail) = rest.split_at(rng.gen_range(1..=8).min(rest.len()));
        got.extend(verify_all(&mut card, batch.to_vec()).expect("the card answers"));
        rest = tail;
    }
    assert_eq!(got, want, "seed {seed}");
    let paths = card.paths();
    assert_eq!(
        (paths.window_requests, paths.dma_requests),
        (requests.len() as u64, 0),
        "{paths:?}"
    );
}

#[test]
fn a_host_that_left_requests_behind_does_not_confuse_the_next() {
    let dir = Dir::new("xdma", "stale");
    let _endpoint = serve(&dir);
    let requests = workload(40, 7);
    {
        let mut card = xdma(&dir, Duration::from_secs(5));
        for request in requests.clone() {
            card.submit(request).expect("room");
        }
        card.flush().expect("written");
        // Gone without reading a response.
    }
    let mut card = xdma(&dir, Duration::from_secs(5));
    let got = verify_all(&mut card, requests.clone()).expect("the card answers");
    let want =
        verify_all(&mut PoolVerifier::cpu(PoolConfig::default()), requests).expect("the CPU runs");
    assert_eq!(got, want);
}

#[test]
fn a_missing_busy_or_unserved_device_is_refused_with_its_reason() {
    let dir = Dir::new("xdma", "refused");
    let open = || {
        XdmaCard::open(XdmaConfig {
            prefix: dir.prefix(),
            ..XdmaConfig::default()
        })
    };
    assert!(matches!(open(), Err(XdmaError::Missing(_))));
    let endpoint = serve(&dir);
    let first = open().expect("opens");
    assert!(matches!(open(), Err(XdmaError::InUse(_))));
    drop(first);
    open().expect("free again");
    // Files left behind by an endpoint that died: nothing reads the stream.
    let files = endpoint.files().clone();
    drop(endpoint);
    for path in [&files.h2c, &files.c2h] {
        mkfifo(path);
    }
    std::fs::write(&files.user, vec![0u8; verity_firmware::regs::BAR_LEN]).expect("BAR file");
    let error = open().err().expect("refused");
    assert!(matches!(error, XdmaError::NotServed(_)), "{error}");
}

/// Made in-process: a child process (the `mkfifo` command) would inherit, until its `exec`,
/// the descriptor of a card another test has open, and with it that card's lock — the next
/// open of that card then found it in use (seen once in CI).
fn mkfifo(path: &std::path::Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
}

#[test]
fn each_injected_fault_fails_the_backend_with_its_reason() {
    let every = |n| std::num::NonZeroU32::new(n);
    let cases = [
        (
            Faults {
                drop_every: every(5),
                ..Faults::NONE
            },
            "no response",
        ),
        (
            Faults {
                stop_after: Some(10),
                ..Faults::NONE
            },
            "no response",
        ),
        (
            Faults {
                wrong_tag_every: every(7),
                ..Faults::NONE
            },
            // The shared vectors repeat messages: a wrong tag between two requests of one
            // message is caught as the second answer its target then gets.
            "second response",
        ),
        (
            Faults {
                duplicate_every: every(3),
                ..Faults::NONE
            },
            "second response",
        ),
        (
            Faults {
                corrupt_every: every(9),
                ..Faults::NONE
            },
            "does not match the record",
        ),
        (
            Faults {
                vanish_after: Some(10),
                ..Faults::NONE
            },
            "went away",
        ),
    ];
    for (i, (faults, reason)) in cases.into_iter().enumerate() {
        let dir = Dir::new("xdma", &format!("fault{i}"));
        let endpoint = serve(&dir);
        let mut card = xdma(&dir, Duration::from_millis(300));
        endpoint.set_faults(faults);
        let error = verify_all(&mut card, workload(60, i as u64)).expect_err(reason);
        assert!(
            matches!(
                &error,
                VerifierError::Failed {
                    backend: "xdma",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains(reason), "{reason}: {error}");
        assert!(card.in_flight() > 0);
    }
}
