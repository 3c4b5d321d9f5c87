//! The options book: trades between two accounts that both signed, margin, liquidation and
//! expiry — the ledger's derivatives rules (issue #11), deterministic like the rest of it.
//!
//! **Collateral** is an account's balance of the quote asset genesis names. An account's
//! figures at a height come from [`crate::derivatives::risk`]: `value` (its positions at the
//! mark), `equity = collateral + value`, `maintenance` and `initial`.
//!
//! **Trades.** A `Trade` moves `contracts` of an instrument from the counterparty (short) to
//! the sender (long) for `premium × contracts` of the quote asset, paid by the sender. It
//! fails, changing nothing, when the instrument is unknown (`UnknownInstrument`), its block is
//! past the trade's last height (`TradeExpired`) or at or past the instrument's expiry
//! (`InstrumentExpired`), an instrument either side would hold has no mark (`NoMark`), the
//! buyer cannot pay (`InsufficientFunds`), or — the initial-margin rule — either side would
//! end with equity below its initial margin while its maintenance margin grew
//! (`InitialMargin`): a trade that reduces an account's risk is always allowed. Collateral is
//! locked by the same rule: a transfer of the quote asset out of an account with positions
//! fails when it would leave equity below initial margin.
//!
//! **After every block**, in this order:
//!
//! 1. *Expiry.* Each instrument whose expiry height has been reached, once its underlying has
//!    a mark, settles at that mark: every holder's position closes for
//!    `contracts × intrinsic × size`, the insurance fund being the counterparty of every
//!    holder — shorts pay it first (each at most its collateral; what it cannot pay is its
//!    shortfall), then it pays the longs in key order (at most what it holds; the rest is
//!    recorded as unpaid). Every holder gets a [`Settlement`] in its history.
//! 2. *Liquidation.* Every account holding positions, in key order, except the fund, is
//!    margined at the block's height and marks. One whose equity is below its maintenance
//!    margin is liquidated in the same block: the fund takes all its positions at the mark
//!    value, and charges a penalty of `⌈maintenance · penalty_bp / 10,000⌉`. The account is
//!    credited `value − penalty` (paid by the fund when positive, at most what the fund
//!    holds) or debited it (at most its collateral; the rest is the shortfall, which the
//!    fund bears: it took positions worth more than it was paid). It gets a [`Liquidation`]
//!    in its history. An account holding an instrument whose underlying has no fresh mark
//!    cannot be margined and is skipped that block.
//!
//! Every flow of the quote asset is between two accounts, so trades, liquidations and
//! settlements neither make nor lose collateral: the quote asset's total over all accounts,
//! the fund's included, is what transfers and mints make it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Account, AccountId, Failure, Key, Ledger, Overlay, Rules};
use crate::derivatives::pricing::{Model, OptionTerms};
use crate::derivatives::risk::{ceil_div, Margin, Position, RiskArray, RiskParams};
use crate::transaction::Trade;

/// How many events an account's history keeps: the newest.
pub const HISTORY_KEPT: usize = 16;

/// An option the book trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instrument {
    /// The asset whose mark prices it.
    pub underlying: u32,
    /// Call or put, strike, expiry, size.
    pub terms: OptionTerms,
}

/// What genesis fixes for the book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookRules {
    /// The collateral asset, in which premiums, margins and settlements are paid.
    pub quote: u32,
    /// The insurance fund's account: it takes liquidated positions, collects penalties,
    /// bears shortfalls and is the counterparty of settlement.
    pub fund: AccountId,
    /// The instruments, by id.
    pub instruments: BTreeMap<u32, Instrument>,
    /// How options are valued.
    pub model: Model,
    /// How margins are set.
    pub risk: RiskParams,
    /// The liquidation penalty, in basis points of the maintenance margin.
    pub penalty_bp: u32,
}

impl Default for BookRules {
    /// No instruments; 80 % volatility over years of one-second blocks, a 15 % shock, a 5 %
    /// short minimum, initial margin 1.5 times maintenance, a 2 % penalty.
    fn default() -> Self {
        Self {
            quote: 0,
            fund: [0; 32],
            instruments: BTreeMap::new(),
            model: Model {
                vol_bp: 8_000,
                blocks_per_year: 31_536_000,
            },
            risk: RiskParams {
                shock_bp: 1_500,
                short_minimum_bp: 500,
                initial_bp: 15_000,
            },
            penalty_bp: 200,
        }
    }
}

/// Something the book did to an account outside its own transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Its positions were taken by the fund.
    Liquidated(Liquidation),
    /// One of its positions expired and settled.
    Settled(Settlement),
}

/// Why and how an account was liquidated (quote units).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liquidation {
    /// The block.
    pub height: u64,
    /// Its equity then.
    pub equity: i128,
    /// Its maintenance margin then, which the equity was below.
    pub maintenance: i128,
    /// Its positions' value at the mark, which the fund took them at.
    pub value: i128,
    /// The penalty charged.
    pub penalty: i128,
    /// What it received (negative: paid).
    pub paid: i128,
    /// What it owed and could not pay, or what it was owed and the fund could not pay.
    pub shortfall: i128,
}

/// An expired position closed at the mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The block.
    pub height: u64,
    /// The instrument.
    pub instrument: u32,
    /// The contracts held (negative: short).
    pub contracts: i64,
    /// The underlying's mark it settled at.
    pub price: u64,
    /// What it received (negative: paid).
    pub paid: i128,
    /// What it owed and could not pay, or what it was owed and the fund could not pay.
    pub shortfall: i128,
}

