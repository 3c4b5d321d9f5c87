//! The HTTP API's routes (axum): the pipeline for submissions, the store for reads.
//!
//! Reads go to the store, not the sequence stage: each is one redb snapshot, so a reader
//! never holds up a commit. Bodies are bounded ([`BODY_LIMIT`]) before they are parsed, and
//! every refusal is counted (`verity_http_rejected_total{reason}`).

use std::sync::{Arc, OnceLock};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::warn;

use malachitebft_codec::Codec;
use malachitebft_core_types::CommitCertificate;

use super::{
    hex32, AccountState, ApiError, Block, BlockTx, CertificateView, CommitSignatureView,
    FailureView, MarkView, QuoteView, Status, Submit, Submitted, TxReceipt, VerifierView,
};
use crate::block;
use crate::block_log::BlockLog;
use crate::consensus::certified::CertifiedBlock;
use crate::consensus::codec::BorshCodec;
use crate::consensus::context::{BlockId, VerityContext};
use crate::consensus::evidence::{EvidenceView, Misbehaviour};
use crate::derivatives::mark::median_of_fresh;
use crate::ingress::MAX_FRAME;
use crate::ledger::{Account, AccountId, Failure, Ledger, Quote, Rules};
use crate::pipeline::{Outcome, Pipeline};
use crate::snapshot::{Manifest, Snapshots};
use crate::store::{Store, StoreError};
use crate::traffic::recorder::{RecordSwitch, Recorder};
use crate::transaction::{self, Body, Payload, TxId, TX_LEN};

/// The largest request body read.
pub const BODY_LIMIT: usize = 16 << 10;

/// What the handlers share.
pub struct ApiState {
    /// Where submissions go.
    pub pipeline: Arc<Pipeline>,
    /// Where state reads come from.
    pub store: Store,
    /// Where blocks come from.
    pub log: BlockLog,
    /// Where snapshots come from.
    pub snapshots: Snapshots,
    /// The chain id, for `/status`.
    pub chain_id: u32,
    /// Ingress recording, switched by `/admin/pcap`.
    pub recorder: Arc<Recorder>,
    /// The genesis rules: the oracles for `/v1/marks`, the book for accounts' margins.
    pub rules: Rules,
}

/// Makes reads of the state see every block a client has been told about: the state stage
/// may hold the newest ones (`chain::STATE_HOLD`). A stopped stage leaves what it committed,
/// which is then what is read.
fn settle(state: &ApiState) {
    if let Err(error) = state.pipeline.flush_state() {
        tracing::debug!(%error, "the state stage did not flush");
    }
}

/// The process's Prometheus recorder, installed on first use, with histogram buckets for
/// every `*_seconds` metric (10 µs to 10 s).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1,
            0.25, 0.5, 1.0, 2.5, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            warn!("a metrics recorder was already installed: /metrics shows only this one's");
        }
        handle
    })
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/transactions", post(submit))
        .route("/v1/transactions/{id}", get(transaction))
        .route("/v1/accounts/{key}", get(account))
        .route("/v1/marks/{asset}", get(mark))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/blocks/{height}/certified", get(certified_block))
        .route("/v1/evidence", get(evidence))
        .route("/v1/snapshots", get(snapshots))
        .route("/v1/snapshots/{height}/chunks/{index}", get(snapshot_chunk))
        .route("/status", get(status))
        .route("/metrics", get(metrics_text))
        .route("/admin/pcap", get(recording).post(switch_recording))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// A JSON body that is not the `expected` shape.
fn bad_body(rejection: &JsonRejection, expected: &str) -> Response {
    refuse(
        rejection.status(),
        "body",
        format!("expected {expected}: {}", rejection.body_text()),
    )
}

fn refuse(status: StatusCode, reason: &'static str, error: String) -> Response {
    metrics::counter!("verity_http_rejected_total", "reason" => reason).increment(1);
    (status, Json(ApiError { error })).into_response()
}

