//! Starting the consensus engine: Malachite's actors (network, write-ahead log, consensus,
//! value sync) configured for colocated replicas, with [`App`] answering them.
//!
//! * **Network**: Malachite's libp2p transport on TCP, to the peers named in the
//!   configuration (no discovery: a venue's replicas are known). Each start takes a fresh
//!   network key; a validator proves it speaks for its consensus key with a signed
//!   validator proof.
//! * **Write-ahead log**: `consensus.wal` in the data directory, so a restarted validator
//!   does not sign against what it signed before the crash.
//! * **Value sync**: a replica behind fetches decided blocks with their certificates.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use malachitebft_app_channel::app::config::{
    ConsensusConfig, DiscoveryConfig, NodeConfig, P2pConfig, ValueSyncConfig,
};
use malachitebft_app_channel::app::net::Multiaddr;
use malachitebft_app_channel::app::types::Keypair;
use malachitebft_app_channel::{
    ByzantineContext, ConsensusContext, EngineBuilder, EngineHandle, NetworkContext,
    NetworkIdentity, RequestContext, SyncContext, WalContext,
};
use malachitebft_codec::Codec;
use malachitebft_signing::Signer;
use tokio::task::JoinHandle;
use tracing::{error, warn, Instrument};

use super::app::{App, AppConfig};
use super::codec::BorshCodec;
use super::context::{Address, BlockId, VerityContext};
use super::faults::{self, CorruptingSigner};
use super::keys::{PipelineVerifier, ValidatorSigner};
use crate::block_log::BlockLog;
use crate::config::FaultsSection;
use crate::sequence::Order;

/// The write-ahead log's file in the data directory.
pub const WAL_FILE: &str = "consensus.wal";

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
#[error("consensus: {0}")]
pub struct StartError(String);

/// Where the engine listens and whom it talks to.
#[derive(Clone, Debug)]
pub struct Network {
    /// This replica's name in logs.
    pub moniker: String,
    /// Where it listens.
    pub listen: SocketAddr,
    /// The other replicas.
    pub peers: Vec<SocketAddr>,
}

/// The engine's configuration, as Malachite takes it.
#[derive(Clone, Debug)]
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }

    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }

    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }

    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }

    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

fn multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
        std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
    };
    format!("{ip}/tcp/{}", addr.port())
        .parse()
        .expect("an IP and a port make a multiaddr")
}

impl EngineConfig {
    fn new(network: &Network) -> Self {
        let p2p = P2pConfig {
            listen_addr: multiaddr(network.listen),
            persistent_peers: network.peers.iter().copied().map(multiaddr).collect(),
            // Peers are named by address, not by network key (a fresh one each start), so
            // the engine cannot tell a configured peer dialling in from a stranger: it
            // accepts both and dials the configured ones. Consensus trusts signatures, not
            // connections: a stranger's messages count only if a validator signed them.
            persistent_peers_only: false,
            discovery: DiscoveryConfig {
                enabled: false,
                // Colocated replicas share an address (loopback in tests and demos).
                max_connections_per_ip: 64,
                ..DiscoveryConfig::default()
            },
            ..P2pConfig::default()
        };
        Self {
            moniker: network.moniker.clone(),
            consensus: ConsensusConfig {
                p2p,
                ..ConsensusConfig::default()
            },
            value_sync: ValueSyncConfig {
                // A replica behind learns of it within a second.
                status_update_interval: std::time::Duration::from_secs(1),
                request_timeout: std::time::Duration::from_secs(5),
                ..ValueSyncConfig::default()
            },
        }
    }
}

/// The running engine and the application task answering it.
pub struct Consensus {
    engine: EngineHandle,
    app: JoinHandle<()>,
}

impl Consensus {
    /// Starts the engine on the current tokio runtime. `orders` go to the sequence stage;
    /// `log` serves peers that sync; `verifier` checks every consensus signature.
    pub async fn start(
        network: &Network,
        data_dir: PathBuf,
        app: AppConfig,
        orders: crossbeam_channel::Sender<Order>,
        log: BlockLog,
        verifier: PipelineVerifier,
        faults: &FaultsSection,
    ) -> Result<Self, StartError> {
        if faults.invalid_vote_signatures {
            warn!("this replica signs its votes wrongly on purpose ([consensus.faults])");
        }
        let fail = |what: &str, e: &dyn std::fmt::Display| StartError(format!("{what}: {e}"));
        let ctx = VerityContext {
            chain_id: app.chain_id,
        };
        let key = app.key.clone();
        let public = key.0.verifying_key().to_bytes();
        let address = Address(public);
        let signer = ValidatorSigner::new(key, app.chain_id);
        let keypair = Keypair::generate_ed25519();
        let peer_id = keypair.public().to_peer_id().to_bytes();
        let proof = signer
            .sign_validator_proof(public.to_vec(), peer_id)
            .await
            .map_err(|e| fail("signing the validator proof", &e))?;
        let codec = BorshCodec::default();
        let proof: Bytes = codec
            .encode(&proof)
            .map_err(|e| fail("encoding the validator proof", &e))?;
        let identity = NetworkIdentity::new_validator(
            network.moniker.clone(),
            keypair,
            address.to_string(),
            proof,
        );
        let consensus_signer: Box<dyn Signer<VerityContext>> = if faults.invalid_vote_signatures {
            Box::new(CorruptingSigner(signer.clone()))
        } else {
            Box::new(signer.clone())
        };
        let consensus =
            ConsensusContext::new_validator(address, Box::new(verifier.clone()), consensus_signer);
        let builder = EngineBuilder::new(ctx, EngineConfig::new(network))
            .with_default_wal(WalContext::new(data_dir.join(WAL_FILE), codec));
        // The two networks make builders of different types; the rest is the same.
        macro_rules! finish {
            ($builder:expr) => {
                $builder
                    .with_default_consensus(consensus)
                    .with_default_sync(SyncContext::new(codec))
                    .with_default_request(RequestContext::new(100))
                    .build()
                    .await
                    .map_err(|e| fail("starting the engine", &e))?
            };
        }
        let (mut channels, engine) = match faults::byzantine(faults) {
            None => finish!(builder.with_default_network(NetworkContext::new(identity, codec))),
            Some(config) => {
                warn!(
                    ?config,
                    "this replica equivocates on purpose ([consensus.faults])"
                );
                let byzantine = ByzantineContext {
                    identity,
                    codec,
                    config,
                    signer: Box::new(signer),
                    address,
                    conflicting_value_fn: Some(Box::new(faults::conflicting)),
                    conflicting_vote_value_fn: Some(Box::new(|id: Option<&BlockId>| {
                        id.map_or(BlockId([0; 32]), faults::conflicting)
                    })),
                };
                finish!(builder
                    .with_byzantine_network(byzantine)
                    .await
                    .map_err(|e| fail("starting the faulty network", &e))?)
            }
        };
        let span = tracing::info_span!("consensus", moniker = %network.moniker);
        let app = App::new(app, orders, log, verifier);
        let app = tokio::spawn(
            async move {
                if let Err(e) = app.run(&mut channels).await {
                    error!(error = %e, "the consensus application stopped");
                }
            }
            .instrument(span),
        );
        Ok(Self { engine, app })
    }

    /// Stops the engine and the application.
    pub async fn stop(self) {
        let _ = self.engine.actor.kill_and_wait(None).await;
        self.app.abort();
        self.engine.handle.abort();
    }
}
