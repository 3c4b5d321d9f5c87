//! `verity cluster`: a local cluster of replicas on loopback, one `verityd` process each,
//! ordering by consensus — what a venue runs on several servers, on one machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use ed25519_dalek::SigningKey;

use crate::backend::BackendKind;
use crate::cli::create_new;
use crate::cli::init::{key_line, write_chain, VALIDATOR_FILE};
use crate::config::{Config, ConsensusSection, Listen, SnapshotsSection, VerifierConfig};
use crate::daemon::{Ready, Stopped};
use crate::signals::Signals;

pub use crate::cli::init::GENESIS_FILE;

/// Start a local cluster: N replicas on 127.0.0.1, separate `verityd` processes that order
/// blocks together by BFT consensus (Malachite), until Ctrl-C.
///
/// A new DIR gets a shared genesis (the replicas' validator keys, an issuer, funded
/// accounts) and `DIR/replica-<i>/` for each replica: its configuration, its validator key,
/// its data, its log (verityd.log). An existing DIR is started as it is, so a stopped
/// cluster resumes. Replica i listens on BASE+10i (HTTP), +1 (TCP), +2 (UDP), +3 (consensus).
/// `verity load --keys DIR --target <a replica's TCP>` sends it transfers.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The cluster's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Replicas (a new cluster); 4 tolerate one faulty.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=32))]
    pub replicas: u16,
    /// The first replica's HTTP port (a new cluster).
    #[arg(long, default_value = "7400")]
    pub base_port: u16,
    /// Funded accounts (a new cluster).
    #[arg(long, default_value = "1000", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub accounts: u32,
    /// The chain (venue) id (a new cluster).
    #[arg(long, default_value = "1")]
    pub chain_id: u32,
    /// Where signatures are verified (a new cluster).
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    pub backend: BackendKind,
    /// Write the directory and stop: start the replicas yourself with
    /// `verityd --config DIR/replica-<i>/verity.toml`.
    #[arg(long)]
    pub no_start: bool,
}

/// Replica `i`'s directory.
pub fn replica_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("replica-{i}"))
}

/// The replicas' directories in an existing cluster, in order.
pub fn replicas(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dirs: Vec<PathBuf> = (0..)
        .map(|i| replica_dir(dir, i))
        .take_while(|d| d.join("verity.toml").is_file())
        .collect();
    anyhow::ensure!(
        !dirs.is_empty(),
        "{} holds no replica-0/verity.toml",
        dir.display()
    );
    Ok(dirs)
}

/// Writes a new cluster's directory.
pub fn write(args: &ClusterArgs) -> anyhow::Result<()> {
    let n = usize::from(args.replicas);
    let last_port = u32::from(args.base_port) + 10 * (n as u32 - 1) + 3;
    anyhow::ensure!(
        args.base_port > 0 && last_port <= u32::from(u16::MAX),
        "ports {}..={last_port} do not fit",
        args.base_port
    );
    let mut rng = rand::rngs::OsRng;
    let validators: Vec<SigningKey> = (0..n).map(|_| SigningKey::generate(&mut rng)).collect();
    write_chain(
        &args.dir,
        args.accounts,
        1_000_000_000,
        args.chain_id,
        &validators,
    )?;
    let port = |i: usize, offset: u16| args.base_port + 10 * i as u16 + offset;
    let localhost = |port| SocketAddr::from(([127, 0, 0, 1], port));
    for (i, key) in validators.iter().enumerate() {
        let dir = replica_dir(&args.dir, i);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        create_new(&dir.join(VALIDATOR_FILE), &key_line(key)?, true)?;
        let config = Config {
            genesis: Path::new("..").join(GENESIS_FILE),
            listen: Listen {
                http: localhost(port(i, 0)),
                tcp: localhost(port(i, 1)),
                udp: localhost(port(i, 2)),
            },
            verifier: VerifierConfig {
                backend: args.backend,
                // Replicas share the machine's cores.
                threads: 1,
                ..VerifierConfig::default()
            },
            consensus: ConsensusSection {
                enabled: true,
                key: VALIDATOR_FILE.into(),
                listen: localhost(port(i, 3)),
                peers: (0..n)
                    .filter(|j| *j != i)
                    .map(|j| localhost(port(j, 3)))
                    .collect(),
                ..ConsensusSection::default()
            },
            snapshots: SnapshotsSection {
                peers: (0..n)
                    .filter(|j| *j != i)
                    .map(|j| localhost(port(j, 0)))
                    .collect(),
                ..SnapshotsSection::default()
            },
            ..Config::default()
        };
        create_new(&dir.join("verity.toml"), &config.template(), false)?;
    }
    Ok(())
}

