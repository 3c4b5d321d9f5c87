//! `verityd`'s configuration file: TOML, every key optional, every default stated.
//!
//! [`Config::template`] writes a configuration with a comment on every key; `verity init`
//! writes one and `verityd --print-config` prints the defaults as one. Paths in the file are
//! relative to the file's directory. [`Config::parse`] bounds the text before parsing and
//! refuses unknown keys, so a misspelt option is an error, not a silent default.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use malachitebft_core_types::LinearTimeouts;
use serde::Deserialize;
use thiserror::Error;

use crate::backend::{BackendKind, BackendOptions};
use crate::ingress::tcp::TcpConfig;
use crate::ingress::udp::UdpConfig;
use crate::mempool::MempoolConfig;
use crate::pipeline::PipelineConfig;
use crate::text_file::read_at_most;
use crate::traffic::recorder::RecordConfig;

/// The largest configuration file read.
pub const CONFIG_LEN_MAX: u64 = 1 << 20;

/// Why a configuration is refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Over [`CONFIG_LEN_MAX`].
    #[error("{len} bytes: a configuration is at most {CONFIG_LEN_MAX}")]
    TooLong {
        /// Its length.
        len: u64,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A value out of range.
    #[error("{key}: {reason}")]
    Value {
        /// Which key.
        key: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the store lives (relative to the file).
    pub data_dir: PathBuf,
    /// The genesis file (relative to the file).
    pub genesis: PathBuf,
    /// Listening addresses.
    pub listen: Listen,
    /// Signature verification.
    pub verifier: VerifierConfig,
    /// Batching and blocks.
    pub pipeline: PipelineSection,
    /// The mempool's bounds.
    pub mempool: MempoolSection,
    /// TCP ingress bounds.
    pub tcp: TcpSection,
    /// UDP ingress bounds.
    pub udp: UdpSection,
    /// Logging.
    pub log: LogSection,
    /// Ordering with other replicas.
    pub consensus: ConsensusSection,
    /// State snapshots, for replicas that fall far behind.
    pub snapshots: SnapshotsSection,
    /// Recording ingress to capture files.
    pub pcap: PcapSection,
    /// Ingress from a live capture (a mirrored port).
    pub capture: CaptureSection,
}

/// `[capture]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureSection {
    /// The interface to take transactions from; empty: none.
    pub iface: String,
    /// A BPF filter (tcpdump's syntax) for it; empty: every packet.
    pub filter: String,
}

/// `[pcap]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcapSection {
    /// Record from the start (the admin API switches it at run time either way).
    pub record: bool,
    /// The directory of the capture files (relative to the file).
    pub dir: PathBuf,
    /// A file is closed and the next started past this many MiB.
    pub rotate_mib: u64,
    /// Files kept, the oldest deleted first; 0: all.
    pub keep: usize,
    /// Datagrams and frames waiting for the writer; beyond, they are dropped from the
    /// recording (counted), never delayed.
    pub queue: usize,
}

impl Default for PcapSection {
    /// Off; `pcap/`, 64 MiB files, the newest 16 kept, 65,536 waiting.
    fn default() -> Self {
        Self {
            record: false,
            dir: "pcap".into(),
            rotate_mib: 64,
            keep: 16,
            queue: 65_536,
        }
    }
}

/// `[snapshots]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotsSection {
    /// A snapshot of the state every this many blocks, a multiple of
    /// [`crate::block::ROOT_EPOCH`] (a snapshot is checked against a root some header carries);
    /// 0: none.
    pub every: u64,
    /// How many are kept: `(keep - 1) × every` at least [`crate::block::ROOT_LAG`], so that
    /// one kept is always certified (by the block that many heights after it).
    pub keep: usize,
    /// Peers' HTTP APIs to fetch a snapshot from when this replica starts with no data, or
    /// far behind (it then joins from the newest certified snapshot).
    pub peers: Vec<SocketAddr>,
    /// How many blocks behind the peers' newest snapshot a starting replica may be and still
    /// catch up block by block; further behind, it joins from the snapshot.
    pub behind: u64,
}

