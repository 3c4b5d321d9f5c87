//! The `verity` binary, run as a user runs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn verity() -> Command {
    Command::new(env!("CARGO_BIN_EXE_verity"))
}

fn run(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("verity starts");
    // A command that does not read its input closes the pipe early; that is not a failure.
    let _ = child.stdin.take().expect("stdin is piped").write_all(stdin);
    child.wait_with_output().expect("verity finishes")
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

fn speccheck() -> PathBuf {
    let dir = std::env::var_os("VERITY_SHARED_VECTORS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        PathBuf::from,
    );
    dir.join("ed25519-speccheck.jsonl")
}

/// A scratch directory of this test's own, removed first so that reruns start clean.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn verify_gives_the_zip215_verdict_for_all_12_speccheck_cases() {
    let path = speccheck();
    let output = run(
        verity().args(["verify", "--backend", "cpu"]).arg(&path),
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let expected: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .expect("speccheck vectors")
        .lines()
        .map(|l| serde_json::from_str(l).expect("vector line"))
        .collect();
    let got = lines(&output);
    assert_eq!(got.len(), 12);
    for (n, (got, want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got["line"], n + 1);
        assert_eq!(got["id"], want["id"]);
        let valid = want["zip215"].as_bool().expect("zip215 is a bool");
        assert_eq!(got["verdict"] == "valid", valid, "{got}");
        assert!(
            got["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{got}"
        );
    }
    // The rejected ones, by kind: 6 and 7 have S >= L, 8 fails the equation.
    assert_eq!(got[6]["verdict"], "malformed");
    assert_eq!(got[7]["verdict"], "malformed");
    assert_eq!(got[8]["verdict"], "invalid");
    let summary = stderr(&output);
    assert!(
        summary.contains("12 lines, 9 valid, 1 invalid, 2 malformed"),
        "{summary}"
    );
}

#[test]
fn bad_lines_get_malformed_verdicts_and_the_run_goes_on() {
    let vectors = std::fs::read_to_string(speccheck()).expect("vectors");
    let good = vectors.lines().next().expect("a vector");
    let input = format!(
        "{good}\nnot json\n{{\"id\":9,\"msg\":\"zz\",\"pubkey\":\"{key}\",\"sig\":\"{sig}\"}}\n{long}\n{good}\n",
        key = "00".repeat(32),
        sig = "00".repeat(64),
        long = "x".repeat(1000),
    );
    let output = run(
        verity().args(["verify", "--max-line-bytes", "600", "-"]),
        input.as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let got = lines(&output);
    let verdicts: Vec<&str> = got
        .iter()
        .map(|l| l["verdict"].as_str().expect("verdict"))
        .collect();
    assert_eq!(
        verdicts,
        ["valid", "malformed", "malformed", "malformed", "valid"]
    );
    let reason = |i: usize| got[i]["reason"].as_str().expect("reason").to_owned();
    assert!(reason(1).contains("not a JSON object"));
    assert_eq!(got[2]["id"], 9);
    assert!(reason(2).contains("`msg` is not hex"));
    assert!(reason(3).contains("1000 bytes"));
    assert_eq!(got[4]["line"], 5);
}

#[test]
fn keygen_sign_verify_round_trip_and_a_tampered_line_is_invalid() {
    let dir = scratch("round_trip");
    let key = dir.join("key.json");
    let output = run(verity().args(["keygen", "--out"]).arg(&key), b"");
    assert!(output.status.success(), "{}", stderr(&output));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the key file is readable by its owner only"
        );
    }
    let again = run(verity().args(["keygen", "--out"]).arg(&key), b"");
    assert!(!again.status.success(), "keygen never overwrites a key");

    let messages: String = (0u32..50)
        .map(|i| format!("{{\"id\":{i},\"msg\":\"{}\"}}\n", hex_of(i)))
        .collect();
    let signed = run(
        verity().args(["sign", "--key"]).arg(&key),
        messages.as_bytes(),
    );
    assert!(signed.status.success(), "{}", stderr(&signed));
    let mut signed_lines = lines(&signed);
    assert_eq!(signed_lines.len(), 50);
    signed_lines[17]["msg"] = serde_json::Value::from("ff");
    let input: String = signed_lines.iter().map(|l| format!("{l}\n")).collect();

    let verified = lines(&run(
        verity().args(["verify", "--batch", "8", "-"]),
        input.as_bytes(),
    ));
    assert_eq!(verified.len(), 50);
    for (i, line) in verified.iter().enumerate() {
        assert_eq!(line["id"], i);
        let want = if i == 17 { "invalid" } else { "valid" };
        assert_eq!(line["verdict"], want, "{line}");
    }
}

#[test]
fn sign_reports_unreadable_lines_and_fails() {
    let dir = scratch("sign_bad");
    let key = dir.join("key.json");
    assert!(run(verity().args(["keygen", "--out"]).arg(&key), b"")
        .status
        .success());
    let output = run(
        verity().args(["sign", "--key"]).arg(&key),
        b"{\"msg\":\"00\"}\n{\"msg\":\"0g\"}\n",
    );
    assert!(!output.status.success());
    assert_eq!(lines(&output).len(), 1, "the good line is still signed");
    assert!(stderr(&output).contains("line 2 skipped"));
}

#[test]
fn a_missing_input_file_is_a_clear_error() {
    let output = run(verity().args(["verify", "/nonexistent/input.jsonl"]), b"");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("cannot open /nonexistent/input.jsonl"),
        "{message}"
    );
}

