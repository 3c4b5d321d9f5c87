//! `verity load`: signed transfers — or option trades and prices ([`trading`]) — at a
//! target rate over TCP ingress, and what became of them.

pub mod trading;

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{unbounded, Receiver};
use ed25519_dalek::SigningKey;
use indicatif::{ProgressBar, ProgressStyle};

use crate::api::Status;
use crate::cli::client::Client;
use crate::cli::cluster;
use crate::cli::init::{read_accounts, ASSET};
use crate::config::{Config, Listen};
use crate::ingress::{parse_reply, MAX_FRAME};
use crate::pipeline::Outcome;
use crate::transaction::{Body, Payload, Unsigned, TX_LEN};
use trading::TradingReport;

/// The most transactions one run signs ahead (160 bytes each; a trade 232).
const TRANSACTIONS_MAX: u64 = 10_000_000;

/// Send signed transfers (or option trades and prices) to a replica at a target rate and
/// report what became of them.
///
/// `--mix transfers`: transfers of 1 unit go from each account to the next, round-robin over
/// the accounts. `--mix trading`: the accounts trade the genesis file's options — half of
/// them write calls to the other half, then small trades of every instrument — while the
/// oracles (DIR/keys/oracles.jsonl) give prices, and at 60 % of the run the price moves by
/// `--shock` percent, which leaves the writers under maintenance: the end table counts the
/// liquidations. Each sender's nonces are in order (read from the replica first, so runs can
/// follow each other). All is signed before the clock starts. Each sender's transactions
/// travel on one connection, so its nonces arrive in order. The end table gives sent,
/// committed (applied or failed, by reason), refused by reason, unanswered, the achieved
/// rate, and the latency from writing a frame to reading its reply (which comes once its
/// block is on disk).
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The directory `verity init` or `verity cluster` wrote: its keys, and the addresses in
    /// its configuration(s).
    #[arg(long)]
    pub keys: PathBuf,
    /// TCP ingress; several (comma-separated or repeated) share the connections round-robin
    /// [default: DIR/verity.toml's; for a cluster, every replica's; else 127.0.0.1:7381].
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<SocketAddr>,
    /// The HTTP API, for nonces, the chain id and the final head [default: DIR/verity.toml's;
    /// for a cluster, the first replica's; else 127.0.0.1:7380].
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Transactions per second.
    #[arg(long, default_value = "20000")]
    pub rate: u32,
    /// Seconds of sending.
    #[arg(long, default_value = "10")]
    pub duration: u32,
    /// Accounts to send from [default: every key].
    #[arg(long)]
    pub accounts: Option<usize>,
    /// TCP connections.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,
    /// How long to wait for the last replies after the last send, in seconds.
    #[arg(long, default_value = "30")]
    pub drain: u64,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Mix::Transfers)]
    pub mix: Mix,
    /// With `--mix trading`: how far the oracles move the price at 60 % of the run, in
    /// percent of the mark at the start (negative: down).
    #[arg(long, default_value = "40", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-90..=1000))]
    pub shock: i64,
    /// With `--mix trading`: the seed of the small trades and the price jitter.
    #[arg(long, default_value = "1")]
    pub seed: u64,
}

/// What `verity load` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// Transfers of 1 unit round-robin over the accounts.
    Transfers,
    /// Option trades between the accounts and the oracles' prices, with a price shock.
    Trading,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Frames written.
    pub sent: u64,
    /// Committed and applied.
    pub applied: u64,
    /// Committed but not applied, by the ledger's reason.
    pub failed: BTreeMap<String, u64>,
    /// Refused, by reason's name.
    pub refused: BTreeMap<String, u64>,
    /// Sent and never answered.
    pub unanswered: u64,
    /// From the first write to the last reply.
    pub elapsed: Duration,
    /// Write-to-reply latencies of committed transactions, sorted.
    pub latencies: Vec<Duration>,
    /// The replica's head after the run.
    pub head: Option<Status>,
    /// With `--mix trading`: what the book did.
    pub trading: Option<TradingReport>,
}