fn store_failed(error: &StoreError) -> Response {
    warn!(%error, "a read failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store",
        format!("the store failed: {error}"),
    )
}

fn failure_view(encoded: &[u8]) -> Option<FailureView> {
    Failure::decode(encoded).as_ref().map(FailureView::from)
}

async fn submit(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<Submit>, JsonRejection>,
) -> Response {
    let Json(Submit { transaction }) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_body(&rejection, "{\"transaction\": HEX}"),
    };
    if transaction.len() > 2 * MAX_FRAME {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "oversize",
            format!("a transaction is at most {MAX_FRAME} bytes"),
        );
    }
    let bytes = match hex::decode(&transaction) {
        Ok(bytes) => bytes,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, "hex", format!("hex: {error}")),
    };
    let pipeline = Arc::clone(&state.pipeline);
    let outcome = tokio::task::spawn_blocking(move || pipeline.submit(bytes).recv()).await;
    match outcome {
        Ok(Ok(Outcome::Committed {
            id,
            height,
            failure,
        })) => Json(Submitted::Committed {
            id: hex::encode(id.0),
            height,
            failure: failure.as_ref().map(FailureView::from),
        })
        .into_response(),
        Ok(Ok(Outcome::Refused { reason })) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(Submitted::Refused { reason }),
        )
            .into_response(),
        Ok(Err(_)) | Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the daemon is stopping".to_owned(),
        ),
    }
}

async fn transaction(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let Some(id) = hex32(&id) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "id",
            "a transaction id is 64 hex digits".to_owned(),
        );
    };
    settle(&state);
    match state.store.receipt(&id) {
        Ok(Some((height, index, failure))) => Json(TxReceipt {
            id: hex::encode(id),
            height,
            index,
            failure: failure_view(&failure),
        })
        .into_response(),
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            "unknown",
            "no committed transaction has this id".to_owned(),
        ),
        Err(error) => store_failed(&error),
    }
}

async fn account(State(state): State<Arc<ApiState>>, Path(key): Path<String>) -> Response {
    let Some(id) = hex32(&key) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "key",
            "an account is a public key of 64 hex digits".to_owned(),
        );
    };
    settle(&state);
    let read = state.store.head().and_then(|head| {
        let (height, root) = head.ok_or(StoreError::Empty)?;
        let (account, proof) = state.store.account(&id, height)?;
        let margin = match &account {
            Some(held) if !held.positions.is_empty() => {
                // The account and the oracles' prices are all the margin reads.
                let mut accounts = oracles(&state, height)?;
                accounts.push((id, held.clone()));
                Ledger::from_accounts(accounts)
                    .margin(&state.rules, &id, height)
                    .ok()
            }
            _ => None,
        };
        Ok((height, root, account, proof, margin))
    });
    match read {
        Ok((height, root, account, proof, margin)) => {
            let exists = account.is_some();
            let Account {
                nonce,
                balances,
                prices,
                positions,
                history,
            } = account.unwrap_or_default();
            Json(AccountState {
                account: hex::encode(id),
                height,
                state_root: hex::encode(root),
                exists,
                nonce,
                balances,
                prices: prices
                    .into_iter()
                    .map(|(asset, q)| (asset, QuoteView::from(q)))
                    .collect(),
                positions,
                history,
                margin,
                proof: hex::encode(borsh::to_vec(&proof).expect("a proof serializes")),
            })
            .into_response()
        }
        Err(error) => store_failed(&error),
    }
}

async fn mark(State(state): State<Arc<ApiState>>, Path(asset): Path<String>) -> Response {
    let Ok(asset) = asset.parse::<u32>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "asset",
            "an asset is a number (u32)".to_owned(),
        );
    };
    settle(&state);
    let read = state.store.head().and_then(|head| {
        let (height, _) = head.ok_or(StoreError::Empty)?;
        let quotes: std::collections::BTreeMap<String, Quote> = oracles(&state, height)?
            .into_iter()
            .filter_map(|(oracle, account)| {
                Some((hex::encode(oracle), *account.prices.get(&asset)?))
            })
            .collect();
        Ok((height, quotes))
    });
    let prices = &state.rules.prices;
    match read {
        Ok((height, quotes)) => Json(MarkView {
            asset,
            height,
            mark: median_of_fresh(quotes.values().copied(), height, prices.max_age),
            max_age: prices.max_age,
            quotes: quotes
                .into_iter()
                .map(|(k, q)| (k, QuoteView::from(q)))
                .collect(),
        })
        .into_response(),
        Err(error) => store_failed(&error),
    }
}

