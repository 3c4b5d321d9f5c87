//! The replica's pipeline, end to end from submission to the durable commit of the block:
//!
//! * the host's own ceiling: a verifier that answers at once (the loop-back card behind
//!   `CardVerifier`, so the card path's host costs are in it) — transactions/s;
//! * the CPU backend end to end, against the same backend verifying the same signatures raw
//!   (no pipeline, no ledger, no store) in the same run — the ratio is the pipeline's tax;
//! * latency from submission to commit, paced at half of the CPU backend's end-to-end rate
//!   measured just before; and the same at half of the instant verifier's rate, which is the
//!   host's own latency with verification off its cores (a card that keeps up). Each is the
//!   median of [`PACED_RUNS`] runs, with the range of their p99s.
//!
//! With the end-to-end rate it prints where the CPU went: each thread's time on CPU over the
//! whole end-to-end benchmark (Linux's per-thread `schedstat`), summed by stage, per
//! transaction — verification on the pool's workers, then the pipeline's own stages. It
//! counts the work the stages do between pushes too (the state stage commits what it held
//! while the next batch is signed), which the rate does not: when the total a transaction
//! times the rate passes the cores, the rate owes that to the pauses between pushes. The same
//! for each paced run (its pacing thread counted as the clients) says how many cores "half the
//! rate" keeps busy: small batches and small blocks cost more a transaction, so half the rate
//! is more than half the work, and the latency at that rate follows how busy the cores are.
//!
//! It runs on small pages, as `verityd` does (`memory::small_pages`), so that the kernel's
//! zeroing of huge pages does not land in the figures the daemon would not show.
//!
//! Transfers go round-robin from 1,000 funded accounts to the next one, as `verity load` sends
//! them. `make bench` runs it and prints the table with the issue's targets.
//!
//! To compare two builds' latency, run paced runs alone, several of them (see [`paced_only`]):
//!
//! ```text
//! VERITY_PACED_RATE=120000 VERITY_PACED_RUNS=5 cargo bench -p verity-host --bench pipeline
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ed25519_dalek::SigningKey;
use verity_drivers::{verify_all, CardConfig, CardVerifier, PoolConfig, PoolVerifier, Verifier};
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_host::chain::Chain;
use verity_host::genesis::Genesis;
use verity_host::ledger::{BookRules, PriceRules, Rules};
use verity_host::pipeline::{Outcome, Pipeline, PipelineConfig};
use verity_host::sequence::Ordering;
use verity_host::transaction::{Body, Payload, Transaction, Unsigned, TX_LEN};
use verity_sim::LoopbackCard;

/// Funded accounts.
const ACCOUNTS: usize = 1000;
/// Transactions per measured iteration.
const PER_ITERATION: usize = 16_384;
/// Seconds of a paced latency run.
const PACED_SECONDS: u64 = 3;
/// Paced runs behind each latency figure: one run's p99 varies two- to threefold from run to
/// run on the 2-vCPU development machine, so the table gives the median of several and their
/// range.
const PACED_RUNS: usize = 3;

/// Funded accounts and the next nonce of each.
struct Senders {
    keys: Vec<SigningKey>,
    /// Their public keys, derived once (a scalar multiplication each).
    public: Vec<[u8; 32]>,
    next: usize,
    nonces: Vec<u64>,
}

