//! The application side of the consensus engine: what a replica answers when Malachite asks.
//!
//! ```text
//! engine ─ GetValue ───────────▶ sequence stage builds a block ─▶ streamed as parts
//! engine ─ ReceivedProposalPart ▶ streams ─▶ block ─▶ proposer's and transactions' signatures
//!                                                     checked on the pipeline's verifier
//! engine ─ Decided ────────────▶ sequence stage executes and commits it with its certificate
//! engine ─ GetDecidedValues ───▶ block log (blocks and certificates), for peers that sync
//! engine ─ ProcessSyncedValue ─▶ the same checks as a proposal
//! ```
//!
//! A proposed block is valid when its header is for its height and carries this replica's
//! state root at the root height (`block`), and every one of its transactions decodes, is
//! signed for this chain, and carries a valid signature (ZIP-215, on the card or the CPU). Whether a
//! transaction then applies (its nonce, its funds) is execution's business and lands in its
//! receipt: a valid block never fails to execute, so every replica commits every decided
//! block.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, ProposedValue};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use malachitebft_codec::Codec;
use malachitebft_core_consensus::MisbehaviorEvidence;
use malachitebft_core_types::{
    CommitCertificate, ExtendedCommitCertificate, LinearTimeouts, Round, Validity, VoteExtensions,
};
use malachitebft_engine::util::streaming::{StreamContent, StreamId, StreamMessage};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::codec::BorshCodec;
use super::context::{Address, BlockId, Height, PrivateKey, ValidatorSet, VerityContext};
use super::evidence::Misbehaviour;
use super::keys::PipelineVerifier;
use super::parts::{fin_bytes, split, Assembled, Header};
use super::streams::Streams;
use crate::block;
use crate::block_log::BlockLog;
use crate::sequence::Order;
use crate::transaction::{self, TX_LEN};

/// The most decided blocks served in one sync response.
const SYNC_BATCH_MAX: u64 = 8;

/// What the application needs.
pub struct AppConfig {
    /// The chain (venue) id.
    pub chain_id: u32,
    /// This validator's key.
    pub key: PrivateKey,
    /// The validators, from genesis.
    pub validators: ValidatorSet,
    /// The engine's timeouts.
    pub timeouts: LinearTimeouts,
    /// The most transactions in a block.
    pub block_max: usize,
    /// How long a proposer with no transactions waits for some.
    pub idle_block: Duration,
}

/// The application.
pub struct App {
    config: AppConfig,
    address: Address,
    orders: Sender<Order>,
    log: BlockLog,
    verifier: PipelineVerifier,
    codec: BorshCodec,
    streams: Streams,
    /// Blocks proposed or received and valid, not yet decided.
    blocks: BTreeMap<(Height, BlockId), Vec<u8>>,
    /// Proposals received and checked, by (height, round), for a restarted round.
    proposals: BTreeMap<(Height, Round), Vec<ProposedValue<VerityContext>>>,
}

/// Why the application stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The sequence stage is gone.
    #[error("the sequence stage stopped")]
    SequenceStopped,
    /// The engine's network channel is closed.
    #[error("the engine's network channel closed")]
    NetworkClosed,
}

impl App {
    /// An application over the sequence stage's `orders`, the block `log` and `verifier`.
    pub fn new(
        config: AppConfig,
        orders: Sender<Order>,
        log: BlockLog,
        verifier: PipelineVerifier,
    ) -> Self {
        let address = Address(config.key.0.verifying_key().to_bytes());
        let streams = Streams::new(config.block_max);
        Self {
            config,
            address,
            orders,
            log,
            verifier,
            codec: BorshCodec::default(),
            streams,
            blocks: BTreeMap::new(),
            proposals: BTreeMap::new(),
        }
    }

    fn params(&self) -> HeightParams<VerityContext> {
        HeightParams::new(self.config.validators.clone(), self.config.timeouts, None)
    }

    /// The next height to decide: the log's head's successor.
    fn next_height(&self) -> Height {
        Height(self.log.head().ok().flatten().unwrap_or(0) + 1)
    }

    /// Answers the engine until it stops.
    pub async fn run(mut self, channels: &mut Channels<VerityContext>) -> Result<(), AppError> {
        while let Some(message) = channels.consensus.recv().await {
            self.handle(message, channels).await?;
        }
        Ok(())
    }

