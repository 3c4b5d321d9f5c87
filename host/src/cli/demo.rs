//! `verity demo`: the appliance's main job on its embedded defaults — a replica started,
//! loaded and stopped, in a temporary directory, with no card and no external server.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::backend::BackendKind;
use crate::cli::init::{self, InitArgs};
use crate::cli::load::{self, LoadArgs};
use crate::daemon::{Ready, Stopped};

/// Run one replica end to end: `verity init` a temporary directory, start `verityd` on it,
/// send it signed transfers with `verity load`, print the end table, stop it cleanly and
/// print the final state root.
///
/// Signatures are verified by the simulated card (its functional model, driven through the
/// card's ABI as a card is) unless `--backend` says otherwise; the verifier's state is
/// printed as the daemon reports it. The default rate is about half of what the simulated
/// card sustains on two cores beside the daemon and the load.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value_t = BackendKind::Sim)]
    pub backend: BackendKind,
    /// Transactions per second [default: 4,000 on `sim`, 20,000 otherwise].
    #[arg(long)]
    pub rate: Option<u32>,
    /// Seconds of load.
    #[arg(long, default_value = "10")]
    pub duration: u32,
    /// Funded accounts sending to each other.
    #[arg(long, default_value = "1000")]
    pub accounts: u32,
    /// Keep the directory (configuration, genesis, keys, store) instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

/// `verityd` as a child process, stopped with SIGTERM if the demo fails.
struct Daemon {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            terminate(&self.child);
            let _ = self.child.wait();
        }
    }
}

fn terminate(child: &Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// Runs `verity demo`.
pub fn run(args: &DemoArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("verity-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = demo(args, &dir, out);
    if args.keep {
        writeln!(out, "kept {}", dir.display())?;
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn demo(args: &DemoArgs, dir: &std::path::Path, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "verity demo: one replica in {}", dir.display())?;
    init::run(
        &InitArgs {
            dir: dir.to_owned(),
            http_port: 0,
            tcp_port: 0,
            udp_port: 0,
            accounts: args.accounts,
            balance: 1_000_000_000,
            chain_id: 1,
            backend: args.backend,
        },
        &mut std::io::sink(),
    )?;
    let exe = std::env::current_exe().context("where is verity?")?;
    let verityd = exe.with_file_name("verityd");
    anyhow::ensure!(
        verityd.is_file(),
        "{} is missing: build both binaries (cargo build --release -p verity-host --bins)",
        verityd.display()
    );
    let mut child = Command::new(&verityd)
        .arg("--config")
        .arg(dir.join("verity.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", verityd.display()))?;
    let stdout = BufReader::new(child.stdout.take().context("verityd's output")?);
    let mut daemon = Daemon { child, stdout };
    let mut ready = String::new();
    daemon.stdout.read_line(&mut ready)?;
    let ready = Ready::parse(ready.trim_end())
        .map_err(|e| anyhow::anyhow!("verityd did not start (its errors are above): {e}"))?;
    writeln!(
        out,
        "  verityd: http {}, tcp {}; card: {}",
        ready.http, ready.tcp, ready.verifier
    )?;
    let rate = args.rate.unwrap_or(match args.backend {
        BackendKind::Sim => 4_000,
        _ => 20_000,
    });
    writeln!(
        out,
        "  verity load: {rate} transfers/s for {} s from {} accounts",
        args.duration, args.accounts
    )?;
    out.flush()?;
    let report = load::load(&LoadArgs {
        keys: dir.to_owned(),
        target: vec![ready.tcp],
        http: Some(ready.http),
        rate,
        duration: args.duration,
        accounts: None,
        connections: 4,
        drain: 30,
    })?;
    report.table(out)?;
    terminate(&daemon.child);
    let mut rest = String::new();
    daemon.stdout.read_to_string(&mut rest)?;
    let status = daemon.child.wait()?;
    anyhow::ensure!(status.success(), "verityd stopped with {status}");
    let stopped = Stopped::parse(rest.trim_end()).map_err(|e| anyhow::anyhow!(e))?;
    writeln!(
        out,
        "  verityd stopped cleanly at height {}; final state root {}",
        stopped.height,
        hex::encode(stopped.state_root)
    )?;
    anyhow::ensure!(
        report.committed() > 0 && report.unanswered == 0,
        "the run did not commit every transaction"
    );
    Ok(())
}