impl Senders {
    fn new() -> Self {
        let keys: Vec<SigningKey> = (0..ACCOUNTS)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                SigningKey::from_bytes(&seed)
            })
            .collect();
        Self {
            public: keys.iter().map(|k| k.verifying_key().to_bytes()).collect(),
            keys,
            next: 0,
            nonces: vec![0; ACCOUNTS],
        }
    }

    fn genesis(&self) -> Genesis {
        Genesis {
            rules: Rules {
                chain_id: 1,
                assets: [1].into(),
                issuers: [].into(),
                prices: PriceRules::default(),
                book: BookRules::default(),
            },
            balances: self.public.iter().map(|k| (*k, 1, u64::MAX / 2)).collect(),
            validators: vec![],
        }
    }

    /// The next `n` transfers; signed only if `sign` (an instant verifier does not look). On
    /// the calling thread only: signed on every core before a paced run, they starved the state
    /// stage (`SCHED_IDLE`), and the run started with it behind (host/README has the runs).
    fn transfers(&mut self, n: usize, sign: bool) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let from = self.next;
                self.next = (self.next + 1) % ACCOUNTS;
                let to = self.public[(from + 1) % ACCOUNTS];
                let unsigned = Unsigned {
                    chain_id: 1,
                    sender: self.public[from],
                    nonce: self.nonces[from],
                    payload: Payload::Transfer(Body {
                        asset: 1,
                        to,
                        amount: 1,
                    }),
                };
                self.nonces[from] += 1;
                if sign {
                    unsigned.sign(&self.keys[from]).to_vec()
                } else {
                    let mut bytes = [0u8; TX_LEN];
                    bytes[..96].copy_from_slice(&unsigned.signed_bytes());
                    bytes.to_vec()
                }
            })
            .collect()
    }
}

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pipeline-bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn cpu() -> PoolVerifier {
    PoolVerifier::cpu(PoolConfig::new(
        std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        NonZeroUsize::new(1024).expect("1024"),
    ))
}

fn loopback() -> CardVerifier<LoopbackCard> {
    CardVerifier::open(
        LoopbackCard::default(),
        "loopback",
        &Image::new(ed25519_verify()),
        CardConfig::model(),
    )
    .expect("the loop-back card opens")
}

fn start(name: &str, verifier: Box<dyn Verifier>, senders: &Senders) -> Arc<Pipeline> {
    start_with(name, verifier, senders, PipelineConfig::default())
}

fn start_with(
    name: &str,
    verifier: Box<dyn Verifier>,
    senders: &Senders,
    config: PipelineConfig,
) -> Arc<Pipeline> {
    let dir = scratch(name);
    let chain = Chain::open(&dir, &senders.genesis()).expect("opens");
    Arc::new(Pipeline::start(verifier, chain, Ordering::Local, config))
}