    async fn handle(
        &mut self,
        message: AppMsg<VerityContext>,
        channels: &mut Channels<VerityContext>,
    ) -> Result<(), AppError> {
        match message {
            AppMsg::ConsensusReady { reply } => {
                let height = self.next_height();
                info!(%height, "consensus ready");
                let _ = reply.send((height, self.params()));
            }
            AppMsg::StartedRound {
                height,
                round,
                proposer,
                reply_value,
                ..
            } => {
                debug!(%height, %round, %proposer, "round started");
                let known = self
                    .proposals
                    .get(&(height, round))
                    .cloned()
                    .unwrap_or_default();
                let _ = reply_value.send(known);
            }
            AppMsg::GetValue {
                height,
                round,
                timeout,
                reply,
            } => {
                let block = match self.build(timeout).await? {
                    Ok(block) => block,
                    Err(reason) => {
                        // No value: the round's propose timeout moves it to the next proposer.
                        warn!(%height, %round, %reason, "nothing to propose");
                        return Ok(());
                    }
                };
                let id = BlockId::of(&block);
                debug!(%height, %round, bytes = block.len(), block = %id, "proposing");
                let _ = reply.send(LocallyProposedValue::new(height, round, id));
                self.stream(height, round, Round::Nil, &block, channels)
                    .await?;
                self.blocks.insert((height, id), block);
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                // Verity extends no vote: whatever extension arrives is refused.
                let verdicts = extensions
                    .into_iter()
                    .map(|(address, _)| {
                        (
                            address,
                            Err(malachitebft_core_consensus::VoteExtensionError::InvalidVoteExtension),
                        )
                    })
                    .collect();
                let _ = reply.send(verdicts);
            }
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                address,
                value_id,
            } => {
                let block = self.blocks.get(&(height, value_id)).cloned();
                match block {
                    Some(block) if address == self.address => {
                        self.stream(height, round, valid_round, &block, channels)
                            .await?;
                    }
                    _ => debug!(%height, %round, "nothing of ours to restream"),
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                // A replica that started from a snapshot holds blocks from there on.
                let first = self.log.first().ok().flatten().unwrap_or(0);
                let _ = reply.send(Height(first.max(1)));
            }
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                let publisher = published_by.unwrap_or(from);
                let value = match self.streams.push(publisher, part) {
                    Ok(Some(assembled)) => self.received(assembled).await,
                    Ok(None) => None,
                    Err(error) => {
                        metrics::counter!("verity_consensus_rejected_total", "reason" => "parts")
                            .increment(1);
                        warn!(%from, %error, "proposal parts refused");
                        None
                    }
                };
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate, reply, ..
            } => {
                self.decided(certificate).await?;
                let _ = reply.send(());
            }
            AppMsg::Finalized {
                certificate,
                evidence,
                reply,
                ..
            } => {
                self.record(certificate.height, &evidence);
                let next = self.next_height();
                let params = self.params();
                let _ = reply.send(if next > certificate.height {
                    Next::Start(next, params)
                } else {
                    // The decided block did not commit: decide it again.
                    Next::Restart(certificate.height, params)
                });
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let _ = reply.send(self.decided_values(range));
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = match self.check_block(height, &value_bytes).await {
                    Err(CheckFailure::Malformed(reason)) => {
                        warn!(%height, %reason, "a synced block is malformed");
                        SyncedValueOutcome::PeerFault
                    }
                    Err(CheckFailure::Unavailable(reason)) => {
                        warn!(%height, %reason, "a synced block could not be checked");
                        SyncedValueOutcome::LocalTransientError
                    }
                    Ok(validity) => {
                        let id = BlockId::of(&value_bytes);
                        if validity == Validity::Valid {
                            self.blocks.insert((height, id), value_bytes.to_vec());
                        }
                        SyncedValueOutcome::Verdict(ProposedValue {
                            height,
                            round,
                            valid_round: Round::Nil,
                            proposer,
                            value: id,
                            validity,
                        })
                    }
                };
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }

    /// A block from the mempool, through the sequence stage, or why there is none.
    async fn build(&self, timeout: Duration) -> Result<Result<Vec<u8>, String>, AppError> {
        let (reply, block) = oneshot::channel();
        // At most half the engine's allowance: the rest is for streaming the parts.
        let order = Order::Propose {
            wait: self.config.idle_block.min(timeout / 2),
            reply,
        };
        self.orders
            .send(order)
            .map_err(|_| AppError::SequenceStopped)?;
        block.await.map_err(|_| AppError::SequenceStopped)
    }

    /// Publishes `block`'s parts, signed by this validator.
    async fn stream(
        &self,
        height: Height,
        round: Round,
        pol_round: Round,
        block: &[u8],
        channels: &Channels<VerityContext>,
    ) -> Result<(), AppError> {
        let header = Header {
            height,
            round,
            pol_round,
            proposer: self.address,
        };
        let mut id = height.0.to_be_bytes().to_vec();
        id.extend_from_slice(&round.as_i64().to_be_bytes());
        let stream = StreamId::new(Bytes::from(id));
        let parts = split(&self.config.key, self.config.chain_id, header, block);
        let contents = parts
            .into_iter()
            .map(StreamContent::Data)
            .chain([StreamContent::Fin]);
        for (sequence, content) in contents.enumerate() {
            let message = StreamMessage::new(stream.clone(), sequence as u64, content);
            channels
                .network
                .send(NetworkMsg::PublishProposalPart(message))
                .await
                .map_err(|_| AppError::NetworkClosed)?;
        }
        Ok(())
    }

    /// Checks a block that arrived whole: its proposer's signature over its parts, then its
    /// transactions. `None` when the parts are not the proposer's (nothing to vote on).
    async fn received(&mut self, assembled: Assembled) -> Option<ProposedValue<VerityContext>> {
        let Assembled {
            header,
            block,
            id,
            signature,
        } = assembled;
        let signed = fin_bytes(self.config.chain_id, &header, id);
        let verdicts = self
            .verifier
            .check_all(vec![(header.proposer.0, signature.0, signed)])
            .await;
        if !matches!(verdicts.as_deref(), Ok([verity_drivers::Verdict::Valid])) {
            metrics::counter!("verity_consensus_rejected_total", "reason" => "parts_signature")
                .increment(1);
            warn!(height = %header.height, proposer = %header.proposer, "proposal parts not signed by their proposer");
            return None;
        }
        let validity = match self.check_block(header.height, &block).await {
            Ok(validity) => validity,
            Err(failure) => {
                warn!(height = %header.height, ?failure, "a proposed block is refused");
                match failure {
                    CheckFailure::Malformed(_) => Validity::Invalid,
                    // No verdict, no vote: the round's timeout decides.
                    CheckFailure::Unavailable(_) => return None,
                }
            }
        };
        debug!(height = %header.height, round = %header.round, block = %id, ?validity, "proposal received");
        let value = ProposedValue {
            height: header.height,
            round: header.round,
            valid_round: header.pol_round,
            proposer: header.proposer,
            value: id,
            validity,
        };
        if validity == Validity::Valid {
            self.blocks.insert((header.height, id), block);
        }
        self.proposals
            .entry((header.height, header.round))
            .or_default()
            .push(value.clone());
        Some(value)
    }

    /// Whether block `height` is valid here: its header is for that height and carries this
    /// replica's state root at the root height; its transactions are all well formed, for
    /// this chain and validly signed.
    async fn check_block(&self, height: Height, block: &[u8]) -> Result<Validity, CheckFailure> {
        let (header, transactions) =
            block::split(block).map_err(|e| CheckFailure::Malformed(e.to_string()))?;
        if header.height != height.0 {
            warn!(%height, header = header.height, "a block for another height");
            return Ok(Validity::Invalid);
        }
        let (reply, root) = oneshot::channel();
        self.orders
            .send(Order::Root {
                height: header.root_height,
                reply,
            })
            .map_err(|_| CheckFailure::Unavailable("the sequence stage stopped".to_owned()))?;
        let ours = root
            .await
            .map_err(|_| CheckFailure::Unavailable("the sequence stage stopped".to_owned()))?
            .map_err(CheckFailure::Unavailable)?;
        // None: a height before the snapshot this replica started from, which it cannot
        // check (the block's certificate will vouch).
        if ours.is_some_and(|ours| ours != header.state_root) {
            metrics::counter!("verity_consensus_rejected_total", "reason" => "state_root")
                .increment(1);
            warn!(%height, root_height = header.root_height, "a block whose state root is not ours");
            return Ok(Validity::Invalid);
        }
        let mut signed = Vec::with_capacity(transactions.len() / TX_LEN);
        for (index, tx) in transaction::split_all(transactions).enumerate() {
            if index == self.config.block_max {
                return Err(CheckFailure::Malformed(format!(
                    "a block of more than {} transactions",
                    self.config.block_max
                )));
            }
            let tx =
                tx.map_err(|e| CheckFailure::Malformed(format!("transaction {index}: {e}")))?;
            if tx.chain_id() != self.config.chain_id {
                return Ok(Validity::Invalid);
            }
            let message = tx.signed();
            signed.extend(
                tx.signatures()
                    .map(|(key, signature)| (key, signature, message.to_vec())),
            );
        }
        let verdicts = self
            .verifier
            .check_all(signed)
            .await
            .map_err(|e| CheckFailure::Unavailable(e.to_string()))?;
        Ok(
            if verdicts
                .iter()
                .all(|v| *v == verity_drivers::Verdict::Valid)
            {
                Validity::Valid
            } else {
                metrics::counter!("verity_consensus_rejected_total", "reason" => "block_signature")
                    .increment(1);
                Validity::Invalid
            },
        )
    }

    /// Commits a decided block with its certificate.
    async fn decided(
        &mut self,
        mut certificate: CommitCertificate<VerityContext>,
    ) -> Result<(), AppError> {
        let height = certificate.height;
        // Stored in one order whatever order the precommits arrived in.
        certificate.commit_signatures.sort_by_key(|s| s.address);
        let Some(block) = self.blocks.get(&(height, certificate.value_id)).cloned() else {
            // The engine decides only values it was given; if this one is missing, the next
            // height does not start and sync fetches it from a peer.
            warn!(%height, block = %certificate.value_id, "decided a block this replica does not hold");
            return Ok(());
        };
        let encoded = match self.codec.encode(&certificate) {
            Ok(encoded) => encoded.to_vec(),
            Err(error) => {
                warn!(%height, %error, "the certificate does not encode");
                return Ok(());
            }
        };
        let (reply, committed) = oneshot::channel();
        self.orders
            .send(Order::Commit {
                height: height.0,
                block,
                certificate: encoded,
                reply,
            })
            .map_err(|_| AppError::SequenceStopped)?;
        match committed.await.map_err(|_| AppError::SequenceStopped)? {
            Ok(_) => {
                debug!(%height, round = %certificate.round, block = %certificate.value_id,
                    signatures = certificate.commit_signatures.len(), "decided");
                // What is decided no longer needs its undecided rivals.
                self.blocks = self
                    .blocks
                    .split_off(&(Height(height.0 + 1), BlockId([0; 32])));
                self.proposals = self
                    .proposals
                    .split_off(&(Height(height.0 + 1), Round::Nil));
            }
            Err(error) => warn!(%height, %error, "the decided block did not commit"),
        }
        Ok(())
    }

    /// Logs, counts and stores the evidence of misbehaviour collected up to `height`.
    fn record(&self, height: Height, evidence: &MisbehaviorEvidence<VerityContext>) {
        let found = Misbehaviour::all(evidence);
        if found.is_empty() {
            return;
        }
        for item in &found {
            let view = item.view();
            metrics::counter!("verity_consensus_misbehaviour_total", "kind" => view.kind.clone())
                .increment(1);
            warn!(height = view.height, round = view.round, validator = %view.validator,
                kind = %view.kind, values = ?view.values, "misbehaviour: evidence stored");
        }
        let encoded: Vec<Vec<u8>> = found
            .iter()
            .filter_map(|item| borsh::to_vec(item).ok())
            .collect();
        if let Err(error) = self.log.record_evidence(height.0, &encoded) {
            warn!(%height, %error, "the evidence could not be stored");
        }
    }

    /// Decided blocks with their certificates, for a peer that syncs.
    fn decided_values(&self, range: RangeInclusive<Height>) -> Vec<RawDecidedValue<VerityContext>> {
        let (start, end) = (range.start().0, range.end().0);
        let end = end.min(start.saturating_add(SYNC_BATCH_MAX - 1));
        let mut values = Vec::new();
        for height in start..=end {
            let (Ok(Some(block)), Ok(Some(certificate))) =
                (self.log.block(height), self.log.certificate(height))
            else {
                break;
            };
            let Ok(certificate) = Codec::<CommitCertificate<VerityContext>>::decode(
                &self.codec,
                Bytes::from(certificate),
            ) else {
                warn!(height, "a stored certificate does not decode");
                break;
            };
            let certificate = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                certificate,
                VoteExtensions::default(),
            );
            values.push(RawDecidedValue::new(Bytes::from(block), certificate));
        }
        values
    }
}

/// Why a block's transactions got no verdict.
#[derive(Debug)]
enum CheckFailure {
    /// They are not transactions.
    Malformed(String),
    /// The verifier could not answer.
    Unavailable(String),
}
