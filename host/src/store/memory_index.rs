//! The receipt index's entries held in memory until a durable commit writes them to their
//! table: (a transaction id's first eight bytes, its block's height).
//!
//! A hash map, not a B-tree: the state stage adds an entry per transaction, and an insert at a
//! random key of a B-tree of up to 2^20 entries walks several cache-missing nodes; a lookup
//! (the API's) needs only the heights of one prefix, and the table write wants key order,
//! which [`MemoryIndex::sorted_with`] gives once per flush. Ids are SHA-256 digests, so two
//! transactions share a prefix rarely; the second one's entry goes to a short list.

use std::collections::hash_map::Entry;

use ahash::HashMap;

use super::IdPrefix;

/// The entries; at most one per (prefix, height).
#[derive(Debug, Default)]
pub(super) struct MemoryIndex {
    /// The first height seen for each prefix.
    first: HashMap<IdPrefix, u64>,
    /// Further heights of a prefix already in `first`.
    more: Vec<(IdPrefix, u64)>,
}

impl MemoryIndex {
    /// Adds `(prefix, height)`; an entry already held is not added twice.
    pub(super) fn insert(&mut self, prefix: IdPrefix, height: u64) {
        match self.first.entry(prefix) {
            Entry::Vacant(vacant) => {
                vacant.insert(height);
            }
            Entry::Occupied(held) if *held.get() == height => {}
            Entry::Occupied(_) => {
                if !self.more.contains(&(prefix, height)) {
                    self.more.push((prefix, height));
                }
            }
        }
    }

    /// The entries held.
    pub(super) fn len(&self) -> usize {
        self.first.len() + self.more.len()
    }

    /// Forgets every entry (they are in the table now).
    pub(super) fn clear(&mut self) {
        self.first.clear();
        self.more.clear();
    }

    /// The heights held for `prefix`, in no particular order.
    pub(super) fn heights(&self, prefix: &IdPrefix) -> impl Iterator<Item = u64> + '_ {
        let prefix = *prefix;
        let more = self.more.iter().filter(move |(p, _)| *p == prefix);
        self.first
            .get(&prefix)
            .copied()
            .into_iter()
            .chain(more.map(|(_, height)| *height))
    }

    /// Every entry, with `extra` (a commit's own, not held), in key order and each once: what
    /// a run is written from, the same whatever order the entries came in. One sort.
    pub(super) fn sorted_with(&self, extra: &[(IdPrefix, u64)]) -> Vec<(IdPrefix, u64)> {
        let mut entries: Vec<(IdPrefix, u64)> = self
            .first
            .iter()
            .map(|(prefix, height)| (*prefix, *height))
            .chain(self.more.iter().copied())
            .chain(extra.iter().copied())
            .collect();
        entries.sort_unstable();
        // A block may hold two transactions whose ids share a prefix (or one twice).
        entries.dedup();
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefixes_keep_every_height_once_and_come_out_sorted() {
        let mut index = MemoryIndex::default();
        let (a, b) = ([1u8; 8], [0u8; 8]);
        for (prefix, height) in [(a, 7), (b, 3), (a, 9), (a, 7), (a, 9), (b, 3), (a, 2)] {
            index.insert(prefix, height);
        }
        assert_eq!(index.len(), 4);
        let mut heights: Vec<u64> = index.heights(&a).collect();
        heights.sort_unstable();
        assert_eq!(heights, [2, 7, 9]);
        assert_eq!(index.heights(&b).collect::<Vec<_>>(), [3]);
        assert_eq!(index.heights(&[9u8; 8]).count(), 0);
        assert_eq!(index.sorted_with(&[]), [(b, 3), (a, 2), (a, 7), (a, 9)]);
        assert_eq!(
            index.sorted_with(&[(a, 1), (b, 8), (a, 1), (a, 7)]),
            [(b, 3), (b, 8), (a, 1), (a, 2), (a, 7), (a, 9)],
            "each once, a commit's own repeats and those held already included"
        );
        index.clear();
        assert_eq!(index.len(), 0);
        assert!(index.sorted_with(&[]).is_empty());
    }
}
