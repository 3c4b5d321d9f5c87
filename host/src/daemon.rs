//! `verityd`: one replica, assembled from its configuration.
//!
//! ```text
//! TCP ─────┐
//! UDP ─────┤ (each datagram and frame offered to the recorder ─▶ pcap files)
//! capture ─┼─▶ Pipeline (verify ─▶ sequence ─▶ chain) ─▶ store ◀─ HTTP reads
//! HTTP ────┘
//! ```
//!
//! [`Daemon::start`] opens the chain (committing genesis on a new store), starts the
//! verifier and the pipeline, and binds the three listeners (and the capture, if configured);
//! [`Daemon::stop`] stops the HTTP server, closes the recording, lets the pipeline commit what
//! it holds, and returns the head. Whatever a client
//! was told was committed is on disk before it was told, so `kill -9` loses nothing
//! acknowledged.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::api::server::{self, ApiState};
use crate::block_log::BlockLog;
use crate::chain::{Chain, SNAPSHOTS_DIR};
use crate::cli::keygen::KeyFile;
use crate::config::Config;
use crate::consensus::app::AppConfig;
use crate::consensus::context::PrivateKey;
use crate::consensus::keys::PipelineVerifier;
use crate::consensus::node::{Consensus, Network};
use crate::genesis::Genesis;
use crate::ingress::{tcp, udp};
use crate::pipeline::{Pipeline, VerifierStatus};
use crate::sequence::{Order, Ordering};
use crate::snapshot::Snapshots;
use crate::state_sync;
use crate::traffic::recorder::Recorder;

/// A running replica.
pub struct Daemon {
    /// Where the HTTP API listens.
    pub http: SocketAddr,
    /// Where TCP ingress listens.
    pub tcp: SocketAddr,
    /// Where UDP ingress listens.
    pub udp: SocketAddr,
    pipeline: Arc<Pipeline>,
    runtime: tokio::runtime::Runtime,
    stop_http: Option<oneshot::Sender<()>>,
    http_done: Option<tokio::task::JoinHandle<()>>,
    consensus: Option<Consensus>,
    recorder: Arc<Recorder>,
}