// The messages below say 256 and 1024.
const _: () = assert!(crate::block::ROOT_EPOCH == 256 && crate::block::ROOT_LAG == 1024);

impl SnapshotsSection {
    /// Checks that snapshots fall where headers carry the state root, and that those kept
    /// always include one a header has certified.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !crate::block::root_carried(self.every) {
            return Err(ConfigError::Value {
                key: "snapshots.every",
                reason: "a multiple of 256: a snapshot is checked against the state root a \
                         block header carries, and headers carry every 256th height's",
            });
        }
        // Just after one is taken at the head, the oldest kept is (keep - 1) × every blocks
        // old, and at least that one must be certified.
        let span = (self.keep.max(1) as u64 - 1).saturating_mul(self.every);
        if self.every > 0 && span < crate::block::ROOT_LAG {
            return Err(ConfigError::Value {
                key: "snapshots.keep",
                reason: "too few to always hold a certified snapshot: the block 1024 heights \
                         after a snapshot certifies it, so (keep - 1) × every is at least 1024",
            });
        }
        Ok(())
    }
}

impl Default for SnapshotsSection {
    /// Every 1,024 blocks, the two newest kept; a replica more than 10,000 blocks behind
    /// joins from one.
    fn default() -> Self {
        Self {
            every: 1024,
            keep: 2,
            peers: Vec::new(),
            behind: 10_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            genesis: "genesis.toml".into(),
            listen: Listen::default(),
            verifier: VerifierConfig::default(),
            pipeline: PipelineSection::default(),
            mempool: MempoolSection::default(),
            tcp: TcpSection::default(),
            udp: UdpSection::default(),
            log: LogSection::default(),
            consensus: ConsensusSection::default(),
            snapshots: SnapshotsSection::default(),
            pcap: PcapSection::default(),
            capture: CaptureSection::default(),
        }
    }
}

/// `[listen]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// The HTTP API.
    pub http: SocketAddr,
    /// TCP ingress.
    pub tcp: SocketAddr,
    /// UDP ingress.
    pub udp: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 7380)),
            tcp: SocketAddr::from(([127, 0, 0, 1], 7381)),
            udp: SocketAddr::from(([127, 0, 0, 1], 7382)),
        }
    }
}

/// `[verifier]`: the backend, as `verity verify` takes it on its command line.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierConfig {
    /// `cpu`, `model`, `sim`, `sim-cycle` or `xdma`.
    pub backend: BackendKind,
    /// Worker threads; 0 is one per core.
    pub threads: usize,
    /// Signatures per batch equation (`cpu`).
    pub batch: usize,
    /// Engines of the simulated card (`sim`).
    pub engines: u8,
    /// The cards' XDMA device file prefixes (`xdma`).
    pub xdma_prefix: Vec<PathBuf>,
    /// The CPU behind the cards, known-answer tests, fail-back (`xdma`).
    pub failover: bool,
    /// How long a card may leave requests unanswered before it is failed (`xdma`).
    pub response_timeout_ms: u64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Cpu,
            threads: 0,
            batch: 1024,
            engines: 4,
            xdma_prefix: vec![verity_sim::DeviceFiles::DEFAULT_PREFIX.into()],
            failover: true,
            response_timeout_ms: 1000,
        }
    }
}

