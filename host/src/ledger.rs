//! The ledger: accounts with per-asset balances and nonces, and the deterministic function
//! that applies a block of transactions to them.
//!
//! [`Ledger::apply`] is a pure function of (state, block): every walk over accounts is in key
//! order (the block's changes, hashed for lookups, are sorted before they are walked), integer
//! arithmetic checked for overflow, no clock. Every transaction gets a [`Receipt`]: applied,
//! or failed with the reason. The rules:
//!
//! * a transaction for another chain fails (`WrongChain`) and changes nothing;
//! * its nonce must be the sender's next (`BadNonce` otherwise, nothing changes); a
//!   transaction with the right nonce uses it up whether it then applies or fails, so it can
//!   never be replayed;
//! * the asset must be one the genesis file names (`UnknownAsset`);
//! * a `Transfer` needs the sender's balance (`InsufficientFunds`); a `Mint` needs the sender
//!   to be one of the genesis file's issuers (`NotIssuer`); a balance that would pass
//!   2^64 − 1 fails the transaction (`Overflow`).
//!
//! * a `Trade` and the steps after each block follow the options book's rules ([`book`]).
//!
//! Signatures are checked before a transaction reaches a block; the ledger trusts that.

pub mod book;
pub mod encoding;
mod key;

use std::collections::{BTreeMap, BTreeSet};

use ahash::HashMap;
pub use book::{BookRules, Event, Instrument, Liquidation, MarginState, Settlement};
use key::Key;

use crate::transaction::{Body, Payload, Transaction, TxId};

/// An account: a public key.
pub type AccountId = [u8; 32];

/// One account's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// The next nonce it must use.
    pub nonce: u64,
    /// Balances by asset; an asset at zero is absent.
    pub balances: BTreeMap<u32, u64>,
    /// An oracle's newest price of each asset it priced (empty for other accounts).
    pub prices: BTreeMap<u32, Quote>,
    /// Option positions by instrument: contracts, long positive, short negative; none at 0.
    pub positions: BTreeMap<u32, i64>,
    /// Liquidations and settlements, oldest first, the newest [`book::HISTORY_KEPT`].
    pub history: Vec<Event>,
}

impl Account {
    /// Its balance of `asset`.
    pub fn balance(&self, asset: u32) -> u64 {
        self.balances.get(&asset).copied().unwrap_or(0)
    }

    /// Sets its balance of `asset`; a zero balance is absent.
    fn set_balance(&mut self, asset: u32, amount: u64) {
        if amount == 0 {
            self.balances.remove(&asset);
        } else {
            self.balances.insert(asset, amount);
        }
    }
}

/// A price an oracle gave, and the height of the block that took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Quote units per unit.
    pub price: u64,
    /// The block's height.
    pub height: u64,
}

/// What genesis fixes: the chain, the assets, who may mint, who gives prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The venue's chain id.
    pub chain_id: u32,
    /// The assets that exist.
    pub assets: BTreeSet<u32>,
    /// The keys that may mint.
    pub issuers: BTreeSet<AccountId>,
    /// Who gives prices, and how long a price counts.
    pub prices: PriceRules,
    /// The options book: quote asset, insurance fund, instruments, risk parameters.
    pub book: BookRules,
}

/// The oracles of genesis and the age past which their prices do not count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceRules {
    /// The keys whose `Price` transactions are taken.
    pub oracles: BTreeSet<AccountId>,
    /// Blocks after which a price no longer counts toward the mark.
    pub max_age: u64,
}

impl Default for PriceRules {
    /// No oracle; prices count for 100 blocks.
    fn default() -> Self {
        Self {
            oracles: BTreeSet::new(),
            max_age: 100,
        }
    }
}