impl Daemon {
    /// Starts a replica on `config`, whose relative paths are relative to `base`.
    pub fn start(config: &Config, base: &Path) -> anyhow::Result<Self> {
        // Before any stage starts, so that no early count is lost.
        server::prometheus();
        let genesis_path = base.join(&config.genesis);
        let genesis = Genesis::read(&genesis_path)
            .with_context(|| format!("genesis {}", genesis_path.display()))?;
        let data = base.join(&config.data_dir);
        let options = config.verifier.options()?;
        if config.consensus.enabled && !config.snapshots.peers.is_empty() {
            // Empty or far behind: join from the newest certified snapshot.
            let mut verifier = options.open().context("starting the verifier")?;
            let behind = config.snapshots.behind;
            let peers = &config.snapshots.peers;
            match state_sync::join(peers, &data, behind, &genesis, verifier.as_mut()) {
                Ok(Some(synced)) => info!(
                    height = synced.height,
                    accounts = synced.accounts,
                    bytes = synced.bytes,
                    "joined from a snapshot"
                ),
                Ok(None) => {}
                Err(error) => warn!(%error, "no snapshot: catching up block by block"),
            }
        }
        let mut chain = Chain::open(&data, &genesis)
            .with_context(|| format!("opening the chain in {}", data.display()))?;
        chain.snapshot_every(&data, config.snapshots.every, config.snapshots.keep);
        let (store, log) = (chain.store().clone(), chain.log().clone());
        let height = chain.height();
        let root = store.head()?.map(|(_, root)| root).unwrap_or_default();
        let verifier = options.open().context("starting the verifier")?;
        let pipeline_config = config.pipeline_config()?;
        let (ordering, orders) = if config.consensus.enabled {
            let (orders, ordered) = crossbeam_channel::bounded(16);
            (Ordering::Consensus(ordered), Some(orders))
        } else {
            (Ordering::Local, None)
        };
        let pipeline = Arc::new(Pipeline::start(verifier, chain, ordering, pipeline_config));

        let bind = |what: &str, addr: SocketAddr| format!("binding {what} ingress to {addr}");
        let tcp_listener =
            TcpListener::bind(config.listen.tcp).with_context(|| bind("TCP", config.listen.tcp))?;
        let (recorder, record_writer) = Recorder::new(&config.record_config(base)?);
        record_writer
            .spawn()
            .context("starting the recording writer")?;
        let tcp = tcp::serve(
            tcp_listener,
            Arc::clone(&pipeline),
            config.tcp_config()?,
            Arc::clone(&recorder),
        )?;
        let udp_socket =
            UdpSocket::bind(config.listen.udp).with_context(|| bind("UDP", config.listen.udp))?;
        let udp = udp::serve(
            udp_socket,
            Arc::clone(&pipeline),
            config.udp_config(),
            Arc::clone(&recorder),
        )?;

        let capture = &config.capture;
        if !capture.iface.is_empty() {
            let filter = Some(capture.filter.as_str()).filter(|f| !f.is_empty());
            crate::ingress::capture::serve(
                &capture.iface,
                filter,
                Arc::clone(&pipeline),
                Arc::clone(&recorder),
            )
            .context("[capture]")?;
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("http")
            .enable_all()
            .build()
            .context("starting the HTTP runtime")?;
        let http_listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.listen.http))
            .with_context(|| format!("binding the HTTP API to {}", config.listen.http))?;
        let http = http_listener.local_addr()?;
        let consensus = match orders {
            Some(orders) => Some(runtime.block_on(start_consensus(
                config,
                base,
                &genesis,
                &pipeline,
                orders,
                log.clone(),
                pipeline_config.block_max,
            ))?),
            None => None,
        };
        let router = server::router(Arc::new(ApiState {
            pipeline: Arc::clone(&pipeline),
            store,
            log,
            snapshots: Snapshots::new(&data.join(SNAPSHOTS_DIR)),
            chain_id: genesis.rules.chain_id,
            recorder: Arc::clone(&recorder),
            rules: genesis.rules.clone(),
        }));
        let (stop_http, stopped) = oneshot::channel::<()>();
        let http_done = runtime.spawn(async move {
            let served = axum::serve(http_listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the HTTP API stopped");
            }
        });
        let VerifierStatus { backend, state } = pipeline.verifier_status();
        info!(
            %http, %tcp, %udp, height, state_root = %hex::encode(root),
            backend = options.describe(), "verityd started"
        );
        info!(
            backend,
            state = state.name(),
            reason = state.reason(),
            "verifier"
        );
        Ok(Self {
            http,
            tcp,
            udp,
            pipeline,
            runtime,
            stop_http: Some(stop_http),
            http_done: Some(http_done),
            consensus,
            recorder,
        })
    }

    /// The pipeline, for the verifier's status.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Stops the HTTP API, lets the pipeline commit what it holds, and returns the head.
    pub fn stop(mut self) -> anyhow::Result<(u64, [u8; 32])> {
        if let Some(stop) = self.stop_http.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.http_done.take() {
            let _ = self.runtime.block_on(done);
        }
        if let Some(consensus) = self.consensus.take() {
            self.runtime.block_on(consensus.stop());
        }
        self.recorder.close();
        let chain = self
            .pipeline
            .stop()
            .context("the pipeline was already stopped")?;
        let (height, root) = chain.close()?;
        info!(height, state_root = %hex::encode(root), "verityd stopped");
        Ok((height, root))
    }
}