impl VerifierConfig {
    /// The backend's options, as `verity verify` would take them.
    pub fn options(&self) -> Result<BackendOptions, ConfigError> {
        let batch = NonZeroUsize::new(self.batch).ok_or(ConfigError::Value {
            key: "verifier.batch",
            reason: "at least 1",
        })?;
        if self.engines == 0 || self.engines == 255 {
            return Err(ConfigError::Value {
                key: "verifier.engines",
                reason: "1 to 254",
            });
        }
        if self.xdma_prefix.is_empty() {
            return Err(ConfigError::Value {
                key: "verifier.xdma_prefix",
                reason: "at least one card",
            });
        }
        Ok(BackendOptions {
            backend: self.backend,
            threads: NonZeroUsize::new(self.threads),
            batch,
            engines: self.engines,
            cycle_dir: None,
            xdma_prefix: self.xdma_prefix.clone(),
            response_timeout_ms: self.response_timeout_ms,
            failover: self.failover,
        })
    }
}

/// `[pipeline]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSection {
    /// Signatures verified together; 0: the backend's own batch (for `cpu`, `threads` ×
    /// `batch` of `[verifier]`).
    pub verify_batch: usize,
    /// How long a partial verification batch may wait, in microseconds, counted from its oldest
    /// transaction's submission.
    pub verify_deadline_us: u64,
    /// The most transactions in a block.
    pub block_max: usize,
    /// How long the first waiting transaction may wait for its block, in microseconds.
    pub block_interval_us: u64,
    /// Each queue between stages, in transactions.
    pub queue: usize,
}

impl Default for PipelineSection {
    fn default() -> Self {
        let d = PipelineConfig::default();
        Self {
            verify_batch: d.verify_batch,
            verify_deadline_us: d.verify_deadline.as_micros() as u64,
            block_max: d.block_max,
            block_interval_us: d.block_interval.as_micros() as u64,
            queue: d.queue,
        }
    }
}

/// `[mempool]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolSection {
    /// The most transactions held.
    pub capacity: usize,
    /// How far past a sender's next nonce a transaction may wait.
    pub window: u64,
}

impl Default for MempoolSection {
    fn default() -> Self {
        let d = MempoolConfig::default();
        Self {
            capacity: d.capacity,
            window: d.window,
        }
    }
}

/// `[tcp]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpSection {
    /// Connections served at once; more are closed at once.
    pub connections: usize,
    /// Frames per connection waiting for their outcome before reading stops.
    pub pending: usize,
    /// How long a started frame may take to arrive whole, in milliseconds.
    pub frame_timeout_ms: u64,
    /// How long a connection may stay silent, in milliseconds.
    pub idle_timeout_ms: u64,
}

impl Default for TcpSection {
    fn default() -> Self {
        let d = TcpConfig::default();
        Self {
            connections: d.connections,
            pending: d.pending,
            frame_timeout_ms: d.frame_timeout.as_millis() as u64,
            idle_timeout_ms: d.idle_timeout.as_millis() as u64,
        }
    }
}

/// `[udp]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UdpSection {
    /// Datagrams waiting for their outcome; beyond, new ones are dropped and counted.
    pub pending: usize,
}

impl Default for UdpSection {
    fn default() -> Self {
        Self {
            pending: UdpConfig::default().pending,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// A `tracing` filter (`info`, `verity_host=debug,info`); `RUST_LOG` overrides it.
    pub filter: String,
    /// `text` for people, `json` (one object a line, with span fields) for log pipelines.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            // The consensus engine and its transport log every vote at info.
            filter: "info,arc_malachitebft=warn,libp2p=warn".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// `[consensus]`: ordering among the genesis file's validators (BFT, Malachite).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusSection {
    /// Off: this replica orders alone. On: the validators order together.
    pub enabled: bool,
    /// This validator's key file (relative to the file), as `verity init` writes it.
    pub key: PathBuf,
    /// Where the engine listens for the other replicas.
    pub listen: SocketAddr,
    /// The other replicas' `listen` addresses.
    pub peers: Vec<SocketAddr>,
    /// How long a round waits for its proposal, in milliseconds.
    pub propose_ms: u64,
    /// How long a round waits after a split prevote, in milliseconds.
    pub prevote_ms: u64,
    /// How long a round waits after a split precommit, in milliseconds.
    pub precommit_ms: u64,
    /// How much each timeout grows per failed round, in milliseconds.
    pub delta_ms: u64,
    /// How long a proposer with no transactions waits for some before it proposes an empty
    /// block, in milliseconds: the idle cluster's block interval.
    pub idle_block_ms: u64,
    /// Faults this replica commits on purpose, for fault tests; all off on a real venue.
    pub faults: FaultsSection,
}

/// `[consensus.faults]`: misbehaviour on purpose, to show that the other replicas withstand
/// it. Never set on a replica of a real venue; `verityd` warns at start when one is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsSection {
    /// Sign a second, conflicting vote for every vote (Malachite's Byzantine proxy).
    pub equivocate_votes: bool,
    /// Sign a second, conflicting proposal for every proposal (Malachite's Byzantine proxy).
    pub equivocate_proposals: bool,
    /// Send every vote with a signature that does not verify.
    pub invalid_vote_signatures: bool,
}

impl FaultsSection {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.equivocate_votes || self.equivocate_proposals || self.invalid_vote_signatures
    }
}