/// Why a transaction did not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Signed for another chain.
    #[error("signed for chain {chain_id}")]
    WrongChain {
        /// The transaction's chain id.
        chain_id: u32,
    },
    /// Not the sender's next nonce.
    #[error("nonce {got}, the sender's next is {expected}")]
    BadNonce {
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// No such asset.
    #[error("no asset {0}")]
    UnknownAsset(u32),
    /// The sender has less than the amount.
    #[error("balance {balance} is below the amount {amount}")]
    InsufficientFunds {
        /// The sender's balance.
        balance: u64,
        /// The amount.
        amount: u64,
    },
    /// A mint by a key that is not an issuer.
    #[error("the sender is not an issuer")]
    NotIssuer,
    /// The receiving balance would overflow.
    #[error("the receiving balance would overflow")]
    Overflow,
    /// A price from a key that is not an oracle.
    #[error("the sender is not an oracle")]
    NotOracle,
    /// A price of zero.
    #[error("a price of 0")]
    ZeroPrice,
    /// A trade of an instrument genesis does not name.
    #[error("no instrument {0}")]
    UnknownInstrument(u32),
    /// A trade in a block past its last height.
    #[error("the trade's last height {last_height} has passed")]
    TradeExpired {
        /// Its last height.
        last_height: u64,
    },
    /// A trade at or past the instrument's expiry.
    #[error("the instrument expired at height {expiry}")]
    InstrumentExpired {
        /// Its expiry.
        expiry: u64,
    },
    /// A margin that needs the mark of an asset that has no fresh price.
    #[error("asset {0} has no mark price")]
    NoMark(u32),
    /// An account would end below its initial margin with more risk than before.
    #[error("equity {equity} would be below the initial margin {initial}")]
    InitialMargin {
        /// Its equity after.
        equity: i128,
        /// Its initial margin after.
        initial: i128,
    },
}

impl Failure {
    /// A short, stable name for metrics, tables and clients.
    pub const fn name(&self) -> &'static str {
        match self {
            Failure::WrongChain { .. } => "wrong_chain",
            Failure::BadNonce { .. } => "bad_nonce",
            Failure::UnknownAsset(_) => "unknown_asset",
            Failure::InsufficientFunds { .. } => "insufficient_funds",
            Failure::NotIssuer => "not_issuer",
            Failure::Overflow => "overflow",
            Failure::NotOracle => "not_oracle",
            Failure::ZeroPrice => "zero_price",
            Failure::UnknownInstrument(_) => "unknown_instrument",
            Failure::TradeExpired { .. } => "trade_expired",
            Failure::InstrumentExpired { .. } => "instrument_expired",
            Failure::NoMark(_) => "no_mark",
            Failure::InitialMargin { .. } => "initial_margin",
        }
    }

    /// The failure's bytes in a stored receipt: a code, then its fields, little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        match *self {
            Failure::WrongChain { chain_id } => {
                out.push(1);
                out.extend_from_slice(&chain_id.to_le_bytes());
            }
            Failure::BadNonce { expected, got } => {
                out.push(2);
                out.extend_from_slice(&expected.to_le_bytes());
                out.extend_from_slice(&got.to_le_bytes());
            }
            Failure::UnknownAsset(asset) => {
                out.push(3);
                out.extend_from_slice(&asset.to_le_bytes());
            }
            Failure::InsufficientFunds { balance, amount } => {
                out.push(4);
                out.extend_from_slice(&balance.to_le_bytes());
                out.extend_from_slice(&amount.to_le_bytes());
            }
            Failure::NotIssuer => out.push(5),
            Failure::Overflow => out.push(6),
            Failure::NotOracle => out.push(7),
            Failure::ZeroPrice => out.push(8),
            Failure::UnknownInstrument(instrument) => {
                out.push(9);
                out.extend_from_slice(&instrument.to_le_bytes());
            }
            Failure::TradeExpired { last_height } => {
                out.push(10);
                out.extend_from_slice(&last_height.to_le_bytes());
            }
            Failure::InstrumentExpired { expiry } => {
                out.push(11);
                out.extend_from_slice(&expiry.to_le_bytes());
            }
            Failure::NoMark(asset) => {
                out.push(12);
                out.extend_from_slice(&asset.to_le_bytes());
            }
            Failure::InitialMargin { equity, initial } => {
                out.push(13);
                out.extend_from_slice(&equity.to_le_bytes());
                out.extend_from_slice(&initial.to_le_bytes());
            }
        }
        out
    }

    /// Reads [`Failure::encode`]'s bytes; `None` for bytes it never writes.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let u32_at = |at: usize| {
            bytes
                .get(at..at + 4)?
                .try_into()
                .ok()
                .map(u32::from_le_bytes)
        };
        let u64_at = |at: usize| {
            bytes
                .get(at..at + 8)?
                .try_into()
                .ok()
                .map(u64::from_le_bytes)
        };
        let i128_at = |at: usize| {
            bytes
                .get(at..at + 16)?
                .try_into()
                .ok()
                .map(i128::from_le_bytes)
        };
        let (failure, len) = match *bytes.first()? {
            1 => (
                Failure::WrongChain {
                    chain_id: u32_at(1)?,
                },
                5,
            ),
            2 => (
                Failure::BadNonce {
                    expected: u64_at(1)?,
                    got: u64_at(9)?,
                },
                17,
            ),
            3 => (Failure::UnknownAsset(u32_at(1)?), 5),
            4 => (
                Failure::InsufficientFunds {
                    balance: u64_at(1)?,
                    amount: u64_at(9)?,
                },
                17,
            ),
            5 => (Failure::NotIssuer, 1),
            6 => (Failure::Overflow, 1),
            7 => (Failure::NotOracle, 1),
            8 => (Failure::ZeroPrice, 1),
            9 => (Failure::UnknownInstrument(u32_at(1)?), 5),
            10 => (
                Failure::TradeExpired {
                    last_height: u64_at(1)?,
                },
                9,
            ),
            11 => (Failure::InstrumentExpired { expiry: u64_at(1)? }, 9),
            12 => (Failure::NoMark(u32_at(1)?), 5),
            13 => (
                Failure::InitialMargin {
                    equity: i128_at(1)?,
                    initial: i128_at(17)?,
                },
                33,
            ),
            _ => return None,
        };
        (bytes.len() == len).then_some(failure)
    }
}

