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
//!
//! [book]                  # the options book (issue #11; see `ledger::book`), if any
//! quote = 1               # the collateral asset
//! insurance_fund = "5e0a…"  # takes liquidated positions, settles expiries
//! vol_bp = 8000           # option values: annual volatility, basis points
//! blocks_per_year = 31536000  # turns heights into years
//! shock_bp = 1500         # margins: the largest move the scenarios take
//! short_minimum_bp = 500  # the least charged per short contract, of mark × size
//! initial_bp = 15000      # initial margin, of maintenance
//! penalty_bp = 200        # liquidation penalty, of maintenance
//!
//! [[instruments]]         # European options on an asset priced by the oracles
//! id = 100
//! kind = "call"           # or "put"
//! underlying = 2          # an asset, not the quote asset
//! strike = 50000          # quote units per underlying unit
//! expiry = 1000000        # the height at which it settles
//! size = 1                # underlying units per contract
//! ```
//!
//! [`Genesis::parse`] bounds the text before parsing it, refuses unknown fields, and checks
//! what TOML cannot: 32-byte hex keys, balances only of listed assets, no account's asset
//! twice, no overflow, instruments only with a book, on listed assets, with a strike and a
//! size.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::consensus::context::{Validator, ValidatorSet, ValidatorSetError};
use crate::derivatives::pricing::{Model, OptionKind, OptionTerms, MAX_SIZE};
use crate::derivatives::risk::RiskParams;
use crate::ledger::{AccountId, BookRules, Instrument, PriceRules, Rules};
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    book: Option<BookEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    instruments: Vec<InstrumentEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookEntry {
    quote: u32,
    insurance_fund: String,
    vol_bp: u32,
    blocks_per_year: u64,
    shock_bp: u32,
    short_minimum_bp: u32,
    initial_bp: u32,
    penalty_bp: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentEntry {
    id: u32,
    kind: KindEntry,
    underlying: u32,
    strike: u64,
    expiry: u64,
    size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindEntry {
    Call,
    Put,
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
    /// The book or an instrument is not usable.
    #[error("genesis: {0}")]
    Book(String),
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
        let book = book_rules(file.book.as_ref(), &file.instruments, &assets)?;
        let genesis = Self {
            rules: Rules {
                chain_id: file.chain_id,
                assets,
                issuers,
                prices,
                book,
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
            book: (self.rules.book != BookRules::default()).then(|| {
                let book = &self.rules.book;
                BookEntry {
                    quote: book.quote,
                    insurance_fund: hex::encode(book.fund),
                    vol_bp: book.model.vol_bp,
                    blocks_per_year: book.model.blocks_per_year,
                    shock_bp: book.risk.shock_bp,
                    short_minimum_bp: book.risk.short_minimum_bp,
                    initial_bp: book.risk.initial_bp,
                    penalty_bp: book.penalty_bp,
                }
            }),
            instruments: self
                .rules
                .book
                .instruments
                .iter()
                .map(|(&id, i)| InstrumentEntry {
                    id,
                    kind: match i.terms.kind {
                        OptionKind::Call => KindEntry::Call,
                        OptionKind::Put => KindEntry::Put,
                    },
                    underlying: i.underlying,
                    strike: i.terms.strike,
                    expiry: i.terms.expiry,
                    size: i.terms.size,
                })
                .collect(),
        };
        toml::to_string(&file).expect("a genesis file is always TOML")
    }
}

/// The book's rules from the file's `[book]` and `[[instruments]]`, checked.
fn book_rules(
    book: Option<&BookEntry>,
    instruments: &[InstrumentEntry],
    assets: &BTreeSet<u32>,
) -> Result<BookRules, GenesisError> {
    let bad = |why: String| Err(GenesisError::Book(why));
    let Some(book) = book else {
        if instruments.is_empty() {
            return Ok(BookRules::default());
        }
        return bad("instruments without a [book]".to_owned());
    };
    if !assets.contains(&book.quote) {
        return bad(format!(
            "book: quote asset {}, which `assets` does not list",
            book.quote
        ));
    }
    if book.blocks_per_year == 0 {
        return bad("book: blocks_per_year of 0".to_owned());
    }
    if book.initial_bp < 10_000 {
        return bad(format!(
            "book: initial_bp {} is below maintenance (10000)",
            book.initial_bp
        ));
    }
    let mut rules = BookRules {
        quote: book.quote,
        fund: key(&book.insurance_fund)?,
        instruments: Default::default(),
        model: Model {
            vol_bp: book.vol_bp,
            blocks_per_year: book.blocks_per_year,
        },
        risk: RiskParams {
            shock_bp: book.shock_bp,
            short_minimum_bp: book.short_minimum_bp,
            initial_bp: book.initial_bp,
        },
        penalty_bp: book.penalty_bp,
    };
    for i in instruments {
        if !assets.contains(&i.underlying) || i.underlying == book.quote {
            return bad(format!(
                "instrument {}: underlying {} is not a listed asset other than the quote",
                i.id, i.underlying
            ));
        }
        if i.strike == 0 || i.size == 0 || i.size > MAX_SIZE {
            return bad(format!(
                "instrument {}: a strike of at least 1 and a size from 1 to {MAX_SIZE}",
                i.id
            ));
        }
        let terms = OptionTerms {
            kind: match i.kind {
                KindEntry::Call => OptionKind::Call,
                KindEntry::Put => OptionKind::Put,
            },
            strike: i.strike,
            expiry: i.expiry,
            size: i.size,
        };
        let instrument = Instrument {
            underlying: i.underlying,
            terms,
        };
        if rules.instruments.insert(i.id, instrument).is_some() {
            return bad(format!("instrument {} twice", i.id));
        }
    }
    Ok(rules)
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
                book: BookRules {
                    quote: 1,
                    fund: [5; 32],
                    instruments: [(
                        100,
                        Instrument {
                            underlying: 2,
                            terms: OptionTerms {
                                kind: OptionKind::Put,
                                strike: 40_000,
                                expiry: 900,
                                size: 3,
                            },
                        },
                    )]
                    .into(),
                    ..BookRules::default()
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
            (good.replace("quote = 1", "quote = 3"), "book: quote asset 3"),
            (good.replace("underlying = 2", "underlying = 1"), "other than the quote"),
            (good.replace("strike = 40000", "strike = 0"), "a strike of at least 1"),
            (good.replace("size = 3", "size = 1000000001"), "a size from 1 to"),
            (good.replace("initial_bp = 15000", "initial_bp = 9000"), "below maintenance"),
            (good.replace("blocks_per_year = 31536000", "blocks_per_year = 0"), "blocks_per_year of 0"),
            (
                good.replace("[book]", "[unused]"),
                "unknown field",
            ),
            (
                format!("{good}\n[[instruments]]\nid = 100\nkind = \"call\"\nunderlying = 2\nstrike = 1\nexpiry = 5\nsize = 1\n"),
                "instrument 100 twice",
            ),
            (good.replace("kind = \"put\"", "kind = \"straddle\""), "genesis:"),
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