/// Submits `batch` from two threads (as two connections would) and waits for every
/// outcome; every transaction must be committed and applied. Returns the time it took and
/// the CPU time of the two submitting threads.
fn push(pipeline: &Pipeline, batch: Vec<Vec<u8>>) -> (Duration, Duration) {
    let started = Instant::now();
    let halves: Vec<Vec<Vec<u8>>> = {
        let mut a = Vec::new();
        let mut b = Vec::new();
        // Each sender on one thread, so its nonces arrive in order.
        for tx in batch {
            let sender = Transaction::decode(&tx).expect("decodes").sender()[0];
            if sender.is_multiple_of(2) {
                &mut a
            } else {
                &mut b
            }
            .push(tx);
        }
        vec![a, b]
    };
    let clients = std::thread::scope(|scope| {
        let threads: Vec<_> = halves
            .into_iter()
            .map(|half| {
                scope.spawn(move || {
                    // One queue for the thread's outcomes, as a connection has one writer.
                    let (done, outcomes) = crossbeam_channel::unbounded();
                    let count = half.len();
                    for tx in half {
                        let done = done.clone();
                        pipeline.submit_with(
                            tx,
                            Box::new(move |outcome| {
                                let _ = done.send(outcome);
                            }),
                        );
                    }
                    for outcome in outcomes.iter().take(count) {
                        match outcome {
                            Outcome::Committed { failure: None, .. } => {}
                            other => panic!("{other:?}"),
                        }
                    }
                    clock(rustix::time::ClockId::ThreadCPUTime)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a client"))
            .sum()
    });
    (started.elapsed(), clients)
}

/// Each live thread's time on CPU so far, by thread id, with its name (Linux); not the main
/// thread's, which signs the transactions.
fn threads() -> BTreeMap<u32, (String, Duration)> {
    let main = std::process::id();
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let id = task.file_name().to_str().and_then(|id| id.parse().ok());
        let name = std::fs::read_to_string(path.join("comm"));
        let on_cpu = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        if let (Some(id), Ok(name), Some(nanos)) = (id.filter(|&id| id != main), name, on_cpu) {
            threads.insert(id, (name.trim().to_owned(), Duration::from_nanos(nanos)));
        }
    }
    threads
}

/// CPU time by stage over the end-to-end benchmark.
#[derive(Default)]
struct StageCpu {
    /// Threads' time by stage, between the snapshots taken before and after.
    stages: BTreeMap<&'static str, Duration>,
    /// The submitting threads' time (they end with their push), or the pacing thread's.
    clients: Duration,
    transactions: u64,
}

impl StageCpu {
    /// The stage a thread named `name` works for.
    fn stage(name: &str) -> &'static str {
        match name {
            n if n.starts_with("verity-cpu-") => "verification",
            "verify" => "verify stage",
            "sequence" => "sequence",
            "log" => "log",
            "state" => "state",
            _ => "other",
        }
    }

    /// Adds what each thread alive at both snapshots spent between them.
    fn add(
        &mut self,
        before: &BTreeMap<u32, (String, Duration)>,
        after: &BTreeMap<u32, (String, Duration)>,
    ) {
        for (id, (name, now)) in after {
            if let Some((_, then)) = before.get(id) {
                *self.stages.entry(Self::stage(name)).or_default() += now.saturating_sub(*then);
            }
        }
    }

    /// `spent` in microseconds a transaction; `None` before any transaction.
    fn per_tx(&self, spent: Duration) -> Option<f64> {
        (self.transactions > 0).then(|| spent.as_secs_f64() * 1e6 / self.transactions as f64)
    }

    /// Microseconds of CPU a transaction, all stages and the clients.
    fn total(&self) -> Option<f64> {
        self.per_tx(self.stages.values().sum::<Duration>() + self.clients)
    }

    /// Microseconds a transaction, by stage in pipeline order, then the total.
    fn line(&self) -> Option<String> {
        let order = [
            "verification",
            "verify stage",
            "sequence",
            "log",
            "state",
            "other",
        ];
        let mut parts: Vec<String> = order
            .iter()
            .filter_map(|stage| {
                Some(format!(
                    "{stage} {:.2}",
                    self.per_tx(*self.stages.get(stage)?)?
                ))
            })
            .collect();
        if self.clients > Duration::ZERO {
            parts.push(format!("clients {:.2}", self.per_tx(self.clients)?));
        }
        Some(format!("{}; total {:.2}", parts.join(", "), self.total()?))
    }

    /// How many cores `rate` transactions a second keep busy at this CPU a transaction.
    fn cores_at(&self, rate: f64) -> Option<f64> {
        Some(self.total()? * rate / 1e6)
    }
}

/// Submits `rate` transactions a second for [`PACED_SECONDS`] and returns each one's latency,
/// sorted, and the submitting (calling) thread's CPU time while it paced them; `sign`: whether
/// the verifier behind `pipeline` checks signatures.
fn paced(
    pipeline: &Pipeline,
    senders: &mut Senders,
    rate: f64,
    sign: bool,
) -> (Vec<Duration>, Duration) {
    let total = (rate * PACED_SECONDS as f64) as usize;
    let transactions = senders.transfers(total, sign);
    let (done, latencies) = crossbeam_channel::unbounded();
    let pacing_from = clock(rustix::time::ClockId::ThreadCPUTime);
    let start = Instant::now();
    for (i, tx) in transactions.into_iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        while Instant::now() < due {
            std::thread::sleep(Duration::from_micros(50));
        }
        let submitted = Instant::now();
        let done = done.clone();
        pipeline.submit_with(
            tx,
            Box::new(move |outcome| {
                assert!(matches!(outcome, Outcome::Committed { failure: None, .. }));
                let _ = done.send(submitted.elapsed());
            }),
        );
    }
    let pacing = clock(rustix::time::ClockId::ThreadCPUTime).saturating_sub(pacing_from);
    drop(done);
    let mut latencies: Vec<Duration> = latencies.iter().collect();
    assert_eq!(latencies.len(), total);
    latencies.sort_unstable();
    (latencies, pacing)
}

/// `p50 … ms, p99 … ms, p999 … ms` of one run's sorted latencies.
fn percentiles(sorted: &[Duration]) -> String {
    let ms = |per_mille| quantile(sorted, per_mille).as_secs_f64() * 1e3;
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms",
        ms(500),
        ms(990),
        ms(999)
    )
}