/// What became of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub tx: TxId,
    /// `None`: applied.
    pub failure: Option<Failure>,
}

/// The accounts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Every account that ever held anything or sent a transaction, by key.
    accounts: BTreeMap<Key, Account>,
    /// The accounts holding positions: the ones the book re-margins after every block.
    holders: BTreeSet<Key>,
    /// How many accounts hold each instrument: the expired ones left to settle.
    open: BTreeMap<u32, usize>,
}

/// What a block changed: the new value of every account whose value it changed.
pub type Changes = BTreeMap<AccountId, Account>;

impl Ledger {
    /// The ledger genesis starts with: `balances` as (account, asset, amount).
    pub fn genesis(balances: &[(AccountId, u32, u64)]) -> Result<Self, Failure> {
        let empty = Self::default();
        let mut overlay = Overlay::new(&empty);
        for &(account, asset, amount) in balances {
            overlay.credit(account, asset, amount)?;
        }
        let changes = overlay.into_changes();
        let mut ledger = Self::default();
        ledger.merge(changes);
        Ok(ledger)
    }

    /// A ledger of `accounts`.
    pub fn from_accounts(accounts: impl IntoIterator<Item = (AccountId, Account)>) -> Self {
        let mut ledger = Self::default();
        ledger.merge(accounts.into_iter().collect());
        ledger
    }