impl LoadReport {
    /// Committed transactions (applied or not).
    pub fn committed(&self) -> u64 {
        self.applied + self.failed.values().sum::<u64>()
    }

    /// The latency at quantile `q` (0 to 1000, per mille).
    pub fn latency(&self, per_mille: usize) -> Option<Duration> {
        let n = self.latencies.len();
        (n > 0).then(|| self.latencies[(n * per_mille / 1000).min(n - 1)])
    }

    /// The end table.
    pub fn table(&self, out: &mut impl Write) -> io::Result<()> {
        let rate = self.committed() as f64 / self.elapsed.as_secs_f64().max(1e-9);
        writeln!(out, "  sent              {:>10}", self.sent)?;
        writeln!(
            out,
            "  committed         {:>10}   (accepted: a reply comes once the block is on disk; applied {})",
            self.committed(),
            self.applied
        )?;
        for (reason, n) in &self.failed {
            writeln!(out, "    not applied: {reason:<20} {n:>8}")?;
        }
        writeln!(
            out,
            "  refused           {:>10}",
            self.refused.values().sum::<u64>()
        )?;
        for (reason, n) in &self.refused {
            writeln!(out, "    {reason:<33} {n:>8}")?;
        }
        writeln!(out, "  unanswered        {:>10}", self.unanswered)?;
        writeln!(
            out,
            "  achieved          {rate:>10.0} tx/s committed ({:.2} s from first send to last reply)",
            self.elapsed.as_secs_f64()
        )?;
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_owned(), |d| {
                format!("{:.2} ms", d.as_secs_f64() * 1e3)
            })
        };
        writeln!(
            out,
            "  submit→commit     p50 {}   p99 {}   p999 {}   max {}",
            ms(self.latency(500)),
            ms(self.latency(990)),
            ms(self.latency(999)),
            ms(self.latencies.last().copied())
        )?;
        if let Some(t) = &self.trading {
            writeln!(
                out,
                "  trading           {} trades, {} prices; the price moved to {} from transaction {}",
                t.trades, t.prices, t.shock.0, t.shock.1
            )?;
            writeln!(
                out,
                "  liquidations      {:>10}   (penalties {}, shortfall {}); settlements {}",
                t.liquidated, t.penalties, t.shortfall, t.settled
            )?;
            let contracts: i64 = t.fund_positions.values().map(|c| c.abs()).sum();
            writeln!(
                out,
                "  insurance fund    balance {}, {} contracts in {} positions",
                t.fund_balance,
                contracts,
                t.fund_positions.len()
            )?;
        }
        if let Some(head) = &self.head {
            writeln!(
                out,
                "  head              height {}, state root {}",
                head.height, head.state_root
            )?;
        }
        Ok(())
    }
}

/// Addresses from `DIR/verity.toml`, or from each replica's in a cluster's directory.
fn configured(dir: &Path) -> Vec<Listen> {
    let read = |dir: &Path| Config::read(&dir.join("verity.toml")).ok();
    if let Some(config) = read(dir) {
        return vec![config.listen];
    }
    cluster::replicas(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| read(d))
        .map(|c| c.listen)
        .collect()
}

/// Runs `verity load`.
pub fn run(args: &LoadArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let report = load(args)?;
    writeln!(out, "verity load:")?;
    report.table(out)?;
    anyhow::ensure!(report.committed() > 0, "nothing was committed");
    Ok(())
}

