//! Four replicas on loopback, ordering by consensus, CPU backend — the figures:
//!
//! * finalized transactions/s and finality latency p50/p99 (a client's submission to its
//!   reply, which a replica sends once the block that holds it is decided and on disk), at
//!   rising offered rates sent through every replica;
//! * the share of the replicas' CPU spent verifying signatures (the CPU time of the CPU
//!   backend's worker threads over the processes' CPU time, from /proc), the figure the card
//!   removes;
//! * against the reference measured in the same run: the CPU backend's raw verification rate
//!   on this machine, divided by the verifications a finalized transaction costs the cluster
//!   (one at the ingress replica, one at each of the other three when the block arrives).
//!
//! * state sync: a replica that starts late on a 100,000-account state — how long it takes to
//!   join from a certified snapshot, and the bytes it fetched.
//!
//! `make bench` runs it. Each replica is a `verityd` process; `verity load` sends the load.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ed25519_dalek::SigningKey;
use verity_drivers::{verify_all, PoolConfig, PoolVerifier, Request, Tag};
use verity_host::backend::BackendKind;
use verity_host::cli::cluster::{self, ClusterArgs, Replica};
use verity_host::cli::load::{load, LoadArgs, LoadReport, Mix};

const REPLICAS: u16 = 4;
const RAW_BATCH: usize = 1024;
/// Verifications the cluster makes per finalized transaction.
const CHECKS_PER_TX: f64 = REPLICAS as f64;

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

fn raw_requests() -> Vec<Request> {
    (0..RAW_BATCH)
        .map(|i| {
            let key = SigningKey::from_bytes(&[(i % 251) as u8 + 1; 32]);
            let message = (i as u64).to_le_bytes().to_vec();
            let signature = ed25519_dalek::Signer::sign(&key, &message).to_bytes();
            Request::new(
                Tag::new(i as u64),
                key.verifying_key().to_bytes(),
                signature,
                message,
            )
        })
        .collect()
}

/// The CPU backend's raw rate on every core, from criterion's estimate.
fn raw_rate() -> Option<f64> {
    let path = out_dir().join("cluster/cpu_raw/new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let nanos = json["mean"]["point_estimate"].as_f64()?;
    Some(RAW_BATCH as f64 / (nanos * 1e-9))
}

/// CPU time (user and system) in a /proc stat file, in USER_HZ ticks (100 a second on every
/// architecture Linux runs on here).
fn stat_cpu(path: &Path) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 12th and
    // 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(11) + field(12)) * 10)
}

/// A process's CPU time, and the part of it its signature-verification workers (the CPU
/// backend's threads, `verity-cpu-<i>`) spent.
fn cpu_times(pid: u32) -> (Duration, Duration) {
    let process = stat_cpu(Path::new(&format!("/proc/{pid}/stat")));
    let mut verifying = Duration::ZERO;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with("verity-cpu") {
                verifying += stat_cpu(&task.path().join("stat"));
            }
        }
    }
    (process, verifying)
}

fn all_cpu_times(replicas: &[Replica]) -> (Duration, Duration) {
    replicas
        .iter()
        .fold((Duration::ZERO, Duration::ZERO), |(p, v), r| {
            let (rp, rv) = cpu_times(r.pid());
            (p + rp, v + rv)
        })
}

struct Step {
    offered: u32,
    report: LoadReport,
    blocks: u64,
    verify_share: f64,
}