    /// Every account, in key order.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &Account)> {
        self.accounts.iter().map(|(key, account)| (&key.0, account))
    }

    /// One account.
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(&Key(*id))
    }

    /// `account`'s balance of `asset`.
    pub fn balance(&self, account: &AccountId, asset: u32) -> u64 {
        self.account(account).map_or(0, |a| a.balance(asset))
    }

    /// `account`'s next nonce.
    pub fn nonce(&self, account: &AccountId) -> u64 {
        self.account(account).map_or(0, |a| a.nonce)
    }

    /// Applies `block`, the block at `height`, in order: what it changes and a receipt per
    /// transaction. The ledger is not touched (a pure function of ledger, height and block);
    /// [`merge`](Ledger::merge) moves it on. Only the accounts the block touches are copied,
    /// so the cost follows the block, not the ledger.
    pub fn apply(
        &self,
        rules: &Rules,
        height: u64,
        block: &[Transaction<'_>],
    ) -> (Changes, Vec<Receipt>) {
        let mut overlay = Overlay::new(self);
        let receipts = block
            .iter()
            .map(|tx| Receipt {
                tx: tx.id(),
                failure: overlay.apply_one(rules, height, tx).err(),
            })
            .collect();
        overlay.after_block(rules, height);
        (overlay.into_changes(), receipts)
    }

    /// Takes a block's changes.
    pub fn merge(&mut self, changes: Changes) {
        for (id, account) in changes {
            let key = Key(id);
            if account.positions.is_empty() {
                self.holders.remove(&key);
            } else {
                self.holders.insert(key);
            }
            let before = self.accounts.insert(key, account);
            let before = before.as_ref().map(|a| &a.positions);
            let after = &self.accounts[&key].positions;
            for instrument in before.into_iter().flat_map(|p| p.keys()) {
                if !after.contains_key(instrument) {
                    if let Some(n) = self.open.get_mut(instrument) {
                        *n -= 1;
                        if *n == 0 {
                            self.open.remove(instrument);
                        }
                    }
                }
            }
            for instrument in after.keys() {
                if !before.is_some_and(|p| p.contains_key(instrument)) {
                    *self.open.entry(*instrument).or_insert(0) += 1;
                }
            }
        }
    }

    /// How many accounts hold `instrument`.
    pub fn holding(&self, instrument: u32) -> usize {
        self.open.get(&instrument).copied().unwrap_or(0)
    }

    /// `account`'s margin after the block at `height` (`Err(NoMark)` when an instrument it
    /// holds has no mark); an account without positions has only collateral.
    pub fn margin(
        &self,
        rules: &Rules,
        id: &AccountId,
        height: u64,
    ) -> Result<MarginState, Failure> {
        Overlay::new(self).margin(rules, height, id)
    }

    /// The mark price of `asset` after the block at `height`: the median of the genesis
    /// oracles' newest prices no more than `max_age` blocks old (see
    /// [`crate::derivatives::mark`]); `None` when no price is that fresh.
    pub fn mark(&self, rules: &Rules, asset: u32, height: u64) -> Option<u64> {
        Overlay::new(self).mark(rules, asset, height)
    }
}

/// A ledger with a block's changes over it, copied on first write.
struct Overlay<'a> {
    base: &'a Ledger,
    /// Looked up several times a transaction, so hashed (keyed at random: ids come from
    /// outside); whoever needs them in key order sorts them, so no outcome depends on the
    /// map's order.
    changes: HashMap<Key, Account>,
    /// The book's risk arrays at the block's height and the prices so far; `None` after a
    /// price changes them.
    table: Option<book::RiskTable>,
}

impl<'a> Overlay<'a> {
    fn new(base: &'a Ledger) -> Self {
        Self {
            base,
            changes: HashMap::default(),
            table: None,
        }
    }

    fn put(&mut self, id: AccountId, account: Account) {
        self.changes.insert(Key(id), account);
    }

    /// The accounts whose value differs from the base's, by id.
    fn into_changes(self) -> Changes {
        let base = self.base;
        // Collecting sorts them, whatever order the map gave.
        self.changes
            .into_iter()
            .filter(|(key, after)| base.accounts.get(key) != Some(after))
            .map(|(key, after)| (key.0, after))
            .collect()
    }

    /// The ids of the accounts the block has changed so far, in key order.
    fn touched(&self) -> Vec<AccountId> {
        let mut touched: Vec<AccountId> = self.changes.keys().map(|key| key.0).collect();
        touched.sort_unstable();
        touched
    }

    /// [`Ledger::mark`], with the block's prices so far.
    fn mark(&self, rules: &Rules, asset: u32, height: u64) -> Option<u64> {
        let quotes = rules
            .prices
            .oracles
            .iter()
            .filter_map(|oracle| self.get(oracle)?.prices.get(&asset).copied());
        crate::derivatives::mark::median_of_fresh(quotes, height, rules.prices.max_age)
    }

