//! `verityd`: the Verity appliance daemon — one replica.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use verity_host::config::{Config, LogFormat};
use verity_host::daemon::{Daemon, Ready, Stopped};
use verity_host::signals::Signals;

/// verityd: one Verity replica. It takes signed transactions over TCP, UDP and HTTP, verifies
/// their signatures (on a card, a simulated card or the CPU — ZIP-215 on every path), orders
/// them into blocks, executes them on the ledger and commits each block to its store before
/// it answers. `verity init --dir DIR` writes a configuration, a genesis file and funded keys
/// to start from.
///
/// On start it prints one line to standard output — `ready http=ADDR tcp=ADDR udp=ADDR` —
/// and logs to standard error. SIGINT or SIGTERM, from the moment that line is printed,
/// stops it cleanly: the HTTP API closes, the blocks being built are committed, and the final
/// height and state root are printed.
#[derive(Debug, Parser)]
#[command(name = "verityd", version)]
struct Args {
    /// The configuration file (TOML; `--print-config` shows every key with its default).
    #[arg(long, short, default_value = "verity.toml")]
    config: PathBuf,
    /// Print the default configuration, every key commented, and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("verityd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.print_config {
        print!("{}", Config::default().template());
        return Ok(());
    }
    // Before the daemon touches its memory; the warning waits for the logger.
    let pages = verity_host::memory::small_pages();
    let config = Config::read(&args.config)
        .with_context(|| format!("configuration {}", args.config.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.filter))
        .context("log.filter")?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    if let Err(error) = pages {
        tracing::warn!(%error, "transparent huge pages stay on: a stage may stall while the kernel zeroes one");
    }
    let base = args.config.parent().map(PathBuf::from).unwrap_or_default();
    let daemon = Daemon::start(&config, &base)?;
    let verifier = daemon.pipeline().verifier_status();
    let ready = Ready {
        http: daemon.http,
        tcp: daemon.tcp,
        udp: daemon.udp,
        verifier: format!(
            "{} ({})",
            verifier.backend,
            verifier.state.reason().unwrap_or(verifier.state.name())
        ),
    };
    // Caught before the ready line: a SIGTERM sent as soon as it is read stops cleanly.
    let signals = Signals::catch().context("catching SIGINT and SIGTERM")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{ready}")?;
    out.flush()?;
    signals.wait();
    let (height, state_root) = daemon.stop()?;
    writeln!(out, "{}", Stopped { height, state_root })?;
    Ok(())
}
