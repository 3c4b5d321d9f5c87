//! Replicas ordering by consensus, as a venue runs them: four `verityd` processes on
//! loopback, loaded through every replica, one killed with SIGKILL and restarted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use verity_host::api::{Block, Status};
use verity_host::backend::BackendKind;
use verity_host::cli::client::Client;
use verity_host::cli::cluster::{self, ClusterArgs, Replica};
use verity_host::cli::load::{load, LoadArgs, LoadReport};

/// A scratch directory of this test's own, removed first so that reruns start clean.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A base port for this process's cluster (40 ports), away from the defaults and from
/// other test processes.
fn base_port() -> u16 {
    20_000 + (std::process::id() % 1000) as u16 * 40
}

fn write_cluster(dir: &Path, replicas: u16) {
    cluster::write(&ClusterArgs {
        dir: dir.to_owned(),
        replicas,
        base_port: base_port(),
        accounts: 40,
        chain_id: 9,
        backend: BackendKind::Cpu,
        no_start: true,
    })
    .expect("the cluster's directory is written");
}

fn start(dir: &Path) -> Replica {
    Replica::start(Path::new(env!("CARGO_BIN_EXE_verityd")), dir).expect("verityd starts")
}

fn send(dir: &Path, targets: Vec<SocketAddr>, http: SocketAddr, rate: u32) -> LoadReport {
    let report = load(&LoadArgs {
        keys: dir.to_owned(),
        target: targets,
        http: Some(http),
        rate,
        duration: 2,
        accounts: None,
        connections: 4,
        drain: 30,
    })
    .expect("the load runs");
    assert_eq!(report.unanswered, 0, "every transaction is answered");
    assert!(report.refused.is_empty(), "refused: {:?}", report.refused);
    assert_eq!(report.committed(), report.sent, "every transaction commits");
    assert_eq!(report.applied, report.sent, "every transfer applies");
    report
}

fn status(http: SocketAddr) -> Status {
    Client::new(http).status().expect("status")
}

/// Waits until the replica at `http` has committed `height`.
fn wait_for(http: SocketAddr, height: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = status(http).height;
        if now >= height {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{http} is at {now}, not {height}, after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every replica holds the same block (transactions and state root) at every height they
/// all have.
fn assert_identical(https: &[SocketAddr]) -> u64 {
    let common = https
        .iter()
        .map(|h| status(*h).height)
        .min()
        .expect("replicas");
    let clients: Vec<Client> = https.iter().map(|h| Client::new(*h)).collect();
    for height in 1..=common {
        let blocks: Vec<Block> = clients
            .iter()
            .map(|c| c.get(&format!("/v1/blocks/{height}")).expect("a block"))
            .collect();
        for (i, block) in blocks.iter().enumerate().skip(1) {
            assert_eq!(
                block, &blocks[0],
                "replica {i} differs from replica 0 at height {height}"
            );
        }
    }
    common
}

#[test]
fn four_replicas_agree_and_a_killed_one_catches_up() {
    let dir = scratch("cluster-four");
    write_cluster(&dir, 4);
    let dirs = cluster::replicas(&dir).expect("four replicas");
    let mut replicas: Vec<Option<Replica>> = dirs.iter().map(|d| Some(start(d))).collect();
    let ready = |r: &Option<Replica>| r.as_ref().expect("running").ready.clone();
    let tcp: Vec<SocketAddr> = replicas.iter().map(|r| ready(r).tcp).collect();
    let http: Vec<SocketAddr> = replicas.iter().map(|r| ready(r).http).collect();

    // Load through every replica: each holds its own clients' transactions until it proposes.
    let first = send(&dir, tcp.clone(), http[0], 200);
    assert_eq!(first.sent, 400);
    let agreed = assert_identical(&http);
    assert!(agreed > 0);

    // One of four killed: the other three still decide.
    replicas[3].take().expect("running").kill().expect("killed");
    let before = status(http[0]).height;
    send(&dir, tcp[..3].to_vec(), http[0], 200);
    let after = status(http[0]).height;
    assert!(
        after > before,
        "three of four decided from {before} to {after}"
    );

    // Restarted, it catches up from its peers and agrees at every height.
    replicas[3] = Some(start(&dirs[3]));
    let http3 = ready(&replicas[3]).http;
    wait_for(http3, after, Duration::from_secs(60));
    let agreed = assert_identical(&http);
    assert!(agreed >= after);

    let stopped: Vec<_> = replicas
        .into_iter()
        .map(|r| r.expect("running").stop().expect("stops cleanly"))
        .collect();
    assert!(stopped.iter().all(|s| s.height >= after));
    let _ = std::fs::remove_dir_all(&dir);
}
