//! The receipt index on disk: sorted runs of (id prefix, height) entries, merged in tiers.
//!
//! The index is keyed by transaction id, which is random, so inserting a flush's entries into
//! one B-tree rewrote about every page of it, and ever more pages as the store grew (1.42 µs a
//! receipt at 2,000,000 receipts in the store bench, against 0.42 for runs). Here a flush writes its entries,
//! already sorted, as a new run: a table of its own whose values are chunks of up to
//! [`CHUNK`] entries, keyed by each chunk's first prefix, so a run costs a few large appends.
//! When [`FAN_IN`] runs share a level they are merged, streaming, into one run of the next:
//! each entry is rewritten once a level, and a lookup reads one chunk in each run, at most
//! `FAN_IN - 1` runs a level.
//!
//! An entry is sixteen bytes: the prefix, then the height (little-endian). A chunk's entries
//! are in (prefix, height) order and a chunk never splits a prefix's entries, so a lookup
//! finds all of them in the one chunk whose first prefix is the greatest not above its own.
//! Runs are listed in [`RUNS`] (id → level, entries); a flush and the merges it sets off are
//! in the flush's own transaction, so a run is wholly listed or not there at all.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::{db, IdPrefix, StoreError};

/// Entries a chunk holds before it is cut (at the next new prefix): 64 KiB.
const CHUNK: usize = 4096;
/// Runs of a level that are merged into one of the next.
const FAN_IN: usize = 8;
/// Bytes an entry takes in a chunk.
const ENTRY: usize = 16;

/// Run id → (level, entries).
pub(super) const RUNS: TableDefinition<u64, (u8, u64)> = TableDefinition::new("receipt_runs");

/// The name of run `id`'s table (first prefix of a chunk → the chunk).
fn name(id: u64) -> String {
    format!("receipt_run_{id:020}")
}

fn table(name: &str) -> TableDefinition<'_, IdPrefix, &'static [u8]> {
    TableDefinition::new(name)
}

/// Adds `entries`, in (prefix, height) order without repeats, as a run of level 0, then merges
/// every level that holds [`FAN_IN`] runs.
pub(super) fn add(write: &WriteTransaction, entries: &[(IdPrefix, u64)]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    debug_assert!(
        entries.windows(2).all(|w| w[0] < w[1]),
        "sorted, no repeats"
    );
    let id = next_id(write)?;
    let count = write_run(write, id, entries.iter().copied())?;
    write
        .open_table(RUNS)
        .map_err(db)?
        .insert(id, (0, count))
        .map_err(db)?;
    for level in 0.. {
        let inputs = at_level(write, level)?;
        if inputs.len() < FAN_IN {
            break;
        }
        merge(write, &inputs, level + 1)?;
    }
    Ok(())
}

/// Adds to `heights` every height the index holds for `prefix`.
pub(super) fn heights(
    read: &ReadTransaction,
    prefix: &IdPrefix,
    heights: &mut BTreeSet<u64>,
) -> Result<(), StoreError> {
    let runs = read.open_table(RUNS).map_err(db)?;
    for run in runs.iter().map_err(db)? {
        let id = run.map_err(db)?.0.value();
        let name = name(id);
        let chunks = read.open_table(table(&name)).map_err(db)?;
        let Some(chunk) = chunks.range(..=*prefix).map_err(db)?.next_back() else {
            continue;
        };
        let chunk = chunk.map_err(db)?.1;
        let entries = Entries::of(chunk.value()).ok_or(StoreError::CorruptIndex(id))?;
        let first = entries.partition_point(|p| p < prefix);
        heights.extend(
            (first..entries.len())
                .map(|i| entries.get(i))
                .take_while(|(p, _)| p == prefix)
                .map(|(_, height)| height),
        );
    }
    Ok(())
}

/// The runs listed, oldest first: (level, entries) of each.
#[cfg(test)]
fn listed(read: &ReadTransaction) -> Result<Vec<(u8, u64)>, StoreError> {
    let runs = read.open_table(RUNS).map_err(db)?;
    let mut listed = Vec::new();
    for run in runs.iter().map_err(db)? {
        listed.push(run.map_err(db)?.1.value());
    }
    Ok(listed)
}

/// The id a new run takes: above every run listed, so ids grow with age.
fn next_id(write: &WriteTransaction) -> Result<u64, StoreError> {
    let runs = write.open_table(RUNS).map_err(db)?;
    let last = runs.last().map_err(db)?.map(|(id, _)| id.value());
    Ok(last.map_or(0, |id| id + 1))
}

/// The ids of the runs at `level`, oldest first.
fn at_level(write: &WriteTransaction, level: u8) -> Result<Vec<u64>, StoreError> {
    let runs = write.open_table(RUNS).map_err(db)?;
    let mut ids = Vec::new();
    for run in runs.iter().map_err(db)? {
        let (id, meta) = run.map_err(db)?;
        if meta.value().0 == level {
            ids.push(id.value());
        }
    }
    Ok(ids)
}

