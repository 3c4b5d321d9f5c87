//! `verity submit`, `verity account`, `verity block`: one-off requests to a replica's HTTP
//! API, and the client they share with `verity load`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{hex32, AccountState, ApiError, Block, Status, Submit, Submitted};
use crate::cli::keygen::KeyFile;
use crate::config::Listen;
use crate::consensus::certified::CertifiedBlock;
use crate::transaction::{Body, Payload, Trade, Unsigned};

/// The largest answer read (a block of 4,096 transactions is about 2 MiB of JSON).
const ANSWER_LIMIT: u64 = 64 << 20;

/// A replica's HTTP API.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// The API at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            base: format!("http://{addr}"),
            agent,
        }
    }

    fn answer<T: DeserializeOwned>(
        &self,
        what: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        also_ok: u16,
    ) -> anyhow::Result<T> {
        let mut response =
            response.with_context(|| format!("{what}: cannot reach {}", self.base))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_to_string()
            .with_context(|| format!("{what}: reading the answer"))?;
        if status == 200 || status == also_ok {
            return serde_json::from_str(&body)
                .with_context(|| format!("{what}: an answer that is not what the API sends"));
        }
        let error = serde_json::from_str::<ApiError>(&body)
            .map(|e| e.error)
            .unwrap_or(body);
        anyhow::bail!("{what}: HTTP {status}: {error}")
    }

    /// The bytes at `path`, at most `max` of them.
    pub fn bytes(&self, path: &str, max: u64) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {path}: cannot reach {}", self.base))?;
        let status = response.status().as_u16();
        anyhow::ensure!(status == 200, "GET {path}: status {status}");
        response
            .body_mut()
            .with_config()
            .limit(max)
            .read_to_vec()
            .with_context(|| format!("GET {path}: reading at most {max} bytes"))
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.agent.get(format!("{}{path}", self.base)).call();
        self.answer(path, response, 200)
    }

    /// `POST path` with a JSON body.
    pub fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_json(body);
        self.answer(path, response, 200)
    }

    /// `POST /v1/transactions`: waits for the outcome (a refusal is an answer, not an error).
    pub fn submit(&self, transaction: &[u8]) -> anyhow::Result<Submitted> {
        let response = self
            .agent
            .post(format!("{}/v1/transactions", self.base))
            .send_json(Submit {
                transaction: hex::encode(transaction),
            });
        self.answer("submit", response, 422)
    }

    /// `GET /status`.
    pub fn status(&self) -> anyhow::Result<Status> {
        self.get("/status")
    }

    /// `GET /v1/accounts/{key}`, its proof checked.
    pub fn account(&self, key: &[u8; 32]) -> anyhow::Result<AccountState> {
        let state: AccountState = self.get(&format!("/v1/accounts/{}", hex::encode(key)))?;
        anyhow::ensure!(
            state.account == hex::encode(key),
            "asked for {}, got {}",
            hex::encode(key),
            state.account
        );
        state
            .verify()
            .map_err(|e| anyhow::anyhow!("account {}: {e}", state.account))?;
        Ok(state)
    }
}

fn print_json(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Where the API is.
#[derive(Debug, clap::Args)]
pub struct ApiAddr {
    /// The replica's HTTP API.
    #[arg(long, default_value_t = Listen::default().http)]
    pub http: SocketAddr,
}

/// Sign a transfer (or a mint, an oracle's price, or an option trade signed by both
/// accounts) and submit it over HTTP; print its outcome once committed.
///
/// The nonce is the account's next, read from the replica, unless given.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    api: ApiAddr,
    /// The sender's key file (`verity keygen`, or `DIR/keys/issuer.json` from `verity init`).
    #[arg(long)]
    key: PathBuf,
    /// The receiving account's public key (hex).
    #[arg(long, required_unless_present_any = ["price", "trade"], conflicts_with_all = ["price", "trade"])]
    to: Option<String>,
    /// How much (with `--price`: the price, quote units per unit of the asset; with
    /// `--trade`: the premium per contract, in the quote asset).
    #[arg(long)]
    amount: u64,
    /// Which asset (with `--trade`: which instrument).
    #[arg(long, default_value = "1")]
    asset: u32,
    /// The nonce [default: the sender's next].
    #[arg(long)]
    nonce: Option<u64>,
    /// Mint instead of transfer (the key must be a genesis issuer).
    #[arg(long, conflicts_with = "price")]
    mint: bool,
    /// An oracle's price of the asset instead of a transfer (the key must be a genesis
    /// oracle); the nonce is the update's sequence number.
    #[arg(long, conflicts_with = "trade")]
    price: bool,
    /// An option trade: `--key`'s account buys `--contracts` of instrument `--asset` from
    /// `--counterparty-key`'s at `--amount` each; both sign.
    #[arg(long, requires_all = ["counterparty_key", "contracts"], conflicts_with = "mint")]
    trade: bool,
    /// With `--trade`: the seller's key file.
    #[arg(long)]
    counterparty_key: Option<PathBuf>,
    /// With `--trade`: how many contracts.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    contracts: Option<u32>,
    /// With `--trade`: the last height whose block may hold it [default: the head + 100].
    #[arg(long)]
    last_height: Option<u64>,
}