fn run_step(dir: &Path, replicas: &[Replica], rate: u32) -> Step {
    let https: Vec<SocketAddr> = replicas.iter().map(|r| r.ready.http).collect();
    let height = |http: SocketAddr| {
        verity_host::cli::client::Client::new(http)
            .status()
            .map_or(0, |s| s.height)
    };
    let ((cpu0, verify0), height0) = (all_cpu_times(replicas), height(https[0]));
    let report = load(&LoadArgs {
        keys: dir.to_owned(),
        target: replicas.iter().map(|r| r.ready.tcp).collect(),
        http: Some(https[0]),
        rate,
        duration: 5,
        accounts: None,
        connections: 4 * REPLICAS,
        drain: 30,
        mix: Mix::Transfers,
        shock: 40,
        seed: 1,
    })
    .expect("the load runs");
    let (cpu, verify) = all_cpu_times(replicas);
    let (cpu, verify) = (cpu - cpu0, verify - verify0);
    Step {
        offered: rate,
        blocks: height(https[0]) - height0,
        verify_share: verify.as_secs_f64() / cpu.as_secs_f64().max(1e-9),
        report,
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    let mut group = criterion.benchmark_group("cluster");
    group.throughput(Throughput::Elements(RAW_BATCH as u64));
    let requests = raw_requests();
    let mut cpu = PoolVerifier::cpu(PoolConfig::new(
        std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        NonZeroUsize::new(RAW_BATCH).expect("1024"),
    ));
    group.bench_function("cpu_raw", |b| {
        b.iter(|| verify_all(&mut cpu, requests.iter().cloned()).expect("verifies"))
    });
    group.finish();
    drop(cpu);
    let Some(raw) = raw_rate() else {
        eprintln!("criterion left no estimate for cluster/cpu_raw: no cluster run");
        return;
    };

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-bench");
    let _ = std::fs::remove_dir_all(&dir);
    cluster::write(&ClusterArgs {
        dir: dir.clone(),
        replicas: REPLICAS,
        base_port: cluster::free_base_port(REPLICAS).expect("free ports"),
        accounts: 2000,
        chain_id: 1,
        backend: BackendKind::Cpu,
        no_start: true,
    })
    .expect("the cluster's directory");
    let verityd = Path::new(env!("CARGO_BIN_EXE_verityd"));
    let replicas: Vec<Replica> = cluster::replicas(&dir)
        .expect("replicas")
        .iter()
        .map(|d| Replica::start(verityd, d).expect("verityd starts"))
        .collect();
    let started = Instant::now();
    let mut steps = Vec::new();
    for rate in [500, 1000, 2000, 4000, 8000, 16000] {
        let step = run_step(&dir, &replicas, rate);
        let achieved = step.report.committed() as f64 / step.report.elapsed.as_secs_f64().max(1e-9);
        let saturated = achieved < 0.9 * f64::from(rate) || step.report.unanswered > 0;
        steps.push(step);
        if saturated {
            break;
        }
    }
    for replica in replicas {
        let _ = replica.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);

    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    let ceiling = raw / CHECKS_PER_TX;
    println!(
        "\ncluster: {REPLICAS} replicas on loopback, CPU backend, {} cores shared, {:.0} s of load",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:>10} {:>12} {:>10} {:>10} {:>9} {:>10} {:>12}",
        "offered", "finalized/s", "p50 ms", "p99 ms", "blocks/s", "unanswered", "verify share"
    );
    let mut best = 0.0f64;
    for s in &steps {
        let secs = s.report.elapsed.as_secs_f64().max(1e-9);
        let finalized = s.report.committed() as f64 / secs;
        best = best.max(finalized);
        println!(
            "{:>10} {:>12.0} {:>10.1} {:>10.1} {:>9.1} {:>10} {:>11.0}%",
            s.offered,
            finalized,
            ms(s.report.latency(500)),
            ms(s.report.latency(990)),
            s.blocks as f64 / secs,
            s.report.unanswered,
            100.0 * s.verify_share
        );
    }
    println!(
        "reference: CPU backend raw verification {raw:.0} sig/s on every core; {CHECKS_PER_TX:.0} \
         verifications per finalized transaction: {ceiling:.0} tx/s if verifying were all the \
         replicas did"
    );
    println!(
        "best finalized {best:.0} tx/s = {:.2} × that ceiling",
        best / ceiling
    );
    state_sync(verityd);
}

/// Accounts in the state a late replica fetches.
const SYNC_ACCOUNTS: u32 = 100_000;

/// A fourth replica started late, with no data, on a cluster whose state holds
/// [`SYNC_ACCOUNTS`] accounts: how long it takes to start (fetching, checking and restoring
/// the certified snapshot is all of it) and the bytes it fetched, as its log reports them.
fn state_sync(verityd: &Path) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("state-sync-bench");
    let _ = std::fs::remove_dir_all(&dir);
    cluster::write(&ClusterArgs {
        dir: dir.clone(),
        replicas: REPLICAS,
        base_port: cluster::free_base_port(REPLICAS).expect("free ports"),
        accounts: SYNC_ACCOUNTS,
        chain_id: 1,
        backend: BackendKind::Cpu,
        no_start: true,
    })
    .expect("the cluster's directory");
    let dirs = cluster::replicas(&dir).expect("replicas");
    for replica in &dirs {
        let config = replica.join("verity.toml");
        let text = std::fs::read_to_string(&config).expect("a configuration");
        std::fs::write(&config, text.replace("every = 1000", "every = 20")).expect("written");
    }
    let early: Vec<Replica> = dirs[..3]
        .iter()
        .map(|d| Replica::start(verityd, d).expect("verityd starts"))
        .collect();
    let client = verity_host::cli::client::Client::new(early[0].ready.http);
    let deadline = Instant::now() + Duration::from_secs(300);
    // The first snapshot (height 20) is certified by block 28.
    while client.status().map_or(0, |s| s.height) < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let began = Instant::now();
    let late = Replica::start(verityd, &dirs[3]).expect("verityd starts");
    let started = began.elapsed();
    let log = std::fs::read_to_string(dirs[3].join("verityd.log")).unwrap_or_default();
    let joined = log.lines().find(|l| l.contains("joined from a snapshot"));
    let field = |name: &str| {
        joined
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix(name)))
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "\nstate sync: a replica joining a {SYNC_ACCOUNTS}-account state from a certified snapshot \
         (height {}): started in {:.2} s, {} bytes fetched over HTTP on loopback",
        field("height="),
        started.as_secs_f64(),
        field("bytes=")
    );
    drop(late);
    drop(early);
    let _ = std::fs::remove_dir_all(&dir);
}