fn quantile<T: Copy>(sorted: &[T], per_mille: usize) -> T {
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

fn main() {
    verity_host::memory::small_pages().expect("turning transparent huge pages off");
    if let Ok(rate) = std::env::var("VERITY_PACED_RATE") {
        paced_only(&rate);
        return;
    }
    let mut criterion = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let mut group = criterion.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(PER_ITERATION as u64));

    let mut instant_senders = Senders::new();
    let instant = start("instant", Box::new(loopback()), &instant_senders);
    // Which benchmarks ran in this invocation: criterion's estimates of the others, if any,
    // are from an earlier run, and the table must not mix them in.
    let (mut ran_instant, mut ran_raw, mut ran_cpu) = (false, false, false);
    group.bench_function("instant", |b| {
        ran_instant = true;
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| push(&instant, instant_senders.transfers(PER_ITERATION, false)).0)
                .sum()
        })
    });
    // From a state stage that holds nothing, as the CPU pipeline's paced run below; unsigned,
    // as in its benchmark: the loop-back card checks nothing.
    instant.flush_state().expect("the state stage commits");
    let instant_paced = rate("instant").filter(|_| ran_instant).map(|rate| {
        Paced::run(
            &instant,
            &mut instant_senders,
            rate / 2.0,
            false,
            PACED_RUNS,
        )
    });
    instant.stop();

    let mut cpu_senders = Senders::new();
    let raw: Vec<_> = cpu_senders
        .transfers(PER_ITERATION, true)
        .iter()
        .enumerate()
        .flat_map(|(i, tx)| {
            Transaction::decode(tx)
                .expect("decodes")
                .requests(i as u64)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut raw_cpu = cpu();
    group.bench_function("cpu_raw", |b| {
        ran_raw = true;
        b.iter(|| verify_all(&mut raw_cpu, raw.iter().cloned()).expect("verifies"))
    });
    drop(raw_cpu);

    let mut cpu_senders = Senders::new();
    let pipeline = start("cpu", Box::new(cpu()), &cpu_senders);
    // The process's CPU time while transactions were pushed, against the wall time: how much
    // of the cores the end-to-end run kept busy (signing the next batch is outside both).
    let (mut busy, mut wall) = (Duration::ZERO, Duration::ZERO);
    let mut stages = StageCpu::default();
    let threads_before = threads();
    group.bench_function("cpu", |b| {
        ran_cpu = true;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batch = cpu_senders.transfers(PER_ITERATION, true);
                let before = cpu_time();
                let (took, clients) = push(&pipeline, batch);
                total += took;
                busy += cpu_time().saturating_sub(before);
                stages.clients += clients;
                stages.transactions += PER_ITERATION as u64;
            }
            wall += total;
            total
        })
    });
    group.finish();
    // What the state stage still holds is part of the run's work.
    pipeline.flush_state().expect("the state stage commits");
    stages.add(&threads_before, &threads());
    let e2e_rate = match rate("cpu") {
        Some(rate) if ran_cpu => rate,
        _ => {
            eprintln!("pipeline/cpu did not run (or left no estimate): no paced run, no table");
            return;
        }
    };
    let half = e2e_rate / 2.0;
    let (cpu_paced, paced_stages) = Paced::run(&pipeline, &mut cpu_senders, half, true, PACED_RUNS);
    pipeline.stop();
    let cores_busy = busy.as_secs_f64() / wall.as_secs_f64().max(f64::MIN_POSITIVE);
    let instant_paced = instant_paced.filter(|_| ran_raw);
    let table = instant_paced
        .as_ref()
        .and_then(|(instant_paced, _)| table(instant_paced, &cpu_paced, cores_busy));
    if let (Some(table), Some((instant_paced, instant_stages))) = (table, instant_paced) {
        println!("{table}");
        if let Some(line) = stages.line() {
            println!("CPU a transaction end to end, by stage (µs): {line}");
        }
        if let Some(line) = paced_stages.line() {
            println!("CPU a transaction paced at half the rate, by stage (µs): {line}");
        }
        if let (Some(full), Some(paced), Some(cores)) = (
            stages.total(),
            paced_stages.total(),
            paced_stages.cores_at(half),
        ) {
            println!(
                "  half the rate keeps {cores:.2} cores busy: {:.2}x the CPU a transaction of \
                 the end-to-end run",
                paced / full
            );
        }
        if let Some(line) = instant_stages.line() {
            println!("CPU a transaction paced at half the instant rate, by stage (µs): {line}");
        }
        if let Some(cores) = instant_stages.cores_at(instant_paced.rate) {
            println!("  that keeps {cores:.2} cores busy\n");
        }
    } else {
        println!("(no table: run all of the group's benchmarks, without a filter)");
    }
}