/// Runs `verity submit`.
pub fn submit(args: &SubmitArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let key = KeyFile::load(&args.key)?;
    let to = match &args.to {
        Some(to) => hex32(to).context("--to: a public key is 64 hex digits")?,
        None => [0; 32],
    };
    let client = Client::new(args.api.http);
    let status = client.status()?;
    let chain_id = status.chain_id;
    let sender = key.verifying_key().to_bytes();
    let nonce = match args.nonce {
        Some(nonce) => nonce,
        None => client.account(&sender)?.nonce,
    };
    let body = Body {
        asset: args.asset,
        to,
        amount: args.amount,
    };
    let unsigned = |payload| Unsigned {
        chain_id,
        sender,
        nonce,
        payload,
    };
    if args.trade {
        let counterparty = KeyFile::load(
            args.counterparty_key
                .as_ref()
                .context("--trade needs --counterparty-key")?,
        )?;
        let trade = Trade {
            instrument: args.asset,
            contracts: args.contracts.context("--trade needs --contracts")?,
            counterparty: counterparty.verifying_key().to_bytes(),
            premium: args.amount,
            last_height: args.last_height.unwrap_or(status.height + 100),
        };
        let tx = unsigned(Payload::Trade(trade)).sign_trade(&key, &counterparty);
        return submitted(&client, &tx, out);
    }
    let payload = if args.price {
        Payload::Price {
            asset: args.asset,
            price: args.amount,
        }
    } else if args.mint {
        Payload::Mint(body)
    } else {
        Payload::Transfer(body)
    };
    let tx = unsigned(payload).sign(&key);
    submitted(&client, &tx, out)
}

/// Submits `tx`, prints its outcome, and fails if it was refused.
fn submitted(client: &Client, tx: &[u8], out: &mut impl Write) -> anyhow::Result<()> {
    let outcome = client.submit(tx)?;
    print_json(out, &outcome)?;
    if let Submitted::Refused { reason } = outcome {
        anyhow::bail!("refused: {reason}");
    }
    Ok(())
}

/// Show an account — nonce, balances, an oracle's prices, option positions with their margin,
/// liquidations and settlements — and check its proof against the state root.
#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    #[command(flatten)]
    api: ApiAddr,
    /// The account's public key (hex).
    key: String,
}

/// Runs `verity account`.
pub fn account(args: &AccountArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let key = hex32(&args.key).context("a public key is 64 hex digits")?;
    let state = Client::new(args.api.http).account(&key)?;
    let AccountState { proof, .. } = &state;
    let mut shown = state.clone();
    shown.proof = format!("{} bytes, verified against state_root", proof.len() / 2);
    print_json(out, &shown)
}

/// Show a block: its id, its transactions with their receipts, the state root after it, and
/// the commit certificate that decided it (where replicas order by consensus).
#[derive(Debug, clap::Args)]
pub struct BlockArgs {
    #[command(flatten)]
    api: ApiAddr,
    /// The height [default: the head].
    height: Option<u64>,
    /// Write the block with its certificate to FILE instead, for `verity verify-block`.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `verity block`.
pub fn block(args: &BlockArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let client = Client::new(args.api.http);
    let height = match args.height {
        Some(height) => height,
        None => client.status()?.height,
    };
    if let Some(path) = &args.out {
        let certified: CertifiedBlock = client.get(&format!("/v1/blocks/{height}/certified"))?;
        let text = serde_json::to_string_pretty(&certified)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(
            out,
            "wrote block {height} with its certificate to {}",
            path.display()
        )?;
        return Ok(());
    }
    let block: Block = client.get(&format!("/v1/blocks/{height}"))?;
    print_json(out, &block)
}
