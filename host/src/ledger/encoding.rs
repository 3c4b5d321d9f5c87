//! An account's bytes: the state tree's leaf, a snapshot's record.
//!
//! ```text
//! id (32) ‖ nonce (u64) ‖ n (u32) ‖ n × (asset u32 ‖ amount u64)
//! then each section the account has, in tag order, absent when empty:
//!   1 (u8) ‖ m (u32) ‖ m × (asset u32 ‖ price u64 ‖ height u64)           an oracle's prices
//!   2 (u8) ‖ m (u32) ‖ m × (instrument u32 ‖ contracts i64)             option positions
//!   3 (u8) ‖ m (u32) ‖ m × event                                         its book history
//! event:
//!   1 ‖ height u64 ‖ equity, maintenance, value, penalty, paid, shortfall (i128 each)
//!   2 ‖ height u64 ‖ instrument u32 ‖ contracts i64 ‖ price u64 ‖ paid, shortfall (i128)
//! ```
//!
//! Integers are little-endian. An account with none of the sections is encoded as before they
//! existed, so its leaf — and the state root of a ledger without oracles or options — is
//! unchanged. Decoding is strict (keys increasing, counts bounded by the bytes left, no
//! empty section, no byte left over): one account has one encoding, so a proof checked
//! against the bytes a client rebuilds from JSON means what it says.

use std::collections::BTreeMap;

use super::book::{Event, Liquidation, Settlement, HISTORY_KEPT};
use super::{Account, AccountId, Quote};

const BALANCE_LEN: usize = 12;
const QUOTE_LEN: usize = 20;
const POSITION_LEN: usize = 12;
/// The shortest event: a settlement.
const EVENT_LEN_MIN: usize = 1 + 8 + 4 + 8 + 8 + 16 + 16;

/// The bytes of `account`, whose key is `id`.
pub fn encode_account(id: &AccountId, account: &Account) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + BALANCE_LEN * account.balances.len());
    out.extend_from_slice(id);
    out.extend_from_slice(&account.nonce.to_le_bytes());
    out.extend_from_slice(&(account.balances.len() as u32).to_le_bytes());
    for (asset, amount) in &account.balances {
        out.extend_from_slice(&asset.to_le_bytes());
        out.extend_from_slice(&amount.to_le_bytes());
    }
    if !account.prices.is_empty() {
        section(&mut out, 1, account.prices.len());
        for (asset, quote) in &account.prices {
            out.extend_from_slice(&asset.to_le_bytes());
            out.extend_from_slice(&quote.price.to_le_bytes());
            out.extend_from_slice(&quote.height.to_le_bytes());
        }
    }
    if !account.positions.is_empty() {
        section(&mut out, 2, account.positions.len());
        for (instrument, contracts) in &account.positions {
            out.extend_from_slice(&instrument.to_le_bytes());
            out.extend_from_slice(&contracts.to_le_bytes());
        }
    }
    if !account.history.is_empty() {
        section(&mut out, 3, account.history.len());
        for event in &account.history {
            encode_event(&mut out, event);
        }
    }
    out
}

fn section(out: &mut Vec<u8>, tag: u8, count: usize) {
    out.push(tag);
    out.extend_from_slice(&(count as u32).to_le_bytes());
}

fn encode_event(out: &mut Vec<u8>, event: &Event) {
    match event {
        Event::Liquidated(l) => {
            out.push(1);
            out.extend_from_slice(&l.height.to_le_bytes());
            for figure in [
                l.equity,
                l.maintenance,
                l.value,
                l.penalty,
                l.paid,
                l.shortfall,
            ] {
                out.extend_from_slice(&figure.to_le_bytes());
            }
        }
        Event::Settled(s) => {
            out.push(2);
            out.extend_from_slice(&s.height.to_le_bytes());
            out.extend_from_slice(&s.instrument.to_le_bytes());
            out.extend_from_slice(&s.contracts.to_le_bytes());
            out.extend_from_slice(&s.price.to_le_bytes());
            out.extend_from_slice(&s.paid.to_le_bytes());
            out.extend_from_slice(&s.shortfall.to_le_bytes());
        }
    }
}

/// Bytes that are not an account's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an account record of {0} bytes is corrupt")]
pub struct Corrupt(pub usize);

