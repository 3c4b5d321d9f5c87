//! Fail-over under load: the XDMA backend against the virtual endpoint with each fault
//! injected, the CPU behind it. Every request must get exactly one verdict, the CPU's, in
//! order. How long each switch took is printed, not asserted (a wall-clock bound is a
//! benchmark's business, not a test's).

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use verity_drivers::{
    verify_all, BackendState, CardConfig, CardVerifier, Failover, FailoverConfig, Health, Opener,
    PoolConfig, PoolVerifier, Request, Response, Verifier, XdmaCard, XdmaConfig,
};
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_sim::{Endpoint, Faults, FunctionalCard, LoopbackCard};
use verity_tests::devices::{mixed, seed, DeviceDir as Dir};

/// The card's response timeout in these tests.
const TIMEOUT: Duration = Duration::from_millis(300);

fn cpu() -> PoolVerifier {
    PoolVerifier::cpu(PoolConfig::new(
        NonZeroUsize::new(2).expect("2"),
        NonZeroUsize::new(64).expect("64"),
    ))
}

fn opener(prefix: PathBuf) -> Opener {
    Box::new(move || {
        let card = XdmaCard::open(XdmaConfig {
            prefix: prefix.clone(),
            ..XdmaConfig::default()
        })
        .map_err(|e| e.to_string())?;
        let verifier = CardVerifier::open(
            card,
            "xdma",
            &Image::new(ed25519_verify()),
            CardConfig {
                max_in_flight: 128,
                response_timeout: TIMEOUT,
                ..CardConfig::default()
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Box::new(verifier) as Box<dyn Verifier>)
    })
}

fn failover(dir: &Dir, retry_every: Duration) -> Failover {
    Failover::new(
        "xdma",
        vec![opener(dir.prefix())],
        Box::new(cpu()),
        FailoverConfig {
            capacity: 128,
            check_every: Duration::from_millis(20),
            retry_every,
        },
    )
}

/// `n` requests, valid and adversarial mixed, with distinct callers' tags.
fn workload(n: u64, seed: u64) -> Vec<Request> {
    mixed(n, seed, 0.7)
}

fn expected(requests: &[Request]) -> Vec<Response> {
    verify_all(&mut cpu(), requests.to_vec()).expect("the CPU runs")
}

#[test]
fn every_fault_under_load_gives_every_request_one_correct_verdict() {
    let seed = seed();
    let every = NonZeroU32::new;
    let faults = [
        (
            "delay beyond the timeout",
            Faults {
                delay: TIMEOUT * 3,
                ..Faults::NONE
            },
        ),
        (
            "verdict flipped on the way",
            Faults {
                corrupt_every: every(101),
                ..Faults::NONE
            },
        ),
        (
            "dropped response",
            Faults {
                drop_every: every(97),
                ..Faults::NONE
            },
        ),
        (
            "wrong tag",
            Faults {
                wrong_tag_every: every(89),
                ..Faults::NONE
            },
        ),
        (
            "duplicated response",
            Faults {
                duplicate_every: every(83),
                ..Faults::NONE
            },
        ),
        (
            "stream stops",
            Faults {
                stop_after: Some(150),
                ..Faults::NONE
            },
        ),
        (
            "device vanishes",
            Faults {
                vanish_after: Some(150),
                ..Faults::NONE
            },
        ),
    ];
    for (i, (name, fault)) in faults.into_iter().enumerate() {
        let dir = Dir::new("failover", &format!("fault{i}"));
        let endpoint = Endpoint::serve(&dir.prefix(), Box::new(FunctionalCard::new(4)))
            .expect("endpoint starts");
        // Never retried during the run: the switch itself is under test.
        let mut verifier = failover(&dir, Duration::from_secs(3600));
        assert_eq!(verifier.health(), Health::Ready, "{name}");
        endpoint.set_faults(fault);
        let requests = workload(1500, seed ^ i as u64);
        let got = verify_all(&mut verifier, requests.clone()).expect("always answered");
        assert_eq!(got, expected(&requests), "{name}, seed {seed}");
        let counters = verifier.counters();
        assert_eq!(counters.failovers, 1, "{name}: {counters:?}");
        assert_eq!(verifier.health(), Health::Degraded, "{name}");
        eprintln!(
            "{name}: failed over in {:?} ({}), {} requests moved to the CPU",
            counters.longest_stall,
            verifier.last_failure().unwrap_or_default(),
            counters.to_cpu
        );
    }
}

#[test]
fn a_card_that_recovers_takes_requests_again() {
    let seed = seed();
    let dir = Dir::new("failover", "failback");
    let endpoint =
        Endpoint::serve(&dir.prefix(), Box::new(FunctionalCard::new(4))).expect("endpoint starts");
    let mut verifier = failover(&dir, Duration::from_millis(100));
    endpoint.set_faults(Faults {
        stop_after: Some(50),
        ..Faults::NONE
    });
    let first = workload(400, seed);
    assert_eq!(
        verify_all(&mut verifier, first.clone()).expect("answered"),
        expected(&first),
        "seed {seed}"
    );
    assert_eq!(verifier.health(), Health::Degraded);
    assert_eq!(verifier.backend(), "cpu");
    let state = verifier.backend_state();
    assert_eq!(state.name(), "degraded");
    assert!(
        state
            .reason()
            .is_some_and(|r| r.starts_with("0 of 1 cards serving")),
        "{state:?}"
    );
    endpoint.set_faults(Faults::NONE);
    std::thread::sleep(Duration::from_millis(150));
    let second = workload(400, seed + 1);
    assert_eq!(
        verify_all(&mut verifier, second.clone()).expect("answered"),
        expected(&second),
        "seed {seed}"
    );
    assert_eq!(verifier.health(), Health::Ready);
    assert_eq!(verifier.backend(), "xdma");
    assert_eq!(verifier.backend_state(), BackendState::Ready);
    assert_eq!(verifier.counters().failbacks, 1);
}

#[test]
fn a_missing_card_leaves_the_cpu_serving() {
    let dir = Dir::new("failover", "missing");
    let mut verifier = failover(&dir, Duration::from_secs(3600));
    assert_eq!(verifier.health(), Health::Degraded);
    assert!(
        verifier
            .last_failure()
            .is_some_and(|r| r.contains("no such device file")),
        "{:?}",
        verifier.last_failure()
    );
    let requests = workload(100, 3);
    assert_eq!(
        verify_all(&mut verifier, requests.clone()).expect("answered"),
        expected(&requests)
    );
}

/// `REQUESTS_IN` of the card behind `endpoint`, read from its BAR file as a host would.
fn requests_in(endpoint: &Endpoint) -> u32 {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&endpoint.files().user)
        .expect("BAR file");
    let bar = verity_sim::mapped_bar::MappedBar::map(&file).expect("maps");
    bar.read(verity_firmware::regs::REQUESTS_IN)
}