/// Writes `entries` (in order) as run `id`'s chunks; returns how many there were.
fn write_run(
    write: &WriteTransaction,
    id: u64,
    entries: impl Iterator<Item = (IdPrefix, u64)>,
) -> Result<u64, StoreError> {
    let name = name(id);
    let mut chunks = write.open_table(table(&name)).map_err(db)?;
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK * ENTRY);
    let mut first: Option<IdPrefix> = None;
    let mut count = 0;
    for (prefix, height) in entries {
        let full = chunk.len() >= CHUNK * ENTRY;
        if let Some(head) = first.filter(|_| full && chunk[chunk.len() - ENTRY..][..8] != prefix) {
            chunks.insert(head, chunk.as_slice()).map_err(db)?;
            chunk.clear();
            first = None;
        }
        first.get_or_insert(prefix);
        chunk.extend_from_slice(&prefix);
        chunk.extend_from_slice(&height.to_le_bytes());
        count += 1;
    }
    if let Some(head) = first {
        chunks.insert(head, chunk.as_slice()).map_err(db)?;
    }
    Ok(count)
}

/// Merges runs `inputs` into one new run at `level` and drops them.
fn merge(write: &WriteTransaction, inputs: &[u64], level: u8) -> Result<(), StoreError> {
    let id = next_id(write)?;
    let names: Vec<String> = inputs.iter().map(|&id| name(id)).collect();
    let count = {
        let tables = names
            .iter()
            .map(|name| write.open_table(table(name)).map_err(db))
            .collect::<Result<Vec<_>, _>>()?;
        let mut readers = Vec::with_capacity(inputs.len());
        for (table, &run) in tables.iter().zip(inputs) {
            readers.push(Reader {
                run,
                chunks: table.iter().map_err(db)?,
                chunk: Vec::new(),
                at: 0,
            });
        }
        let mut merged = Merged {
            heads: BinaryHeap::new(),
            readers,
            error: None,
            last: None,
        };
        for index in 0..merged.readers.len() {
            merged.advance(index);
        }
        let count = write_run(write, id, &mut merged)?;
        if let Some(error) = merged.error {
            return Err(error);
        }
        count
    };
    for name in &names {
        write.delete_table(table(name)).map_err(db)?;
    }
    let mut runs = write.open_table(RUNS).map_err(db)?;
    for run in inputs {
        runs.remove(run).map_err(db)?;
    }
    runs.insert(id, (level, count)).map_err(db)?;
    Ok(())
}

/// One input run of a merge, read a chunk at a time.
struct Reader<'t> {
    run: u64,
    chunks: redb::Range<'t, IdPrefix, &'static [u8]>,
    chunk: Vec<(IdPrefix, u64)>,
    at: usize,
}

impl Reader<'_> {
    /// The run's next entry.
    fn next(&mut self) -> Result<Option<(IdPrefix, u64)>, StoreError> {
        if self.at == self.chunk.len() {
            let Some(chunk) = self.chunks.next() else {
                return Ok(None);
            };
            let chunk = chunk.map_err(db)?.1;
            let entries = Entries::of(chunk.value()).ok_or(StoreError::CorruptIndex(self.run))?;
            self.chunk = (0..entries.len()).map(|i| entries.get(i)).collect();
            self.at = 0;
            if self.chunk.is_empty() {
                return Err(StoreError::CorruptIndex(self.run));
            }
        }
        self.at += 1;
        Ok(Some(self.chunk[self.at - 1]))
    }
}

/// The inputs' entries in order, each once; stops at the first error, kept in `error`.
struct Merged<'t> {
    heads: BinaryHeap<Reverse<((IdPrefix, u64), usize)>>,
    readers: Vec<Reader<'t>>,
    error: Option<StoreError>,
    last: Option<(IdPrefix, u64)>,
}

impl Merged<'_> {
    fn advance(&mut self, index: usize) {
        match self.readers[index].next() {
            Ok(Some(entry)) => self.heads.push(Reverse((entry, index))),
            Ok(None) => {}
            Err(error) => self.error = Some(error),
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = (IdPrefix, u64);

    fn next(&mut self) -> Option<(IdPrefix, u64)> {
        loop {
            if self.error.is_some() {
                return None;
            }
            let Reverse((entry, index)) = self.heads.pop()?;
            self.advance(index);
            if self.last != Some(entry) {
                self.last = Some(entry);
                return Some(entry);
            }
        }
    }
}

/// A chunk's entries, read in place.
struct Entries<'a>(&'a [u8]);

impl<'a> Entries<'a> {
    /// `None` unless `bytes` are whole entries.
    fn of(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(ENTRY).then_some(Self(bytes))
    }

    fn len(&self) -> usize {
        self.0.len() / ENTRY
    }

