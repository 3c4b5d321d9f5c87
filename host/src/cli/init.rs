//! `verity init`: a working replica directory — configuration, genesis, funded keys.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::SigningKey;

use crate::cli::create_new;
use crate::cli::keygen::KeyFile;
use crate::config::{Config, Listen};
use crate::derivatives::pricing::{OptionKind, OptionTerms};
use crate::genesis::Genesis;
use crate::jsonl::{read_bounded, Line};
use crate::ledger::{BookRules, Instrument, PriceRules, Rules};

/// The funded keys' file in `DIR/keys`, one key file (JSON) a line.
pub const ACCOUNTS_FILE: &str = "accounts.jsonl";
/// The issuer's key file in `DIR/keys`.
pub const ISSUER_FILE: &str = "issuer.json";
/// The replica's validator key file in `DIR/keys` (consensus, issue #9).
pub const VALIDATOR_FILE: &str = "validator.json";
/// The genesis file in a replica's (or a cluster's) directory.
pub const GENESIS_FILE: &str = "genesis.toml";
/// The oracles' key file in `DIR/keys`, one key file (JSON) a line.
pub const ORACLES_FILE: &str = "oracles.jsonl";
/// The insurance fund's key file in `DIR/keys`.
pub const FUND_FILE: &str = "fund.json";
/// The asset `init` creates and funds: the book's quote (collateral) asset.
pub const ASSET: u32 = 1;
/// The asset the options are on, priced by the oracles.
pub const UNDERLYING: u32 = 2;
/// The underlying's price the options' strikes are set around (quote units per unit).
pub const REFERENCE_PRICE: u64 = 50_000;
/// The oracles `init` creates.
const ORACLES: usize = 3;

/// The book `init` writes: the fund, and a call and a put at the reference price and 10 %
/// out of the money, expiring after a year of one-second blocks.
fn book(fund: [u8; 32]) -> BookRules {
    let defaults = BookRules::default();
    let year = defaults.model.blocks_per_year;
    let option = |kind, strike| Instrument {
        underlying: UNDERLYING,
        terms: OptionTerms {
            kind,
            strike,
            expiry: year,
            size: 1,
        },
    };
    let reference = REFERENCE_PRICE;
    BookRules {
        quote: ASSET,
        fund,
        instruments: [
            (100, option(OptionKind::Call, reference)),
            (101, option(OptionKind::Put, reference)),
            (102, option(OptionKind::Call, reference + reference / 10)),
            (103, option(OptionKind::Put, reference - reference / 10)),
        ]
        .into(),
        ..defaults
    }
}

/// Write a replica's directory: `DIR/verity.toml` (every key commented), `DIR/genesis.toml`
/// (with an options book: three oracles, an insurance fund, calls and puts on asset 2), and
/// `DIR/keys/` with an issuer key, the replica's validator key (listed in genesis with power
/// 1), the oracles' and the fund's keys and funded account keys (mode 0600).
///
/// `verityd --config DIR/verity.toml` starts on it (listening on 127.0.0.1); `verity load
/// --keys DIR` spends from its accounts. Nothing in DIR is overwritten.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The directory to create (or an empty one).
    #[arg(long)]
    pub dir: PathBuf,
    /// The HTTP API's port (0: any free port, printed by verityd when it starts).
    #[arg(long, default_value_t = Listen::default().http.port())]
    pub http_port: u16,
    /// TCP ingress's port.
    #[arg(long, default_value_t = Listen::default().tcp.port())]
    pub tcp_port: u16,
    /// UDP ingress's port.
    #[arg(long, default_value_t = Listen::default().udp.port())]
    pub udp_port: u16,
    /// Funded accounts to create.
    #[arg(long, default_value = "1000", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub accounts: u32,
    /// Each account's balance of asset 1.
    #[arg(long, default_value = "1000000000")]
    pub balance: u64,
    /// The chain (venue) id; transactions signed for another are void.
    #[arg(long, default_value = "1")]
    pub chain_id: u32,
    /// Where signatures are verified (written to the configuration).
    #[arg(long, value_enum, default_value_t = crate::backend::BackendKind::Cpu)]
    pub backend: crate::backend::BackendKind,
}

/// A key as one line of a key file (JSON).
pub fn key_line(key: &SigningKey) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&KeyFile::new(key))? + "\n")
}