impl Default for ConsensusSection {
    /// Off; colocated timeouts: 500 ms to propose (a replica is a microsecond-to-millisecond
    /// hop away), 100 ms after a split vote, 100 ms more each round; an idle proposer waits
    /// 50 ms for transactions.
    fn default() -> Self {
        Self {
            enabled: false,
            key: "keys/validator.json".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7383)),
            peers: Vec::new(),
            propose_ms: 500,
            prevote_ms: 100,
            precommit_ms: 100,
            delta_ms: 100,
            idle_block_ms: 50,
            faults: FaultsSection::default(),
        }
    }
}

impl ConsensusSection {
    /// The engine's timeouts.
    pub fn timeouts(&self) -> Result<LinearTimeouts, ConfigError> {
        if self.propose_ms == 0 || self.prevote_ms == 0 || self.precommit_ms == 0 {
            return Err(ConfigError::Value {
                key: "consensus",
                reason: "propose_ms, prevote_ms and precommit_ms are at least 1",
            });
        }
        if self.idle_block_ms >= self.propose_ms {
            return Err(ConfigError::Value {
                key: "consensus.idle_block_ms",
                reason: "below propose_ms, or the other replicas give up on the proposal",
            });
        }
        let ms = Duration::from_millis;
        let (propose, prevote, precommit) = (
            ms(self.propose_ms),
            ms(self.prevote_ms),
            ms(self.precommit_ms),
        );
        Ok(LinearTimeouts {
            propose,
            propose_delta: ms(self.delta_ms),
            prevote,
            prevote_delta: ms(self.delta_ms),
            precommit,
            precommit_delta: ms(self.delta_ms),
            rebroadcast: propose + prevote + precommit,
            max_timeout: Duration::from_secs(60),
        })
    }
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        match read_at_most(path, CONFIG_LEN_MAX).map_err(read)? {
            Ok(text) => Self::parse(&text),
            Err(len) => Err(ConfigError::TooLong { len }),
        }
    }

    /// Parses and checks a configuration's text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if text.len() as u64 > CONFIG_LEN_MAX {
            return Err(ConfigError::TooLong {
                len: text.len() as u64,
            });
        }
        let config: Config = toml::from_str(text)?;
        config.pipeline_config()?;
        config.verifier.options()?;
        config.tcp_config()?;
        config.consensus.timeouts()?;
        config.record_config(Path::new("."))?;
        config.snapshots.check()?;
        Ok(config)
    }

    /// The pipeline's batching and bounds.
    pub fn pipeline_config(&self) -> Result<PipelineConfig, ConfigError> {
        let p = &self.pipeline;
        for (key, value) in [
            ("pipeline.block_max", p.block_max),
            ("pipeline.queue", p.queue),
            ("mempool.capacity", self.mempool.capacity),
        ] {
            if value == 0 {
                return Err(ConfigError::Value {
                    key,
                    reason: "at least 1",
                });
            }
        }
        Ok(PipelineConfig {
            verify_batch: p.verify_batch,
            verify_deadline: Duration::from_micros(p.verify_deadline_us),
            block_max: p.block_max,
            block_interval: Duration::from_micros(p.block_interval_us),
            queue: p.queue,
            mempool: MempoolConfig {
                capacity: self.mempool.capacity,
                window: self.mempool.window,
            },
        })
    }

    /// TCP ingress's bounds.
    pub fn tcp_config(&self) -> Result<TcpConfig, ConfigError> {
        if self.tcp.connections == 0 || self.tcp.pending == 0 {
            return Err(ConfigError::Value {
                key: "tcp",
                reason: "connections and pending are at least 1",
            });
        }
        Ok(TcpConfig {
            connections: self.tcp.connections,
            pending: self.tcp.pending,
            frame_timeout: Duration::from_millis(self.tcp.frame_timeout_ms),
            idle_timeout: Duration::from_millis(self.tcp.idle_timeout_ms),
        })
    }

    /// Recording's settings, its directory relative to `base`.
    pub fn record_config(&self, base: &Path) -> Result<RecordConfig, ConfigError> {
        let p = &self.pcap;
        if p.rotate_mib == 0 || p.queue == 0 {
            return Err(ConfigError::Value {
                key: "pcap",
                reason: "rotate_mib and queue are at least 1",
            });
        }
        Ok(RecordConfig {
            dir: base.join(&p.dir),
            rotate_bytes: p.rotate_mib.saturating_mul(1 << 20),
            keep: p.keep,
            queue: p.queue,
            on: p.record,
        })
    }

    /// UDP ingress's bounds.
    pub fn udp_config(&self) -> UdpConfig {
        UdpConfig {
            pending: self.udp.pending,
        }
    }

    /// This configuration as a TOML file with a comment on every key.
    pub fn template(&self) -> String {
        let quote = |p: &Path| toml_string(&p.display().to_string());
        let prefixes: Vec<String> = self.verifier.xdma_prefix.iter().map(|p| quote(p)).collect();
        let backend = self.verifier.backend.name();
        let mut out = String::new();
        let mut line = |text: String| {
            let _ = writeln!(out, "{text}");
        };
        line(
            "# verityd configuration. Every key may be left out; `verityd --print-config` prints"
                .into(),
        );
        line("# the defaults. Paths are relative to this file's directory.".into());
        line(String::new());
        line("# Where the store (blocks, receipts, state) lives.".into());
        line(format!("data_dir = {}", quote(&self.data_dir)));
        line("# The genesis file: chain id, assets, issuers, first balances.".into());
        line(format!("genesis = {}", quote(&self.genesis)));
        line(String::new());
        line("[listen]".into());
        line("# The HTTP API (JSON, /status, /metrics).".into());
        line(format!("http = \"{}\"", self.listen.http));
        line(
            "# TCP ingress: u32 little-endian length, then the transaction; one reply per frame."
                .into(),
        );
        line(format!("tcp = \"{}\"", self.listen.tcp));
        line("# UDP ingress: one transaction per datagram; one reply datagram.".into());
        line(format!("udp = \"{}\"", self.listen.udp));
        line(String::new());
        line("[verifier]".into());
        line(
            "# Where signatures are verified: cpu, model (slow, for checking), sim (the card's"
                .into(),
        );
        line(
            "# functional model), sim-cycle (the card's Verilog under Verilator), xdma (a card)."
                .into(),
        );
        line(format!("backend = \"{backend}\""));
        line("# Worker threads; 0 is one per core.".into());
        line(format!("threads = {}", self.verifier.threads));
        line("# Signatures per batch equation (cpu).".into());
        line(format!("batch = {}", self.verifier.batch));
        line("# Engines of the simulated card (sim), 1 to 254.".into());
        line(format!("engines = {}", self.verifier.engines));
        line("# The cards' XDMA device file prefixes: <prefix>user, <prefix>h2c_0, <prefix>c2h_0 (xdma).".into());
        line(format!("xdma_prefix = [{}]", prefixes.join(", ")));
        line(
            "# The CPU behind the cards: known-answer tests, fail-over and fail-back (xdma)."
                .into(),
        );
        line(format!("failover = {}", self.verifier.failover));
        line(
            "# How long a card may leave requests unanswered before it is failed, ms (xdma)."
                .into(),
        );
        line(format!(
            "response_timeout_ms = {}",
            self.verifier.response_timeout_ms
        ));
        line(String::new());
        line("[pipeline]".into());
        line(
            "# Signatures verified together (0: the backend's own batch; for cpu, threads × \
             batch of [verifier]), and how long a partial batch may wait (µs, from its oldest \
             submission)."
                .into(),
        );
        line(format!("verify_batch = {}", self.pipeline.verify_batch));
        line(format!(
            "verify_deadline_us = {}",
            self.pipeline.verify_deadline_us
        ));
        line(
            "# The most transactions in a block, and how long the first may wait for one (µs)."
                .into(),
        );
        line(format!("block_max = {}", self.pipeline.block_max));
        line(format!(
            "block_interval_us = {}",
            self.pipeline.block_interval_us
        ));
        line(
            "# Each queue between stages, in transactions; a full one pushes back on ingress."
                .into(),
        );
        line(format!("queue = {}", self.pipeline.queue));
        line(String::new());
        line("[mempool]".into());
        line("# The most transactions held; when full, the sender holding most loses its furthest nonce.".into());
        line(format!("capacity = {}", self.mempool.capacity));
        line("# How far past a sender's next nonce a transaction may wait.".into());
        line(format!("window = {}", self.mempool.window));
        line(String::new());
        line("[tcp]".into());
        line("# Connections served at once; more are closed at once.".into());
        line(format!("connections = {}", self.tcp.connections));
        line("# Frames per connection waiting for their outcome before reading stops.".into());
        line(format!("pending = {}", self.tcp.pending));
        line("# How long a started frame may take to arrive whole (ms), and a connection may stay silent (ms).".into());
        line(format!("frame_timeout_ms = {}", self.tcp.frame_timeout_ms));
        line(format!("idle_timeout_ms = {}", self.tcp.idle_timeout_ms));
        line(String::new());
        line("[udp]".into());
        line(
            "# Datagrams waiting for their outcome; beyond, new ones are dropped and counted."
                .into(),
        );
        line(format!("pending = {}", self.udp.pending));
        line(String::new());
        line("[log]".into());
        line(
            "# A tracing filter (info, debug, verity_host=debug,info); RUST_LOG overrides it."
                .into(),
        );
        line(format!("filter = {}", toml_string(&self.log.filter)));
        line(
            "# text for people, json (one object a line, span fields included) for log pipelines."
                .into(),
        );
        let format = match self.log.format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        line(format!("format = \"{format}\""));
        line(String::new());
        line("[snapshots]".into());
        line(
            "# A snapshot of the whole state every this many blocks (0: none), served to replicas"
                .into(),
        );
        line(
            "# that fall far behind (a multiple of 256: the heights whose roots headers carry); how"
                .into(),
        );
        line(
            "# many are kept: (keep - 1) × every at least 1024, since the block 1024 heights after a"
                .into(),
        );
        line("# snapshot certifies it and one kept must be certified.".into());
        line(format!("every = {}", self.snapshots.every));
        line(format!("keep = {}", self.snapshots.keep));
        line(
            "# Peers' HTTP APIs to fetch the newest certified snapshot from when starting with no"
                .into(),
        );
        line(
            "# data, or more than `behind` blocks behind it (the old data is moved aside).".into(),
        );
        let snapshot_peers: Vec<String> = self
            .snapshots
            .peers
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        line(format!("peers = [{}]", snapshot_peers.join(", ")));
        line(format!("behind = {}", self.snapshots.behind));
        line(String::new());
        line("[pcap]".into());
        line(
            "# Record every UDP datagram and TCP frame ingress receives to capture files (pcap,"
                .into(),
        );
        line(
            "# nanosecond timestamps; Wireshark reads them, `verity replay` sends them again)."
                .into(),
        );
        line("# Switched at run time with `verity pcap record on|off` (POST /admin/pcap).".into());
        line(format!("record = {}", self.pcap.record));
        line("# Where the files go: DIR/ingress-NNNNNN.pcap.".into());
        line(format!("dir = {}", quote(&self.pcap.dir)));
        line("# A new file past this many MiB; the newest `keep` are kept (0: all).".into());
        line(format!("rotate_mib = {}", self.pcap.rotate_mib));
        line(format!("keep = {}", self.pcap.keep));
        line(
            "# Packets waiting for the writer: beyond, they are left out of the recording and"
                .into(),
        );
        line(
            "# counted (verity_pcap_dropped_total); ingress never waits for the recording.".into(),
        );
        line(format!("queue = {}", self.pcap.queue));
        line(String::new());
        line("[capture]".into());
        line(
            "# Take transactions off this interface (a mirrored port) straight into the pipeline;"
                .into(),
        );
        line(
            "# empty: none. Needs CAP_NET_RAW. Keep this replica's own ingress out of the filter."
                .into(),
        );
        line(format!("iface = {}", toml_string(&self.capture.iface)));
        line(
            "# A BPF filter (tcpdump's syntax), e.g. \"udp dst port 7382\"; empty: every packet."
                .into(),
        );
        line(format!("filter = {}", toml_string(&self.capture.filter)));
        let c = &self.consensus;
        let peers: Vec<String> = c.peers.iter().map(|p| format!("\"{p}\"")).collect();
        line(String::new());
        line("[consensus]".into());
        line("# false: this replica orders alone. true: it orders with the genesis file's validators (BFT).".into());
        line(format!("enabled = {}", c.enabled));
        line("# This validator's key, as `verity init` writes it.".into());
        line(format!("key = {}", quote(&c.key)));
        line("# Where consensus listens for the other replicas, and their addresses.".into());
        line(format!("listen = \"{}\"", c.listen));
        line(format!("peers = [{}]", peers.join(", ")));
        line("# Timeouts (ms): waiting for a proposal, after a split prevote or precommit; each grows".into());
        line(
            "# by delta_ms per failed round. Colocated replicas need far less than WAN defaults."
                .into(),
        );
        line(format!("propose_ms = {}", c.propose_ms));
        line(format!("prevote_ms = {}", c.prevote_ms));
        line(format!("precommit_ms = {}", c.precommit_ms));
        line(format!("delta_ms = {}", c.delta_ms));
        line("# How long a proposer with no transactions waits for some before proposing an empty block (ms).".into());
        line(format!("idle_block_ms = {}", c.idle_block_ms));
        line(String::new());
        line("[consensus.faults]".into());
        line(
            "# Misbehaviour on purpose, for fault tests only: never on a real venue's replica."
                .into(),
        );
        line(
            "# Sign conflicting votes / proposals (equivocation), or votes with bad signatures."
                .into(),
        );
        line(format!("equivocate_votes = {}", c.faults.equivocate_votes));
        line(format!(
            "equivocate_proposals = {}",
            c.faults.equivocate_proposals
        ));
        line(format!(
            "invalid_vote_signatures = {}",
            c.faults.invalid_vote_signatures
        ));
        out
    }
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_template_reads_back_and_every_key_has_its_comment() {
        let default = Config::default();
        assert_eq!(Config::parse(&default.template()).expect("parses"), default);
        assert_eq!(Config::parse("").expect("parses"), default);
        let changed = Config {
            data_dir: "/var/lib/verity \"a\"".into(),
            verifier: VerifierConfig {
                backend: BackendKind::SimCycle,
                xdma_prefix: vec!["/dev/xdma0_".into(), "/dev/xdma1_".into()],
                ..VerifierConfig::default()
            },
            log: LogSection {
                filter: "verity_host=debug,info".into(),
                format: LogFormat::Json,
            },
            consensus: ConsensusSection {
                enabled: true,
                peers: vec![
                    SocketAddr::from(([10, 0, 0, 2], 7383)),
                    SocketAddr::from(([10, 0, 0, 3], 7383)),
                ],
                propose_ms: 250,
                faults: FaultsSection {
                    equivocate_votes: true,
                    ..FaultsSection::default()
                },
                ..ConsensusSection::default()
            },
            ..Config::default()
        };
        assert_eq!(Config::parse(&changed.template()).expect("parses"), changed);
        let template = default.template();
        let lines: Vec<&str> = template.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(" = ") {
                let commented = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|l| !l.is_empty() && !l.starts_with('['))
                    .any(|l| l.starts_with('#'));
                assert!(commented, "{line} has no comment above it");
            }
        }
    }

    #[test]
    fn defaults_match_the_command_line_and_the_stages() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            backend: BackendOptions,
        }
        for kind in <BackendKind as clap::ValueEnum>::value_variants() {
            let on_the_command_line = clap::ValueEnum::to_possible_value(kind).expect("named");
            assert_eq!(on_the_command_line.get_name(), kind.name());
            let in_a_file = format!("[verifier]\nbackend = \"{}\"", kind.name());
            assert_eq!(
                Config::parse(&in_a_file).expect("parses").verifier.backend,
                *kind
            );
        }
        let cli = Cli::parse_from(["verity"]).backend;
        let mut from_file = VerifierConfig::default().options().expect("valid");
        // The file's default is fail-over on; the command line's is off.
        from_file.failover = cli.failover;
        assert_eq!(format!("{from_file:?}"), format!("{cli:?}"));
        let config = Config::default();
        assert_eq!(
            config.pipeline_config().expect("valid"),
            PipelineConfig::default()
        );
        assert_eq!(config.tcp_config().expect("valid"), TcpConfig::default());
        assert_eq!(config.udp_config(), UdpConfig::default());
    }

    #[test]
    fn bad_configurations_are_refused_with_the_key() {
        for (text, expected) in [
            ("data_dri = \"x\"", "unknown field `data_dri`"),
            ("[verifier]\nbackend = \"gpu\"", "unknown variant `gpu`"),
            ("[verifier]\nbatch = 0", "verifier.batch: at least 1"),
            ("[verifier]\nengines = 0", "verifier.engines: 1 to 254"),
            (
                "[pipeline]\nblock_max = 0",
                "pipeline.block_max: at least 1",
            ),
            ("[listen]\nhttp = \"localhost\"", "invalid socket address"),
            ("[tcp]\npending = 0", "tcp: connections and pending"),
            ("[mempool]\ncapacity = 0", "mempool.capacity: at least 1"),
            ("[consensus]\npropose_ms = 0", "consensus: propose_ms"),
            (
                "[consensus]\nidle_block_ms = 500",
                "consensus.idle_block_ms: below",
            ),
            ("[consensus]\npeers = [\"x\"]", "invalid socket address"),
            ("[pcap]\nrotate_mib = 0", "pcap: rotate_mib and queue"),
            (
                "[snapshots]\nevery = 1000",
                "snapshots.every: a multiple of 256",
            ),
            (
                "[snapshots]\nevery = 256\nkeep = 2",
                "snapshots.keep: too few",
            ),
        ] {
            let error = Config::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let long = "#".repeat(CONFIG_LEN_MAX as usize + 1);
        assert!(matches!(
            Config::parse(&long),
            Err(ConfigError::TooLong { .. })
        ));
    }
}