/// An account's margin figures (quote units).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarginState {
    /// Its quote balance.
    pub collateral: u64,
    /// Its positions at the mark.
    pub value: i128,
    /// Collateral plus value.
    pub equity: i128,
    /// What it must keep.
    pub maintenance: i128,
    /// What it must have to add risk.
    pub initial: i128,
}

impl MarginState {
    /// Below maintenance: to be liquidated.
    pub fn under_maintenance(&self) -> bool {
        self.equity < self.maintenance
    }
}

/// The risk arrays of every instrument whose underlying has a mark, at one height.
#[derive(Clone, Debug, Default)]
pub(super) struct RiskTable {
    index: BTreeMap<u32, usize>,
    arrays: Vec<RiskArray>,
}

impl RiskTable {
    /// The table at `height`, with `mark` giving each underlying's mark.
    pub(super) fn new(
        rules: &BookRules,
        height: u64,
        mut mark: impl FnMut(u32) -> Option<u64>,
    ) -> Self {
        let mut table = Self::default();
        let mut marks = BTreeMap::new();
        for (&id, instrument) in &rules.instruments {
            let underlying = instrument.underlying;
            let Some(price) = *marks.entry(underlying).or_insert_with(|| mark(underlying)) else {
                continue;
            };
            table.index.insert(id, table.arrays.len());
            table.arrays.push(RiskArray::new(
                &instrument.terms,
                &rules.model,
                &rules.risk,
                price,
                height,
            ));
        }
        table
    }

    /// The margin of `account`; `Err` names an instrument without a mark (or unknown).
    pub(super) fn margin(
        &self,
        rules: &BookRules,
        account: &Account,
        scratch: &mut Vec<Position>,
    ) -> Result<MarginState, u32> {
        let collateral = account.balance(rules.quote);
        scratch.clear();
        for (&instrument, &contracts) in &account.positions {
            let &at = self.index.get(&instrument).ok_or(instrument)?;
            scratch.push(Position {
                instrument: at,
                contracts,
            });
        }
        let Margin {
            value,
            maintenance,
            initial,
        } = Margin::of(scratch, &self.arrays, &rules.risk);
        Ok(MarginState {
            collateral,
            value,
            equity: i128::from(collateral).saturating_add(value),
            maintenance,
            initial,
        })
    }
}

/// Adds `event` to `account`'s history, dropping the oldest past [`HISTORY_KEPT`].
fn record(account: &mut Account, event: Event) {
    if account.history.len() == HISTORY_KEPT {
        account.history.remove(0);
    }
    account.history.push(event);
}

/// The underlying of `instrument` for a `NoMark` failure.
fn underlying(rules: &BookRules, instrument: u32) -> u32 {
    rules
        .instruments
        .get(&instrument)
        .map_or(instrument, |i| i.underlying)
}

impl<'a> Overlay<'a> {
    /// The risk table at `height`, built on first use in a block and after each price.
    fn table(&mut self, rules: &Rules, height: u64) -> &RiskTable {
        if self.table.is_none() {
            let table =
                RiskTable::new(&rules.book, height, |asset| self.mark(rules, asset, height));
            self.table = Some(table);
        }
        self.table.as_ref().expect("just built")
    }

    /// `account`'s margin as it stands in the block at `height`.
    pub(super) fn margin(
        &mut self,
        rules: &Rules,
        height: u64,
        id: &AccountId,
    ) -> Result<MarginState, Failure> {
        let account = self.get(id).cloned().unwrap_or_default();
        self.margin_of(rules, height, &account)
    }

    fn margin_of(
        &mut self,
        rules: &Rules,
        height: u64,
        account: &Account,
    ) -> Result<MarginState, Failure> {
        let mut scratch = Vec::new();
        self.table(rules, height)
            .margin(&rules.book, account, &mut scratch)
            .map_err(|instrument| Failure::NoMark(underlying(&rules.book, instrument)))
    }

    /// Whether `after` may replace `before` under the initial-margin rule.
    fn initial_margin_allows(
        &mut self,
        rules: &Rules,
        height: u64,
        before: &Account,
        after: &Account,
    ) -> Result<(), Failure> {
        let now = self.margin_of(rules, height, after)?;
        if now.equity >= now.initial {
            return Ok(());
        }
        let was = self.margin_of(rules, height, before)?;
        if now.maintenance <= was.maintenance {
            return Ok(());
        }
        Err(Failure::InitialMargin {
            equity: now.equity,
            initial: now.initial,
        })
    }

    /// A quote-asset transfer out of `sender`, which holds positions: allowed if the
    /// collateral left covers the initial margin.
    pub(super) fn check_withdrawal(
        &mut self,
        rules: &Rules,
        height: u64,
        sender: &AccountId,
        amount: u64,
    ) -> Result<(), Failure> {
        let Some(before) = self
            .get(sender)
            .filter(|a| !a.positions.is_empty())
            .cloned()
        else {
            return Ok(());
        };
        let mut after = before.clone();
        after.set_balance(
            rules.book.quote,
            before.balance(rules.book.quote).saturating_sub(amount),
        );
        let now = self.margin_of(rules, height, &after)?;
        if now.equity < now.initial {
            return Err(Failure::InitialMargin {
                equity: now.equity,
                initial: now.initial,
            });
        }
        Ok(())
    }