#[test]
fn every_command_explains_itself() {
    for command in [
        &[][..],
        &["verify"],
        &["keygen"],
        &["sign"],
        &["throughput"],
        &["demo"],
        &["init"],
        &["load"],
        &["submit"],
        &["account"],
        &["block"],
        &["verify-block"],
        &["cluster"],
        &["hdl", "export"],
        &["sim", "serve"],
        &["replay"],
        &["capture"],
        &["pcap", "gen"],
        &["pcap", "record"],
    ] {
        let output = run(verity().args(command).arg("--help"), b"");
        assert!(output.status.success(), "{command:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            help.len() > 200 && help.contains("Usage"),
            "{command:?}: {help}"
        );
    }
}

#[test]
fn throughput_verifies_a_small_workload_with_every_verdict_as_expected() {
    let output = run(
        verity().args([
            "throughput",
            "--count",
            "3000",
            "--spoil-every",
            "10",
            "--batch",
            "256",
        ]),
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("every verdict is the expected one"),
        "{report}"
    );
    assert!(report.contains("2700 valid"), "{report}");
}

/// Runs `verity demo` for 2 s from 20 accounts with `args`, and checks its report holds
/// every line of `expected`.
fn demo(args: &[&str], expected: &[&str]) {
    let output = run(
        verity()
            .arg("demo")
            .args(args)
            .args(["--duration", "2", "--accounts", "20"]),
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    for line in expected {
        assert!(report.contains(line), "{line}: {report}");
    }
}

#[test]
fn demo_starts_a_cluster_loads_it_and_stops_it_cleanly() {
    demo(
        &["--rate", "200"],
        &[
            "4 replicas ordering by consensus",
            "replica 3: http",
            "card: sim (ready)",
            "committed                400   (accepted: a reply comes once the block is on disk; applied 400)",
            "unanswered                 0",
            "every replica holds state root",
            "replica 3 stopped cleanly at height",
        ],
    );
}

#[test]
fn demo_starts_one_replica_loads_it_and_stops_it_cleanly() {
    demo(
        &["--replicas", "1", "--rate", "300"],
        &[
            "card: sim (ready)",
            "committed                600   (accepted: a reply comes once the block is on disk; applied 600)",
            "unanswered                 0",
            "verityd stopped cleanly at height",
        ],
    );
}

#[test]
fn demo_trades_options_and_the_shock_liquidates_the_writers() {
    demo(
        &["--replicas", "1", "--rate", "300", "--mix", "trading"],
        &[
            "300 trades and prices/s",
            "committed                600",
            "unanswered                 0",
            "trading           570 trades, 30 prices",
            "liquidations              10",
            "verityd stopped cleanly at height",
        ],
    );
}

fn hex_of(i: u32) -> String {
    i.to_be_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_model_backend_gives_the_same_verdicts_as_the_cpu() {
    let path = speccheck();
    let cpu = run(
        verity().args(["verify", "--backend", "cpu"]).arg(&path),
        b"",
    );
    let model = run(
        verity().args(["verify", "--backend", "model"]).arg(&path),
        b"",
    );
    assert!(model.status.success(), "{}", stderr(&model));
    assert_eq!(lines(&model), lines(&cpu));
    assert!(stderr(&model).contains("backend model"));
}

#[test]
fn the_cycle_model_backend_gives_the_same_verdicts_as_the_cpu() {
    let path = speccheck();
    let cpu = run(
        verity().args(["verify", "--backend", "cpu"]).arg(&path),
        b"",
    );
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cycle-card");
    let cycle = run(
        verity()
            .args(["verify", "--backend", "sim-cycle", "--cycle-dir"])
            .arg(&dir)
            .arg(&path),
        b"",
    );
    assert!(cycle.status.success(), "{}", stderr(&cycle));
    assert_eq!(lines(&cycle), lines(&cpu));
    assert!(
        stderr(&cycle).contains("backend sim-cycle"),
        "{}",
        stderr(&cycle)
    );
    // The same model behind the virtual XDMA endpoint, reached by the XDMA backend.
    let devices = scratch("cli-xdma-cycle");
    let endpoint = Served::start(
        verity()
            .args(["sim", "serve", "--cycle", "--cycle-dir"])
            .arg(&dir)
            .arg("--dir")
            .arg(&devices),
    );
    let xdma = run(
        verity()
            .args([
                "verify",
                "--backend",
                "xdma",
                "--response-timeout-ms",
                "30000",
            ])
            .arg("--xdma-prefix")
            .arg(devices.join("xdma0_"))
            .arg(&path),
        b"",
    );
    drop(endpoint);
    assert!(xdma.status.success(), "{}", stderr(&xdma));
    assert_eq!(lines(&xdma), lines(&cpu));
}

/// `verity sim serve` running in the background until dropped.
struct Served(std::process::Child);

impl Served {
    /// Starts it and waits until it says how to use it: its device files are there.
    fn start(command: &mut Command) -> Self {
        use std::io::BufRead;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("verity sim serve starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let ready = lines.any(|line| line.is_ok_and(|l| l.starts_with("use: verity verify")));
        assert!(ready, "verity sim serve ended before serving");
        Self(child)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_xdma_backend_through_sim_serve_gives_the_same_verdicts_as_the_cpu() {
    let path = speccheck();
    let cpu = run(
        verity().args(["verify", "--backend", "cpu"]).arg(&path),
        b"",
    );
    let devices = scratch("cli-xdma");
    let _endpoint = Served::start(verity().args(["sim", "serve", "--dir"]).arg(&devices));
    let prefix = devices.join("xdma0_");
    for _ in 0..2 {
        let xdma = run(
            verity()
                .args(["verify", "--backend", "xdma", "--xdma-prefix"])
                .arg(&prefix)
                .arg(&path),
            b"",
        );
        assert!(xdma.status.success(), "{}", stderr(&xdma));
        assert_eq!(lines(&xdma), lines(&cpu));
        assert!(stderr(&xdma).contains("backend xdma"), "{}", stderr(&xdma));
    }
    let missing = run(
        verity()
            .args(["verify", "--backend", "xdma", "--xdma-prefix"])
            .arg(devices.join("xdma1_"))
            .arg(&path),
        b"",
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no such device file"),
        "{}",
        stderr(&missing)
    );
    // With the CPU behind the card, a missing card is a warning and the run completes.
    let covered = run(
        verity()
            .args(["verify", "--backend", "xdma", "--failover", "--xdma-prefix"])
            .arg(devices.join("xdma1_"))
            .arg(&path),
        b"",
    );
    assert!(covered.status.success(), "{}", stderr(&covered));
    assert_eq!(lines(&covered), lines(&cpu));
    assert!(
        stderr(&covered).contains("0 of 1 cards serving")
            && stderr(&covered).contains("backend cpu"),
        "{}",
        stderr(&covered)
    );
}

#[test]
fn firmware_stats_reports_the_targets_figures_and_the_image_round_trips() {
    let output = run(
        verity().args(["firmware", "stats", "--signatures", "16"]),
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    let figure = |label: &str| -> f64 {
        let line = report
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label} in {report}"));
        line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .rfind(|t| !t.is_empty() && *t != ".")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no figure in {line}"))
    };
    // Issue #3's targets, as the interpreter counts them.
    let multiplications = report
        .lines()
        .find(|l| l.contains("multiplier operations"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|t| t.parse::<f64>().ok())
        .expect("a multiplier figure");
    assert!(multiplications <= 3300.0, "{report}");
    let cycles = figure("cycles per verification, one engine, 16 signatures:");
    assert!(cycles <= 4000.0, "{report}");

    let dir = scratch("firmware_image");
    let image = dir.join("verity.img");
    let written = run(
        verity().args(["firmware", "image", "--out"]).arg(&image),
        b"",
    );
    assert!(written.status.success(), "{}", stderr(&written));
    let bytes = std::fs::read(&image).expect("image written");
    assert_eq!(&bytes[..4], b"VRTY");
    assert!(
        report.contains(&format!("{} bytes", bytes.len())),
        "{report}"
    );
}

#[test]
fn hdl_export_writes_each_block_under_its_name() {
    let dir = scratch("hdl-export");
    for block in ["sha512", "sha256", "merkle"] {
        let output = run(
            verity()
                .args(["hdl", "export", "--block", block, "--out"])
                .arg(&dir),
            b"",
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let verilog = std::fs::read_to_string(dir.join(format!("{block}.v"))).expect("written");
        assert!(verilog.contains(&format!("module {block}(")), "{block}");
    }
    let output = run(
        verity()
            .args(["hdl", "export", "--block", "sha1", "--out"])
            .arg(&dir),
        b"",
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no block named \"sha1\""),
        "{}",
        stderr(&output)
    );
}
