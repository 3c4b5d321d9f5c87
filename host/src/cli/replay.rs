//! `verity replay`: the transactions of capture files, sent to a replica at the captured
//! pace, a multiple of it, or as fast as possible.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::traffic::extract::{ExtractStats, Extracted, Extractor};
use crate::traffic::file;
use crate::traffic::pacing::{Pacer, PacingErrors, Speed};
use crate::traffic::reassembly::Limits;
use crate::traffic::send::{Outbound, Replies};
use crate::traffic::Transport;

/// Send the transactions of capture files to a replica, as they were received.
///
/// Each UDP datagram to a server is one transaction; TCP streams are reassembled
/// (retransmissions and out-of-order segments handled) into ingress frames. Replies and
/// anything else in the capture are skipped and counted by reason. Every transaction goes to
/// `--target` over one connection (or socket), in capture order. At `--speed 1x` each is sent
/// when it was captured, relative to the first; the end table gives how late the sends were
/// (pacing error).
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng), replayed in the order given, as one capture.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The replica's ingress to send to (its TCP or UDP port, as `--over` says).
    #[arg(long)]
    pub target: SocketAddr,
    /// The transport to send over [default: the one the first transaction came on].
    #[arg(long)]
    pub over: Option<Transport>,
    /// The pace: `1x` as captured, `2x` twice as fast, `0.5x`, or `max`.
    #[arg(long, default_value = "1x")]
    pub speed: Speed,
    /// Only packets this BPF filter (tcpdump's syntax) passes, e.g. `udp port 7382`.
    #[arg(long)]
    pub filter: Option<String>,
    /// Seconds to wait for the last replies after the last send.
    #[arg(long, default_value = "10")]
    pub drain: u64,
}

/// What a replay or a live capture did.
#[derive(Debug, Default)]
pub struct ForwardReport {
    /// What extraction read and skipped.
    pub extract: ExtractStats,
    /// Where a capture file ended early (libpcap's message), if one did.
    pub truncated: Option<String>,
    /// The transport sent over.
    pub over: Option<Transport>,
    /// Transactions sent.
    pub sent: u64,
    /// Sends the network refused (UDP).
    pub send_errors: u64,
    /// From the first send to the last.
    pub sending: Duration,
    /// How late each paced send was (empty at full speed).
    pub pacing: PacingErrors,
    /// What the replica answered.
    pub replies: Replies,
}

impl ForwardReport {
    /// Transactions per second over the sending time.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.sending.as_secs_f64().max(1e-9)
    }

    /// The end table.
    pub fn table(&mut self, out: &mut impl Write) -> io::Result<()> {
        let e = &self.extract;
        writeln!(out, "  packets read      {:>10}", e.packets)?;
        writeln!(
            out,
            "    with no data    {:>10}   (handshakes, ACKs, FINs)",
            e.control
        )?;
        writeln!(out, "  skipped           {:>10}", e.skipped_total())?;
        for (reason, n) in &e.skipped {
            let example = e
                .examples
                .get(reason)
                .map(|d| format!("   e.g. {d}"))
                .unwrap_or_default();
            writeln!(out, "    {:<17} {n:>10}{example}", reason.name())?;
        }
        if let Some(truncated) = &self.truncated {
            writeln!(out, "  capture truncated: {truncated}")?;
        }
        writeln!(out, "  transactions      {:>10}", e.transactions)?;
        let over = self.over.map_or("-", Transport::name);
        writeln!(out, "  sent              {:>10}   over {over}", self.sent)?;
        if self.send_errors > 0 {
            writeln!(out, "  send errors       {:>10}", self.send_errors)?;
        }
        writeln!(
            out,
            "  achieved          {:>10.0} tx/s ({:.3} s from first send to last)",
            self.rate(),
            self.sending.as_secs_f64()
        )?;
        if !self.pacing.is_empty() {
            let us = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e6);
            let (p50, p99, max) = (
                us(self.pacing.quantile(500)),
                us(self.pacing.quantile(990)),
                us(self.pacing.quantile(1000)),
            );
            writeln!(
                out,
                "  pacing error      p50 {p50:.1} µs   p99 {p99:.1} µs   max {max:.1} µs (late against the capture's pace)"
            )?;
        }
        let r = &self.replies;
        writeln!(
            out,
            "  answered          {:>10}   committed {} (applied {}), refused {}",
            r.answered,
            r.committed(),
            r.applied,
            r.refused.values().sum::<u64>()
        )?;
        for (reason, n) in &r.failed {
            writeln!(out, "    not applied: {reason:<20} {n:>8}")?;
        }
        for (reason, n) in &r.refused {
            writeln!(out, "    refused: {reason:<24} {n:>8}")?;
        }
        if r.unreadable > 0 {
            writeln!(out, "    unreadable replies      {:>8}", r.unreadable)?;
        }
        Ok(())
    }
}

/// Sends extracted transactions, paced, on a connection opened for the first.
pub struct Forwarder {
    target: SocketAddr,
    over: Option<Transport>,
    pacer: Pacer,
    outbound: Option<Outbound>,
    first: Option<Instant>,
    last: Option<Instant>,
    attempted: u64,
    /// The tally so far.
    pub report: ForwardReport,
}

