//! Mark prices from oracle prices.
//!
//! The genesis file names the oracle keys. An oracle sends `Price` transactions; its nonce
//! orders its updates (an old one replayed or reordered is refused as any stale nonce is),
//! and the ledger keeps each oracle's newest price of each asset with the height of the block
//! that took it. The mark price of an asset at a height is the median of those prices no more
//! than `max_age` blocks old; with an even number, the two middle ones averaged, rounded
//! down. No fresh price: no mark (positions on that asset are not re-margined until one
//! comes).
//!
//! With three or more oracles fresh, one that lies cannot move the mark outside the prices of
//! the others.

use crate::ledger::Quote;

/// The median of the `quotes` no more than `max_age` blocks older than `height`.
pub fn median_of_fresh(
    quotes: impl IntoIterator<Item = Quote>,
    height: u64,
    max_age: u64,
) -> Option<u64> {
    let mut fresh: Vec<u64> = quotes
        .into_iter()
        .filter(|q| height.saturating_sub(q.height) <= max_age)
        .map(|q| q.price)
        .collect();
    fresh.sort_unstable();
    let n = fresh.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(fresh[n / 2]),
        _ => Some(((u128::from(fresh[n / 2 - 1]) + u128::from(fresh[n / 2])) / 2) as u64),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn q(price: u64, height: u64) -> Quote {
        Quote { price, height }
    }

    #[test]
    fn hand_worked_marks() {
        assert_eq!(median_of_fresh([], 0, 10), None);
        let three = [q(100, 0), q(105, 0), q(300, 0)];
        assert_eq!(median_of_fresh(three, 0, 10), Some(105), "100, 105, 300");
        assert_eq!(
            median_of_fresh(three, 10, 10),
            Some(105),
            "ten blocks old still counts"
        );
        assert_eq!(median_of_fresh(three, 11, 10), None, "none is fresh");
        let moved = [q(100, 0), q(105, 0), q(110, 5)];
        assert_eq!(
            median_of_fresh(moved, 11, 10),
            Some(110),
            "only the newest is fresh"
        );
        let two = [q(101, 12), q(110, 5)];
        assert_eq!(
            median_of_fresh(two, 12, 10),
            Some(105),
            "(101 + 110) / 2, rounded down"
        );
        let big = [q(u64::MAX, 0), q(u64::MAX - 1, 0)];
        assert_eq!(
            median_of_fresh(big, 0, 0),
            Some(u64::MAX - 1),
            "no overflow"
        );
    }

    proptest! {
        /// One lying oracle among three or more fresh ones cannot move the mark outside the
        /// honest oracles' prices.
        #[test]
        fn one_liar_cannot_move_the_mark_outside_the_honest_prices(
            honest in prop::collection::vec(1u64..1_000_000, 2..8),
            lie in 1u64..,
        ) {
            let quotes = honest.iter().map(|p| q(*p, 100)).chain([q(lie, 100)]);
            let mark = median_of_fresh(quotes, 100, 5).expect("fresh");
            let (lo, hi) = (honest.iter().min().copied(), honest.iter().max().copied());
            prop_assert!(Some(mark) >= lo && Some(mark) <= hi, "{honest:?} and {lie}: {mark}");
        }
    }
}
