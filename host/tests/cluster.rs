//! Replicas ordering by consensus, as a venue runs them: four `verityd` processes on
//! loopback, loaded through every replica, one killed with SIGKILL and restarted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use verity_host::api::{Block, Status};
use verity_host::backend::BackendKind;
use verity_host::cli::client::Client;
use verity_host::cli::cluster::{self, ClusterArgs, Replica};
use verity_host::cli::load::{load, LoadArgs, LoadReport};
use verity_host::consensus::certified::CertifiedBlock;

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

/// Every replica holds the same block (id, transactions and their receipts, state root) at
/// every height they all have. Certificates may differ: each replica keeps the quorum of
/// precommits it saw, and any quorum certifies.
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
            .map(|c| {
                let mut block: Block = c.get(&format!("/v1/blocks/{height}")).expect("a block");
                let certificate = block.certificate.take().expect("certified");
                assert!(certificate.signatures.len() >= 3, "a quorum at {height}");
                block
            })
            .collect();
        for (i, block) in blocks.iter().enumerate().skip(1) {
            assert!(
                block == &blocks[0],
                "replica {i} differs from replica 0 at height {height}: block {} root {}, against {} root {}",
                block.id, block.state_root, blocks[0].id, blocks[0].state_root
            );
        }
    }
    common
}

fn verity(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(args)
        .output()
        .expect("verity runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// `verity block N` shows the certificate; `--out` writes the certified block, which
/// `verity verify-block` accepts against the genesis file, and refuses once tampered with.
fn certified_blocks_check_offline(dir: &Path, http: SocketAddr, height: u64) {
    let block: Block = Client::new(http)
        .get(&format!("/v1/blocks/{height}"))
        .expect("a block");
    let certificate = block.certificate.expect("decided by consensus");
    assert!(certificate.signatures.len() >= 3, "a quorum of four signed");
    let file = dir.join("certified.json");
    let (http, height) = (http.to_string(), height.to_string());
    let file_arg = file.to_str().expect("a UTF-8 path");
    let genesis = dir.join(cluster::GENESIS_FILE);
    let genesis = genesis.to_str().expect("a UTF-8 path");
    let (ok, text) = verity(&["block", "--http", &http, &height, "--out", file_arg]);
    assert!(ok, "{text}");
    let (ok, text) = verity(&["verify-block", file_arg, "--genesis", genesis]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("block {height} (")), "{text}");
    assert!(text.contains("holds"), "{text}");

    let original: CertifiedBlock =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    let tampered = |change: &dyn Fn(&mut CertifiedBlock), expected: &str| {
        let mut block = original.clone();
        change(&mut block);
        std::fs::write(&file, serde_json::to_string(&block).expect("JSON")).expect("written");
        let (ok, text) = verity(&["verify-block", file_arg, "--genesis", genesis]);
        assert!(!ok && text.contains(expected), "{expected}: {text}");
    };
    // Another block under the same certificate.
    tampered(
        &|b| b.block.push_str(&"00".repeat(160)),
        "the certificate is for height",
    );
    // A certificate for another height.
    tampered(&|b| b.height += 1, "the certificate is for height");
    // A certificate short of a quorum: its last signature dropped (one signature is 32 bytes
    // of key and 64 of signature at the end of the encoding), and its count lowered.
    tampered(
        &|b| {
            let mut bytes = hex::decode(&b.certificate).expect("hex");
            bytes.truncate(bytes.len() - 96 * (certificate.signatures.len() - 2));
            let count = bytes.len() - 96 * 2 - 4;
            bytes[count..count + 4].copy_from_slice(&2u32.to_le_bytes());
            b.certificate = hex::encode(bytes);
        },
        "more than two thirds",
    );
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

    certified_blocks_check_offline(&dir, http[1], agreed);

    let stopped: Vec<_> = replicas
        .into_iter()
        .map(|r| r.expect("running").stop().expect("stops cleanly"))
        .collect();
    assert!(stopped.iter().all(|s| s.height >= after));
    let _ = std::fs::remove_dir_all(&dir);
}