impl Forwarder {
    /// A forwarder to `target`, over `over` (else the first transaction's transport), at
    /// `speed`.
    pub fn new(target: SocketAddr, over: Option<Transport>, speed: Speed) -> Self {
        Self {
            target,
            over,
            pacer: Pacer::new(speed),
            outbound: None,
            first: None,
            last: None,
            attempted: 0,
            report: ForwardReport::default(),
        }
    }

    /// Sends `transactions` (draining it), each when due.
    pub fn send(&mut self, transactions: &mut Vec<Extracted>) -> anyhow::Result<()> {
        for tx in transactions.drain(..) {
            let outbound = match &mut self.outbound {
                Some(outbound) => outbound,
                None => {
                    let over = self.over.unwrap_or(tx.transport);
                    self.report.over = Some(over);
                    let connected = Outbound::connect(over, self.target)
                        .with_context(|| format!("connecting to {} over {over}", self.target))?;
                    self.outbound.insert(connected)
                }
            };
            let due = self.pacer.due(tx.at);
            if let Some(due) = due {
                Pacer::wait(due);
                self.report
                    .pacing
                    .record(Instant::now().saturating_duration_since(due));
            }
            let now = Instant::now();
            self.first.get_or_insert(now);
            outbound
                .send(&tx.bytes)
                .with_context(|| format!("sending to {}", self.target))?;
            self.attempted += 1;
            if due.is_some() {
                outbound
                    .flush()
                    .with_context(|| format!("sending to {}", self.target))?;
            }
            self.last = Some(Instant::now());
        }
        Ok(())
    }

    /// Transactions handed to the sender so far (sent, or refused by the network).
    pub fn attempted(&self) -> u64 {
        self.attempted
    }

    /// Sends what is buffered now (a live capture, between packets).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(outbound) = &mut self.outbound {
            outbound
                .flush()
                .with_context(|| format!("sending to {}", self.target))?;
        }
        Ok(())
    }

    /// Flushes, waits up to `drain` for replies, and returns the report.
    pub fn finish(
        mut self,
        extract: ExtractStats,
        drain: Duration,
    ) -> anyhow::Result<ForwardReport> {
        if let Some(mut outbound) = self.outbound.take() {
            outbound
                .flush()
                .with_context(|| format!("sending to {}", self.target))?;
            // The last buffered sends left just now.
            if self.first.is_some() {
                self.last = Some(Instant::now());
            }
            self.report.send_errors = outbound.refused();
            self.report.replies = outbound.finish(drain).context("finishing the sends")?;
        }
        self.report.sent = self.attempted - self.report.send_errors;
        if let (Some(first), Some(last)) = (self.first, self.last) {
            self.report.sending = last - first;
        }
        self.report.extract = extract;
        Ok(self.report)
    }
}

/// Replays `args.files` and measures it.
pub fn replay(args: &ReplayArgs) -> anyhow::Result<ForwardReport> {
    let total: u64 = args
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let bar = ProgressBar::new(total).with_message("replaying");
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {per_sec}")
            .expect("a valid template"),
    );
    let mut forwarder = Forwarder::new(args.target, args.over, args.speed);
    let mut extractor: Option<(Extractor, crate::traffic::link::Link)> = None;
    let mut batch = Vec::new();
    let mut truncated = None;
    for path in &args.files {
        let (mut capture, link) = file::open(path, args.filter.as_deref())?;
        let (extractor, first_link) =
            extractor.get_or_insert_with(|| (Extractor::new(link, Limits::default()), link));
        anyhow::ensure!(
            *first_link == link,
            "{}: link type {link:?}, where the first file's is {first_link:?}: replay them separately",
            path.display()
        );
        let mut read = 0u64;
        loop {
            let packet = match capture.next_packet() {
                Ok(packet) => packet,
                Err(pcap::Error::NoMorePackets) => break,
                Err(error) => {
                    truncated = Some(format!("{}: {}", path.display(), file::reason(&error)));
                    break;
                }
            };
            read += 16 + u64::from(packet.header.caplen);
            extractor.captured(&packet, &mut batch);
            forwarder.send(&mut batch)?;
            if read >= 1 << 20 {
                bar.inc(read);
                read = 0;
            }
        }
        bar.inc(read);
        if truncated.is_some() {
            break;
        }
    }
    let stats = match extractor {
        Some((mut extractor, _)) => {
            extractor.finish();
            extractor.stats().clone()
        }
        None => ExtractStats::default(),
    };
    bar.finish_and_clear();
    let mut report = forwarder.finish(stats, Duration::from_secs(args.drain))?;
    report.truncated = truncated;
    Ok(report)
}

/// Runs `verity replay`.
pub fn run(args: &ReplayArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut report = replay(args)?;
    writeln!(out, "verity replay:")?;
    report.table(out)?;
    anyhow::ensure!(
        report.extract.transactions > 0,
        "no transaction in {} (see the skipped reasons above)",
        args.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