    fn get(&self, account: &AccountId) -> Option<&Account> {
        let key = Key(*account);
        self.changes
            .get(&key)
            .or_else(|| self.base.accounts.get(&key))
    }

    fn get_mut(&mut self, account: AccountId) -> &mut Account {
        let key = Key(account);
        let base = self.base;
        self.changes
            .entry(key)
            .or_insert_with(|| base.accounts.get(&key).cloned().unwrap_or_default())
    }

    fn balance(&self, account: &AccountId, asset: u32) -> u64 {
        self.get(account).map_or(0, |a| a.balance(asset))
    }

    /// An oracle's price: it replaces the oracle's previous price of the asset (its nonce,
    /// already checked and used, orders its updates).
    fn price(
        &mut self,
        rules: &Rules,
        oracle: AccountId,
        asset: u32,
        quote: Quote,
    ) -> Result<(), Failure> {
        if !rules.prices.oracles.contains(&oracle) {
            return Err(Failure::NotOracle);
        }
        if !rules.assets.contains(&asset) {
            return Err(Failure::UnknownAsset(asset));
        }
        if quote.price == 0 {
            return Err(Failure::ZeroPrice);
        }
        self.get_mut(oracle).prices.insert(asset, quote);
        self.table = None;
        Ok(())
    }

    /// Changes `account` by `then(check(account))`, or fails with `check`'s error and changes
    /// nothing. One lookup of the block's changes, and one of the ledger for an account the
    /// block has not changed yet; an account that fails is not copied into the changes (one
    /// that does not exist would otherwise appear, empty).
    fn change<T>(
        &mut self,
        account: AccountId,
        check: impl FnOnce(&Account) -> Result<T, Failure>,
        then: impl FnOnce(&mut Account, T),
    ) -> Result<(), Failure> {
        let key = Key(account);
        if let Some(held) = self.changes.get_mut(&key) {
            let checked = check(held)?;
            then(held, checked);
            return Ok(());
        }
        let base = self.base.accounts.get(&key);
        // A default account is made only for an id the ledger does not hold.
        let checked = match base {
            Some(account) => check(account)?,
            None => check(&Account::default())?,
        };
        let mut fresh = base.cloned().unwrap_or_default();
        then(&mut fresh, checked);
        self.changes.insert(key, fresh);
        Ok(())
    }

    fn credit(&mut self, account: AccountId, asset: u32, amount: u64) -> Result<(), Failure> {
        if amount == 0 {
            return Ok(());
        }
        self.change(
            account,
            |a| {
                a.balance(asset)
                    .checked_add(amount)
                    .ok_or(Failure::Overflow)
            },
            |a, after| a.set_balance(asset, after),
        )
    }

    fn debit(&mut self, account: AccountId, asset: u32, amount: u64) -> Result<(), Failure> {
        self.change(
            account,
            |a| {
                let balance = a.balance(asset);
                balance
                    .checked_sub(amount)
                    .ok_or(Failure::InsufficientFunds { balance, amount })
            },
            |a, left| a.set_balance(asset, left),
        )
    }

    /// Uses up `sender`'s nonce if `got` is its next; a wrong nonce changes nothing.
    fn use_nonce(&mut self, sender: AccountId, got: u64) -> Result<(), Failure> {
        self.change(
            sender,
            |a| {
                if a.nonce == got {
                    Ok(())
                } else {
                    Err(Failure::BadNonce {
                        expected: a.nonce,
                        got,
                    })
                }
            },
            |a, ()| a.nonce = got + 1,
        )
    }

