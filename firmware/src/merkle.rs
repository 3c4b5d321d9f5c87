//! The Merkle root of a batch of transaction ids: the rule the card's Merkle unit implements.
//!
//! Leaves are the batch's SHA-256 transaction ids, in batch order. Each level hashes
//! neighbours in pairs; a level with an odd count promotes its last node unchanged to the next
//! level (it is not paired with itself, so no two batches of different length share a root
//! through duplication, the weakness of Bitcoin's rule). Leaves and inner nodes are hashed
//! under different one-byte prefixes, as in RFC 6962, so a leaf can never pass for a node:
//!
//! ```text
//! leaf(id)       = SHA-256(0x00 ‖ id)
//! node(left, r)  = SHA-256(0x01 ‖ left ‖ r)
//! root([])       = SHA-256("")          (an empty batch; the card never forms one)
//! ```
//!
//! A batch holds at most [`MAX_LEAVES`] ids on the card: the unit closes a batch itself when
//! it reaches that many.

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a transaction id, a node or a root.
pub type Hash = [u8; 32];

/// Most ids the card's Merkle unit takes into one batch.
pub const MAX_LEAVES: usize = 4096;

/// The prefix of a leaf hash.
pub const LEAF_PREFIX: u8 = 0x00;
/// The prefix of an inner node hash.
pub const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 ‖ id)`.
pub fn leaf(id: &Hash) -> Hash {
    Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(id)
        .finalize()
        .into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([NODE_PREFIX])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root over `ids`, level by level.
pub fn root(ids: &[Hash]) -> Hash {
    if ids.is_empty() {
        return Sha256::digest([]).into();
    }
    let mut level: Vec<Hash> = ids.iter().map(leaf).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node(left, right),
                [lone] => *lone,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| Sha256::digest((i as u64).to_le_bytes()).into())
            .collect()
    }

    #[test]
    fn small_trees_by_hand() {
        let [a, b, c] = [0, 1, 2].map(|i| ids(3)[i]);
        assert_eq!(root(&[a]), leaf(&a));
        assert_eq!(root(&[a, b]), node(&leaf(&a), &leaf(&b)));
        assert_eq!(
            root(&[a, b, c]),
            node(&node(&leaf(&a), &leaf(&b)), &leaf(&c))
        );
    }

    #[test]
    fn odd_leaf_is_promoted_not_duplicated() {
        let three = ids(3);
        let mut four = three.clone();
        four.push(three[2]);
        assert_ne!(root(&three), root(&four));
    }

    #[test]
    fn leaves_and_nodes_are_separated() {
        let two = ids(2);
        // A batch whose single id is the concatenation's hash must not collide with the pair.
        let pair_as_id: Hash = Sha256::new()
            .chain_update(leaf(&two[0]))
            .chain_update(leaf(&two[1]))
            .finalize()
            .into();
        assert_ne!(root(&[pair_as_id]), root(&two));
    }
}