/// Paced runs alone, for comparing two builds' latency: `VERITY_PACED_RATE` tx/s, on the CPU
/// backend or, with `VERITY_PACED_VERIFIER=loopback`, the loop-back card; one run to warm up,
/// then `VERITY_PACED_RUNS` (5 by default): each one's percentiles as it ends, then their
/// median and the CPU a transaction by stage over them. `VERITY_PACED_BURST=N` first pushes N
/// iterations' transfers ([`PER_ITERATION`] each) as fast as the pipeline takes them, as the
/// full bench's saturated runs do before its paced ones. `VERITY_VERIFY_DEADLINE_US` and
/// `VERITY_BLOCK_INTERVAL_US` set the verify stage's deadline and the block interval;
/// `VERITY_PACED_STAGES` (any value) prints, after the runs, the
/// percentiles of every latency histogram the pipeline records over the measured runs:
/// submission to verdict, to block and to commit, a block's commit, the log's appends, the
/// state's commits.
fn paced_only(rate: &str) {
    let rate: f64 = match rate.parse() {
        Ok(rate) if rate >= 1.0 => rate,
        _ => panic!("VERITY_PACED_RATE={rate}: transactions a second, at least 1"),
    };
    let runs = std::env::var("VERITY_PACED_RUNS").map_or(5, |runs| match runs.parse() {
        Ok(runs) if runs > 0 => runs,
        _ => panic!("VERITY_PACED_RUNS={runs}: a number of runs, at least 1"),
    });
    let backend = std::env::var("VERITY_PACED_VERIFIER").unwrap_or_else(|_| "cpu".into());
    let (verifier, sign): (Box<dyn Verifier>, bool) = match backend.as_str() {
        "cpu" => (Box::new(cpu()), true),
        "loopback" => (Box::new(loopback()), false),
        other => panic!("VERITY_PACED_VERIFIER={other}: cpu or loopback"),
    };
    let burst = std::env::var("VERITY_PACED_BURST").map_or(0, |burst| match burst.parse() {
        Ok(burst) => burst,
        _ => panic!("VERITY_PACED_BURST={burst}: iterations of {PER_ITERATION} transfers"),
    });
    let micros = |name: &str, default: Duration| {
        std::env::var(name).map_or(default, |us| match us.parse() {
            Ok(us) => Duration::from_micros(us),
            _ => panic!("{name}={us}: microseconds"),
        })
    };
    let mut config = PipelineConfig::default();
    config.verify_deadline = micros("VERITY_VERIFY_DEADLINE_US", config.verify_deadline);
    config.block_interval = micros("VERITY_BLOCK_INTERVAL_US", config.block_interval);
    // Before the pipeline starts: a histogram handle binds to the recorder of its first use.
    let recorded: Option<&'static Recorded> = std::env::var_os("VERITY_PACED_STAGES").map(|_| {
        let recorded: &'static Recorded = Box::leak(Box::default());
        metrics::set_global_recorder(recorded).expect("the first recorder");
        recorded
    });
    let mut senders = Senders::new();
    let pipeline = start_with("paced", verifier, &senders, config);
    if burst > 0 {
        let started = Instant::now();
        for _ in 0..burst {
            push(&pipeline, senders.transfers(PER_ITERATION, sign));
        }
        pipeline.flush_state().expect("the state stage commits");
        eprintln!(
            "burst: {} transfers in {:.1} s, signing included",
            burst * PER_ITERATION,
            started.elapsed().as_secs_f64()
        );
    }
    paced(&pipeline, &mut senders, rate, sign);
    if let Some(recorded) = recorded {
        recorded.clear();
    }
    let (measured, stages) = Paced::run(&pipeline, &mut senders, rate, sign, runs);
    pipeline.stop();
    println!(
        "{}",
        measured.line(if sign {
            "CPU backend"
        } else {
            "loop-back card"
        })
    );
    if let Some(line) = stages.line() {
        println!("CPU a transaction, by stage (µs): {line}");
    }
    if let Some(cores) = stages.cores_at(rate) {
        println!("  that keeps {cores:.2} cores busy");
    }
    if let Some(recorded) = recorded {
        println!(
            "the pipeline's histograms over the measured runs:\n{}",
            recorded.table()
        );
    }
}

