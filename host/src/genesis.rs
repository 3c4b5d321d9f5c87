//! The genesis file: what a venue's replicas agree on before the first block.
//!
//! ```toml
//! chain_id = 7            # the venue; transactions signed for another are void here
//! assets = [1, 2]         # the assets that exist
//! issuers = ["d75a98…"]   # public keys (hex) that may mint
//! oracles = ["8a88e3…"]   # public keys (hex) whose `Price` transactions are taken
//! max_price_age = 100     # blocks a price counts toward the mark
//!
//! [[balances]]            # the first balances
//! account = "3d4017…"     # public key, hex
//! asset = 1
//! amount = 1000000
//!
//! [[validators]]          # the replicas that order blocks (issue #9), with their power
//! key = "fc51cd…"         # Ed25519 public key, hex
//! power = 1
//! ```
//!
//! [`Genesis::parse`] bounds the text before parsing it, refuses unknown fields, and checks
//! what TOML cannot: 32-byte hex keys, balances only of listed assets, no account's asset
//! twice, no overflow.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::consensus::context::{Validator, ValidatorSet, ValidatorSetError};
use crate::ledger::{AccountId, PriceRules, Rules};
use crate::text_file::read_at_most;

/// The largest genesis file read.
pub const GENESIS_LEN_MAX: u64 = 16 << 20;

/// A genesis file as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    chain_id: u32,
    assets: Vec<u32>,
    #[serde(default)]
    issuers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    oracles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_price_age: Option<u64>,
    #[serde(default)]
    balances: Vec<Balance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    validators: Vec<ValidatorEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorEntry {
    key: String,
    power: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Balance {
    account: String,
    asset: u32,
    amount: u64,
}

/// Why a genesis file is refused.
#[derive(Debug, Error)]
pub enum GenesisError {
    /// It could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is larger than [`GENESIS_LEN_MAX`].
    #[error("genesis of {0} bytes is over the {GENESIS_LEN_MAX}-byte bound")]
    TooLarge(u64),
    /// It is not the format.
    #[error("genesis: {0}")]
    Format(String),
    /// A key is not 32 bytes of hex.
    #[error("genesis: {0:?} is not a 32-byte public key in hex")]
    Key(String),
    /// A balance names an asset that is not listed.
    #[error("genesis: a balance of asset {0}, which `assets` does not list")]
    UnknownAsset(u32),
    /// The validators do not make a valid set.
    #[error("genesis: validators: {0}")]
    Validators(#[from] ValidatorSetError),
    /// An account's asset has two balances.
    #[error("genesis: two balances of asset {asset} for {account}")]
    Duplicate {
        /// The account, hex.
        account: String,
        /// The asset.
        asset: u32,
    },
}

/// A checked genesis: the rules and the first balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// The chain id, assets and issuers.
    pub rules: Rules,
    /// (account, asset, amount), in file order.
    pub balances: Vec<(AccountId, u32, u64)>,
    /// The validators (public key, voting power), in file order; empty for a single
    /// replica that orders alone.
    pub validators: Vec<([u8; 32], u64)>,
}

fn key(text: &str) -> Result<AccountId, GenesisError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| GenesisError::Key(text.to_owned()))
}

impl Genesis {
    /// Reads and checks the genesis file at `path`.
    pub fn read(path: &Path) -> Result<Self, GenesisError> {
        let read = |source| GenesisError::Read {
            path: path.display().to_string(),
            source,
        };
        match read_at_most(path, GENESIS_LEN_MAX).map_err(read)? {
            Ok(text) => Self::parse(&text),
            Err(len) => Err(GenesisError::TooLarge(len)),
        }
    }

