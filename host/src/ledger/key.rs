//! The key of the ledger's account maps: an [`AccountId`] ordered exactly as its bytes, so
//! the maps walk accounts in id order as before (the book's passes, the changes a block
//! hands to the state store), but compared a machine word at a time. As a plain `[u8; 32]`
//! each comparison was a `memcmp` call: a quarter of a transfer's execution (`make bench`,
//! the ledger bench).

use std::cmp::Ordering;

use super::AccountId;

/// An account id as the ledger's maps hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key(pub(crate) AccountId);

impl Key {
    /// Its `i`th eight bytes as a big-endian word: words compare as the bytes do.
    #[inline]
    fn word(&self, i: usize) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[8 * i..8 * i + 8]);
        u64::from_be_bytes(word)
    }
}

impl Ord for Key {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        (0..4)
            .map(|i| self.word(i).cmp(&other.word(i)))
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Key {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Ids that share a prefix of `shared` bytes, so that every word decides some pairs.
    fn pair() -> impl Strategy<Value = (AccountId, AccountId)> {
        (any::<[u8; 32]>(), any::<[u8; 32]>(), 0usize..=32).prop_map(|(a, mut b, shared)| {
            b[..shared].copy_from_slice(&a[..shared]);
            (a, b)
        })
    }

    proptest! {
        #[test]
        fn keys_order_as_their_bytes((a, b) in pair()) {
            prop_assert_eq!(Key(a).cmp(&Key(b)), a.cmp(&b));
            prop_assert_eq!(Key(a) == Key(b), a == b);
        }
    }

    #[test]
    fn the_first_differing_byte_decides_in_every_word() {
        for byte in 0..32 {
            let (mut low, mut high) = ([0xffu8; 32], [0xffu8; 32]);
            low[byte] = 0x7f;
            high[byte] = 0x80;
            // Every byte after the first differing one favours `low`.
            high[byte + 1..].fill(0);
            assert_eq!(Key(low).cmp(&Key(high)), Ordering::Less, "byte {byte}");
            assert_eq!(Key(high).cmp(&Key(low)), Ordering::Greater, "byte {byte}");
        }
    }
}