/// Every value the pipeline's histograms record, by name, for `VERITY_PACED_STAGES`: where a
/// transaction's latency went, from the same histograms `/metrics` serves. Counters and gauges
/// are not kept.
#[derive(Default)]
struct Recorded(std::sync::Mutex<BTreeMap<String, Arc<Samples>>>);

#[derive(Default)]
struct Samples(std::sync::Mutex<Vec<f64>>);

impl Samples {
    fn values(&self) -> std::sync::MutexGuard<'_, Vec<f64>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.values().push(value);
    }
}

impl Recorded {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Samples>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets what was recorded so far (the warm-up run's).
    fn clear(&self) {
        for samples in self.lock().values() {
            samples.values().clear();
        }
    }

    /// A line per histogram of seconds: count, p50, p99, p999 and the largest, in ms.
    fn table(&self) -> String {
        let mut out = String::new();
        for (name, samples) in self.lock().iter().filter(|(n, _)| n.ends_with("_seconds")) {
            let mut values = samples.values().clone();
            if values.is_empty() {
                continue;
            }
            values.sort_unstable_by(f64::total_cmp);
            let at = |per_mille| quantile(&values, per_mille) * 1e3;
            let _ = writeln!(
                out,
                "  {name:<36} {:>9}  p50 {:>7.2}  p99 {:>7.2}  p999 {:>7.2}  max {:>7.2} ms",
                values.len(),
                at(500),
                at(990),
                at(999),
                values[values.len() - 1] * 1e3
            );
        }
        out
    }
}

impl metrics::Recorder for &'static Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        let samples = Arc::clone(self.lock().entry(key.name().to_owned()).or_default());
        metrics::Histogram::from_arc(samples)
    }
}

/// Paced runs at one rate, each one's latencies sorted.
struct Paced {
    rate: f64,
    runs: Vec<Vec<Duration>>,
}

impl Paced {
    /// `runs` runs at `rate` on `pipeline`, one after the other, each one's percentiles on
    /// standard error as it ends; and the CPU a transaction by stage over them, the pacing
    /// thread's as the clients'.
    fn run(
        pipeline: &Pipeline,
        senders: &mut Senders,
        rate: f64,
        sign: bool,
        runs: usize,
    ) -> (Self, StageCpu) {
        let before = threads();
        let mut stages = StageCpu::default();
        let runs = (1..=runs)
            .map(|i| {
                let (run, pacing) = paced(pipeline, senders, rate, sign);
                stages.clients += pacing;
                eprintln!(
                    "paced run {i} of {runs} at {rate:.0} tx/s: {}",
                    percentiles(&run)
                );
                run
            })
            .collect();
        let paced = Self { rate, runs };
        stages.transactions = paced.transactions();
        stages.add(&before, &threads());
        (paced, stages)
    }

