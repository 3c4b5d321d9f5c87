//! `verity capture`: transactions off a live interface (a mirrored port), forwarded to a
//! replica as they arrive.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::replay::{ForwardReport, Forwarder};
use crate::signals::Signals;
use crate::traffic::extract::Extractor;
use crate::traffic::live;
use crate::traffic::pacing::Speed;
use crate::traffic::reassembly::Limits;
use crate::traffic::Transport;

/// Capture transactions on a network interface and forward them to a replica.
///
/// For feeding a replica from a mirrored (SPAN) port: UDP datagrams and reassembled TCP
/// frames going to a server are sent to `--target` as they are captured; replies and other
/// traffic are skipped and counted. Stops after `--count` transactions, `--duration`
/// seconds, or Ctrl-C, then prints the end table. Capturing needs CAP_NET_RAW (root, or
/// `setcap cap_net_raw,cap_net_admin=eip` on the binary).
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// The interface (`lo`, `eth1`, `any`).
    #[arg(long)]
    pub iface: String,
    /// A BPF filter (tcpdump's syntax), e.g. `udp dst port 7382`. Keep the forwarded
    /// traffic out of it when the target is reached through the same interface.
    #[arg(long)]
    pub filter: Option<String>,
    /// The replica's ingress to forward to.
    #[arg(long)]
    pub target: SocketAddr,
    /// The transport to forward over [default: the one the first transaction came on].
    #[arg(long)]
    pub over: Option<Transport>,
    /// Stop after this many transactions.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seconds to wait for the last replies after the last send.
    #[arg(long, default_value = "10")]
    pub drain: u64,
}

/// Captures and forwards until a stop condition.
pub fn capture(args: &CaptureArgs) -> anyhow::Result<ForwardReport> {
    let (mut capture, link) = live::open(&args.iface, args.filter.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    interrupt_on_ctrl_c(Arc::clone(&stop))?;
    eprintln!(
        "capturing on {} ({link:?}){}: forwarding to {}; Ctrl-C stops",
        args.iface,
        args.filter
            .as_deref()
            .map(|f| format!(", filter {f:?}"))
            .unwrap_or_default(),
        args.target
    );
    let started = Instant::now();
    let deadline = args.duration.map(|s| started + Duration::from_secs(s));
    let mut forwarder = Forwarder::new(args.target, args.over, Speed::Max);
    let mut extractor = Extractor::new(link, Limits::default());
    let mut batch = Vec::new();
    loop {
        let done = stop.load(Ordering::Acquire)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || args.count.is_some_and(|n| forwarder.attempted() >= n);
        if done {
            break;
        }
        match capture.next_packet() {
            Ok(Some(packet)) => {
                extractor.captured(&packet, &mut batch);
                if let Some(limit) = args.count {
                    let left = limit.saturating_sub(forwarder.attempted());
                    batch.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                }
                forwarder.send(&mut batch)?;
                forwarder.flush()?;
            }
            Ok(None) => {}
            Err(error) => {
                return Err(error).with_context(|| format!("capturing on {}", args.iface));
            }
        }
    }
    if let Ok(kernel) = capture.stats() {
        if kernel.dropped > 0 {
            eprintln!(
                "the kernel dropped {} packets (capture buffer full)",
                kernel.dropped
            );
        }
    }
    forwarder.finish(extractor.stats().clone(), Duration::from_secs(args.drain))
}

/// Sets `stop` on Ctrl-C (or SIGTERM), so the end table is still printed; caught from the
/// call on, before capture begins.
fn interrupt_on_ctrl_c(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let signals = Signals::catch().context("catching SIGINT and SIGTERM")?;
    std::thread::Builder::new()
        .name("capture-signal".into())
        .spawn(move || {
            signals.wait();
            stop.store(true, Ordering::Release);
        })?;
    Ok(())
}

/// Runs `verity capture`.
pub fn run(args: &CaptureArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut report = capture(args)?;
    writeln!(out, "verity capture:")?;
    report.table(out)?;
    Ok(())
}