/// A base port with the cluster's ports free on loopback (HTTP, TCP, consensus over TCP; UDP).
pub fn free_base_port(replicas: u16) -> anyhow::Result<u16> {
    let free = |base: u16| {
        (0..replicas).all(|i| {
            let port = base + 10 * i;
            let tcp = [0, 1, 3]
                .iter()
                .all(|o| std::net::TcpListener::bind(("127.0.0.1", port + o)).is_ok());
            tcp && std::net::UdpSocket::bind(("127.0.0.1", port + 2)).is_ok()
        })
    };
    // Below Linux's ephemeral range (from 32768), so that no outgoing connection takes a
    // port between this check and the bind; spread by process id, and by call within a
    // process, so that clusters started side by side do not try the same ports first.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stride = 10 * replicas;
    let slots = 12_000 / stride;
    let first = ((std::process::id() + call) % u32::from(slots)) as u16;
    (0..slots)
        .map(|k| 20_000 + (first + k) % slots * stride)
        .find(|base| free(*base))
        .context("no free range of ports on 127.0.0.1 for the cluster")
}

/// A replica's `verityd`, stopped with SIGTERM when dropped.
pub struct Replica {
    /// Its directory.
    pub dir: PathBuf,
    /// What it printed when it was ready.
    pub ready: Ready,
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Replica {
    /// Starts `verityd` on `dir`'s configuration, its log to `dir/verityd.log` (appended),
    /// and waits for its ready line.
    pub fn start(verityd: &Path, dir: &Path) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("verityd.log"))
            .with_context(|| format!("cannot open {}/verityd.log", dir.display()))?;
        let mut child = Command::new(verityd)
            .arg("--config")
            .arg(dir.join("verity.toml"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", verityd.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("verityd's output")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let ready = Ready::parse(line.trim_end()).map_err(|e| {
            anyhow::anyhow!(
                "verityd in {} did not start (see its verityd.log): {e}",
                dir.display()
            )
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            ready,
            child,
            stdout,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it with SIGTERM and reads its stopped line.
    pub fn stop(mut self) -> anyhow::Result<Stopped> {
        signal(&self.child, rustix::process::Signal::TERM);
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest)?;
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "verityd stopped with {status}");
        Stopped::parse(rest.trim_end()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Kills it with SIGKILL: nothing is flushed, nothing is said.
    pub fn kill(mut self) -> anyhow::Result<()> {
        signal(&self.child, rustix::process::Signal::KILL);
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(&self.child, rustix::process::Signal::TERM);
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// `verityd` beside this executable.
pub fn verityd() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("where is verity?")?;
    let verityd = exe.with_file_name("verityd");
    anyhow::ensure!(
        verityd.is_file(),
        "{} is missing: build both binaries (cargo build --release -p verity-host --bins)",
        verityd.display()
    );
    Ok(verityd)
}

/// Runs `verity cluster`.
pub fn run(args: &ClusterArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.dir.join(GENESIS_FILE).is_file() {
        writeln!(out, "verity cluster: resuming {}", args.dir.display())?;
    } else {
        write(args)?;
        writeln!(
            out,
            "verity cluster: wrote {} replicas in {}",
            args.replicas,
            args.dir.display()
        )?;
    }
    if args.no_start {
        return Ok(());
    }
    // Caught before the first replica starts: a signal during start-up stops those started.
    let signals = Signals::catch().context("catching SIGINT and SIGTERM")?;
    let verityd = verityd()?;
    let mut running = Vec::new();
    for dir in replicas(&args.dir)? {
        let replica = Replica::start(&verityd, &dir)?;
        writeln!(
            out,
            "  {}: http {}, tcp {}, udp {}, verifier {}",
            dir.display(),
            replica.ready.http,
            replica.ready.tcp,
            replica.ready.udp,
            replica.ready.verifier
        )?;
        running.push(replica);
    }
    writeln!(
        out,
        "running; load it through every replica with `verity load --keys {}`; Ctrl-C stops it",
        args.dir.display()
    )?;
    out.flush()?;
    signals.wait();
    for replica in running {
        let dir = replica.dir.clone();
        let stopped = replica.stop()?;
        writeln!(
            out,
            "  {}: stopped at height {}, state root {}",
            dir.display(),
            stopped.height,
            hex::encode(stopped.state_root)
        )?;
    }
    Ok(())
}