    fn transactions(&self) -> u64 {
        self.runs.iter().map(|run| run.len() as u64).sum()
    }

    /// Each run's quantile, sorted.
    fn quantiles(&self, per_mille: usize) -> Vec<Duration> {
        let mut each: Vec<Duration> = self
            .runs
            .iter()
            .map(|run| quantile(run, per_mille))
            .collect();
        each.sort_unstable();
        each
    }

    /// The median over the runs of each run's quantile.
    fn median(&self, per_mille: usize) -> Duration {
        let each = self.quantiles(per_mille);
        each[each.len() / 2]
    }

    fn p99(&self) -> Duration {
        self.median(990)
    }

    /// `paced at R tx/s (why), median of N runs of S s: p50 …, p99 … (lowest–highest), p999 …`.
    fn line(&self, why: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p99s = self.quantiles(990);
        format!(
            "paced at {:.0} tx/s ({why}), median of {} runs of {PACED_SECONDS} s: p50 {:.2} ms, \
             p99 {:.2} ms ({:.2}–{:.2}), p999 {:.2} ms",
            self.rate,
            self.runs.len(),
            ms(self.median(500)),
            ms(self.p99()),
            ms(p99s[0]),
            ms(p99s[p99s.len() - 1]),
            ms(self.median(999))
        )
    }
}

/// Mean transactions/s of one benchmark, from criterion's estimates.
fn rate(id: &str) -> Option<f64> {
    let path = out_dir()
        .join("pipeline")
        .join(id)
        .join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let nanos = json["mean"]["point_estimate"].as_f64()?;
    Some(PER_ITERATION as f64 / (nanos * 1e-9))
}

/// The CPU time the process has used so far, all threads.
fn cpu_time() -> Duration {
    clock(rustix::time::ClockId::ProcessCPUTime)
}

/// `clock`'s time.
fn clock(clock: rustix::time::ClockId) -> Duration {
    let t = rustix::time::clock_gettime(clock);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn table(instant_paced: &Paced, cpu_paced: &Paced, cores_busy: f64) -> Option<String> {
    let instant = rate("instant")?;
    let raw = rate("cpu_raw")?;
    let cpu = rate("cpu")?;
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nreplica pipeline, submission to durable commit, {ACCOUNTS} accounts, {PER_ITERATION} transfers per iteration, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let _ = writeln!(t, "{:<44} {:>12}", "", "tx/s");
    let _ = writeln!(
        t,
        "{:<44} {instant:>12.0}",
        "instant verifier (loop-back card)"
    );
    let _ = writeln!(
        t,
        "{:<44} {raw:>12.0}",
        "CPU backend, raw verification (the reference)"
    );
    let _ = writeln!(
        t,
        "{:<44} {cpu:>12.0}   (cores busy: {cores_busy:.2})",
        "CPU backend, end to end"
    );
    let _ = writeln!(t, "{}", cpu_paced.line("half the CPU end-to-end rate"));
    let _ = writeln!(
        t,
        "{}",
        instant_paced.line("half the instant rate, loop-back card")
    );
    let _ = writeln!(t, "\ntargets:");
    let _ = writeln!(
        t,
        "  instant verifier >= 200,000 tx/s: {instant:.0} ({})",
        verdict(instant >= 200_000.0)
    );
    let _ = writeln!(
        t,
        "  CPU end to end >= 80% of raw: {:.0}% ({})",
        100.0 * cpu / raw,
        verdict(cpu >= 0.8 * raw)
    );
    let _ = writeln!(
        t,
        "  p99 submit->commit <= 5 ms at half the maximum rate (CPU backend): {:.2} ms ({})",
        cpu_paced.p99().as_secs_f64() * 1e3,
        verdict(cpu_paced.p99() <= Duration::from_millis(5))
    );
    Some(t)
}