/// The genesis oracles' accounts at `height` (those that exist).
fn oracles(state: &ApiState, height: u64) -> Result<Vec<(AccountId, Account)>, StoreError> {
    let mut out = Vec::new();
    for oracle in &state.rules.prices.oracles {
        if let Some(account) = state.store.account_value(oracle, height)? {
            out.push((*oracle, account));
        }
    }
    Ok(out)
}

/// The refusal of a height that is not a number.
fn bad_height() -> Response {
    refuse(
        StatusCode::BAD_REQUEST,
        "height",
        "a height is a decimal number".to_owned(),
    )
}

async fn block(State(state): State<Arc<ApiState>>, Path(height): Path<String>) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return bad_height();
    };
    let read = (|| {
        let Some(bytes) = state.log.block(height)? else {
            return Ok(None);
        };
        let root = state.store.root(height)?;
        // Genesis (block 0) is empty: no header, no transactions.
        let (header, body) = if bytes.is_empty() {
            (None, &bytes[..])
        } else {
            let (header, body) =
                block::split(&bytes).map_err(|_| StoreError::CorruptBlock(height))?;
            (Some(header), body)
        };
        let mut transactions = Vec::with_capacity(body.len() / TX_LEN);
        for tx in transaction::split_all(body) {
            let tx = tx.map_err(|_| StoreError::CorruptBlock(height))?;
            let (mut contracts, mut last_height) = (None, None);
            let (kind, body) = match tx.payload() {
                Payload::Transfer(body) => ("transfer", body),
                Payload::Mint(body) => ("mint", body),
                Payload::Price { asset, price } => (
                    "price",
                    Body {
                        asset,
                        to: [0; 32],
                        amount: price,
                    },
                ),
                Payload::Trade(trade) => {
                    contracts = Some(trade.contracts);
                    last_height = Some(trade.last_height);
                    (
                        "trade",
                        Body {
                            asset: trade.instrument,
                            to: trade.counterparty,
                            amount: trade.premium,
                        },
                    )
                }
            };
            let TxId(id) = tx.id();
            let failure = state
                .store
                .receipt(&id)?
                .and_then(|(_, _, f)| failure_view(&f));
            transactions.push(BlockTx {
                id: hex::encode(id),
                sender: hex::encode(tx.sender()),
                nonce: tx.nonce(),
                kind: kind.to_owned(),
                asset: body.asset,
                to: hex::encode(body.to),
                amount: body.amount,
                contracts,
                last_height,
                failure,
            });
        }
        let certificate = match state.log.certificate(height)? {
            Some(encoded) => {
                Some(certificate_view(&encoded).ok_or(StoreError::CorruptBlock(height))?)
            }
            None => None,
        };
        Ok(Some(Block {
            height,
            id: BlockId::of(&bytes).to_string(),
            state_root: root.map(hex::encode),
            header_root_height: header.map_or(0, |h| h.root_height),
            header_state_root: header.map_or_else(String::new, |h| hex::encode(h.state_root)),
            certificate,
            transactions,
        }))
    })();
    match read {
        Ok(Some(block)) => Json(block).into_response(),
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            "unknown",
            format!("no block at height {height}"),
        ),
        Err(error) => store_failed(&error),
    }
}

