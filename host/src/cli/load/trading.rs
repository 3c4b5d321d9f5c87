//! `verity load --mix trading`: option trades between the accounts `verity init` funded and
//! the oracles' prices, with a price shock that leaves the call writers under maintenance.
//!
//! The accounts split in two halves: writers and buyers. Every buyer's first trade opens a
//! position: it buys from its writer as many at-the-money calls as the writer's collateral
//! covers at 80 % of initial margin (and the buyer's pays for), at the call's value at the
//! mark. Its later trades are small — one to three contracts of any instrument, from any
//! other account, at its value ± 10 % — some of which the initial-margin rule refuses. One
//! transaction in [`PRICE_EVERY`] is an oracle's price, the oracles taking turns: the
//! reference price ± 0.5 % until the shock, then the reference moved by `--shock` percent.
//! Once the oracles' median has moved, the writers are below maintenance and the book
//! liquidates them in that block.
//!
//! Every transaction is a pure function of its index and the seed, so the plan signs in
//! parallel and the same arguments give the same transactions.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::api::{AccountState, MarkView, Submitted};
use crate::cli::client::Client;
use crate::cli::init::{read_oracles, GENESIS_FILE, REFERENCE_PRICE};
use crate::derivatives::pricing::OptionKind;
use crate::derivatives::risk::{Margin, Position, RiskArray};
use crate::genesis::Genesis;
use crate::ledger::{BookRules, Event};
use crate::transaction::{Payload, Trade, Unsigned};

/// One transaction in this many is an oracle's price.
pub const PRICE_EVERY: usize = 20;
/// How long a signed trade stays valid, in blocks after the head the run starts at.
const VALID_FOR: u64 = 1_000_000;

/// What the plan needs to know about the market before it signs.
pub struct Market<'a> {
    /// The chain.
    pub chain_id: u32,
    /// The book's rules, from genesis.
    pub book: &'a BookRules,
    /// The head when the run starts.
    pub height: u64,
    /// The underlying's mark when the run starts.
    pub reference: u64,
    /// The shock, in basis points of the reference (4,000: up 40 %).
    pub shock_bp: i64,
    /// The accounts' keys.
    pub accounts: &'a [SigningKey],
    /// Their next nonces.
    pub nonces: &'a [u64],
    /// Their quote balances.
    pub collateral: &'a [u64],
    /// The oracles' keys.
    pub oracles: &'a [SigningKey],
    /// Their next nonces.
    pub oracle_nonces: &'a [u64],
    /// The seed of the small trades and the price jitter.
    pub seed: u64,
}

/// The asset the book's options are on (the first instrument's; `verity init` writes one).
fn underlying(book: &BookRules) -> Option<u32> {
    book.instruments.values().next().map(|i| i.underlying)
}

/// An instrument's id and one contract's value at the reference.
#[derive(Clone, Copy, Debug)]
struct Priced {
    id: u32,
    value: u64,
}

/// The signed plan: each transaction with its sender (an account's index, or an oracle's
/// after the accounts).
pub struct Plan {
    /// (sender, bytes), in the order they are due.
    pub transactions: Vec<(usize, Vec<u8>)>,
    /// The index of the first shocked price.
    pub shock_at: usize,
    /// The price the oracles give after the shock.
    pub shocked: u64,
    /// The instrument the writers sell.
    pub call: u32,
}