/// Runs the load and measures it.
pub fn load(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    let mut listen = configured(&args.keys);
    if listen.is_empty() {
        listen.push(Listen::default());
    }
    let targets = if args.target.is_empty() {
        listen.iter().map(|l| l.tcp).collect()
    } else {
        args.target.clone()
    };
    let http = args.http.unwrap_or(listen[0].http);
    anyhow::ensure!(
        targets.iter().all(|t| t.port() != 0) && http.port() != 0,
        "the configuration listens on any free port: give --target and --http (verityd prints them)"
    );
    let mut keys = read_accounts(&args.keys)?;
    if let Some(n) = args.accounts {
        anyhow::ensure!(n >= 2 && n <= keys.len(), "--accounts: 2 to {}", keys.len());
        keys.truncate(n);
    }
    anyhow::ensure!(keys.len() >= 2, "a transfer needs two accounts");
    let total = u64::from(args.rate) * u64::from(args.duration);
    anyhow::ensure!(
        (1..=TRANSACTIONS_MAX).contains(&total),
        "--rate × --duration: 1 to {TRANSACTIONS_MAX} transactions"
    );
    let client = Client::new(http);
    let chain_id = client.status()?.chain_id;
    let accounts = keys
        .iter()
        .map(|k| client.account(&k.verifying_key().to_bytes()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let nonces: Vec<u64> = accounts.iter().map(|a| a.nonce).collect();
    // Each transaction's sender (an index) and bytes, in the order they are due.
    let transfers: Vec<[u8; TX_LEN]>;
    let mut trading = None;
    let plan;
    let schedule: Vec<(usize, &[u8])> = match args.mix {
        Mix::Transfers => {
            transfers = sign_all(&keys, &nonces, chain_id, total as usize);
            transfers
                .iter()
                .enumerate()
                .map(|(i, tx)| (i % keys.len(), &tx[..]))
                .collect()
        }
        Mix::Trading => {
            let prepared = trading::prepare(
                &client,
                &args.keys,
                &keys,
                &accounts,
                args.shock,
                args.seed,
                total as usize,
            )?;
            plan = prepared.plan;
            trading = Some(prepared.report);
            plan.transactions
                .iter()
                .map(|(s, tx)| (*s, &tx[..]))
                .collect()
        }
    };

    let connections = usize::from(args.connections);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} answered, {per_sec}",
        )
        .expect("a valid template"),
    );
    // Transaction i is due at i / rate; sender s's transactions go on connection s % C.
    let mut per_connection: Vec<Vec<(usize, &[u8])>> = vec![Vec::new(); connections];
    for (i, &(sender, tx)) in schedule.iter().enumerate() {
        per_connection[sender % connections].push((i, tx));
    }
    let start = Instant::now() + Duration::from_millis(50);
    let rate = f64::from(args.rate);
    let drain = Duration::from_secs(args.drain);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = per_connection
            .iter()
            .enumerate()
            .map(|(c, mine)| {
                let bar = bar.clone();
                let target = targets[c % targets.len()];
                scope.spawn(move || connection(target, mine, start, rate, drain, &bar))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Vec<_>>()
    });
    bar.finish_and_clear();
    let mut report = LoadReport::default();
    let mut last = start;
    for result in results {
        let result = result?;
        report.sent += result.sent;
        report.applied += result.applied;
        report.unanswered += result.sent - result.answered;
        for (reason, n) in result.failed {
            *report.failed.entry(reason).or_default() += n;
        }
        for (reason, n) in result.refused {
            *report.refused.entry(reason).or_default() += n;
        }
        report.latencies.extend(result.latencies);
        last = last.max(result.last_reply);
    }
    report.latencies.sort_unstable();
    report.elapsed = last.saturating_duration_since(start);
    report.head = client.status().ok();
    if let Some(mut book) = trading {
        book.tally(&client, &keys)?;
        report.trading = Some(book);
    }
    Ok(report)
}

