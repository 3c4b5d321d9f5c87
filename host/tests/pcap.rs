//! Captures as an operator uses them: `verity pcap gen`, `verity replay`, a replica's
//! recording switched on and replayed into another replica, `verity capture` on loopback,
//! and tshark reading every file Verity writes.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Duration;

use verity_host::api::Status;
use verity_host::cli::client::Client;
use verity_host::cli::cluster::Replica;
use verity_host::cli::init::read_accounts;
use verity_host::cli::pcap::{generate, GenArgs};
use verity_host::cli::replay::{replay, ReplayArgs};
use verity_host::ingress::parse_reply;
use verity_host::pipeline::Outcome;
use verity_host::traffic::extract::Extractor;
use verity_host::traffic::file;
use verity_host::traffic::pacing::Speed;
use verity_host::traffic::reassembly::Limits;
use verity_host::traffic::recorder::{recorded, RecordStatus, RecordSwitch};
use verity_host::traffic::Transport;
use verity_host::transaction::{Body, Payload, Unsigned};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn verity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("verity runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The number on the end table's line named `name`.
fn field(table: &str, name: &str) -> u64 {
    table
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {name} in {table}"))
}

/// `verity init` with ephemeral ports.
fn init(dir: &Path, accounts: u32) {
    let path = dir.to_str().expect("a UTF-8 path");
    let output = verity(&[
        "init",
        "--http-port",
        "0",
        "--tcp-port",
        "0",
        "--udp-port",
        "0",
        "--accounts",
        &accounts.to_string(),
        "--dir",
        path,
    ]);
    assert!(output.status.success(), "{:?}", text(&output));
}

fn start(dir: &Path) -> Replica {
    Replica::start(Path::new(env!("CARGO_BIN_EXE_verityd")), dir).expect("verityd starts")
}

/// Packets tshark reads in `path` (it fails on a file it cannot read).
fn tshark_count(path: &Path) -> u64 {
    let output = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark runs (scripts/deps installs it)");
    let (out, err) = text(&output);
    assert!(
        output.status.success(),
        "tshark -r {}: {err}",
        path.display()
    );
    assert!(
        !err.contains("appears to have been cut short") && !err.contains("isn't a capture file"),
        "{err}"
    );
    out.lines().count() as u64
}

/// The transactions of capture files, in order.
fn transactions(files: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut extractor = None;
    for path in files {
        let (mut capture, link) = file::open(path, None).expect("opens");
        let extractor = extractor.get_or_insert_with(|| Extractor::new(link, Limits::default()));
        while let Ok(p) = capture.next_packet() {
            extractor.captured(&p, &mut out);
        }
    }
    out.into_iter().map(|e| e.bytes).collect()
}

fn gen(keys: &Path, out: &Path, transport: Transport, count: u64, accounts: usize) -> GenArgs {
    GenArgs {
        count,
        out: out.to_path_buf(),
        keys: Some(keys.to_path_buf()),
        chain_id: 1,
        accounts: Some(accounts),
        transport,
        target: None,
        connections: 3,
        rate: 20_000,
        invalid: 10,
        malformed: 5,
        seed: 7,
    }
}

fn replay_args(files: Vec<PathBuf>, target: SocketAddr, speed: Speed) -> ReplayArgs {
    ReplayArgs {
        files,
        target,
        over: None,
        speed,
        filter: None,
        drain: 30,
    }
}

/// Waits until the replica's state has caught up with its log (`/status` trails it).
fn settled(client: &Client) -> Status {
    let mut last = client.status().expect("status");
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let now = client.status().expect("status");
        if now.height == last.height && now.state_root == last.state_root {
            return now;
        }
        last = now;
    }
    last
}