/// Starts the consensus engine on the daemon's runtime: this validator's key, the genesis
/// file's validators, the configured peers.
async fn start_consensus(
    config: &Config,
    base: &Path,
    genesis: &Genesis,
    pipeline: &Pipeline,
    orders: crossbeam_channel::Sender<Order>,
    log: BlockLog,
    block_max: usize,
) -> anyhow::Result<Consensus> {
    let c = &config.consensus;
    let key_path = base.join(&c.key);
    let key = KeyFile::load(&key_path).context("consensus.key")?;
    let validators = genesis.validator_set().context("genesis validators")?;
    let public = key.verifying_key().to_bytes();
    anyhow::ensure!(
        validators
            .validators()
            .iter()
            .any(|v| v.address.0 == public),
        "consensus.key {} ({}) is not one of the genesis file's validators",
        key_path.display(),
        hex::encode(public)
    );
    let chain_id = genesis.rules.chain_id;
    let network = Network {
        moniker: format!("verity-{}", &hex::encode(public)[..8]),
        listen: c.listen,
        peers: c.peers.clone(),
    };
    let app = AppConfig {
        chain_id,
        key: PrivateKey(key),
        validators,
        timeouts: c.timeouts()?,
        block_max,
        idle_block: std::time::Duration::from_millis(c.idle_block_ms),
    };
    let verifier = PipelineVerifier::new(pipeline.checker(), chain_id);
    let consensus = Consensus::start(
        &network,
        base.join(&config.data_dir),
        app,
        orders,
        log,
        verifier,
        &c.faults,
    )
    .await?;
    info!(listen = %c.listen, peers = c.peers.len(), "consensus started");
    Ok(consensus)
}

/// The line `verityd` prints to standard output once it listens:
/// `ready http=ADDR tcp=ADDR udp=ADDR verifier=NAME (STATE)`. Scripts, `verity demo` and the
/// tests read it back with [`Ready::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The HTTP API.
    pub http: SocketAddr,
    /// TCP ingress.
    pub tcp: SocketAddr,
    /// UDP ingress.
    pub udp: SocketAddr,
    /// The verifier serving, and its state or why it is not ready.
    pub verifier: String,
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ready http={} tcp={} udp={} verifier={}",
            self.http, self.tcp, self.udp, self.verifier
        )
    }
}

/// `key=value` from a status line.
fn field<'a>(line: &'a str, key: &str) -> Result<&'a str, String> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        .ok_or_else(|| format!("{line:?} has no {key}="))
}

impl Ready {
    /// Reads a ready line back.
    pub fn parse(line: &str) -> Result<Self, String> {
        if !line.starts_with("ready ") {
            return Err(format!("{line:?} is not verityd's ready line"));
        }
        let addr = |key| field(line, key)?.parse().map_err(|e| format!("{key}: {e}"));
        Ok(Self {
            http: addr("http")?,
            tcp: addr("tcp")?,
            udp: addr("udp")?,
            verifier: line
                .split_once("verifier=")
                .map_or("", |(_, v)| v.trim())
                .to_owned(),
        })
    }
}

/// The line `verityd` prints when it has stopped cleanly: `stopped height=H state_root=R`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The last committed height.
    pub height: u64,
    /// The state root after it.
    pub state_root: [u8; 32],
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped height={} state_root={}",
            self.height,
            hex::encode(self.state_root)
        )
    }
}

impl Stopped {
    /// Reads a stopped line back.
    pub fn parse(line: &str) -> Result<Self, String> {
        let height = field(line, "height")?
            .parse()
            .map_err(|e| format!("height: {e}"))?;
        let root = field(line, "state_root")?;
        let state_root = crate::api::hex32(root)
            .ok_or_else(|| format!("state_root {root:?} is not 32 bytes of hex"))?;
        Ok(Self { height, state_root })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_lines_read_back() {
        let ready = Ready {
            http: SocketAddr::from(([127, 0, 0, 1], 7380)),
            tcp: SocketAddr::from(([127, 0, 0, 1], 7381)),
            udp: SocketAddr::from(([127, 0, 0, 1], 7382)),
            verifier: "cpu (0 of 1 cards serving: no such device file)".to_owned(),
        };
        assert_eq!(Ready::parse(&ready.to_string()), Ok(ready));
        let stopped = Stopped {
            height: 12,
            state_root: [0xab; 32],
        };
        assert_eq!(Stopped::parse(&stopped.to_string()), Ok(stopped));
        assert!(Ready::parse("stopped height=1").is_err());
        assert!(Ready::parse("ready http=x tcp=1.2.3.4:5 udp=1.2.3.4:6").is_err());
        assert!(Stopped::parse("stopped height=1 state_root=zz").is_err());
    }
}