    /// A matched trade: `buyer` (the sender, whose nonce is already used) goes long.
    pub(super) fn trade(
        &mut self,
        rules: &Rules,
        height: u64,
        buyer: AccountId,
        trade: &Trade,
    ) -> Result<(), Failure> {
        let book = &rules.book;
        let instrument = book
            .instruments
            .get(&trade.instrument)
            .ok_or(Failure::UnknownInstrument(trade.instrument))?;
        if height > trade.last_height {
            return Err(Failure::TradeExpired {
                last_height: trade.last_height,
            });
        }
        if height >= instrument.terms.expiry {
            return Err(Failure::InstrumentExpired {
                expiry: instrument.terms.expiry,
            });
        }
        let seller = trade.counterparty;
        let contracts = i64::from(trade.contracts);
        let cost = trade
            .premium
            .checked_mul(u64::from(trade.contracts))
            .ok_or(Failure::Overflow)?;
        let buyer_before = self.get(&buyer).cloned().unwrap_or_default();
        let seller_before = self.get(&seller).cloned().unwrap_or_default();
        let mut buyer_after = buyer_before.clone();
        let mut seller_after = seller_before.clone();
        let paid = buyer_after.balance(book.quote);
        let left = paid.checked_sub(cost).ok_or(Failure::InsufficientFunds {
            balance: paid,
            amount: cost,
        })?;
        buyer_after.set_balance(book.quote, left);
        let received = seller_after.balance(book.quote);
        let received = received.checked_add(cost).ok_or(Failure::Overflow)?;
        seller_after.set_balance(book.quote, received);
        add_position(&mut buyer_after, trade.instrument, contracts)?;
        add_position(&mut seller_after, trade.instrument, -contracts)?;
        self.initial_margin_allows(rules, height, &buyer_before, &buyer_after)?;
        self.initial_margin_allows(rules, height, &seller_before, &seller_after)?;
        self.put(buyer, buyer_after);
        self.put(seller, seller_after);
        Ok(())
    }

    /// What happens after a block's transactions: expiry, then liquidation.
    pub(super) fn after_block(&mut self, rules: &Rules, height: u64) {
        if rules.book.instruments.is_empty() {
            return;
        }
        self.settle_expired(rules, height);
        self.liquidate(rules, height);
    }

    /// The accounts holding positions only because of this block, in key order.
    fn new_holders(&self) -> Vec<AccountId> {
        let mut new: Vec<AccountId> = self
            .changes
            .iter()
            .filter(|(key, a)| !a.positions.is_empty() && !self.base.holders.contains(*key))
            .map(|(key, _)| key.0)
            .collect();
        new.sort_unstable();
        new
    }

    /// Every account holding positions now, in key order.
    fn holders(&self) -> Vec<AccountId> {
        let mut holders: Vec<AccountId> = self.base.holders.iter().map(|key| key.0).collect();
        holders.extend(self.new_holders());
        holders.sort_unstable();
        holders.retain(|id| self.get(id).is_some_and(|a| !a.positions.is_empty()));
        holders
    }

    fn settle_expired(&mut self, rules: &Rules, height: u64) {
        let book = &rules.book;
        // Expired and still held (before this block, or by what it changed): an instrument
        // settled long ago costs nothing.
        let expired: Vec<(u32, Instrument, u64)> = book
            .instruments
            .iter()
            .filter(|(_, i)| i.terms.expiry <= height)
            .filter(|(id, _)| {
                self.base.holding(**id) > 0
                    || self.changes.values().any(|a| a.positions.contains_key(id))
            })
            .filter_map(|(&id, &i)| Some((id, i, self.mark(rules, i.underlying, height)?)))
            .collect();
        if expired.is_empty() {
            return;
        }
        let holders = self.holders();
        for (id, instrument, price) in expired {
            let per_contract = i128::from(instrument.terms.intrinsic(price))
                .saturating_mul(i128::from(instrument.terms.size));
            let held: Vec<(AccountId, i64)> = holders
                .iter()
                .filter_map(|h| Some((*h, *self.get(h)?.positions.get(&id)?)))
                .collect();
            // Shorts pay the fund first, so that the longs are paid from what came in.
            for pass_shorts in [true, false] {
                for &(holder, contracts) in &held {
                    if (contracts < 0) != pass_shorts {
                        continue;
                    }
                    let owed = i128::from(contracts).saturating_mul(per_contract);
                    let (paid, shortfall) = if holder == book.fund {
                        (0, 0)
                    } else {
                        self.pay_between(book, holder, owed)
                    };
                    let account = self.get_mut(holder);
                    account.positions.remove(&id);
                    record(
                        account,
                        Event::Settled(Settlement {
                            height,
                            instrument: id,
                            contracts,
                            price,
                            paid,
                            shortfall,
                        }),
                    );
                }
            }
        }
    }

    /// Moves `amount` of the quote asset from the fund to `account` (negative: from the
    /// account to the fund), each paying at most what it holds. What moved (to the account),
    /// and what could not.
    fn pay_between(&mut self, book: &BookRules, account: AccountId, amount: i128) -> (i128, i128) {
        let mut holder = self.get(&account).cloned().unwrap_or_default();
        let moved = transfer(book.quote, &mut holder, self.get_mut(book.fund), amount);
        self.put(account, holder);
        moved
    }