    fn apply_one(
        &mut self,
        rules: &Rules,
        height: u64,
        tx: &Transaction<'_>,
    ) -> Result<(), Failure> {
        if tx.chain_id() != rules.chain_id {
            return Err(Failure::WrongChain {
                chain_id: tx.chain_id(),
            });
        }
        let sender = *tx.sender();
        // The nonce is used up from here on, whatever follows.
        self.use_nonce(sender, tx.nonce())?;
        let (Body { asset, to, amount }, mint) = match tx.payload() {
            Payload::Transfer(body) => (body, false),
            Payload::Mint(body) => (body, true),
            Payload::Price { asset, price } => {
                return self.price(rules, sender, asset, Quote { price, height })
            }
            Payload::Trade(trade) => return self.trade(rules, height, sender, &trade),
        };
        if !rules.assets.contains(&asset) {
            return Err(Failure::UnknownAsset(asset));
        }
        if mint {
            if !rules.issuers.contains(&sender) {
                return Err(Failure::NotIssuer);
            }
            return self.credit(to, asset, amount);
        }
        // The receiver's room is checked before anything moves, and a debit that fails moves
        // nothing: a failure changes no balance.
        if to != sender && self.balance(&to, asset).checked_add(amount).is_none() {
            return Err(Failure::Overflow);
        }
        if asset == rules.book.quote && to != sender {
            self.check_withdrawal(rules, height, &sender, amount)?;
        }
        self.debit(sender, asset, amount)?;
        self.credit(to, asset, amount)
    }
}

#[cfg(test)]
mod tests {

    use proptest::prelude::*;

    use super::*;
    use crate::testing::{self, id, key};
    use crate::transaction::{Unsigned, TX_LEN};

    const CHAIN: u32 = 7;
    const COIN: u32 = 1;

    fn rules() -> Rules {
        Rules {
            chain_id: CHAIN,
            assets: [COIN, 2].into(),
            issuers: [id(9)].into(),
            prices: PriceRules::default(),
            book: BookRules::default(),
        }
    }

    fn signed(from: u8, nonce: u64, payload: Payload) -> [u8; TX_LEN] {
        testing::signed(CHAIN, from, nonce, payload)
    }

    fn transfer(from: u8, nonce: u64, to: u8, amount: u64) -> [u8; TX_LEN] {
        testing::transfer(CHAIN, from, nonce, to, COIN, amount)
    }

    fn run(ledger: &Ledger, block: &[[u8; TX_LEN]]) -> (Ledger, Vec<Option<Failure>>) {
        let txs: Vec<Transaction<'_>> = block
            .iter()
            .map(|b| Transaction::decode(b).expect("well formed"))
            .collect();
        let (changes, receipts) = ledger.apply(&rules(), 1, &txs);
        let mut next = ledger.clone();
        next.merge(changes);
        (next, receipts.into_iter().map(|r| r.failure).collect())
    }

    #[test]
    fn oracles_give_prices_and_the_mark_is_the_median_of_the_fresh_ones() {
        let rules = Rules {
            prices: PriceRules {
                oracles: [id(1), id(2), id(3)].into(),
                max_age: 10,
            },
            ..rules()
        };
        let price = |from: u8, nonce: u64, asset: u32, price: u64| {
            signed(from, nonce, Payload::Price { asset, price })
        };
        let apply = |ledger: &Ledger, height: u64, block: &[[u8; TX_LEN]]| {
            let txs: Vec<Transaction<'_>> = block
                .iter()
                .map(|b| Transaction::decode(b).expect("well formed"))
                .collect();
            let (changes, receipts) = ledger.apply(&rules, height, &txs);
            let mut next = ledger.clone();
            next.merge(changes);
            (
                next,
                receipts.into_iter().map(|r| r.failure).collect::<Vec<_>>(),
            )
        };
        let ledger = Ledger::default();
        assert_eq!(ledger.mark(&rules, COIN, 0), None);
        let (ledger, failures) = apply(
            &ledger,
            5,
            &[
                price(1, 0, COIN, 100),
                price(2, 0, COIN, 110),
                price(3, 0, COIN, 1_000),
                price(4, 0, COIN, 105),
                price(1, 1, 99, 100),
                price(2, 1, COIN, 0),
                price(3, 0, COIN, 1),
            ],
        );
        assert_eq!(
            failures,
            vec![
                None,
                None,
                None,
                Some(Failure::NotOracle),
                Some(Failure::UnknownAsset(99)),
                Some(Failure::ZeroPrice),
                Some(Failure::BadNonce {
                    expected: 1,
                    got: 0
                }),
            ]
        );
        assert_eq!(ledger.mark(&rules, COIN, 5), Some(110), "100, 110, 1,000");
        assert_eq!(ledger.nonce(&id(4)), 1, "a refused price uses its nonce");
        assert_eq!(
            ledger.account(&id(1)).expect("the oracle").prices[&COIN],
            Quote {
                price: 100,
                height: 5
            }
        );
        // Oracle 1 moves to 120 at height 12; at 16 only its price is fresh.
        let (ledger, failures) = apply(&ledger, 12, &[price(1, 2, COIN, 120)]);
        assert_eq!(failures, vec![None]);
        assert_eq!(ledger.mark(&rules, COIN, 12), Some(120), "110, 120, 1,000");
        assert_eq!(ledger.mark(&rules, COIN, 16), Some(120));
        assert_eq!(ledger.mark(&rules, COIN, 23), None);
        assert_eq!(ledger.mark(&rules, 2, 12), None, "nobody priced asset 2");
    }