#[test]
fn a_recording_replayed_into_a_fresh_replica_gives_the_same_transactions_order_and_root() {
    let dir = scratch("pcap-round-trip");
    let (a_dir, b_dir) = (dir.join("a"), dir.join("b"));
    init(&a_dir, 100);
    // The same genesis and keys for B, before either has data.
    std::fs::create_dir_all(&b_dir).expect("b");
    for entry in std::fs::read_dir(&a_dir).expect("a") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a type").is_dir() {
            let to = b_dir.join(entry.file_name());
            std::fs::create_dir_all(&to).expect("a directory");
            for inner in std::fs::read_dir(entry.path()).expect("readable") {
                let inner = inner.expect("an entry");
                std::fs::copy(inner.path(), to.join(inner.file_name())).expect("copied");
            }
        } else {
            std::fs::copy(entry.path(), b_dir.join(entry.file_name())).expect("copied");
        }
    }
    // A records from the start (its configuration); B is switched on through the admin API.
    let config = std::fs::read_to_string(a_dir.join("verity.toml")).expect("config");
    assert!(config.contains("record = false"));
    let recording = config.replacen("record = false", "record = true", 1);
    std::fs::write(a_dir.join("verity.toml"), recording).expect("written");
    let a = start(&a_dir);

    // TCP traffic with bad signatures and malformed frames, then UDP datagrams.
    let tcp_capture = dir.join("traffic.pcap");
    let generated =
        generate(&gen(&a_dir, &tcp_capture, Transport::Tcp, 600, 50)).expect("generated");
    let sent = replay(&replay_args(vec![tcp_capture], a.ready.tcp, Speed::Max)).expect("replayed");
    assert_eq!(sent.replies.answered, 600);
    assert_eq!(sent.replies.refused["signature"], generated.invalid);
    assert_eq!(sent.replies.refused["malformed"], generated.malformed);
    assert_eq!(sent.replies.applied, generated.valid);
    let keys = read_accounts(&a_dir).expect("keys");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("binds");
    udp.connect(a.ready.udp).expect("connects");
    udp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    for nonce in 0..20 {
        let tx = Unsigned {
            chain_id: 1,
            sender: keys[99].verifying_key().to_bytes(),
            nonce,
            payload: Payload::Transfer(Body {
                asset: 1,
                to: keys[0].verifying_key().to_bytes(),
                amount: 3,
            }),
        }
        .sign(&keys[99]);
        udp.send(&tx).expect("sent");
        let mut reply = [0u8; 512];
        let n = udp.recv(&mut reply).expect("a reply");
        assert!(matches!(
            parse_reply(&reply[..n]),
            Ok(Outcome::Committed { failure: None, .. })
        ));
    }
    let a_client = Client::new(a.ready.http);
    let a_status = settled(&a_client);
    let a_files: Vec<PathBuf> = {
        a.stop().expect("A stops");
        recorded(&a_dir.join("pcap"))
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    };
    assert_eq!(a_files.len(), 1);
    let a_transactions = transactions(&a_files);
    assert_eq!(a_transactions.len(), 620, "600 frames and 20 datagrams");
    let a_packets: u64 = a_files.iter().map(|f| tshark_count(f)).sum();
    // Replay's one connection (handshake, FIN), its frames, and the UDP datagrams.
    assert_eq!(a_packets, 4 + 600 + 20);

    let b = start(&b_dir);
    let b_client = Client::new(b.ready.http);
    let on: RecordStatus = b_client
        .post("/admin/pcap", &RecordSwitch { record: true })
        .expect("switched on");
    assert!(on.recording);
    let replayed = replay(&replay_args(a_files, b.ready.tcp, Speed::Max)).expect("replayed");
    assert_eq!(replayed.sent, 620);
    assert_eq!(replayed.over, Some(Transport::Tcp));
    assert_eq!(replayed.replies.applied, generated.valid + 20);
    let b_status = settled(&b_client);
    let off: RecordStatus = b_client
        .post("/admin/pcap", &RecordSwitch { record: false })
        .expect("switched off");
    assert!(!off.recording && off.dropped == 0);
    b.stop().expect("B stops");
    let b_files: Vec<PathBuf> = recorded(&b_dir.join("pcap"))
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        transactions(&b_files),
        a_transactions,
        "same transactions, same order"
    );
    let b_packets: u64 = b_files.iter().map(|f| tshark_count(f)).sum();
    assert_eq!(
        b_packets,
        4 + 620,
        "one connection's handshake, frames and FIN"
    );
    assert_eq!(b_status.state_root, a_status.state_root);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generated_captures_open_in_tshark_and_broken_ones_get_clear_errors() {
    let dir = scratch("pcap-files");
    init(&dir.join("r"), 20);
    let keys = dir.join("r");
    let keys = keys.to_str().expect("UTF-8");
    for (transport, packets) in [("udp", 300), ("tcp", 300 + 2 * 4)] {
        let out = dir.join(format!("{transport}.pcap"));
        let output = verity(&[
            "pcap",
            "gen",
            "--count",
            "300",
            "--out",
            out.to_str().expect("UTF-8"),
            "--keys",
            keys,
            "--transport",
            transport,
            "--connections",
            "2",
            "--invalid",
            "20",
            "--malformed",
            "10",
        ]);
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stdout.contains(&format!("{packets} packets, 300 transactions")),
            "{stdout}"
        );
        assert_eq!(tshark_count(&out), packets);
    }
    // Flat out over UDP into a replica: runs of equal-sized datagrams go out segmented, and
    // each still arrives as one transaction (few enough to fit the replica's socket buffer).
    let burst = dir.join("burst.pcap");
    let generated = generate(&GenArgs {
        invalid: 15,
        malformed: 15,
        ..gen(&dir.join("r"), &burst, Transport::Udp, 60, 20)
    })
    .expect("generated");
    let replica = start(&dir.join("r"));
    let report =
        replay(&replay_args(vec![burst], replica.ready.udp, Speed::Max)).expect("replayed");
    assert_eq!(report.replies.answered, 60, "{:?}", report.replies);
    assert_eq!(report.replies.applied, generated.valid);
    assert_eq!(report.replies.refused["signature"], generated.invalid);
    assert_eq!(report.replies.refused["malformed"], generated.malformed);
    replica.stop().expect("stops");

    let udp = dir.join("udp.pcap");
    let bytes = std::fs::read(&udp).expect("written");

    // Cut inside the last packet: everything before it is sent, the cut is reported.
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("written");
    let sink = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let target = sink.local_addr().expect("an address").to_string();
    let cut_path = cut.to_str().expect("UTF-8");
    let output = verity(&[
        "replay", cut_path, "--target", &target, "--speed", "max", "--drain", "0",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("capture truncated"), "{stdout}");
    assert_eq!(field(&stdout, "sent"), 299, "{stdout}");

    for (broken, expected) in [
        (bytes[..12].to_vec(), "cannot open"),
        (b"not a capture".to_vec(), "cannot open"),
        (
            {
                let mut usb = bytes.clone();
                usb[20..24].copy_from_slice(&189u32.to_le_bytes());
                usb
            },
            "link type 189",
        ),
    ] {
        std::fs::write(&cut, broken).expect("written");
        let output = verity(&["replay", cut_path, "--target", &target]);
        let (_, stderr) = text(&output);
        assert!(!output.status.success());
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let udp_path = udp.to_str().expect("UTF-8");
    for (args, expected) in [
        (&["--filter", "udp prot 1"][..], "does not compile"),
        (&["--speed", "fast"], "not a speed"),
        (&["--over", "sctp"], "not a transport"),
        (&["--filter", "tcp"], "no transaction"),
    ] {
        let output = verity(&[&["replay", udp_path, "--target", &target][..], args].concat());
        let (_, stderr) = text(&output);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_capture_without_permission_or_interface_says_so() {
    let output = verity(&["capture", "--iface", "nosuch0", "--target", "127.0.0.1:9"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no interface \"nosuch0\"") && stderr.contains("lo"),
        "{stderr}"
    );
    // Without CAP_NET_RAW: as nobody, every capability dropped (possible only as root).
    if !rustix::process::geteuid().is_root() {
        println!("skipped the permission case: not root, so no way to drop to nobody");
        return;
    }
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--inh-caps=-all", "--bounding-set=-all"])
        .arg(env!("CARGO_BIN_EXE_verity"))
        .args(["capture", "--iface", "lo", "--target", "127.0.0.1:9"])
        .output()
        .expect("setpriv runs (util-linux)");
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("needs CAP_NET_RAW") && stderr.contains("setcap cap_net_raw"),
        "{stderr}"
    );
}

/// Whether this process may capture on `lo`; prints why not.
fn may_capture() -> bool {
    match pcap::Capture::from_device("lo").and_then(|c| c.open()) {
        Ok(_) => true,
        Err(error) => {
            println!(
                "skipped: capturing on lo is not permitted here ({error}); it needs CAP_NET_RAW"
            );
            false
        }
    }
}

/// `count` transfers of 1 from account `from` to the next, nonces from 0.
fn transfers(keys: &[ed25519_dalek::SigningKey], from: usize, count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|nonce| {
            Unsigned {
                chain_id: 1,
                sender: keys[from].verifying_key().to_bytes(),
                nonce,
                payload: Payload::Transfer(Body {
                    asset: 1,
                    to: keys[from + 1].verifying_key().to_bytes(),
                    amount: 1,
                }),
            }
            .sign(&keys[from])
            .to_vec()
        })
        .collect()
}

/// Account `key`'s next nonce, once it reaches `nonce` (or after 30 s).
fn nonce_reaches(client: &Client, key: &ed25519_dalek::SigningKey, nonce: u64) -> u64 {
    let path = format!(
        "/v1/accounts/{}",
        hex::encode(key.verifying_key().to_bytes())
    );
    let mut seen = 0;
    for _ in 0..300 {
        let account: verity_host::api::AccountState = client.get(&path).expect("an account");
        seen = account.nonce;
        if seen >= nonce {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

#[test]
fn a_replica_takes_transactions_off_an_interface_with_capture_in_its_configuration() {
    if !may_capture() {
        return;
    }
    let dir = scratch("pcap-capture-ingress");
    init(&dir, 20);
    let sink = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let port = sink.local_addr().expect("an address").port();
    let config = std::fs::read_to_string(dir.join("verity.toml")).expect("config");
    let config = config
        .replacen("iface = \"\"", "iface = \"lo\"", 1)
        .replacen(
            "filter = \"\"",
            &format!("filter = \"udp dst port {port}\""),
            1,
        );
    std::fs::write(dir.join("verity.toml"), config).expect("written");
    let replica = start(&dir);
    let keys = read_accounts(&dir).expect("keys");
    send_paced(&transfers(&keys, 5, 8), port);
    let api = Client::new(replica.ready.http);
    assert_eq!(nonce_reaches(&api, &keys[5], 8), 8);
    let metrics =
        String::from_utf8(api.bytes("/metrics", 1 << 20).expect("metrics")).expect("UTF-8");
    assert!(
        metrics.contains("verity_capture_outcomes_total{outcome=\"committed\"} 8"),
        "{metrics}"
    );
    replica.stop().expect("stops");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `verity capture` on lo for UDP to `port`, forwarding to `target` and stopping as `stop`
/// says, once it has begun to capture (its first line on stderr). Keep the stderr returned
/// until it has ended: with the pipe closed, its next line on stderr would fail.
fn capture_on_loopback(
    port: u16,
    target: SocketAddr,
    stop: &[&str],
) -> (Child, BufReader<ChildStderr>) {
    let mut capture = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(["capture", "--iface", "lo", "--filter"])
        .arg(format!("udp dst port {port}"))
        .args(["--target", &target.to_string(), "--drain", "20"])
        .args(stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("verity capture starts");
    let mut stderr = BufReader::new(capture.stderr.take().expect("piped"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a line");
    assert!(line.starts_with("capturing on lo"), "{line}");
    (capture, stderr)
}

/// Sends `transactions` as datagrams to `port` on loopback, 20 ms apart, so that each is
/// forwarded before the next nonce arrives.
fn send_paced(transactions: &[Vec<u8>], port: u16) {
    let client = UdpSocket::bind("127.0.0.1:0").expect("binds");
    for tx in transactions {
        client.send_to(tx, ("127.0.0.1", port)).expect("sent");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn live_capture_on_loopback_forwards_to_a_replica() {
    if !may_capture() {
        return;
    }
    let dir = scratch("pcap-live");
    init(&dir, 20);
    let replica = start(&dir);
    // Clients send to a port nobody serves but a sink; capture forwards to the replica.
    let sink = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let port = sink.local_addr().expect("an address").port();
    let (capture, _stderr) = capture_on_loopback(
        port,
        replica.ready.udp,
        &["--count", "10", "--duration", "60"],
    );
    let keys = read_accounts(&dir).expect("keys");
    send_paced(&transfers(&keys, 3, 10), port);
    let output = capture.wait_with_output().expect("verity capture ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(field(&stdout, "sent"), 10, "{stdout}");
    assert!(stdout.contains("over udp"), "{stdout}");
    assert!(stdout.contains("committed 10 (applied 10)"), "{stdout}");
    assert_eq!(
        nonce_reaches(&Client::new(replica.ready.http), &keys[3], 10),
        10
    );
    replica.stop().expect("stops");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_a_live_capture_with_its_table() {
    if !may_capture() {
        return;
    }
    let dir = scratch("pcap-live-sigterm");
    init(&dir, 20);
    let replica = start(&dir);
    let sink = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let port = sink.local_addr().expect("an address").port();
    // Only a signal ends it within the minute the wait below allows; the duration is a cap
    // so that a test failing before the signal leaves no capture running.
    let (mut capture, _stderr) =
        capture_on_loopback(port, replica.ready.udp, &["--duration", "300"]);
    let keys = read_accounts(&dir).expect("keys");
    send_paced(&transfers(&keys, 4, 5), port);
    let api = Client::new(replica.ready.http);
    assert_eq!(nonce_reaches(&api, &keys[4], 5), 5);
    let pid = rustix::process::Pid::from_raw(capture.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    // A capture that ignored the signal would run for ever: give it a minute, then fail.
    let mut waited = 0;
    while capture.try_wait().expect("waits").is_none() {
        if waited == 600 {
            let _ = capture.kill();
            panic!("verity capture still ran a minute after SIGTERM");
        }
        waited += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = capture.wait_with_output().expect("verity capture ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{:?}: {stdout}", output.status);
    assert_eq!(field(&stdout, "sent"), 5, "{stdout}");
    assert!(stdout.contains("committed 5 (applied 5)"), "{stdout}");
    replica.stop().expect("stops");
    let _ = std::fs::remove_dir_all(&dir);
}