/// Signs `total` transfers round-robin over `keys`, on every core.
pub(crate) fn sign_all(
    keys: &[SigningKey],
    nonces: &[u64],
    chain_id: u32,
    total: usize,
) -> Vec<[u8; TX_LEN]> {
    let bar = ProgressBar::new(total as u64).with_message("signing");
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}").expect("a valid template"),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut transactions = vec![[0u8; TX_LEN]; total];
    let chunk = total.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (c, slice) in transactions.chunks_mut(chunk).enumerate() {
            let bar = bar.clone();
            scope.spawn(move || {
                for (j, slot) in slice.iter_mut().enumerate() {
                    let i = c * chunk + j;
                    let from = i % keys.len();
                    let to = (from + 1) % keys.len();
                    *slot = Unsigned {
                        chain_id,
                        sender: keys[from].verifying_key().to_bytes(),
                        nonce: nonces[from] + (i / keys.len()) as u64,
                        payload: Payload::Transfer(Body {
                            asset: ASSET,
                            to: keys[to].verifying_key().to_bytes(),
                            amount: 1,
                        }),
                    }
                    .sign(&keys[from]);
                    if j % 1024 == 1023 {
                        bar.inc(1024);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    transactions
}

/// One connection's tally.
struct ConnectionResult {
    sent: u64,
    answered: u64,
    applied: u64,
    failed: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    last_reply: Instant,
}

/// Sends `mine` (index, bytes) on one connection at its due times and reads the replies.
fn connection(
    target: SocketAddr,
    mine: &[(usize, &[u8])],
    start: Instant,
    rate: f64,
    drain: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<ConnectionResult> {
    let stream = TcpStream::connect(target).with_context(|| format!("connecting to {target}"))?;
    stream.set_nodelay(true)?;
    let reader = stream.try_clone()?;
    let (sent_at, written) = unbounded::<Instant>();
    std::thread::scope(|scope| {
        let replies = scope.spawn(move || read_replies(reader, &written, drain, bar));
        let mut stream = stream;
        let mut sent = 0u64;
        let mut frames = Vec::with_capacity(64 * (TX_LEN + 4));
        let mut next = 0;
        while next < mine.len() {
            let due = |k: usize| start + Duration::from_secs_f64(mine[k].0 as f64 / rate);
            let now = Instant::now();
            if due(next) > now {
                std::thread::sleep((due(next) - now).min(Duration::from_millis(1)));
                continue;
            }
            frames.clear();
            let batch_start = next;
            while next < mine.len() && due(next) <= now && next - batch_start < 64 {
                frames.extend_from_slice(&(mine[next].1.len() as u32).to_le_bytes());
                frames.extend_from_slice(mine[next].1);
                next += 1;
            }
            let at = Instant::now();
            if stream.write_all(&frames).is_err() {
                break;
            }
            for _ in batch_start..next {
                let _ = sent_at.send(at);
            }
            sent += (next - batch_start) as u64;
        }
        drop(sent_at);
        let mut result = replies
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        result.sent = sent;
        let _ = stream.shutdown(std::net::Shutdown::Both);
        Ok(result)
    })
}

/// Reads replies in order, matching each to its frame's write time.
fn read_replies(
    mut stream: TcpStream,
    written: &Receiver<Instant>,
    drain: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<ConnectionResult> {
    let mut result = ConnectionResult {
        sent: 0,
        answered: 0,
        applied: 0,
        failed: BTreeMap::new(),
        refused: BTreeMap::new(),
        latencies: Vec::new(),
        last_reply: Instant::now(),
    };
    let mut waiting = VecDeque::new();
    let mut reply = vec![0u8; MAX_FRAME];
    stream.set_read_timeout(Some(drain))?;
    loop {
        // Everything written so far is waiting; once the writer is done and nothing waits,
        // the run is over.
        waiting.extend(written.try_iter());
        if waiting.is_empty() {
            match written.recv() {
                Ok(at) => waiting.push_back(at),
                Err(_) => return Ok(result),
            }
        }
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).is_err() {
            return Ok(result);
        }
        let len = u32::from_le_bytes(len) as usize;
        anyhow::ensure!(
            len <= MAX_FRAME,
            "a reply of {len} bytes: not a Verity replica"
        );
        stream
            .read_exact(&mut reply[..len])
            .context("reading a reply")?;
        let at = Instant::now();
        let sent = waiting.pop_front().context("a reply to nothing sent")?;
        result.answered += 1;
        result.last_reply = at;
        bar.inc(1);
        match parse_reply(&reply[..len]).context("a reply")? {
            Outcome::Committed { failure: None, .. } => {
                result.applied += 1;
                result.latencies.push(at - sent);
            }
            Outcome::Committed {
                failure: Some(failure),
                ..
            } => {
                *result.failed.entry(failure.name().to_owned()).or_default() += 1;
                result.latencies.push(at - sent);
            }
            Outcome::Refused { reason } => {
                let name = reason.split(':').next().unwrap_or(&reason).to_owned();
                *result.refused.entry(name).or_default() += 1;
            }
        }
    }
}