fn certificate_view(encoded: &[u8]) -> Option<CertificateView> {
    let certificate: CommitCertificate<VerityContext> = BorshCodec::default()
        .decode(bytes::Bytes::copy_from_slice(encoded))
        .ok()?;
    Some(CertificateView {
        round: certificate.round.as_i64(),
        signatures: certificate
            .commit_signatures
            .iter()
            .map(|s| CommitSignatureView {
                validator: hex::encode(s.address.0),
                signature: hex::encode(s.signature.0),
            })
            .collect(),
    })
}

async fn certified_block(
    State(state): State<Arc<ApiState>>,
    Path(height): Path<String>,
) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return bad_height();
    };
    let read = (|| {
        let (Some(block), Some(certificate)) =
            (state.log.block(height)?, state.log.certificate(height)?)
        else {
            return Ok::<_, StoreError>(None);
        };
        let root = state.store.root(height)?;
        Ok(Some(CertifiedBlock {
            chain_id: state.chain_id,
            height,
            block: hex::encode(block),
            certificate: hex::encode(certificate),
            state_root: root.map(hex::encode),
        }))
    })();
    match read {
        Ok(Some(block)) => Json(block).into_response(),
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            "unknown",
            format!("no certified block at height {height}"),
        ),
        Err(error) => store_failed(&error),
    }
}

async fn snapshots(State(state): State<Arc<ApiState>>) -> Response {
    let manifests: Vec<Manifest> = state
        .snapshots
        .heights()
        .into_iter()
        .filter_map(|h| state.snapshots.manifest(h).ok().flatten())
        .collect();
    Json(manifests).into_response()
}

async fn snapshot_chunk(
    State(state): State<Arc<ApiState>>,
    Path((height, index)): Path<(String, String)>,
) -> Response {
    let (Ok(height), Ok(index)) = (height.parse::<u64>(), index.parse::<usize>()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "snapshot",
            "a height and a chunk index are decimal numbers".to_owned(),
        );
    };
    match state.snapshots.chunk(height, index) {
        Ok(Some(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            "unknown",
            format!("no chunk {index} of a snapshot at height {height}"),
        ),
        Err(error) => {
            warn!(%error, "a snapshot read failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store",
                format!("the snapshot could not be read: {error}"),
            )
        }
    }
}

/// The most pieces of evidence `/v1/evidence` lists.
const EVIDENCE_LISTED: usize = 1000;

async fn evidence(State(state): State<Arc<ApiState>>) -> Response {
    match state.log.evidence(EVIDENCE_LISTED) {
        Ok(stored) => {
            let views: Vec<EvidenceView> = stored
                .iter()
                .filter_map(|(_, bytes)| borsh::from_slice::<Misbehaviour>(bytes).ok())
                .map(|m| m.view())
                .collect();
            Json(views).into_response()
        }
        Err(error) => store_failed(&error),
    }
}

async fn status(State(state): State<Arc<ApiState>>) -> Response {
    settle(&state);
    let (height, root) = match state.store.head() {
        Ok(Some(head)) => head,
        Ok(None) => return store_failed(&StoreError::Empty),
        Err(error) => return store_failed(&error),
    };
    let verifier = state.pipeline.verifier_status();
    let first_height = match state.log.first() {
        Ok(first) => first.unwrap_or(0),
        Err(error) => return store_failed(&error),
    };
    Json(Status {
        chain_id: state.chain_id,
        height,
        first_height,
        state_root: hex::encode(root),
        verifier: VerifierView {
            backend: verifier.backend.to_owned(),
            state: verifier.state.name().to_owned(),
            reason: verifier.state.reason().map(str::to_owned),
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
    .into_response()
}

async fn recording(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.recorder.status()).into_response()
}

async fn switch_recording(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<RecordSwitch>, JsonRejection>,
) -> Response {
    let Json(RecordSwitch { record }) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_body(&rejection, "{\"record\": true|false}"),
    };
    match state.recorder.set(record) {
        Ok(()) => Json(state.recorder.status()).into_response(),
        Err(error) => refuse(StatusCode::CONFLICT, "pcap", error.to_string()),
    }
}

async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus().render(),
    )
        .into_response()
}