    /// Margins every account holding positions, in key order, and liquidates those under
    /// maintenance.
    fn liquidate(&mut self, rules: &Rules, height: u64) {
        let book = &rules.book;
        let base: &'a Ledger = self.base;
        let new = self.new_holders();
        if base.holders.is_empty() && new.is_empty() {
            return;
        }
        let table = self.table(rules, height).clone();
        let mut scratch = Vec::new();
        let mut new = new.into_iter().peekable();
        // The accounts this block changed so far, walked beside the holders (both in key
        // order): a holder not among them is as it was, and needs no lookup. The pass itself
        // changes only holders it has visited, and the fund, which it skips.
        let mut touched = self.touched().into_iter().peekable();
        for (id, account) in base_holders(base) {
            while let Some(id) = new.next_if(|n| n < id) {
                self.margin_call(book, &table, height, id, None, &mut scratch);
            }
            while touched.next_if(|t| t < id).is_some() {}
            let unchanged = touched.next_if_eq(id).is_none();
            let before = unchanged.then_some(account);
            self.margin_call(book, &table, height, *id, before, &mut scratch);
        }
        for id in new {
            self.margin_call(book, &table, height, id, None, &mut scratch);
        }
    }

    /// Margins `id` — whose value is `current`, or else the block's changed value — and
    /// liquidates it if it is under maintenance.
    fn margin_call(
        &mut self,
        book: &BookRules,
        table: &RiskTable,
        height: u64,
        id: AccountId,
        current: Option<&Account>,
        scratch: &mut Vec<Position>,
    ) {
        if id == book.fund {
            return;
        }
        let Some(account) = current.or_else(|| self.changes.get(&Key(id))) else {
            return;
        };
        let Ok(margin) = table.margin(book, account, scratch) else {
            return;
        };
        if account.positions.is_empty() || !margin.under_maintenance() {
            return;
        }
        let mut account = account.clone();
        let penalty = ceil_div(
            margin
                .maintenance
                .saturating_mul(i128::from(book.penalty_bp)),
            10_000,
        );
        let positions = std::mem::take(&mut account.positions);
        let fund = self.get_mut(book.fund);
        let owed = margin.value.saturating_sub(penalty);
        let (paid, shortfall) = transfer(book.quote, &mut account, fund, owed);
        for (instrument, contracts) in positions {
            // Two opposite positions of the fund's could only pass i64 with more contracts
            // than were ever traded: saturate rather than fail a block.
            let held = fund.positions.entry(instrument).or_insert(0);
            *held = held.saturating_add(contracts);
            if *held == 0 {
                fund.positions.remove(&instrument);
            }
        }
        record(
            &mut account,
            Event::Liquidated(Liquidation {
                height,
                equity: margin.equity,
                maintenance: margin.maintenance,
                value: margin.value,
                penalty,
                paid,
                shortfall,
            }),
        );
        self.put(id, account);
    }
}

/// The accounts that held positions before the block, in key order. Walking every account
/// is cheaper than looking each holder up once holders are a sixteenth of the accounts.
fn base_holders(base: &Ledger) -> Box<dyn Iterator<Item = (&AccountId, &Account)> + '_> {
    if base.holders.len().saturating_mul(16) >= base.accounts.len() {
        Box::new(
            base.accounts
                .iter()
                .filter(|(_, a)| !a.positions.is_empty())
                .map(|(key, a)| (&key.0, a)),
        )
    } else {
        Box::new(
            base.holders
                .iter()
                .filter_map(|key| Some((&key.0, base.accounts.get(key)?))),
        )
    }
}

/// Moves `amount` of the quote asset from `fund` to `account` (negative: the other way),
/// each paying at most its balance and receiving at most its room below 2^64. What moved (to
/// the account), and what could not.
fn transfer(quote: u32, account: &mut Account, fund: &mut Account, amount: i128) -> (i128, i128) {
    let (from, to) = if amount >= 0 {
        (fund, account)
    } else {
        (account, fund)
    };
    let want = amount.unsigned_abs();
    let has = from.balance(quote);
    let held = to.balance(quote);
    let moved = u64::try_from(want)
        .unwrap_or(u64::MAX)
        .min(has)
        .min(u64::MAX - held);
    from.set_balance(quote, has - moved);
    to.set_balance(quote, held + moved);
    let shortfall = i128::try_from(want - u128::from(moved)).unwrap_or(i128::MAX);
    let moved = i128::from(moved);
    (if amount >= 0 { moved } else { -moved }, shortfall)
}