/// A new chain's issuer, `accounts` funded keys, oracles, insurance fund (funded like 100
/// accounts) and genesis (naming `validators`, power 1 each, and the options book
/// that `book` builds), written as `dir/keys/` and `dir/genesis.toml`; nothing is overwritten.
pub fn write_chain(
    dir: &Path,
    accounts: u32,
    balance: u64,
    chain_id: u32,
    validators: &[SigningKey],
) -> anyhow::Result<Genesis> {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("cannot create {}", keys.display()))?;
    let mut rng = rand::rngs::OsRng;
    let issuer = SigningKey::generate(&mut rng);
    let accounts: Vec<SigningKey> = (0..accounts)
        .map(|_| SigningKey::generate(&mut rng))
        .collect();
    let oracles: Vec<SigningKey> = (0..ORACLES)
        .map(|_| SigningKey::generate(&mut rng))
        .collect();
    let fund = SigningKey::generate(&mut rng);
    let fund_id = fund.verifying_key().to_bytes();
    let genesis = Genesis {
        rules: Rules {
            chain_id,
            assets: [ASSET, UNDERLYING].into(),
            issuers: [issuer.verifying_key().to_bytes()].into(),
            prices: PriceRules {
                oracles: oracles
                    .iter()
                    .map(|k| k.verifying_key().to_bytes())
                    .collect(),
                ..PriceRules::default()
            },
            book: book(fund_id),
        },
        balances: accounts
            .iter()
            .map(|k| (k.verifying_key().to_bytes(), ASSET, balance))
            .chain([(fund_id, ASSET, balance.saturating_mul(100))])
            .collect(),
        validators: validators
            .iter()
            .map(|k| (k.verifying_key().to_bytes(), 1))
            .collect(),
    };
    let lines = accounts
        .iter()
        .map(key_line)
        .collect::<anyhow::Result<String>>()?;
    create_new(&keys.join(ACCOUNTS_FILE), &lines, true)?;
    create_new(&keys.join(ISSUER_FILE), &key_line(&issuer)?, true)?;
    let oracle_lines = oracles
        .iter()
        .map(key_line)
        .collect::<anyhow::Result<String>>()?;
    create_new(&keys.join(ORACLES_FILE), &oracle_lines, true)?;
    create_new(&keys.join(FUND_FILE), &key_line(&fund)?, true)?;
    create_new(&dir.join(GENESIS_FILE), &genesis.to_toml(), false)?;
    Ok(genesis)
}

/// Runs `verity init`.
pub fn run(args: &InitArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let validator = SigningKey::generate(&mut rand::rngs::OsRng);
    write_chain(
        &args.dir,
        args.accounts,
        args.balance,
        args.chain_id,
        std::slice::from_ref(&validator),
    )?;
    create_new(
        &args.dir.join("keys").join(VALIDATOR_FILE),
        &key_line(&validator)?,
        true,
    )?;
    let localhost = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let config = Config {
        listen: Listen {
            http: localhost(args.http_port),
            tcp: localhost(args.tcp_port),
            udp: localhost(args.udp_port),
        },
        verifier: crate::config::VerifierConfig {
            backend: args.backend,
            ..Default::default()
        },
        ..Config::default()
    };
    create_new(&args.dir.join("verity.toml"), &config.template(), false)?;
    let dir = args.dir.display();
    writeln!(
        out,
        "wrote {dir}/verity.toml (http {}, tcp {}, udp {}, backend {}), {dir}/{GENESIS_FILE} \
         (chain {}, asset {ASSET} the options' quote, asset {UNDERLYING} their underlying, \
         four options), {dir}/keys/{ISSUER_FILE}, {dir}/keys/{ORACLES_FILE}, \
         {dir}/keys/{FUND_FILE} and {} funded keys in {dir}/keys/{ACCOUNTS_FILE}",
        config.listen.http,
        config.listen.tcp,
        config.listen.udp,
        config.verifier.backend.name(),
        args.chain_id,
        args.accounts
    )?;
    writeln!(out, "start it:  verityd --config {dir}/verity.toml")?;
    writeln!(out, "load it:   verity load --keys {dir}")?;
    writeln!(
        out,
        "trade:     verity load --keys {dir} --mix trading --rate 2000"
    )?;
    Ok(())
}

/// Reads `DIR/keys/accounts.jsonl` (or `DIR/accounts.jsonl`): every key, checked.
pub fn read_accounts(dir: &Path) -> anyhow::Result<Vec<SigningKey>> {
    read_keys(dir, ACCOUNTS_FILE)
}

/// Reads `DIR/keys/oracles.jsonl` (or `DIR/oracles.jsonl`): the oracles' keys.
pub fn read_oracles(dir: &Path) -> anyhow::Result<Vec<SigningKey>> {
    read_keys(dir, ORACLES_FILE)
}

/// Reads the key file `name` in `DIR/keys/` or `DIR`, one key a line.
fn read_keys(dir: &Path, name: &str) -> anyhow::Result<Vec<SigningKey>> {
    const LINE_MAX: usize = 512;
    const KEYS_MAX: usize = 1_000_000;
    let path = [dir.join("keys").join(name), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no {name} in {} or its keys/ (write one with `verity init`)",
                dir.display()
            )
        })?;
    let mut input = crate::cli::open_input(&path)?;
    let mut keys = Vec::new();
    let mut line = Vec::new();
    for n in 1.. {
        let where_ = || format!("{}: line {n}", path.display());
        match read_bounded(&mut input, &mut line, LINE_MAX).with_context(where_)? {
            Line::End => break,
            Line::TooLong(len) => anyhow::bail!("{}: {len} bytes is not a key", where_()),
            Line::Complete => {}
        }
        anyhow::ensure!(
            keys.len() < KEYS_MAX,
            "{}: more than {KEYS_MAX} keys",
            path.display()
        );
        let text = std::str::from_utf8(&line).with_context(where_)?;
        keys.push(KeyFile::parse(text).with_context(where_)?);
    }
    anyhow::ensure!(!keys.is_empty(), "{} holds no key", path.display());
    Ok(keys)
}