    fn get(&self, i: usize) -> (IdPrefix, u64) {
        let entry = &self.0[i * ENTRY..(i + 1) * ENTRY];
        let mut prefix = [0; 8];
        prefix.copy_from_slice(&entry[..8]);
        let mut height = [0; 8];
        height.copy_from_slice(&entry[8..]);
        (prefix, u64::from_le_bytes(height))
    }

    /// How many entries have a prefix for which `before` holds (they come first).
    fn partition_point(&self, before: impl Fn(&IdPrefix) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if before(&self.get(mid).0) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::testing;

    /// What the index should say: each prefix's heights.
    type Model = BTreeMap<IdPrefix, BTreeSet<u64>>;

    fn found(db: &Database, prefix: &IdPrefix) -> BTreeSet<u64> {
        let read = db.begin_read().expect("reads");
        let mut found = BTreeSet::new();
        heights(&read, prefix, &mut found).expect("looks up");
        found
    }

    /// A flush's entries at heights from `height`, with prefixes from a small space so that
    /// runs share prefixes; a `long` one fills a chunk, then puts 40 entries of one prefix
    /// across its cut.
    fn flush(
        rng: &mut ChaCha8Rng,
        long: bool,
        height: u64,
        model: &mut Model,
    ) -> Vec<(IdPrefix, u64)> {
        let mut entries = BTreeSet::new();
        let short = if long { CHUNK - 20 } else { 300 };
        while entries.len() < short {
            let mut prefix = [0u8; 8];
            prefix[6..].copy_from_slice(&rng.gen_range(1u16..2000).to_be_bytes());
            entries.insert((prefix, height + rng.gen_range(0..3)));
        }
        if long {
            entries.extend((0..40).map(|h| ([9u8; 8], height + h)));
        }
        for (prefix, height) in &entries {
            model.entry(*prefix).or_default().insert(*height);
        }
        entries.into_iter().collect()
    }

    /// Runs merge a level at a time, every height stays found through the merges, a chunk's
    /// cut never splits a prefix's entries, and nothing is listed twice. Seeded; the seed is
    /// in the failure message.
    #[test]
    fn runs_merge_by_level_and_every_height_stays_found() {
        let seed = 215;
        let dir = testing::scratch("receipt-runs");
        let db = Database::create(dir.join("runs.redb")).expect("creates");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut model = Model::new();
        for n in 0..FAN_IN * FAN_IN + 1 {
            let entries = flush(&mut rng, n % 8 == 3, 100 * n as u64, &mut model);
            let write = db.begin_write().expect("writes");
            add(&write, &entries).expect("adds");
            write.commit().expect("commits");
        }
        let read = db.begin_read().expect("reads");
        let levels: Vec<u8> = listed(&read)
            .expect("lists")
            .iter()
            .map(|(l, _)| *l)
            .collect();
        assert_eq!(
            levels,
            [2, 0],
            "seed {seed}: 65 flushes are one run of level 2 and one of 0"
        );
        let total: u64 = listed(&read).expect("lists").iter().map(|(_, n)| n).sum();
        let entries: usize = model.values().map(BTreeSet::len).sum();
        assert_eq!(total, entries as u64, "seed {seed}: each entry once");
        for (prefix, heights) in &model {
            assert_eq!(
                &found(&db, prefix),
                heights,
                "seed {seed}: prefix {prefix:?}"
            );
        }
        assert!(
            found(&db, &[1u8; 8]).is_empty(),
            "an unknown prefix finds nothing"
        );
        assert!(found(&db, &[0u8; 8]).is_empty(), "below every chunk");
    }

    /// A chunk that is not whole entries is refused with its run, in a lookup and a merge.
    #[test]
    fn a_chunk_of_partial_entries_is_corrupt() {
        let dir = testing::scratch("receipt-runs-corrupt");
        let db = Database::create(dir.join("runs.redb")).expect("creates");
        let write = db.begin_write().expect("writes");
        add(&write, &[([4; 8], 1), ([5; 8], 1)]).expect("adds");
        write
            .open_table(table(&name(0)))
            .expect("opens")
            .insert([4; 8], [4u8; 15].as_slice())
            .expect("inserts");
        write.commit().expect("commits");
        let read = db.begin_read().expect("reads");
        let looked = heights(&read, &[4; 8], &mut BTreeSet::new());
        assert!(
            matches!(looked, Err(StoreError::CorruptIndex(0))),
            "{looked:?}"
        );
        let write = db.begin_write().expect("writes");
        for n in 1..(FAN_IN - 1) as u8 {
            add(&write, &[([n; 8], 2)]).expect("adds");
        }
        let merged = add(&write, &[([99; 8], 3)]);
        assert!(
            matches!(merged, Err(StoreError::CorruptIndex(0))),
            "{merged:?}"
        );
    }
}
