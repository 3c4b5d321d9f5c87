//! Captures: how fast `verity replay` reads and sends, how closely it keeps a capture's pace,
//! and what recording costs ingress.
//!
//! * replay at `--speed max` of a 1,000,000-transaction capture (UDP, and TCP), read from the
//!   file, extracted and sent to a sink on loopback that reads and discards — against the same
//!   transactions sent from memory over the same socket code in the same run (the ratio is
//!   what reading the capture costs);
//! * pacing error at `--speed 1x` of a 10,000 tx/s UDP capture (20,000 transactions, 2 s):
//!   how late each send was against the capture's pace;
//! * the cost to ingress of offering a datagram to the recorder, recording on (writer
//!   running) and off.
//!
//! `make bench` runs it and prints the table with the targets.

use std::fmt::Write as _;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use verity_host::cli::pcap::{generate, GenArgs};
use verity_host::cli::replay::{replay, ReplayArgs};
use verity_host::traffic::extract::Extractor;
use verity_host::traffic::file;
use verity_host::traffic::pacing::Speed;
use verity_host::traffic::reassembly::Limits;
use verity_host::traffic::recorder::{RecordConfig, Recorder};
use verity_host::traffic::send::Outbound;
use verity_host::traffic::Transport;

/// Transactions in the full-speed capture.
const COUNT: u64 = 1_000_000;
/// The paced capture: transactions and their rate.
const PACED: u64 = 20_000;
const PACED_RATE: u64 = 10_000;

fn tmp() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf()
}

fn out_dir() -> PathBuf {
    tmp().join("criterion")
}

/// The capture of `count` transactions over `transport` at `rate`, written once and reused
/// (signing a million transactions takes a while).
fn capture(transport: Transport, count: u64, rate: u64) -> PathBuf {
    let path = tmp().join(format!("pcap-bench-{transport}-{count}-{rate}.pcap"));
    if path.exists() {
        return path;
    }
    let partial = path.with_extension("partial");
    generate(&GenArgs {
        count,
        out: partial.clone(),
        keys: None,
        chain_id: 1,
        accounts: Some(1000),
        transport,
        target: None,
        connections: 1,
        rate,
        invalid: 0,
        malformed: 0,
        seed: 1,
    })
    .expect("the capture is written");
    std::fs::rename(&partial, &path).expect("renamed");
    path
}

/// A socket on loopback that reads and discards whatever comes, for as long as it runs.
fn sink(transport: Transport) -> SocketAddr {
    match transport {
        Transport::Udp => {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("binds");
            let addr = socket.local_addr().expect("an address");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while socket.recv(&mut buf).is_ok() {}
            });
            addr
        }
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
            let addr = listener.local_addr().expect("an address");
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 16];
                        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                    });
                }
            });
            addr
        }
    }
}

fn args(file: &Path, target: SocketAddr, speed: Speed) -> ReplayArgs {
    ReplayArgs {
        files: vec![file.to_path_buf()],
        target,
        over: None,
        speed,
        filter: None,
        drain: 0,
    }
}

/// The capture's transactions, extracted once, for the from-memory reference.
fn extracted(file: &Path) -> Vec<Vec<u8>> {
    let (mut capture, link) = file::open(file, None).expect("opens");
    let mut extractor = Extractor::new(link, Limits::default());
    let mut out = Vec::new();
    while let Ok(p) = capture.next_packet() {
        extractor.captured(&p, &mut out);
    }
    out.into_iter().map(|e| e.bytes).collect()
}