/// Reads fields off the front of the bytes; any read past their end is [`Corrupt`].
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        let end = self.at.checked_add(N).ok_or(Corrupt(self.bytes.len()))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or(Corrupt(self.bytes.len()))?
            .try_into()
            .map_err(|_| Corrupt(self.bytes.len()))?;
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Corrupt> {
        self.take().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, Corrupt> {
        self.take().map(i64::from_le_bytes)
    }

    fn i128(&mut self) -> Result<i128, Corrupt> {
        self.take().map(i128::from_le_bytes)
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// A count of entries of at least `each` bytes: refused before anything is allocated
    /// when the bytes left cannot hold them, or when it is zero (`nonzero`).
    fn count(&mut self, each: usize, nonzero: bool) -> Result<usize, Corrupt> {
        let n = self.u32()? as usize;
        if (nonzero && n == 0) || n.checked_mul(each).is_none_or(|len| len > self.left()) {
            return Err(Corrupt(self.bytes.len()));
        }
        Ok(n)
    }

    fn corrupt(&self) -> Corrupt {
        Corrupt(self.bytes.len())
    }
}

/// Inserts `key` after every key already in `map`, or fails: keys must increase.
fn insert_increasing<V>(
    map: &mut BTreeMap<u32, V>,
    key: u32,
    value: V,
    r: &Reader<'_>,
) -> Result<(), Corrupt> {
    if map.last_key_value().is_some_and(|(last, _)| *last >= key) {
        return Err(r.corrupt());
    }
    map.insert(key, value);
    Ok(())
}

/// Reads [`encode_account`]'s bytes back.
pub fn decode_account(bytes: &[u8]) -> Result<(AccountId, Account), Corrupt> {
    let mut r = Reader { bytes, at: 0 };
    let id = r.take::<32>()?;
    let mut account = Account {
        nonce: r.u64()?,
        ..Account::default()
    };
    for _ in 0..r.count(BALANCE_LEN, false)? {
        let (asset, amount) = (r.u32()?, r.u64()?);
        insert_increasing(&mut account.balances, asset, amount, &r)?;
    }
    let mut last_tag = 0;
    while r.left() > 0 {
        let tag = r.u8()?;
        if tag <= last_tag {
            return Err(r.corrupt());
        }
        last_tag = tag;
        match tag {
            1 => {
                for _ in 0..r.count(QUOTE_LEN, true)? {
                    let asset = r.u32()?;
                    let quote = Quote {
                        price: r.u64()?,
                        height: r.u64()?,
                    };
                    insert_increasing(&mut account.prices, asset, quote, &r)?;
                }
            }
            2 => {
                for _ in 0..r.count(POSITION_LEN, true)? {
                    let (instrument, contracts) = (r.u32()?, r.i64()?);
                    if contracts == 0 {
                        return Err(r.corrupt());
                    }
                    insert_increasing(&mut account.positions, instrument, contracts, &r)?;
                }
            }
            3 => {
                let n = r.count(EVENT_LEN_MIN, true)?;
                if n > HISTORY_KEPT {
                    return Err(r.corrupt());
                }
                for _ in 0..n {
                    let event = decode_event(&mut r)?;
                    account.history.push(event);
                }
            }
            _ => return Err(r.corrupt()),
        }
    }
    Ok((id, account))
}

fn decode_event(r: &mut Reader<'_>) -> Result<Event, Corrupt> {
    Ok(match r.u8()? {
        1 => Event::Liquidated(Liquidation {
            height: r.u64()?,
            equity: r.i128()?,
            maintenance: r.i128()?,
            value: r.i128()?,
            penalty: r.i128()?,
            paid: r.i128()?,
            shortfall: r.i128()?,
        }),
        2 => Event::Settled(Settlement {
            height: r.u64()?,
            instrument: r.u32()?,
            contracts: r.i64()?,
            price: r.u64()?,
            paid: r.i128()?,
            shortfall: r.i128()?,
        }),
        _ => return Err(r.corrupt()),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Account {
        Account {
            nonce: 3,
            balances: [(1, 10), (7, u64::MAX)].into(),
            prices: [
                (
                    1,
                    Quote {
                        price: u64::MAX,
                        height: u64::MAX,
                    },
                ),
                (
                    2,
                    Quote {
                        price: 41_000,
                        height: 9,
                    },
                ),
            ]
            .into(),
            positions: [(100, -4), (101, i64::MAX)].into(),
            history: vec![
                Event::Liquidated(Liquidation {
                    height: 12,
                    equity: -5,
                    maintenance: 900,
                    value: -1_000,
                    penalty: 18,
                    paid: -995,
                    shortfall: 23,
                }),
                Event::Settled(Settlement {
                    height: 40,
                    instrument: 100,
                    contracts: -4,
                    price: 52_000,
                    paid: -8_000,
                    shortfall: 0,
                }),
            ],
        }
    }

    #[test]
    fn an_account_without_sections_is_encoded_as_before_them() {
        let plain = Account {
            nonce: 3,
            balances: [(1, 10), (7, u64::MAX)].into(),
            ..Account::default()
        };
        let bytes = encode_account(&[5; 32], &plain);
        let mut before = vec![5u8; 32];
        before.extend_from_slice(&3u64.to_le_bytes());
        before.extend_from_slice(&2u32.to_le_bytes());
        for (asset, amount) in [(1u32, 10u64), (7, u64::MAX)] {
            before.extend_from_slice(&asset.to_le_bytes());
            before.extend_from_slice(&amount.to_le_bytes());
        }
        assert_eq!(bytes, before);
        assert_eq!(decode_account(&bytes), Ok(([5; 32], plain)));
    }

    #[test]
    fn every_section_round_trips_and_every_cut_is_refused() {
        let account = sample();
        let bytes = encode_account(&[6; 32], &account);
        assert_eq!(decode_account(&bytes), Ok(([6; 32], account)));
        assert_eq!(
            bytes.len(),
            44 + 2 * 12 + (5 + 2 * 20) + (5 + 2 * 12) + (5 + 105 + 61)
        );
        // A cut between sections is an account without the later ones; any other is refused.
        let boundaries = [68, 68 + 45, 68 + 45 + 29];
        for cut in 0..bytes.len() {
            let decoded = decode_account(&bytes[..cut]);
            assert_eq!(decoded.is_ok(), boundaries.contains(&cut), "cut at {cut}");
        }
        assert!(decode_account(&[bytes.as_slice(), &[0]].concat()).is_err());
    }

    #[test]
    fn non_canonical_bytes_are_refused() {
        let base = encode_account(&[1; 32], &Account::default());
        let with = |tail: &[u8]| [base.as_slice(), tail].concat();
        let empty_section = with(&[2, 0, 0, 0, 0]);
        assert!(decode_account(&empty_section).is_err(), "an empty section");
        let mut position = vec![2, 1, 0, 0, 0];
        position.extend_from_slice(&9u32.to_le_bytes());
        position.extend_from_slice(&0i64.to_le_bytes());
        assert!(decode_account(&with(&position)).is_err(), "a zero position");
        let mut two = vec![2, 2, 0, 0, 0];
        for _ in 0..2 {
            two.extend_from_slice(&9u32.to_le_bytes());
            two.extend_from_slice(&1i64.to_le_bytes());
        }
        assert!(decode_account(&with(&two)).is_err(), "a key twice");
        let huge = with(&[3, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode_account(&huge).is_err(), "a count beyond the bytes");
        let mut prices = sample();
        prices.positions.clear();
        prices.history.clear();
        let bytes = encode_account(&[1; 32], &prices);
        let tail = &bytes[44 + 24..];
        let twice = [&bytes[..], tail].concat();
        assert!(decode_account(&twice).is_err(), "a section twice");
    }

    proptest! {
        #[test]
        /// A real encoding with bytes changed, cut or added: refused, or one that encodes
        /// back to the same bytes (no two encodings of one account).
        #[test]
        fn altered_bytes_never_panic_and_what_decodes_re_encodes(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            extra in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut bytes = encode_account(&[2; 32], &sample());
            for (at, value) in edits {
                let at = at.index(bytes.len());
                bytes[at] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend_from_slice(&extra);
            if let Ok((id, account)) = decode_account(&bytes) {
                prop_assert_eq!(encode_account(&id, &account), bytes);
            }
        }
    }
}