impl Market<'_> {
    /// The instruments on the underlying still trading, valued at the reference.
    fn priced(&self) -> Vec<Priced> {
        self.book
            .instruments
            .iter()
            .filter(|(_, i)| i.terms.expiry > self.height)
            .map(|(&id, i)| {
                let value = i
                    .terms
                    .contract_value(&self.book.model, self.reference, self.height);
                Priced {
                    id,
                    value: u64::try_from(value.max(0)).unwrap_or(u64::MAX),
                }
            })
            .collect()
    }

    /// The call whose strike is nearest the reference.
    fn at_the_money_call(&self) -> Option<u32> {
        self.book
            .instruments
            .iter()
            .filter(|(_, i)| i.terms.kind == OptionKind::Call && i.terms.expiry > self.height)
            .min_by_key(|(_, i)| i.terms.strike.abs_diff(self.reference))
            .map(|(&id, _)| id)
    }

    /// The initial margin of one short contract of `instrument` at the reference.
    fn short_initial(&self, instrument: u32) -> u64 {
        let terms = &self.book.instruments[&instrument].terms;
        let array = RiskArray::new(
            terms,
            &self.book.model,
            &self.book.risk,
            self.reference,
            self.height,
        );
        let short = [Position {
            instrument: 0,
            contracts: -1,
        }];
        let margin = Margin::of(&short, &[array], &self.book.risk);
        u64::try_from(margin.initial.max(1)).unwrap_or(u64::MAX)
    }

    fn price(&self, oracle: usize, nonce: u64, price: u64) -> Vec<u8> {
        Unsigned {
            chain_id: self.chain_id,
            sender: self.oracles[oracle].verifying_key().to_bytes(),
            nonce,
            payload: Payload::Price {
                asset: underlying(self.book).unwrap_or(0),
                price,
            },
        }
        .sign(&self.oracles[oracle])
        .to_vec()
    }

    /// The warm-up: one price at the reference from every oracle, to be committed before
    /// the clock starts so the first trades have a mark.
    pub fn opening_prices(&self) -> Vec<Vec<u8>> {
        (0..self.oracles.len())
            .map(|o| self.price(o, self.oracle_nonces[o], self.reference))
            .collect()
    }

    /// Signs `total` transactions, on every core.
    pub fn plan(&self, total: usize) -> anyhow::Result<Plan> {
        anyhow::ensure!(
            self.accounts.len() >= 4,
            "a trading mix needs at least 4 accounts"
        );
        anyhow::ensure!(
            !self.oracles.is_empty(),
            "a trading mix needs the oracles' keys"
        );
        let call = self
            .at_the_money_call()
            .ok_or_else(|| anyhow::anyhow!("genesis has no call still trading"))?;
        let priced = self.priced();
        let call_value = priced
            .iter()
            .find(|p| p.id == call)
            .map_or(1, |p| p.value.max(1));
        let initial = self.short_initial(call);
        let half = self.accounts.len() / 2;
        // Rounds of prices start at multiples of PRICE_EVERY; the shock starts a round.
        let round = PRICE_EVERY * self.oracles.len();
        let shock_at = (total * 6 / 10).div_ceil(round) * round;
        let shocked = i128::from(self.reference) * i128::from(10_000 + self.shock_bp) / 10_000;
        let shocked = u64::try_from(shocked.max(1)).unwrap_or(u64::MAX);
        let last_height = self.height + VALID_FOR;
        let slot = |i: usize| -> (usize, Vec<u8>) {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            if i.is_multiple_of(PRICE_EVERY) {
                let r = i / PRICE_EVERY;
                let oracle = r % self.oracles.len();
                let nonce = self.oracle_nonces[oracle] + (r / self.oracles.len()) as u64;
                let price = if i >= shock_at {
                    shocked
                } else {
                    let jitter = self.reference / 200;
                    self.reference - jitter + rng.gen_range(0..=2 * jitter)
                };
                return (
                    self.accounts.len() + oracle,
                    self.price(oracle, nonce, price),
                );
            }
            // The t-th trade: buyer t mod half (from the second half), its j-th.
            let t = i - i / PRICE_EVERY - 1;
            let pair = t % half;
            let buyer = half + pair;
            let j = (t / half) as u64;
            let (instrument, contracts, seller, premium) = if j == 0 {
                let by_writer = self.collateral[pair] / initial;
                let by_buyer = self.collateral[buyer] / call_value;
                let contracts = (by_writer.min(by_buyer) * 8 / 10).clamp(1, u64::from(u32::MAX));
                (call, contracts as u32, pair, call_value)
            } else {
                let p = priced[rng.gen_range(0..priced.len())];
                let mut seller = rng.gen_range(0..self.accounts.len() - 1);
                if seller >= buyer {
                    seller += 1;
                }
                let spread = p.value / 10;
                let premium = p.value - spread + rng.gen_range(0..=2 * spread);
                (p.id, rng.gen_range(1..=3), seller, premium)
            };
            let bytes = Unsigned {
                chain_id: self.chain_id,
                sender: self.accounts[buyer].verifying_key().to_bytes(),
                nonce: self.nonces[buyer] + j,
                payload: Payload::Trade(Trade {
                    instrument,
                    contracts,
                    counterparty: self.accounts[seller].verifying_key().to_bytes(),
                    premium,
                    last_height,
                }),
            }
            .sign_trade(&self.accounts[buyer], &self.accounts[seller]);
            (buyer, bytes.to_vec())
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = total.div_ceil(threads).max(1);
        let mut transactions = Vec::with_capacity(total);
        std::thread::scope(|scope| {
            let parts: Vec<_> = (0..total)
                .step_by(chunk)
                .map(|from| {
                    let slot = &slot;
                    scope.spawn(move || {
                        (from..(from + chunk).min(total))
                            .map(slot)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for part in parts {
                transactions.extend(part.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
        });
        Ok(Plan {
            transactions,
            shock_at,
            shocked,
            call,
        })
    }
}

/// A signed plan and the start of its report.
pub struct Prepared {
    /// The transactions.
    pub plan: Plan,
    /// What was sent; [`TradingReport::tally`] adds what the book did.
    pub report: TradingReport,
}

/// Reads what `--mix trading` needs from the replica and from `dir` (the genesis file's book,
/// the oracles' keys, the mark, nonces and collateral), commits an opening price from every
/// oracle, and signs `total` transactions from `keys` (whose states are `accounts`).
pub fn prepare(
    client: &Client,
    dir: &Path,
    keys: &[SigningKey],
    accounts: &[AccountState],
    shock_pct: i64,
    seed: u64,
    total: usize,
) -> anyhow::Result<Prepared> {
    let genesis = Genesis::read(&dir.join(GENESIS_FILE))
        .with_context(|| format!("--mix trading reads the genesis file in {}", dir.display()))?;
    let oracles = read_oracles(dir)?;
    let book = &genesis.rules.book;
    let underlying =
        underlying(book).context("--mix trading: the genesis file has no instruments")?;
    // Runs follow each other: the reference is the mark, if there is one.
    let mark: MarkView = client.get(&format!("/v1/marks/{underlying}"))?;
    let status = client.status()?;
    let oracle_nonces = oracles
        .iter()
        .map(|k| {
            client
                .account(&k.verifying_key().to_bytes())
                .map(|a| a.nonce)
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let nonces: Vec<u64> = accounts.iter().map(|a| a.nonce).collect();
    let collateral: Vec<u64> = accounts
        .iter()
        .map(|a| a.balances.get(&book.quote).copied().unwrap_or(0))
        .collect();
    let mut market = Market {
        chain_id: status.chain_id,
        book,
        height: status.height,
        reference: mark.mark.unwrap_or(REFERENCE_PRICE),
        shock_bp: shock_pct * 100,
        accounts: keys,
        nonces: &nonces,
        collateral: &collateral,
        oracles: &oracles,
        oracle_nonces: &oracle_nonces,
        seed,
    };
    // The first trades need a mark: one price from every oracle, committed first.
    for price in market.opening_prices() {
        match client.submit(&price)? {
            Submitted::Committed { failure: None, .. } => {}
            other => anyhow::bail!("the opening price was not taken: {other:?}"),
        }
    }
    let opened: Vec<u64> = oracle_nonces.iter().map(|n| n + 1).collect();
    market.oracle_nonces = &opened;
    market.height = client.status()?.height;
    let plan = market.plan(total)?;
    let trades = plan
        .transactions
        .iter()
        .filter(|(sender, _)| *sender < keys.len())
        .count() as u64;
    let report = TradingReport {
        trades,
        prices: plan.transactions.len() as u64 - trades,
        shock: (plan.shocked, plan.shock_at),
        fund: book.fund,
        quote: book.quote,
        from: market.height,
        ..TradingReport::default()
    };
    Ok(Prepared { plan, report })
}

/// What the book did during a run, read from the accounts afterwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TradingReport {
    /// Trades sent.
    pub trades: u64,
    /// Prices sent.
    pub prices: u64,
    /// The price the oracles moved to, and the transaction it started at.
    pub shock: (u64, usize),
    /// Accounts liquidated during the run.
    pub liquidated: u64,
    /// Their penalties, paid to the fund.
    pub penalties: i128,
    /// What they could not pay.
    pub shortfall: i128,
    /// Settlements during the run.
    pub settled: u64,
    /// The fund's quote balance after the run.
    pub fund_balance: u64,
    /// The fund's positions after the run (contracts by instrument).
    pub fund_positions: BTreeMap<u32, i64>,
    /// The insurance fund's account.
    pub fund: [u8; 32],
    /// The quote asset, the fund's balance of which the report gives.
    pub quote: u32,
    /// The head before the run: what the book did after it is the run's.
    pub from: u64,
}

impl TradingReport {
    /// Reads what the book did to `keys` during the run, and the fund's state after it.
    pub fn tally(&mut self, client: &Client, keys: &[SigningKey]) -> anyhow::Result<()> {
        for key in keys {
            let account = client.account(&key.verifying_key().to_bytes())?;
            for event in account.history {
                match event {
                    Event::Liquidated(l) if l.height > self.from => {
                        self.liquidated += 1;
                        self.penalties += l.penalty;
                        self.shortfall += l.shortfall;
                    }
                    Event::Settled(s) if s.height > self.from => self.settled += 1,
                    _ => {}
                }
            }
        }
        let fund = client.account(&self.fund)?;
        self.fund_balance = fund.balances.get(&self.quote).copied().unwrap_or(0);
        self.fund_positions = fund.positions;
        Ok(())
    }
}