fn main() {
    let mut criterion = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut group = criterion.benchmark_group("pcap");
    group.throughput(Throughput::Elements(COUNT));
    for transport in [Transport::Udp, Transport::Tcp] {
        let file = capture(transport, COUNT, 100_000);
        let target = sink(transport);
        group.bench_function(format!("replay_{transport}"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let report = replay(&args(&file, target, Speed::Max)).expect("replays");
                    assert_eq!(report.sent + report.send_errors, COUNT);
                }
                started.elapsed()
            })
        });
        let transactions = extracted(&file);
        group.bench_function(format!("memory_{transport}"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let mut out = Outbound::connect(transport, target).expect("connects");
                    for tx in &transactions {
                        // A UDP send the kernel refuses is counted by replay, not fatal.
                        let _ = out.send(tx);
                    }
                    out.finish(Duration::ZERO).expect("finishes");
                }
                started.elapsed()
            })
        });
    }
    group.finish();

    let mut group = criterion.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let dir = tmp().join("pcap-bench-record");
    let _ = std::fs::remove_dir_all(&dir);
    let (recorder, writer) = Recorder::new(&RecordConfig {
        dir: dir.clone(),
        rotate_bytes: 16 << 20,
        keep: 2,
        queue: 65_536,
        on: true,
    });
    writer.spawn().expect("the writer starts");
    let (from, to) = (
        "127.0.0.1:40000".parse().expect("an address"),
        "127.0.0.1:7382".parse().expect("an address"),
    );
    let datagram = [7u8; 160];
    let flood = Instant::now();
    group.bench_function("offer_on", |b| {
        b.iter(|| recorder.udp(None, from, to, &datagram))
    });
    let on = recorder.status();
    let written = on.packets as f64 / flood.elapsed().as_secs_f64();
    recorder.close();
    group.bench_function("offer_off", |b| {
        b.iter(|| recorder.udp(None, from, to, &datagram))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);

    let paced_file = capture(Transport::Udp, PACED, PACED_RATE);
    let mut paced =
        replay(&args(&paced_file, sink(Transport::Udp), Speed::Times(1.0))).expect("replays");
    let us = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
    let pacing = (
        us(paced.pacing.quantile(500)),
        us(paced.pacing.quantile(990)),
        us(paced.pacing.quantile(1000)),
    );
    let dropped = on.dropped as f64 / (on.dropped + on.packets).max(1) as f64;
    if let Some(table) = table(pacing, dropped, written) {
        println!("{table}");
    }
}

/// Mean seconds per iteration of one benchmark, from criterion's estimates.
fn seconds(group: &str, id: &str) -> Option<f64> {
    let path = out_dir().join(group).join(id).join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    Some(json["mean"]["point_estimate"].as_f64()? * 1e-9)
}

fn table(pacing: (f64, f64, f64), dropped: f64, written: f64) -> Option<String> {
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let mut t = String::new();
    let _ = writeln!(t, "\nverity replay and recording (this machine, this run)");
    let _ = writeln!(
        t,
        "  {:<34} {:>12} {:>14} {:>8}  target",
        "", "tx/s", "from memory", "ratio"
    );
    for transport in ["udp", "tcp"] {
        let replay = COUNT as f64 / seconds("pcap", &format!("replay_{transport}"))?;
        let memory = COUNT as f64 / seconds("pcap", &format!("memory_{transport}"))?;
        let _ = writeln!(
            t,
            "  {:<34} {replay:>12.0} {memory:>14.0} {:>8.2}  ≥ 500,000 tx/s: {}",
            format!("replay --speed max, {transport}, 1M tx"),
            replay / memory,
            verdict(replay >= 500_000.0)
        );
    }
    let (p50, p99, max) = pacing;
    let _ = writeln!(
        t,
        "  pacing error at 1x ({PACED_RATE} tx/s, {PACED} tx): p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs  (p99 ≤ 50 µs: {})",
        verdict(p99 <= 50.0)
    );
    let on = seconds("record", "offer_on")? * 1e9;
    let off = seconds("record", "offer_off")? * 1e9;
    let _ = writeln!(
        t,
        "  ingress cost of recording a datagram: {on:.0} ns on, {off:.1} ns off; flooded, the writer kept {written:.0} packets/s ({:.1}% dropped by the bounded queue)",
        dropped * 100.0
    );
    Some(t)
}
