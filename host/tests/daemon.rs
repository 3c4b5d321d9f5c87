//! `verityd` as an operator runs it: `verity init`, start, load, `kill -9`, restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use verity_host::api::{AccountState, Block, Status, TxReceipt};
use verity_host::block::root_carried;
use verity_host::block_log::BlockLog;
use verity_host::chain::{Chain, LOG_FILE, STATE_FILE};
use verity_host::cli::init::{read_accounts, read_oracles};
use verity_host::daemon::{Ready, Stopped};
use verity_host::genesis::Genesis;
use verity_host::ingress::parse_reply;
use verity_host::pipeline::Outcome;
use verity_host::store::Store;
use verity_host::transaction::{Body, Payload, Unsigned, TX_LEN};

/// A scratch directory of this test's own, removed first so that reruns start clean.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn init(dir: &Path, accounts: u32) {
    let status = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args([
            "init",
            "--http-port",
            "0",
            "--tcp-port",
            "0",
            "--udp-port",
            "0",
        ])
        .args(["--accounts", &accounts.to_string(), "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("verity init runs");
    assert!(status.success());
}

/// A running `verityd` and the addresses it printed.
struct Replica {
    child: Child,
    stdout: BufReader<ChildStdout>,
    http: SocketAddr,
    tcp: SocketAddr,
}

impl Replica {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_verityd"))
            .arg("--config")
            .arg(dir.join("verity.toml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("verityd starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut ready = String::new();
        stdout.read_line(&mut ready).expect("the ready line");
        let ready = Ready::parse(ready.trim_end()).expect("verityd's ready line");
        Self {
            http: ready.http,
            tcp: ready.tcp,
            stdout,
            child,
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> (u16, Option<T>) {
        let mut response = ureq::get(format!("http://{}{path}", self.http))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .expect("the API answers");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("a body");
        (status, serde_json::from_str(&body).ok())
    }

    /// The Prometheus text of `/metrics`.
    fn metrics(&self) -> String {
        ureq::get(format!("http://{}/metrics", self.http))
            .call()
            .expect("metrics")
            .body_mut()
            .read_to_string()
            .expect("text")
    }

    fn status(&self) -> Status {
        self.get("/status").1.expect("a status")
    }

    /// SIGTERM, and the `stopped` line's height.
    fn stop(mut self) -> u64 {
        // Sent by the system call, not a `kill` process: the prompt-stop test below relies
        // on the signal following the ready line at once.
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).expect("stdout");
        assert!(self.child.wait().expect("exits").success(), "{rest}");
        Stopped::parse(rest.trim_end())
            .expect("verityd's stopped line")
            .height
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_reply(stream: &mut TcpStream) -> Option<Outcome> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut reply).ok()?;
    Some(parse_reply(&reply).expect("a well-formed reply"))
}

#[test]
fn acknowledged_transactions_survive_kill_9_and_the_state_root_replays() {
    let dir = scratch("kill9");
    init(&dir, 16);
    let keys = read_accounts(&dir).expect("the funded keys");
    let genesis = Genesis::read(&dir.join("genesis.toml")).expect("genesis");
    let replica = Replica::start(&dir);
    let chain_id = replica.status().chain_id;

    // Sixteen senders, each on its own connection, 400 transfers each, pipelined; the
    // daemon is killed once a quarter of them are acknowledged.
    let per_sender = 400u64;
    let acknowledged: Vec<(usize, u64, Outcome)> = std::thread::scope(|scope| {
        let (acks, acked) = crossbeam_channel::unbounded::<(usize, u64, Outcome)>();
        for (n, key) in keys.iter().enumerate() {
            let acks = acks.clone();
            let tcp = replica.tcp;
            let to = keys[(n + 1) % keys.len()].verifying_key().to_bytes();
            scope.spawn(move || {
                let mut stream = TcpStream::connect(tcp).expect("connects");
                let frame = |nonce: u64| {
                    let tx = Unsigned {
                        chain_id,
                        sender: key.verifying_key().to_bytes(),
                        nonce,
                        payload: Payload::Transfer(Body {
                            asset: 1,
                            to,
                            amount: nonce + 1,
                        }),
                    }
                    .sign(key);
                    [&(TX_LEN as u32).to_le_bytes()[..], &tx[..]].concat()
                };
                // Bursts of 16 pipelined frames (within the mempool's nonce window), each
                // burst's replies read before the next.
                for burst in (0..per_sender).collect::<Vec<_>>().chunks(16) {
                    let frames: Vec<u8> = burst.iter().flat_map(|&n| frame(n)).collect();
                    if stream.write_all(&frames).is_err() {
                        return;
                    }
                    for &nonce in burst {
                        match read_reply(&mut stream) {
                            Some(outcome) => {
                                let _ = acks.send((n, nonce, outcome));
                            }
                            None => return,
                        }
                    }
                }
            });
        }
        drop(acks);
        let mut replica = replica;
        let mut got = Vec::new();
        while let Ok(ack) = acked.recv() {
            got.push(ack);
            if got.len() == (per_sender as usize * keys.len()) / 4 {
                replica.child.kill().expect("SIGKILL");
                replica.child.wait().expect("reaped");
            }
        }
        got
    });
    let sent = per_sender as usize * keys.len();
    assert!(
        acknowledged.len() >= sent / 4 && acknowledged.len() < sent,
        "{} of {sent} acknowledged: the kill came under load",
        acknowledged.len()
    );
    println!(
        "{} of {sent} acknowledged before the kill",
        acknowledged.len()
    );

    // Restarted: every acknowledged transaction is there, in the block it was promised.
    let replica = Replica::start(&dir);
    let head = replica.status();
    let mut acked_nonces = vec![0u64; keys.len()];
    for (n, nonce, outcome) in &acknowledged {
        acked_nonces[*n] = acked_nonces[*n].max(nonce + 1);
        let Outcome::Committed {
            id,
            height,
            failure,
        } = outcome
        else {
            panic!("nonce {nonce}: {outcome:?}");
        };
        assert_eq!(*failure, None, "nonce {nonce}");
        let (code, receipt) =
            replica.get::<TxReceipt>(&format!("/v1/transactions/{}", hex::encode(id.0)));
        assert_eq!(code, 200, "nonce {nonce}: acknowledged and lost");
        let receipt = receipt.expect("a receipt");
        assert_eq!(receipt.height, *height);
        assert!(receipt.height <= head.height);
    }
    // Each sender's account covers what it was told, and its proof holds against the root.
    let (_, last_block) = replica.get::<Block>(&format!("/v1/blocks/{}", head.height));
    assert_eq!(
        last_block.expect("the head block").state_root,
        Some(head.state_root.clone())
    );
    for (key, acked) in keys.iter().zip(&acked_nonces) {
        let hex_key = hex::encode(key.verifying_key().to_bytes());
        let (_, account) = replica.get::<AccountState>(&format!("/v1/accounts/{hex_key}"));
        let account = account.expect("an account");
        account.verify().expect("its proof holds");
        assert_eq!(account.state_root, head.state_root);
        assert!(
            account.nonce >= *acked,
            "{hex_key}: {} < {acked}",
            account.nonce
        );
    }

    // The state root is what replaying the stored blocks from genesis gives.
    let stopped = replica.stop();
    assert_eq!(stopped, head.height);
    let data = dir.join("data");
    let log = BlockLog::open(&data.join(LOG_FILE)).expect("the log opens");
    let store = Store::open(&data.join(STATE_FILE)).expect("the store opens");
    let replay_dir = dir.join("replay");
    let mut replay = Chain::open(&replay_dir, &genesis).expect("opens");
    for height in 1..=head.height {
        let block = log.block(height).expect("reads").expect("logged");
        replay.execute(&block).expect("replays");
    }
    let replayed = replay.close().expect("closes");
    assert_eq!(hex::encode(replayed.1), head.state_root);
    // Where both keep a root — each at every height whose root headers carry — they agree.
    let reopened = Store::open(&replay_dir.join(STATE_FILE)).expect("opens");
    for height in 1..=head.height {
        let (replayed, live) = (
            reopened.root(height).expect("reads"),
            store.root(height).expect("reads"),
        );
        if root_carried(height) {
            assert!(replayed.is_some() && live.is_some(), "block {height}");
        }
        if let (Some(replayed), Some(live)) = (replayed, live) {
            assert_eq!(replayed, live, "block {height}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_http_api_refuses_bad_requests_with_reasons_and_counts_them() {
    let dir = scratch("http-bad");
    init(&dir, 2);
    let replica = Replica::start(&dir);
    let url = |path: &str| format!("http://{}{path}", replica.http);
    let post = |body: &[u8]| -> (u16, String) {
        let mut response = ureq::post(url("/v1/transactions"))
            .config()
            .http_status_as_error(false)
            .build()
            .content_type("application/json")
            .send(body)
            .expect("answers");
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    let cases: [(&[u8], u16, &str); 5] = [
        (b"{not json", 400, "expected {\\\"transaction\\\": HEX}"),
        (br#"{"transaction": "zz"}"#, 400, "hex"),
        (
            br#"{"transaction": "00"}"#,
            422,
            "malformed: transaction of 1 bytes",
        ),
        (br#"{"tx": "00"}"#, 422, "missing field `transaction`"),
        (&[b'7'; 20_000], 413, ""),
    ];
    for (body, status, reason) in cases {
        let (got, text) = post(body);
        assert_eq!(got, status, "{text}");
        assert!(text.contains(reason), "{reason}: {text}");
    }
    assert_eq!(replica.get::<serde_json::Value>("/v1/accounts/zz").0, 400);
    assert_eq!(replica.get::<serde_json::Value>("/v1/blocks/x").0, 400);
    assert_eq!(replica.get::<serde_json::Value>("/v1/blocks/99").0, 404);
    let zeros = "0".repeat(64);
    assert_eq!(
        replica
            .get::<serde_json::Value>(&format!("/v1/transactions/{zeros}"))
            .0,
        404
    );
    let metrics = replica.metrics();
    for line in [
        "verity_http_rejected_total{reason=\"body\"} 3",
        "verity_http_rejected_total{reason=\"hex\"} 1",
        "verity_http_rejected_total{reason=\"key\"} 1",
        "verity_http_rejected_total{reason=\"unknown\"} 2",
        "verity_malformed_total 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    replica.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

fn verity(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(args)
        .output()
        .expect("verity runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn one_off_commands_submit_read_accounts_with_proofs_and_show_blocks() {
    let dir = scratch("one-off");
    init(&dir, 2);
    let (again, _, error) = verity(&["init", "--dir", dir.to_str().expect("utf-8")]);
    assert!(
        !again && error.contains("nothing is overwritten"),
        "{error}"
    );
    let replica = Replica::start(&dir);
    let http = replica.http.to_string();
    let keys = read_accounts(&dir).expect("keys");
    let alice = hex::encode(keys[0].verifying_key().to_bytes());
    let issuer = dir.join("keys/issuer.json");
    let issuer = issuer.to_str().expect("utf-8");

    // The issuer mints 5 to alice; alice cannot mint.
    let (ok, out, error) = verity(&[
        "submit", "--http", &http, "--key", issuer, "--to", &alice, "--amount", "5", "--mint",
    ]);
    assert!(ok, "{error}");
    let minted: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(minted["status"], "committed");
    assert_eq!(minted["failure"], serde_json::Value::Null);
    let alice_key = dir.join("alice.json");
    std::fs::write(
        &alice_key,
        std::fs::read_to_string(dir.join("keys/accounts.jsonl"))
            .expect("keys")
            .lines()
            .next()
            .expect("a key"),
    )
    .expect("writes");
    let (ok, out, _) = verity(&[
        "submit",
        "--http",
        &http,
        "--key",
        alice_key.to_str().expect("utf-8"),
        "--to",
        &alice,
        "--amount",
        "5",
        "--mint",
    ]);
    assert!(ok);
    let refused: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(refused["failure"]["name"], "not_issuer", "{out}");

    // Alice's account: the mint, and her nonce used up by the failed mint; its proof holds.
    let (ok, out, error) = verity(&["account", "--http", &http, &alice]);
    assert!(ok, "{error}");
    let account: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(account["balances"]["1"], 1_000_000_005u64);
    assert_eq!(account["nonce"], 1);
    assert!(account["proof"]
        .as_str()
        .is_some_and(|p| p.ends_with("verified against state_root")));

    // The head block holds the failed mint, with its receipt.
    let (ok, out, _) = verity(&["block", "--http", &http]);
    assert!(ok);
    let block: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(block["height"], 2);
    assert_eq!(block["transactions"][0]["kind"], "mint");
    assert_eq!(block["transactions"][0]["failure"]["name"], "not_issuer");
    let (ok, _, error) = verity(&["block", "--http", &http, "99"]);
    assert!(
        !ok && error.contains("HTTP 404: no block at height 99"),
        "{error}"
    );
    let (ok, _, error) = verity(&["account", "--http", &http, "xyz"]);
    assert!(!ok && error.contains("64 hex digits"), "{error}");

    // Both transactions' latency, stage by stage: to their verdicts, to their block, to its
    // commit.
    let metrics = replica.metrics();
    for stage in ["verify_wait", "submit_to_block", "submit_to_commit"] {
        let line = format!("verity_{stage}_seconds_count 2");
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    replica.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn oracle_prices_make_the_mark_and_other_keys_prices_are_not_taken() {
    let dir = scratch("oracles");
    init(&dir, 4);
    // `verity init` named three oracles (keys/oracles.jsonl); prices count for 50 blocks.
    let oracles = read_oracles(&dir).expect("oracle keys");
    assert_eq!(oracles.len(), 3);
    let hex_of = |i: usize| hex::encode(oracles[i].verifying_key().to_bytes());
    let genesis = dir.join("genesis.toml");
    let text = std::fs::read_to_string(&genesis).expect("genesis");
    assert!(text.contains("max_price_age = 100"), "{text}");
    std::fs::write(
        &genesis,
        text.replace("max_price_age = 100", "max_price_age = 50"),
    )
    .expect("written");
    // Oracles 0 to 2, then account 0, which is not one.
    let lines: Vec<String> = std::fs::read_to_string(dir.join("keys/oracles.jsonl"))
        .expect("keys")
        .lines()
        .chain(
            std::fs::read_to_string(dir.join("keys/accounts.jsonl"))
                .expect("keys")
                .lines()
                .take(1),
        )
        .map(str::to_owned)
        .collect();
    let replica = Replica::start(&dir);
    let http = replica.http.to_string();
    let price = |i: usize, price: u64| {
        let key = dir.join(format!("key-{i}.json"));
        std::fs::write(&key, &lines[i]).expect("written");
        let (ok, out, error) = verity(&[
            "submit",
            "--http",
            &http,
            "--key",
            key.to_str().expect("utf-8"),
            "--price",
            "--asset",
            "1",
            "--amount",
            &price.to_string(),
        ]);
        assert!(ok, "{error}");
        serde_json::from_str::<serde_json::Value>(&out).expect("json")
    };
    for (i, p) in [(0, 100), (1, 110), (2, 1_000)] {
        let outcome = price(i, p);
        assert_eq!(outcome["failure"], serde_json::Value::Null, "{outcome}");
    }
    let outcome = price(3, 105);
    assert_eq!(outcome["failure"]["name"], "not_oracle", "{outcome}");

    let (status, mark) = replica.get::<verity_host::api::MarkView>("/v1/marks/1");
    assert_eq!(status, 200);
    let mark = mark.expect("a mark");
    assert_eq!(mark.mark, Some(110), "the median of 100, 110 and 1,000");
    assert_eq!(mark.max_age, 50);
    assert_eq!(mark.quotes.len(), 3, "account 3's price was not taken");
    assert_eq!(mark.quotes[&hex_of(2)].price, 1_000);
    let (status, none) = replica.get::<verity_host::api::MarkView>("/v1/marks/2");
    assert_eq!((status, none.and_then(|m| m.mark)), (200, None));
    assert_eq!(replica.get::<serde_json::Value>("/v1/marks/x").0, 400);

    // An oracle's account shows its price, and its proof (prices included) holds.
    let (ok, out, error) = verity(&["account", "--http", &http, &hex_of(0)]);
    assert!(ok, "{error}");
    let account: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(account["prices"]["1"]["price"], 100, "{out}");
    assert!(account["proof"]
        .as_str()
        .is_some_and(|p| p.ends_with("verified against state_root")));
    replica.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn status_reports_the_verifier_a_missing_card_left_degraded() {
    let dir = scratch("status-failover");
    init(&dir, 2);
    let config = dir.join("verity.toml");
    let text = std::fs::read_to_string(&config).expect("reads");
    let text = text
        .replace("backend = \"cpu\"", "backend = \"xdma\"")
        .replace(
            "\"/dev/xdma0_\"",
            &format!("\"{}/no-card/xdma0_\"", dir.display()),
        );
    std::fs::write(&config, text).expect("writes");
    let replica = Replica::start(&dir);
    let status = replica.status();
    assert_eq!(status.verifier.backend, "cpu", "{status:?}");
    assert_eq!(status.verifier.state, "degraded", "{status:?}");
    let reason = status.verifier.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("0 of 1 cards serving") && reason.contains("no such device file"),
        "{reason}"
    );
    // Transactions still commit: the CPU is behind the missing card.
    let (ok, _, error) = verity(&[
        "submit",
        "--http",
        &replica.http.to_string(),
        "--key",
        dir.join("keys/issuer.json").to_str().expect("utf-8"),
        "--to",
        &"00".repeat(32),
        "--amount",
        "1",
        "--mint",
    ]);
    assert!(ok, "{error}");
    let metrics = replica.metrics();
    assert!(metrics.contains("verity_verifier_ready 0"), "{metrics}");
    replica.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logs_can_be_one_json_object_a_line() {
    let dir = scratch("json-logs");
    init(&dir, 2);
    let config = dir.join("verity.toml");
    let text = std::fs::read_to_string(&config).expect("reads");
    std::fs::write(
        &config,
        text.replace("format = \"text\"", "format = \"json\""),
    )
    .expect("writes");
    let mut child = Command::new(env!("CARGO_BIN_EXE_verityd"))
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("verityd starts");
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    let started = stderr
        .lines()
        .map(|line| line.expect("a log line"))
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(&line)
                .unwrap_or_else(|e| panic!("{line}: {e}"))
        })
        .find(|log| log["fields"]["message"] == "verityd started")
        .expect("the start is logged");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["height"], 0);
    assert!(started["fields"]["http"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SIGTERM sent the moment the ready line is read stops the daemon cleanly, with its
/// `stopped` line: the signals are caught before the line is printed (they were caught after
/// it, and a supervisor quick enough killed the daemon by the signal's default action).
#[test]
fn a_sigterm_sent_as_soon_as_the_ready_line_is_read_stops_it_cleanly() {
    let dir = scratch("prompt-stop");
    init(&dir, 2);
    for _ in 0..5 {
        Replica::start(&dir).stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The daemon runs with transparent huge pages off (`memory::small_pages`): the kernel says
/// so in the process's status, where a stage's stall on a zeroed 2 MiB page would begin.
#[test]
fn verityd_runs_on_small_pages() {
    let dir = scratch("small-pages");
    init(&dir, 2);
    let replica = Replica::start(&dir);
    let status = std::fs::read_to_string(format!("/proc/{}/status", replica.child.id()))
        .expect("the daemon's status");
    let thp = status.lines().find(|line| line.starts_with("THP_enabled:"));
    assert_eq!(
        thp.map(str::split_whitespace).and_then(|mut f| f.nth(1)),
        Some("0"),
        "{status}"
    );
    replica.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `verity submit --trade` signs with both keys; the trade opens a long and a short that
/// `verity account` shows with their margin, under a proof that covers the positions.
#[test]
fn a_trade_signed_by_both_opens_positions_shown_with_their_margin() {
    let dir = scratch("trade");
    init(&dir, 4);
    let replica = Replica::start(&dir);
    let http = replica.http.to_string();
    let key_file = |name: &str, line: &str| {
        let path = dir.join(name);
        std::fs::write(&path, line).expect("written");
        path.to_str().expect("utf-8").to_owned()
    };
    let oracles = std::fs::read_to_string(dir.join("keys/oracles.jsonl")).expect("keys");
    let accounts = std::fs::read_to_string(dir.join("keys/accounts.jsonl")).expect("keys");
    let accounts: Vec<&str> = accounts.lines().collect();
    let (seller, buyer) = (
        key_file("seller.json", accounts[0]),
        key_file("buyer.json", accounts[1]),
    );
    let submit = |args: &[&str]| {
        let (ok, out, error) = verity(&[&["submit", "--http", &http][..], args].concat());
        assert!(ok, "{error}");
        serde_json::from_str::<serde_json::Value>(&out).expect("json")
    };
    // Without a mark the book cannot margin the seller: the trade fails, committed.
    let trade = |instrument: &str| {
        submit(&[
            "--trade",
            "--key",
            &buyer,
            "--counterparty-key",
            &seller,
            "--asset",
            instrument,
            "--contracts",
            "2",
            "--amount",
            "1000",
        ])
    };
    assert_eq!(trade("100")["failure"]["name"], "no_mark");
    for (i, line) in oracles.lines().enumerate() {
        let oracle = key_file(&format!("oracle-{i}.json"), line);
        let outcome = submit(&[
            "--price", "--key", &oracle, "--asset", "2", "--amount", "50000",
        ]);
        assert_eq!(outcome["failure"], serde_json::Value::Null, "{outcome}");
    }
    let outcome = trade("100");
    assert_eq!(outcome["failure"], serde_json::Value::Null, "{outcome}");
    assert_eq!(trade("999")["failure"]["name"], "unknown_instrument");

    let account = |line: &str| {
        let public: serde_json::Value = serde_json::from_str(line).expect("a key file");
        let (ok, out, error) = verity(&[
            "account",
            "--http",
            &http,
            public["pubkey"].as_str().expect("a key"),
        ]);
        assert!(ok, "{error}");
        serde_json::from_str::<serde_json::Value>(&out).expect("json")
    };
    let short = account(accounts[0]);
    assert_eq!(short["positions"]["100"], -2, "{short}");
    assert_eq!(short["balances"]["1"], 1_000_000_000u64 + 2_000, "{short}");
    assert!(
        short["margin"]["maintenance"]
            .as_i64()
            .is_some_and(|m| m > 0),
        "{short}"
    );
    assert!(short["proof"]
        .as_str()
        .is_some_and(|p| p.ends_with("verified against state_root")));
    let long = account(accounts[1]);
    assert_eq!(long["positions"]["100"], 2, "{long}");
    // A long can lose at most what it is worth.
    let (value, maintenance) = (&long["margin"]["value"], &long["margin"]["maintenance"]);
    assert!(value.as_i64() >= maintenance.as_i64(), "{long}");
    assert_eq!(long["nonce"], 3, "the buyer signed three trades");

    // The block shows the trade's terms.
    let height = outcome["height"].as_u64().expect("a height");
    let (status, block) = replica.get::<verity_host::api::Block>(&format!("/v1/blocks/{height}"));
    assert_eq!(status, 200);
    let block = block.expect("a block");
    let traded = block
        .transactions
        .iter()
        .find(|t| t.kind == "trade")
        .expect("the trade");
    assert_eq!(
        (traded.asset, traded.contracts, traded.amount),
        (100, Some(2), 1000)
    );
    replica.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
