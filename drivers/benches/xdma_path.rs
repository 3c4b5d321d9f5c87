//! The XDMA path's speed, against the virtual XDMA endpoint in a process of its own (this
//! binary, run again as the endpoint), so that the host's costs are this process's alone:
//!
//! * the host's own ceiling: the XDMA backend against a loop-back card that answers every
//!   request at once — requests/s, and host CPU time per request (record encoding, the
//!   writer and reader threads, tag and transaction-id matching) by transfer size, beside the
//!   time `ed25519-dalek` 2 takes to verify one signature on this machine;
//! * the backend against the functional model: requests/s and latency percentiles (the
//!   model's engines are the limit there, not the path);
//! * fail-over: how long the switch to the CPU took, as a multiple of the response timeout.
//!
//! `make bench` runs it and prints the table.

mod common;

use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rustix::time::{clock_gettime, ClockId};
use verity_drivers::{
    verify_all, CardConfig, CardVerifier, Failover, FailoverConfig, Opener, PoolConfig,
    PoolVerifier, Request, Verifier, XdmaCard, XdmaConfig,
};
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_sim::{Endpoint, Faults, FunctionalCard, LoopbackCard};

/// Set in the endpoint process: `<model>:<prefix>`.
const ENDPOINT_ENV: &str = "VERITY_BENCH_ENDPOINT";
/// Requests per measured iteration on the loop-back card.
const REQUESTS: usize = 4096;
/// Transfer sizes: the most requests in flight, so the most records per host-to-card write.
const BATCHES: [usize; 5] = [1, 8, 64, 256, 1024];
/// Requests per measured iteration on the functional model.
const MODEL_REQUESTS: usize = 512;

fn workload(n: usize) -> Vec<Request> {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let key = ed25519_dalek::SigningKey::generate(&mut rng);
    // A transfer order of a venue: about 100 bytes.
    (0..n as u64)
        .map(|i| common::signed_request(&mut rng, &key, i, 100))
        .collect()
}

/// The endpoint, in a child process that is this benchmark run again.
struct Served {
    child: Child,
    prefix: PathBuf,
}