#[test]
fn two_cards_share_the_load_and_one_failing_moves_only_its_requests() {
    let seed = seed();
    let dirs = [Dir::new("failover", "two-a"), Dir::new("failover", "two-b")];
    let endpoints: Vec<Endpoint> = dirs
        .iter()
        .map(|d| {
            Endpoint::serve(&d.prefix(), Box::new(FunctionalCard::new(4))).expect("endpoint starts")
        })
        .collect();
    let mut verifier = Failover::new(
        "xdma",
        dirs.iter().map(|d| opener(d.prefix())).collect(),
        Box::new(cpu()),
        FailoverConfig {
            capacity: 512,
            check_every: Duration::from_secs(3600),
            retry_every: Duration::from_secs(3600),
        },
    );
    assert_eq!(
        (verifier.health(), verifier.cards_serving()),
        (Health::Ready, 2),
        "{:?}",
        verifier.last_failure()
    );
    assert_eq!(verifier.batch(), 256, "half the capacity while cards serve");
    let first = workload(1200, seed);
    assert_eq!(
        verify_all(&mut verifier, first.clone()).expect("answered"),
        expected(&first),
        "seed {seed}"
    );
    // Both took a share (each also answered the 5 start-up tests).
    let shares: Vec<u32> = endpoints.iter().map(requests_in).collect();
    assert!(
        shares.iter().all(|&n| n > 200) && shares.iter().sum::<u32>() >= 1200,
        "{shares:?}"
    );
    // The second card vanishes mid-run: its requests go to the first, none to the CPU.
    endpoints[1].set_faults(Faults {
        vanish_after: Some(100),
        ..Faults::NONE
    });
    let second = workload(1200, seed + 1);
    assert_eq!(
        verify_all(&mut verifier, second.clone()).expect("answered"),
        expected(&second),
        "seed {seed}"
    );
    let counters = verifier.counters();
    assert_eq!(counters.failovers, 1, "{counters:?}");
    assert!(counters.to_other_cards > 0, "{counters:?}");
    assert_eq!(counters.to_cpu, 0, "{counters:?}");
    assert_eq!(
        (verifier.health(), verifier.cards_serving()),
        (Health::Degraded, 1)
    );
    assert_eq!(verifier.backend(), "xdma");
}

#[test]
fn a_card_that_fails_its_known_answers_is_not_trusted() {
    // The loop-back card answers every request `Valid`: the flipped message bit and the
    // inputs that do not decode come back wrong.
    let dir = Dir::new("failover", "liar");
    let _endpoint =
        Endpoint::serve(&dir.prefix(), Box::new(LoopbackCard::default())).expect("starts");
    let mut verifier = failover(&dir, Duration::from_secs(3600));
    assert_eq!(verifier.health(), Health::Degraded);
    let counters = verifier.counters();
    assert_eq!(
        (counters.wrong_known_answers, counters.failed_retries),
        (1, 1),
        "{counters:?}"
    );
    assert!(
        verifier
            .last_failure()
            .is_some_and(|r| r.contains("known answer \"flipped message bit\"")),
        "{:?}",
        verifier.last_failure()
    );
    let requests = workload(200, 11);
    assert_eq!(
        verify_all(&mut verifier, requests.clone()).expect("answered"),
        expected(&requests)
    );
}

#[test]
fn a_card_that_starts_to_lie_is_caught_by_the_periodic_known_answers() {
    let dir = Dir::new("failover", "forger");
    let endpoint =
        Endpoint::serve(&dir.prefix(), Box::new(FunctionalCard::new(4))).expect("starts");
    let mut verifier = failover(&dir, Duration::from_secs(3600));
    assert_eq!(verifier.health(), Health::Ready);
    // Every verdict is turned around and resealed: nothing but a known answer shows it. The
    // requests it answered before the next test are wrong — the tests' period bounds how many.
    endpoint.set_faults(Faults {
        forge_every: std::num::NonZeroU32::new(1),
        ..Faults::NONE
    });
    verify_all(&mut verifier, workload(3000, 12)).expect("answered");
    let counters = verifier.counters();
    assert_eq!(counters.failovers, 1, "{counters:?}");
    assert!(counters.wrong_known_answers >= 1, "{counters:?}");
    assert_eq!(verifier.health(), Health::Degraded);
    assert!(
        verifier
            .last_failure()
            .is_some_and(|r| r.starts_with("known answer")),
        "{:?}",
        verifier.last_failure()
    );
    // From then on the CPU answers, and correctly.
    let after = workload(200, 13);
    assert_eq!(
        verify_all(&mut verifier, after.clone()).expect("answered"),
        expected(&after)
    );
}