    /// A failure copies no account into the block's changes: an unknown sender's wrong
    /// nonce, a transfer to a new account refused for funds, a mint that would overflow a
    /// balance. Only the nonces the failures used up change (mutation-checked: `change`
    /// copying the account before its check adds the unknown sender 5, empty).
    #[test]
    fn failures_leave_no_account_behind() {
        let ledger = Ledger::genesis(&[(id(1), COIN, 100), (id(3), 2, u64::MAX)]).expect("genesis");
        let mint = |nonce, to, amount| {
            signed(
                9,
                nonce,
                Payload::Mint(Body {
                    asset: 2,
                    to,
                    amount,
                }),
            )
        };
        let block = [
            transfer(5, 1, 2, 1),
            transfer(1, 0, 4, 500),
            mint(0, id(3), 1),
            mint(1, id(4), 0),
        ];
        let txs: Vec<Transaction<'_>> = block
            .iter()
            .map(|b| Transaction::decode(b).expect("well formed"))
            .collect();
        let (changes, receipts) = ledger.apply(&rules(), 1, &txs);
        let failures: Vec<_> = receipts.into_iter().map(|r| r.failure).collect();
        assert_eq!(
            failures,
            [
                Some(Failure::BadNonce {
                    expected: 0,
                    got: 1
                }),
                Some(Failure::InsufficientFunds {
                    balance: 100,
                    amount: 500
                }),
                Some(Failure::Overflow),
                None,
            ]
        );
        let changed: Vec<_> = changes.iter().map(|(id, a)| (*id, a.nonce)).collect();
        let mut want = vec![(id(1), 1), (id(9), 2)];
        want.sort_unstable();
        assert_eq!(changed, want);
    }

    #[test]
    fn each_rule_applies_or_fails_with_its_reason() {
        let ledger = Ledger::genesis(&[(id(1), COIN, 100)]).expect("genesis");
        let other_chain = Unsigned {
            chain_id: CHAIN + 1,
            sender: id(1),
            nonce: 0,
            payload: Payload::Transfer(Body {
                asset: COIN,
                to: id(2),
                amount: 1,
            }),
        };
        let wrong_chain = other_chain.sign(&key(1));
        let block = [
            wrong_chain,
            transfer(1, 1, 2, 10),
            transfer(1, 0, 2, 30),
            transfer(1, 1, 2, 500),
            signed(
                1,
                2,
                Payload::Transfer(Body {
                    asset: 3,
                    to: id(2),
                    amount: 1,
                }),
            ),
            signed(
                1,
                3,
                Payload::Mint(Body {
                    asset: COIN,
                    to: id(1),
                    amount: 5,
                }),
            ),
            signed(
                9,
                0,
                Payload::Mint(Body {
                    asset: 2,
                    to: id(2),
                    amount: 7,
                }),
            ),
            signed(
                9,
                1,
                Payload::Mint(Body {
                    asset: 2,
                    to: id(2),
                    amount: u64::MAX,
                }),
            ),
            transfer(2, 0, 2, 30),
        ];
        let (next, failures) = run(&ledger, &block);
        assert_eq!(
            failures,
            [
                Some(Failure::WrongChain {
                    chain_id: CHAIN + 1
                }),
                Some(Failure::BadNonce {
                    expected: 0,
                    got: 1
                }),
                None,
                Some(Failure::InsufficientFunds {
                    balance: 70,
                    amount: 500
                }),
                Some(Failure::UnknownAsset(3)),
                Some(Failure::NotIssuer),
                None,
                Some(Failure::Overflow),
                None,
            ]
        );
        assert_eq!(next.balance(&id(1), COIN), 70);
        assert_eq!(next.balance(&id(2), COIN), 30);
        assert_eq!(next.balance(&id(2), 2), 7);
        // Failures after the nonce check used the nonce up; the bad nonce did not.
        assert_eq!((next.nonce(&id(1)), next.nonce(&id(9))), (4, 2));
        assert_eq!(next.nonce(&id(2)), 1);
        // The ledger it started from is untouched: apply is a function.
        assert_eq!(ledger.balance(&id(1), COIN), 100);
    }