    /// Checks genesis `text`.
    pub fn parse(text: &str) -> Result<Self, GenesisError> {
        if text.len() as u64 > GENESIS_LEN_MAX {
            return Err(GenesisError::TooLarge(text.len() as u64));
        }
        let file: File = toml::from_str(text).map_err(|e| GenesisError::Format(e.to_string()))?;
        let assets: BTreeSet<u32> = file.assets.iter().copied().collect();
        let issuers = file
            .issuers
            .iter()
            .map(|k| key(k))
            .collect::<Result<_, _>>()?;
        let oracles = file
            .oracles
            .iter()
            .map(|k| key(k))
            .collect::<Result<_, _>>()?;
        let prices = PriceRules {
            oracles,
            max_age: file.max_price_age.unwrap_or(PriceRules::default().max_age),
        };
        let mut seen = BTreeSet::new();
        let mut balances = Vec::with_capacity(file.balances.len());
        for b in &file.balances {
            let account = key(&b.account)?;
            if !assets.contains(&b.asset) {
                return Err(GenesisError::UnknownAsset(b.asset));
            }
            if !seen.insert((account, b.asset)) {
                return Err(GenesisError::Duplicate {
                    account: b.account.clone(),
                    asset: b.asset,
                });
            }
            balances.push((account, b.asset, b.amount));
        }
        let validators = file
            .validators
            .iter()
            .map(|v| Ok((key(&v.key)?, v.power)))
            .collect::<Result<Vec<_>, GenesisError>>()?;
        let genesis = Self {
            rules: Rules {
                chain_id: file.chain_id,
                assets,
                issuers,
                prices,
            },
            balances,
            validators,
        };
        if !genesis.validators.is_empty() {
            genesis.validator_set()?;
        }
        Ok(genesis)
    }

    /// The validator set, checked (ordered by key; no duplicates, no zero power).
    pub fn validator_set(&self) -> Result<ValidatorSet, ValidatorSetError> {
        ValidatorSet::new(
            self.validators
                .iter()
                .map(|&(key, power)| Validator::new(key, power))
                .collect(),
        )
    }

    /// The file's text for these rules and balances.
    pub fn to_toml(&self) -> String {
        let file = File {
            chain_id: self.rules.chain_id,
            assets: self.rules.assets.iter().copied().collect(),
            issuers: self.rules.issuers.iter().map(hex::encode).collect(),
            oracles: self.rules.prices.oracles.iter().map(hex::encode).collect(),
            max_price_age: (self.rules.prices != PriceRules::default())
                .then_some(self.rules.prices.max_age),
            balances: self
                .balances
                .iter()
                .map(|(account, asset, amount)| Balance {
                    account: hex::encode(account),
                    asset: *asset,
                    amount: *amount,
                })
                .collect(),
            validators: self
                .validators
                .iter()
                .map(|(key, power)| ValidatorEntry {
                    key: hex::encode(key),
                    power: *power,
                })
                .collect(),
        };
        toml::to_string(&file).expect("a genesis file is always TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Genesis {
        Genesis {
            rules: Rules {
                chain_id: 7,
                assets: [1, 2].into(),
                issuers: [[9; 32]].into(),
                prices: PriceRules {
                    oracles: [[8; 32], [6; 32]].into(),
                    max_age: 20,
                },
            },
            balances: vec![([1; 32], 1, 1_000), ([2; 32], 2, 5)],
            validators: vec![([4; 32], 1), ([3; 32], 2)],
        }
    }

    #[test]
    fn a_genesis_round_trips_through_its_file() {
        let text = sample().to_toml();
        assert_eq!(Genesis::parse(&text).expect("parses"), sample());
        let set = sample().validator_set().expect("valid");
        assert_eq!(set.validators()[0].address.0, [3; 32], "ordered by key");
    }

    #[test]
    fn bad_genesis_files_are_refused_with_their_reason() {
        let good = sample().to_toml();
        let cases = [
            (good.replace("chain_id", "chain"), "unknown field"),
            (
                good.replace(&hex::encode([9u8; 32]), "zz"),
                "is not a 32-byte",
            ),
            (
                good.replace(&hex::encode([9u8; 32]), &hex::encode([9u8; 31])),
                "is not a 32-byte",
            ),
            (
                good.replace("assets = [1, 2]", "assets = [1]"),
                "which `assets` does not list",
            ),
            (
                good.replace("asset = 2", "asset = 1")
                    .replace(&hex::encode([2u8; 32]), &hex::encode([1u8; 32])),
                "two balances",
            ),
            (good.replace("amount = 5", "amount = -5"), "genesis:"),
            ("chain_id = 1".to_owned(), "missing field"),
            (
                good.replace(&hex::encode([3u8; 32]), &hex::encode([4u8; 32])),
                "validators: validator 0404",
            ),
            (
                good.replace("power = 2", "power = 0"),
                "has no voting power",
            ),
        ];
        for (text, reason) in cases {
            let error = Genesis::parse(&text).expect_err(reason);
            assert!(error.to_string().contains(reason), "{reason}: {error}");
        }
        let huge = "#".repeat(GENESIS_LEN_MAX as usize + 1);
        assert!(matches!(
            Genesis::parse(&huge),
            Err(GenesisError::TooLarge(_))
        ));
    }
}