impl Served {
    fn start(model: &str, name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("xdma-bench-{name}"));
        std::fs::create_dir_all(&dir).expect("bench directory");
        let prefix = dir.join("xdma0_");
        let _ = std::fs::remove_file(verity_sim::DeviceFiles::under(&prefix).user);
        let child = Command::new(std::env::current_exe().expect("this binary"))
            .env(ENDPOINT_ENV, format!("{model}:{}", prefix.display()))
            .spawn()
            .expect("the endpoint process starts");
        let served = Self { child, prefix };
        let start = Instant::now();
        while XdmaCard::open(served.config()).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "no endpoint");
            std::thread::sleep(Duration::from_millis(10));
        }
        served
    }

    fn config(&self) -> XdmaConfig {
        XdmaConfig {
            prefix: self.prefix.clone(),
            ..XdmaConfig::default()
        }
    }

    fn open(&self, in_flight: usize, timeout: Duration) -> CardVerifier<XdmaCard> {
        self.open_with(in_flight, timeout, CardConfig::default().window_batch)
    }

    fn open_with(
        &self,
        in_flight: usize,
        timeout: Duration,
        window_batch: usize,
    ) -> CardVerifier<XdmaCard> {
        let card = XdmaCard::open(self.config()).expect("the endpoint serves");
        CardVerifier::open(
            card,
            "xdma",
            &Image::new(ed25519_verify()),
            CardConfig {
                max_in_flight: in_flight,
                response_timeout: timeout,
                window_batch,
                ..CardConfig::default()
            },
        )
        .expect("the card opens")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The endpoint process: serves until killed.
fn serve(spec: &str) {
    let (model, prefix) = spec.split_once(':').expect("model:prefix");
    let card: Box<dyn verity_sim::Card> = match model {
        "loopback" => Box::new(LoopbackCard::default()),
        _ => Box::new(FunctionalCard::new(4)),
    };
    let endpoint = Endpoint::serve(Path::new(prefix), card).expect("the endpoint starts");
    let _ = endpoint.wait();
}

fn cpu_time() -> Duration {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Transfers in flight at once in [`pipelined`].
const DEPTH: usize = 4;

/// The card backend for [`pipelined`] batches of `batch`.
fn pipeline(served: &Served, batch: usize) -> CardVerifier<XdmaCard> {
    served.open(batch * DEPTH, Duration::from_secs(5))
}

/// Every request through `card` in transfers of exactly `batch` records, up to [`DEPTH`] of
/// them in flight: the way a daemon's batcher feeds a card.
fn pipelined(card: &mut CardVerifier<XdmaCard>, requests: &[Request], batch: usize) {
    let mut out = Vec::with_capacity(requests.len());
    let mut next = requests.chunks(batch);
    let mut pending = next.next();
    while out.len() < requests.len() {
        while let Some(chunk) = pending.filter(|c| card.in_flight() + c.len() <= card.capacity()) {
            for request in chunk {
                card.submit(request.clone()).expect("room");
            }
            card.flush().expect("written");
            pending = next.next();
        }
        card.complete(&mut out, Duration::from_millis(50))
            .expect("answers");
    }
}

/// Host CPU time per request at each transfer size, over a few whole runs.
fn host_costs(loopback: &Served, requests: &[Request]) -> Vec<(usize, Duration)> {
    BATCHES
        .iter()
        .map(|&batch| {
            let mut card = pipeline(loopback, batch);
            pipelined(&mut card, requests, batch);
            const RUNS: u32 = 5;
            let before = cpu_time();
            for _ in 0..RUNS {
                pipelined(&mut card, requests, batch);
            }
            (
                batch,
                (cpu_time() - before) / (RUNS * requests.len() as u32),
            )
        })
        .collect()
}

/// Per-request latency percentiles (p50, p99) through the backend, `batch` at a time.
fn latencies(served: &Served, requests: &[Request], batch: usize) -> (Duration, Duration) {
    let mut card = served.open(batch, Duration::from_secs(5));
    let mut samples = Vec::with_capacity(requests.len());
    let mut out = Vec::new();
    for chunk in requests.chunks(batch) {
        let sent = Instant::now();
        for request in chunk {
            card.submit(request.clone()).expect("room");
        }
        card.flush().expect("written");
        out.clear();
        while out.len() < chunk.len() {
            card.complete(&mut out, Duration::from_millis(50))
                .expect("answers");
        }
        // Each request in the batch waited for the batch.
        samples.extend(std::iter::repeat_n(sent.elapsed(), chunk.len()));
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

/// Batches of 8 through each path against the loop-back card: the host's time from the first
/// submit to the doorbell (or the DMA write queued), and from the first submit to the last
/// response, as (p50, p99) each.
fn small_batches(loopback: &Served, requests: &[Request]) -> Vec<(&'static str, Quantiles)> {
    const BATCH: usize = 8;
    [("window", BATCH), ("dma", 0)]
        .into_iter()
        .map(|(path, window_batch)| {
            let mut card = loopback.open_with(BATCH, Duration::from_secs(5), window_batch);
            let (mut submit, mut whole) = (Vec::new(), Vec::new());
            let mut out = Vec::new();
            for chunk in requests.chunks_exact(BATCH).take(2000) {
                let start = Instant::now();
                for request in chunk {
                    card.submit(request.clone()).expect("room");
                }
                card.flush().expect("submitted");
                submit.push(start.elapsed());
                out.clear();
                while out.len() < BATCH {
                    card.complete(&mut out, Duration::from_millis(50))
                        .expect("answers");
                }
                whole.push(start.elapsed());
            }
            let paths = card.paths();
            assert_eq!(
                (paths.window_requests > 0, paths.dma_requests > 0),
                (window_batch > 0, window_batch == 0),
                "{path}: {paths:?}"
            );
            (path, Quantiles::of(submit, whole))
        })
        .collect()
}

/// p50 and p99 of the submit and round-trip times.
struct Quantiles {
    submit: (Duration, Duration),
    whole: (Duration, Duration),
}

impl Quantiles {
    fn of(mut submit: Vec<Duration>, mut whole: Vec<Duration>) -> Self {
        let at = |v: &mut Vec<Duration>| {
            v.sort();
            let q = |f: f64| v[((v.len() - 1) as f64 * f) as usize];
            (q(0.5), q(0.99))
        };
        Self {
            submit: at(&mut submit),
            whole: at(&mut whole),
        }
    }
}

/// How long fail-over took on a dropped response, with a 100 ms response timeout.
fn failover_time(requests: &[Request]) -> (Duration, Duration) {
    const TIMEOUT: Duration = Duration::from_millis(100);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdma-bench-failover");
    std::fs::create_dir_all(&dir).expect("bench directory");
    let prefix = dir.join("xdma0_");
    // The functional model: a loop-back card would fail the known-answer tests.
    let endpoint =
        Endpoint::serve(&prefix, Box::new(FunctionalCard::new(4))).expect("endpoint starts");
    let opener: Opener = Box::new(move || {
        let card = XdmaCard::open(XdmaConfig {
            prefix: prefix.clone(),
            ..XdmaConfig::default()
        })
        .map_err(|e| e.to_string())?;
        let config = CardConfig {
            response_timeout: TIMEOUT,
            ..CardConfig::default()
        };
        CardVerifier::open(card, "xdma", &Image::new(ed25519_verify()), config)
            .map(|c| Box::new(c) as Box<dyn Verifier>)
            .map_err(|e| e.to_string())
    });
    let cpu = PoolVerifier::cpu(PoolConfig::default());
    let config = FailoverConfig {
        retry_every: Duration::from_secs(3600),
        ..FailoverConfig::default()
    };
    let mut verifier = Failover::new("xdma", vec![opener], Box::new(cpu), config);
    endpoint.set_faults(Faults {
        drop_every: NonZeroU32::new(500),
        ..Faults::NONE
    });
    verify_all(&mut verifier, requests[..1024].iter().cloned()).expect("answers");
    let counters = verifier.counters();
    assert_eq!(counters.failovers, 1, "{counters:?}");
    (counters.longest_stall, TIMEOUT)
}

fn bench(c: &mut Criterion, loopback: &Served, functional: &Served, requests: &[Request]) {
    let mut group = c.benchmark_group("xdma");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.bench_function("dalek2_verify", |b| {
        b.iter(|| common::dalek2_verify_all(requests))
    });
    for batch in BATCHES {
        let mut card = pipeline(loopback, batch);
        group.bench_with_input(BenchmarkId::new("loopback", batch), &batch, |b, _| {
            b.iter(|| pipelined(&mut card, requests, batch))
        });
    }
    group.throughput(Throughput::Elements(MODEL_REQUESTS as u64));
    let mut card = functional.open(256, Duration::from_secs(5));
    let some = &requests[..MODEL_REQUESTS];
    group.bench_with_input(BenchmarkId::new("functional", 256), &256, |b, _| {
        b.iter(|| verify_all(&mut card, some.iter().cloned()).expect("answers"))
    });
    group.finish();
}

/// Mean requests/s of one benchmark, from criterion's estimates.
fn rate(id: &str, per_iteration: usize) -> Option<f64> {
    let path = common::out_dir()
        .join("xdma")
        .join(id)
        .join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let nanos = json["mean"]["point_estimate"].as_f64()?;
    Some(per_iteration as f64 / (nanos * 1e-9))
}

fn table(
    costs: &[(usize, Duration)],
    latency: &[(usize, (Duration, Duration))],
    small: &[(&str, Quantiles)],
    failover: (Duration, Duration),
) -> Option<String> {
    let dalek = rate("dalek2_verify", REQUESTS)?;
    let verify_time = Duration::from_secs_f64(1.0 / dalek);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nXDMA backend through the virtual endpoint (another process), {REQUESTS} requests of 100-byte messages"
    );
    let _ = writeln!(
        t,
        "ed25519-dalek 2 verify on this machine: {:.2} µs per signature (the reference)",
        verify_time.as_secs_f64() * 1e6
    );
    let _ = writeln!(
        t,
        "{:<28} {:>12} {:>18} {:>16}",
        "loop-back card, 4 in flight", "requests/s", "host CPU µs/req", "x dalek2 verify"
    );
    for (batch, cost) in costs {
        let r = rate(&format!("loopback/{batch}"), REQUESTS)?;
        let _ = writeln!(
            t,
            "{:<28} {r:>12.0} {:>18.3} {:>16.3}",
            format!("  transfers of {batch}"),
            cost.as_secs_f64() * 1e6,
            cost.as_secs_f64() / verify_time.as_secs_f64()
        );
    }
    let functional = rate("functional/256", MODEL_REQUESTS)?;
    let _ = writeln!(
        t,
        "functional model (4 engines), transfers of 256: {functional:.0} requests/s"
    );
    for (batch, (p50, p99)) in latency {
        let _ = writeln!(
            t,
            "  latency, batches of {batch}: p50 {:.0} µs, p99 {:.0} µs",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    let _ = writeln!(
        t,
        "batches of 8 on the loop-back card, one at a time (p50 / p99):"
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for (path, q) in small {
        let _ = writeln!(
            t,
            "  {path:<7} submit {:.2} / {:.2} µs, to the last response {:.0} / {:.0} µs",
            us(q.submit.0),
            us(q.submit.1),
            us(q.whole.0),
            us(q.whole.1)
        );
    }
    let at_64 = costs
        .iter()
        .filter(|(b, _)| *b >= 64)
        .map(|(_, c)| *c)
        .max()?;
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let _ = writeln!(t, "\ntargets:");
    let _ = writeln!(
        t,
        "  host CPU per request at transfers >= 64: {:.3} µs (<= 1 µs: {})",
        at_64.as_secs_f64() * 1e6,
        verdict(at_64 <= Duration::from_micros(1))
    );
    if let Some((_, window)) = small.iter().find(|(p, _)| *p == "window") {
        let _ = writeln!(
            t,
            "  window path, submit to doorbell for 8 requests: p50 {:.2} µs (<= 2 µs: {})",
            us(window.submit.0),
            verdict(window.submit.0 <= Duration::from_micros(2))
        );
    }
    let (stall, timeout) = failover;
    let _ = writeln!(
        t,
        "  fail-over on a dropped response: {:.0} ms = {:.2} x the {:.0} ms timeout (<= 2x: {})",
        stall.as_secs_f64() * 1e3,
        stall.as_secs_f64() / timeout.as_secs_f64(),
        timeout.as_secs_f64() * 1e3,
        verdict(stall <= 2 * timeout)
    );
    Some(t)
}

fn main() {
    if let Ok(spec) = std::env::var(ENDPOINT_ENV) {
        return serve(&spec);
    }
    let requests = workload(REQUESTS);
    let loopback = Served::start("loopback", "loopback");
    let functional = Served::start("functional", "functional");
    let mut criterion = Criterion::default()
        .output_directory(&common::out_dir())
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion, &loopback, &functional, &requests);
    criterion.final_summary();
    let costs = host_costs(&loopback, &requests);
    let latency: Vec<_> = [1, 64]
        .into_iter()
        .map(|batch| (batch, latencies(&functional, &requests[..1024], batch)))
        .collect();
    let small = small_batches(&loopback, &requests);
    let failover = failover_time(&requests);
    match table(&costs, &latency, &small, failover) {
        Some(table) => println!("{table}"),
        None => println!("(no table: run all benchmarks of the group, without a filter)"),
    }
}