    #[test]
    fn failures_round_trip_through_their_stored_bytes() {
        let all = [
            Failure::WrongChain { chain_id: 9 },
            Failure::BadNonce {
                expected: 3,
                got: u64::MAX,
            },
            Failure::UnknownAsset(77),
            Failure::InsufficientFunds {
                balance: 1,
                amount: 2,
            },
            Failure::NotIssuer,
            Failure::Overflow,
            Failure::NotOracle,
            Failure::ZeroPrice,
            Failure::UnknownInstrument(100),
            Failure::TradeExpired { last_height: 9 },
            Failure::InstrumentExpired { expiry: u64::MAX },
            Failure::NoMark(2),
            Failure::InitialMargin {
                equity: -5,
                initial: i128::MAX,
            },
        ];
        for failure in all {
            let bytes = failure.encode();
            assert_eq!(Failure::decode(&bytes), Some(failure));
            assert_eq!(Failure::decode(&bytes[..bytes.len() - 1]), None);
            assert_eq!(Failure::decode(&[bytes.as_slice(), &[0]].concat()), None);
        }
        assert_eq!(Failure::decode(&[]), None);
        assert_eq!(Failure::decode(&[9]), None);
        assert_eq!(Failure::decode(&[14]), None);
    }

    proptest! {
        /// Transfers among four accounts: coins are neither made nor lost, nonces only rise,
        /// and applying a block in two parts gives what applying it whole gives.
        #[test]
        fn transfers_conserve_supply_and_blocks_compose(
            moves in proptest::collection::vec((0u8..4, 0u8..4, 0u64..60, 0u64..3), 0..40),
            cut in 0usize..40,
        ) {
            let start = Ledger::genesis(&[(id(0), COIN, 100), (id(1), COIN, 50)]).expect("genesis");
            let mut nonces = [0u64; 4];
            let block: Vec<[u8; TX_LEN]> = moves
                .iter()
                .map(|&(from, to, amount, skew)| {
                    // Mostly the right nonce, sometimes one ahead.
                    let nonce = nonces[from as usize] + u64::from(skew == 2);
                    if skew != 2 {
                        nonces[from as usize] += 1;
                    }
                    transfer(from, nonce, to, amount)
                })
                .collect();
            let (whole, receipts) = run(&start, &block);
            let supply = |l: &Ledger| (0..4).map(|a| l.balance(&id(a), COIN)).sum::<u64>();
            prop_assert_eq!(supply(&whole), 150);
            prop_assert_eq!(receipts.len(), block.len());
            let cut = cut.min(block.len());
            let (first, _) = run(&start, &block[..cut]);
            let (second, _) = run(&first, &block[cut..]);
            prop_assert_eq!(second, whole.clone());
            for a in 0..4 {
                prop_assert!(whole.nonce(&id(a)) >= start.nonce(&id(a)));
            }
        }
    }
}