fn add_position(account: &mut Account, instrument: u32, contracts: i64) -> Result<(), Failure> {
    let held = account.positions.get(&instrument).copied().unwrap_or(0);
    let after = held.checked_add(contracts).ok_or(Failure::Overflow)?;
    if after == 0 {
        account.positions.remove(&instrument);
    } else {
        account.positions.insert(instrument, after);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::derivatives::pricing::OptionKind;
    use crate::derivatives::risk::Margin;
    use crate::ledger::{Ledger, PriceRules};
    use crate::testing::{self, id};
    use crate::transaction::{Payload, Transaction};

    const CHAIN: u32 = 7;
    const QUOTE: u32 = 1;
    const UNDERLYING: u32 = 2;
    const CALL: u32 = 100;
    const PUT: u32 = 101;
    const ORACLE: u8 = 20;
    const FUND: u8 = 30;

    /// One oracle (its price is the mark for 100 blocks), a call and a put at 50,000
    /// expiring at height 1,000, no volatility (values are intrinsic: the figures below are worked by hand),
    /// a 15 % shock, a 5 % short minimum, initial 1.5 × maintenance, a 2 % penalty.
    fn rules(vol_bp: u32) -> Rules {
        let option = |kind| Instrument {
            underlying: UNDERLYING,
            terms: OptionTerms {
                kind,
                strike: 50_000,
                expiry: 1_000,
                size: 1,
            },
        };
        Rules {
            chain_id: CHAIN,
            assets: [QUOTE, UNDERLYING].into(),
            issuers: [].into(),
            prices: PriceRules {
                oracles: [id(ORACLE)].into(),
                max_age: 100,
            },
            book: BookRules {
                quote: QUOTE,
                fund: id(FUND),
                instruments: [
                    (CALL, option(OptionKind::Call)),
                    (PUT, option(OptionKind::Put)),
                ]
                .into(),
                model: Model {
                    vol_bp,
                    blocks_per_year: 1_000,
                },
                ..BookRules::default()
            },
        }
    }

    fn price(nonce: u64, price: u64) -> Vec<u8> {
        let payload = Payload::Price {
            asset: UNDERLYING,
            price,
        };
        testing::signed(CHAIN, ORACLE, nonce, payload).to_vec()
    }

    fn trade(
        buyer: u8,
        nonce: u64,
        seller: u8,
        instrument: u32,
        contracts: u32,
        premium: u64,
    ) -> Vec<u8> {
        testing::trade(CHAIN, buyer, nonce, seller, instrument, contracts, premium).to_vec()
    }

    fn pay(from: u8, nonce: u64, to: u8, amount: u64) -> Vec<u8> {
        testing::transfer(CHAIN, from, nonce, to, QUOTE, amount).to_vec()
    }

    fn run(
        rules: &Rules,
        ledger: &Ledger,
        height: u64,
        block: &[Vec<u8>],
    ) -> (Ledger, Vec<Option<Failure>>) {
        let txs: Vec<Transaction<'_>> = block
            .iter()
            .map(|b| Transaction::decode(b).expect("well formed"))
            .collect();
        let (changes, receipts) = ledger.apply(rules, height, &txs);
        let mut next = ledger.clone();
        next.merge(changes);
        (next, receipts.into_iter().map(|r| r.failure).collect())
    }

    fn quote_total(ledger: &Ledger) -> u128 {
        ledger
            .accounts()
            .map(|(_, a)| a)
            .map(|a| u128::from(a.balance(QUOTE)))
            .sum()
    }

    fn history(ledger: &Ledger, n: u8) -> Vec<Event> {
        ledger
            .account(&id(n))
            .map(|a| a.history.clone())
            .unwrap_or_default()
    }

    /// Seller 2 holds `collateral`, buyer 1 holds 5,000, the fund 100,000; the mark is 50,000.
    fn opened(collateral: u64) -> (Rules, Ledger) {
        let rules = rules(0);
        let genesis = Ledger::genesis(&[
            (id(1), QUOTE, 5_000),
            (id(2), QUOTE, collateral),
            (id(FUND), QUOTE, 100_000),
        ])
        .expect("genesis");
        let (ledger, failures) = run(&rules, &genesis, 1, &[price(0, 50_000)]);
        assert_eq!(failures, [None]);
        (rules, ledger)
    }

    /// The block's changes sit in a hash map: the walks beside the ledger's holders take
    /// them in key order all the same (many accounts, so that a map's order is almost surely
    /// not sorted).
    #[test]
    fn the_blocks_new_holders_and_touched_accounts_come_in_key_order() {
        let base = Ledger::default();
        let mut overlay = Overlay::new(&base);
        let mut ids: Vec<AccountId> = (0..=255u8).map(|n| [n; 32]).rev().collect();
        for (i, id) in ids.iter().enumerate() {
            let mut account = Account::default();
            // Every other one holds a position: a new holder.
            if i % 2 == 0 {
                account.positions.insert(CALL, 1);
            }
            overlay.put(*id, account);
        }
        ids.sort_unstable();
        assert_eq!(overlay.touched(), ids);
        let holders: Vec<AccountId> = ids.iter().copied().filter(|id| id[0] % 2 == 1).collect();
        assert_eq!(overlay.new_holders(), holders);
    }

    #[test]
    fn a_trade_moves_the_premium_and_the_contracts_under_the_initial_margin_rule() {
        // A short at-the-money call at 50,000: scenarios 42,500 … 57,500 value it at up to
        // 7,500, the short minimum is 5 % of 50,000 = 2,500, so maintenance is 10,000 and
        // initial 15,000. The seller has 14,000 and receives 1,000: exactly enough.
        let (rules, ledger) = opened(14_000);
        let (after, failures) = run(&rules, &ledger, 2, &[trade(1, 0, 2, CALL, 1, 1_000)]);
        assert_eq!(failures, [None]);
        assert_eq!(after.balance(&id(1), QUOTE), 4_000);
        assert_eq!(after.balance(&id(2), QUOTE), 15_000);
        assert_eq!(
            after.account(&id(1)).expect("buyer").positions,
            [(CALL, 1)].into()
        );
        assert_eq!(
            after.account(&id(2)).expect("seller").positions,
            [(CALL, -1)].into()
        );
        assert_eq!(after.nonce(&id(1)), 1, "the buyer's nonce");
        assert_eq!(after.nonce(&id(2)), 0, "the seller signs no nonce");
        let seller = after.margin(&rules, &id(2), 2).expect("a mark");
        assert_eq!(
            (
                seller.value,
                seller.equity,
                seller.maintenance,
                seller.initial
            ),
            (0, 15_000, 10_000, 15_000)
        );
        let buyer = after.margin(&rules, &id(1), 2).expect("a mark");
        assert_eq!(
            (buyer.maintenance, buyer.initial),
            (0, 0),
            "a long risks its premium only"
        );

        // One unit less and the seller would end 1 below initial margin: nothing moves.
        let (rules, ledger) = opened(13_999);
        let (after, failures) = run(&rules, &ledger, 2, &[trade(1, 0, 2, CALL, 1, 1_000)]);
        assert_eq!(
            failures,
            [Some(Failure::InitialMargin {
                equity: 14_999,
                initial: 15_000
            })]
        );
        assert_eq!(after.balance(&id(1), QUOTE), 5_000);
        assert!(after.account(&id(2)).expect("seller").positions.is_empty());
        assert_eq!(
            after.nonce(&id(1)),
            1,
            "a failed trade uses the buyer's nonce"
        );
    }

    #[test]
    fn a_trade_that_reduces_risk_is_allowed_below_initial_margin() {
        let (rules, ledger) = opened(14_000);
        let (ledger, _) = run(&rules, &ledger, 2, &[trade(1, 0, 2, CALL, 1, 1_000)]);
        // At 52,000 the seller (equity 15,000 − 2,000 = 13,000) is under initial margin
        // (maintenance 7,800 + 2,600 = 10,400 · 1.5 = 15,600) but above maintenance.
        let (ledger, failures) = run(&rules, &ledger, 3, &[price(1, 52_000)]);
        assert_eq!(failures, [None]);
        let seller = ledger.margin(&rules, &id(2), 3).expect("a mark");
        assert_eq!(
            (seller.equity, seller.maintenance, seller.initial),
            (13_000, 10_400, 15_600)
        );
        // Selling a second call adds risk: refused. Buying its call back removes it: allowed.
        let (_, failures) = run(&rules, &ledger, 4, &[trade(1, 1, 2, CALL, 1, 2_000)]);
        assert!(matches!(failures[0], Some(Failure::InitialMargin { .. })));
        let (after, failures) = run(&rules, &ledger, 4, &[trade(2, 0, 1, CALL, 1, 2_000)]);
        assert_eq!(failures, [None]);
        assert!(after.account(&id(2)).expect("seller").positions.is_empty());
        assert_eq!(
            after.balance(&id(2), QUOTE),
            13_000,
            "15,000 less the 2,000 paid"
        );
    }

    #[test]
    fn a_trade_fails_with_its_reason_and_changes_nothing() {
        let (rules, ledger) = opened(1_000_000);
        let mut late = Trade {
            instrument: CALL,
            contracts: 1,
            counterparty: id(2),
            premium: 10,
            last_height: 1,
        };
        let signed = |trade: Trade, nonce| {
            crate::transaction::Unsigned {
                chain_id: CHAIN,
                sender: id(1),
                nonce,
                payload: Payload::Trade(trade),
            }
            .sign_trade(&testing::key(1), &testing::key(2))
            .to_vec()
        };
        let block = [
            trade(1, 0, 2, 999, 1, 10),
            signed(late, 1),
            trade(1, 2, 2, CALL, 1, 5_001),
            trade(1, 3, 2, CALL, u32::MAX, u64::MAX),
        ];
        let (after, failures) = run(&rules, &ledger, 2, &block);
        assert_eq!(
            failures,
            [
                Some(Failure::UnknownInstrument(999)),
                Some(Failure::TradeExpired { last_height: 1 }),
                Some(Failure::InsufficientFunds {
                    balance: 5_000,
                    amount: 5_001
                }),
                Some(Failure::Overflow),
            ]
        );
        assert_eq!(after.balance(&id(1), QUOTE), 5_000);
        assert!(after.account(&id(1)).expect("buyer").positions.is_empty());
        // At the expiry height, and with no fresh mark.
        late.last_height = 5_000;
        let (_, failures) = run(&rules, &ledger, 1_000, &[signed(late, 0)]);
        assert_eq!(
            failures,
            [Some(Failure::InstrumentExpired { expiry: 1_000 })]
        );
        let stale = rules.prices.max_age + 2;
        let (_, failures) = run(&rules, &ledger, stale, &[signed(late, 0)]);
        assert_eq!(failures, [Some(Failure::NoMark(UNDERLYING))]);
    }

    #[test]
    fn collateral_backing_a_position_cannot_be_transferred_out() {
        let (rules, ledger) = opened(14_000);
        let (ledger, _) = run(&rules, &ledger, 2, &[trade(1, 0, 2, CALL, 1, 1_000)]);
        // The seller holds exactly its initial margin: one unit out is refused, to itself or
        // of another asset is not the quote's business.
        let (after, failures) = run(&rules, &ledger, 3, &[pay(2, 0, 3, 1), pay(2, 1, 2, 15_000)]);
        assert_eq!(
            failures,
            [
                Some(Failure::InitialMargin {
                    equity: 14_999,
                    initial: 15_000
                }),
                None
            ]
        );
        assert_eq!(after.balance(&id(2), QUOTE), 15_000);
        // The buyer's long needs no margin: it may move everything.
        let (_, failures) = run(&rules, &ledger, 3, &[pay(1, 1, 3, 4_000)]);
        assert_eq!(failures, [None]);
    }

    #[test]
    fn a_short_below_maintenance_is_liquidated_in_the_same_block() {
        let (rules, ledger) = opened(14_000);
        let (ledger, _) = run(&rules, &ledger, 2, &[trade(1, 0, 2, CALL, 1, 1_000)]);
        let total = quote_total(&ledger);
        // At 55,000 the call is worth 5,000; the scenarios (46,750 … 63,250) lose up to 8,250,
        // the short minimum is 2,750: maintenance 11,000, equity 15,000 − 5,000 = 10,000.
        // The fund takes the short at −5,000 and a penalty of 2 % of 11,000 = 220.
        let (after, failures) = run(&rules, &ledger, 3, &[price(1, 55_000)]);
        assert_eq!(failures, [None]);
        assert_eq!(
            history(&after, 2),
            [Event::Liquidated(Liquidation {
                height: 3,
                equity: 10_000,
                maintenance: 11_000,
                value: -5_000,
                penalty: 220,
                paid: -5_220,
                shortfall: 0,
            })]
        );
        assert_eq!(after.balance(&id(2), QUOTE), 15_000 - 5_220);
        assert_eq!(after.balance(&id(FUND), QUOTE), 100_000 + 5_220);
        assert!(after.account(&id(2)).expect("seller").positions.is_empty());
        assert_eq!(
            after.account(&id(FUND)).expect("fund").positions,
            [(CALL, -1)].into()
        );
        assert!(history(&after, 1).is_empty(), "the long was not touched");
        assert_eq!(quote_total(&after), total);
    }

    #[test]
    fn what_a_liquidated_account_cannot_pay_is_its_shortfall() {
        let (rules, ledger) = opened(14_000);
        let (ledger, _) = run(&rules, &ledger, 2, &[trade(1, 0, 2, CALL, 1, 1_000)]);
        // At 80,000: value −30,000, maintenance 12,000 + 4,000, penalty 320; the seller has
        // 15,000 to give of the 30,320 it owes.
        let (after, _) = run(&rules, &ledger, 3, &[price(1, 80_000)]);
        let [Event::Liquidated(l)] = history(&after, 2)[..] else {
            panic!("one liquidation: {:?}", history(&after, 2));
        };
        assert_eq!((l.value, l.maintenance, l.penalty), (-30_000, 16_000, 320));
        assert_eq!((l.paid, l.shortfall), (-15_000, 15_320));
        assert_eq!(after.balance(&id(2), QUOTE), 0);
        assert_eq!(after.balance(&id(FUND), QUOTE), 115_000);
    }

    #[test]
    fn positions_settle_at_the_mark_at_expiry_with_the_fund_as_counterparty() {
        let (rules, ledger) = opened(1_000_000);
        let (ledger, failures) = run(
            &rules,
            &ledger,
            2,
            &[trade(1, 0, 2, CALL, 3, 100), trade(1, 1, 2, PUT, 2, 100)],
        );
        assert_eq!(failures, [None, None]);
        let total = quote_total(&ledger);
        // Expiry at 1,000 with the mark at 53,000: each call pays 3,000, each put nothing.
        let (after, failures) = run(&rules, &ledger, 1_000, &[price(1, 53_000)]);
        assert_eq!(failures, [None]);
        let settled = |n| {
            history(&after, n)
                .into_iter()
                .map(|e| match e {
                    Event::Settled(s) => (s.instrument, s.contracts, s.price, s.paid, s.shortfall),
                    other => panic!("not a settlement: {other:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            settled(1),
            [(CALL, 3, 53_000, 9_000, 0), (PUT, 2, 53_000, 0, 0)]
        );
        assert_eq!(
            settled(2),
            [(CALL, -3, 53_000, -9_000, 0), (PUT, -2, 53_000, 0, 0)]
        );
        assert_eq!(after.balance(&id(1), QUOTE), 5_000 - 300 - 200 + 9_000);
        assert!(after.account(&id(1)).expect("1").positions.is_empty());
        assert!(after.account(&id(2)).expect("2").positions.is_empty());
        assert_eq!(quote_total(&after), total);
        // Past expiry nothing is left to settle and nothing more happens.
        let (later, _) = run(&rules, &after, 1_001, &[]);
        assert_eq!(later, after);
    }

    #[test]
    fn without_a_mark_at_expiry_settlement_waits_for_one() {
        let (rules, ledger) = opened(1_000_000);
        let (ledger, _) = run(&rules, &ledger, 2, &[trade(1, 0, 2, CALL, 1, 100)]);
        let late = 1_000 + rules.prices.max_age + 1;
        let (waiting, _) = run(&rules, &ledger, late, &[]);
        assert_eq!(
            waiting.account(&id(1)).expect("1").positions,
            [(CALL, 1)].into()
        );
        let (settled, _) = run(&rules, &waiting, late + 1, &[price(1, 50_500)]);
        assert!(settled.account(&id(1)).expect("1").positions.is_empty());
        assert_eq!(settled.balance(&id(1), QUOTE), 5_000 - 100 + 500);
    }

    #[test]
    fn history_keeps_the_newest_events() {
        let mut account = Account::default();
        for height in 0..HISTORY_KEPT as u64 + 3 {
            record(
                &mut account,
                Event::Settled(Settlement {
                    height,
                    instrument: CALL,
                    contracts: 1,
                    price: 1,
                    paid: 0,
                    shortfall: 0,
                }),
            );
        }
        assert_eq!(account.history.len(), HISTORY_KEPT);
        assert!(matches!(
            account.history[0],
            Event::Settled(Settlement { height: 3, .. })
        ));
    }

    /// One step of a random trading session among accounts 1..=4.
    #[derive(Clone, Debug)]
    enum Step {
        Trade {
            buyer: u8,
            seller: u8,
            call: bool,
            contracts: u32,
            premium: u64,
        },
        Price(u64),
        Pay {
            from: u8,
            to: u8,
            amount: u64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1u8..=4, 1u8..=4, any::<bool>(), 1u32..20, 0u64..8_000).prop_map(
                |(buyer, seller, call, contracts, premium)| Step::Trade { buyer, seller, call, contracts, premium }
            ),
            2 => (20_000u64..90_000).prop_map(Step::Price),
            1 => (1u8..=4, 1u8..=5, 0u64..50_000).prop_map(|(from, to, amount)| Step::Pay { from, to, amount }),
        ]
    }

    proptest! {
        /// Margins and settlement amounts at the extremes — any price an oracle may give, the
        /// largest size, positions of any size (the fund's are not bounded) — are computed
        /// without overflow (tests run with overflow checks): a replica never stops on them.
        #[test]
        fn the_book_arithmetic_is_total(
            mark in prop_oneof![Just(u64::MAX), Just(1u64), any::<u64>()],
            strike in prop_oneof![Just(u64::MAX), Just(1u64), any::<u64>()],
            contracts in prop_oneof![Just(i64::MAX), Just(i64::MIN), any::<i64>()],
            vol_bp in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
            shock_bp in any::<u32>(),
            call in any::<bool>(),
        ) {
            let terms = OptionTerms {
                kind: if call { OptionKind::Call } else { OptionKind::Put },
                strike,
                expiry: 1_000,
                size: crate::derivatives::pricing::MAX_SIZE,
            };
            let model = Model { vol_bp, blocks_per_year: 1 };
            let risk = crate::derivatives::risk::RiskParams {
                shock_bp,
                short_minimum_bp: u32::MAX,
                initial_bp: u32::MAX,
            };
            let array = RiskArray::new(&terms, &model, &risk, mark, 1);
            let positions = [Position { instrument: 0, contracts }; 3];
            let margin = Margin::of(&positions, &[array], &risk);
            prop_assert!(margin.maintenance >= 0);
            let per_contract = i128::from(terms.intrinsic(mark)).saturating_mul(i128::from(terms.size));
            let _ = i128::from(contracts).saturating_mul(per_contract);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any blocks of trades, prices and transfers: the quote asset is conserved over
        /// the accounts and the fund, and after every block no account but the fund is
        /// below maintenance while it holds positions.
        #[test]
        fn collateral_is_conserved_and_no_account_is_left_below_maintenance(
            blocks in proptest::collection::vec(proptest::collection::vec(step(), 0..8), 1..16),
            vol_bp in prop_oneof![Just(0u32), Just(8_000)],
        ) {
            let rules = rules(vol_bp);
            let mut ledger = Ledger::genesis(&[
                (id(1), QUOTE, 200_000),
                (id(2), QUOTE, 60_000),
                (id(3), QUOTE, 30_000),
                (id(4), QUOTE, 10_000),
                (id(FUND), QUOTE, 50_000),
            ])
            .expect("genesis");
            let total = quote_total(&ledger);
            let (mut nonces, mut oracle) = ([0u64; 6], 0u64);
            let (next, _) = run(&rules, &ledger, 1, &[price(0, 50_000)]);
            ledger = next;
            oracle += 1;
            let mut last_price = 50_000;
            for (at, steps) in blocks.iter().enumerate() {
                // Blocks 90 heights apart, each opening with the oracle's last price so the
                // mark stays fresh; the options expire at 1,000, within the longest runs.
                let height = at as u64 * 90 + 2;
                oracle += 1;
                let refresh = price(oracle - 1, last_price);
                let block: Vec<Vec<u8>> = std::iter::once(refresh)
                    .chain(steps.iter().filter_map(|s| {
                        Some(match *s {
                            Step::Trade { buyer, seller, call, contracts, premium } => {
                                if buyer == seller {
                                    return None;
                                }
                                let nonce = nonces[buyer as usize];
                                nonces[buyer as usize] += 1;
                                trade(buyer, nonce, seller, if call { CALL } else { PUT }, contracts, premium)
                            }
                            Step::Price(p) => {
                                oracle += 1;
                                last_price = p;
                                price(oracle - 1, p)
                            }
                            Step::Pay { from, to, amount } => {
                                let nonce = nonces[from as usize];
                                nonces[from as usize] += 1;
                                pay(from, nonce, to, amount)
                            }
                        })
                    }))
                    .collect();
                let (next, _) = run(&rules, &ledger, height, &block);
                ledger = next;
                prop_assert_eq!(quote_total(&ledger), total, "block at {}", height);
                for n in 1..=4u8 {
                    if let Ok(margin) = ledger.margin(&rules, &id(n), height) {
                        let holds = !ledger.account(&id(n)).is_none_or(|a| a.positions.is_empty());
                        prop_assert!(
                            !holds || !margin.under_maintenance(),
                            "account {} at {}: {:?}", n, height, margin
                        );
                    }
                }
                // Every contract has a counterparty: the positions sum to zero; the index of
                // holders per instrument is a recount's.
                for instrument in [CALL, PUT] {
                    let holding = ledger
                        .accounts()
                        .map(|(_, a)| a)
                        .filter(|a| a.positions.contains_key(&instrument))
                        .count();
                    prop_assert_eq!(ledger.holding(instrument), holding);
                    let open: i64 = ledger
                        .accounts()
                        .map(|(_, a)| a)
                        .filter_map(|a| a.positions.get(&instrument))
                        .sum();
                    prop_assert_eq!(open, 0);
                }
            }
        }
    }
}
