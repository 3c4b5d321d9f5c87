//! Mark prices from oracle updates.
//!
//! The genesis file names the oracle keys. Each oracle signs price updates for an underlying
//! with a sequence number of its own (per underlying, strictly increasing: an old update
//! replayed or reordered is refused). The mark price of an underlying at a height is the
//! median of the newest update of each oracle that is no more than `max_age` blocks old; with
//! an even number, the lower middle and the upper middle averaged, rounded down. No fresh
//! update: no mark (positions on that underlying are not re-margined until one comes).
//!
//! With three or more oracles fresh, one that lies cannot move the mark outside the prices of
//! the others.

use std::collections::BTreeMap;

use thiserror::Error;

/// Why a price update is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PriceError {
    /// Not one of the genesis file's oracles.
    #[error("oracle {0} is not in the genesis file")]
    UnknownOracle(usize),
    /// Its sequence number does not exceed the last one taken from this oracle.
    #[error("sequence {got} is not above this oracle's last, {last}")]
    StaleSequence {
        /// The last taken.
        last: u64,
        /// The one refused.
        got: u64,
    },
    /// A price of zero.
    #[error("a price of 0")]
    ZeroPrice,
}

/// An oracle's newest update for one underlying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Latest {
    seq: u64,
    price: u64,
    height: u64,
}

/// The newest update of every oracle for every underlying.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Oracles {
    oracles: usize,
    max_age: u64,
    /// (underlying, oracle) → its newest update; ordered, so reading it is deterministic.
    latest: BTreeMap<(u32, usize), Latest>,
}

impl Oracles {
    /// `oracles` oracles; updates older than `max_age` blocks do not count.
    pub fn new(oracles: usize, max_age: u64) -> Self {
        Self {
            oracles,
            max_age,
            latest: BTreeMap::new(),
        }
    }

    /// Takes oracle `oracle`'s update number `seq`: `price` for `underlying`, in the block at
    /// `height`.
    pub fn update(
        &mut self,
        underlying: u32,
        oracle: usize,
        seq: u64,
        price: u64,
        height: u64,
    ) -> Result<(), PriceError> {
        if oracle >= self.oracles {
            return Err(PriceError::UnknownOracle(oracle));
        }
        if price == 0 {
            return Err(PriceError::ZeroPrice);
        }
        if let Some(last) = self.latest.get(&(underlying, oracle)) {
            if seq <= last.seq {
                return Err(PriceError::StaleSequence {
                    last: last.seq,
                    got: seq,
                });
            }
        }
        self.latest
            .insert((underlying, oracle), Latest { seq, price, height });
        Ok(())
    }

    /// The mark price of `underlying` at `height`, if any oracle's update is fresh.
    pub fn mark(&self, underlying: u32, height: u64) -> Option<u64> {
        let mut fresh: Vec<u64> = self
            .latest
            .range((underlying, 0)..=(underlying, usize::MAX))
            .filter(|(_, l)| height.saturating_sub(l.height) <= self.max_age)
            .map(|(_, l)| l.price)
            .collect();
        fresh.sort_unstable();
        let n = fresh.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(fresh[n / 2]),
            _ => Some(((u128::from(fresh[n / 2 - 1]) + u128::from(fresh[n / 2])) / 2) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hand_worked_marks() {
        let mut o = Oracles::new(3, 10);
        assert_eq!(o.mark(1, 0), None);
        o.update(1, 0, 1, 100, 0).expect("taken");
        o.update(1, 1, 1, 105, 0).expect("taken");
        o.update(1, 2, 1, 300, 0).expect("taken");
        assert_eq!(o.mark(1, 0), Some(105), "the median of 100, 105, 300");
        assert_eq!(o.mark(2, 0), None, "another underlying");
        // Oracle 2 moves on at height 5; at height 12 the others are stale.
        o.update(1, 2, 2, 110, 5).expect("taken");
        assert_eq!(o.mark(1, 5), Some(105), "100, 105, 110");
        assert_eq!(o.mark(1, 10), Some(105), "ten blocks old still counts");
        assert_eq!(o.mark(1, 11), Some(110), "only oracle 2 is fresh");
        assert_eq!(o.mark(1, 16), None, "none is fresh");
        o.update(1, 0, 2, 101, 12).expect("taken");
        assert_eq!(o.mark(1, 12), Some(105), "(101 + 110) / 2, rounded down");
        assert_eq!(
            o.update(1, 0, 2, 99, 13),
            Err(PriceError::StaleSequence { last: 2, got: 2 })
        );
        assert_eq!(o.update(1, 3, 1, 99, 13), Err(PriceError::UnknownOracle(3)));
        assert_eq!(o.update(1, 1, 9, 0, 13), Err(PriceError::ZeroPrice));
    }

    proptest! {
        /// One lying oracle among three or more fresh ones cannot move the mark outside the
        /// honest oracles' prices.
        #[test]
        fn one_liar_cannot_move_the_mark_outside_the_honest_prices(
            honest in prop::collection::vec(1u64..1_000_000, 2..8),
            lie in any::<u64>().prop_filter("a price", |p| *p > 0),
        ) {
            let mut o = Oracles::new(honest.len() + 1, 5);
            for (i, price) in honest.iter().enumerate() {
                o.update(7, i, 1, *price, 100).expect("taken");
            }
            o.update(7, honest.len(), 1, lie, 100).expect("taken");
            let mark = o.mark(7, 100).expect("fresh");
            let (lo, hi) = (honest.iter().min().copied(), honest.iter().max().copied());
            prop_assert!(Some(mark) >= lo && Some(mark) <= hi, "{honest:?} and {lie}: {mark}");
        }
    }
}
