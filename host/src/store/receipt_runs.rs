//! The receipt index on disk: sorted runs of (id prefix, height) entries, merged in tiers.
//!
//! The index is keyed by transaction id, which is random, so inserting a flush's entries into
//! one B-tree rewrote about every page of it, and ever more pages as the store grew (1.42 µs a
//! receipt at 2,000,000 receipts in the store bench, against 0.42 for runs). Here a flush
//! writes its entries, already sorted, as a new run: a table of its own whose values are
//! chunks of up to [`CHUNK`] entries, keyed by each chunk's first prefix, so a run costs a few
//! large appends.
//! When [`FAN_IN`] runs share a level they are merged into one run of the next: each entry is
//! rewritten once a level, and a lookup reads one chunk in each run, at most `FAN_IN - 1` runs
//! a level (a few more while a merge is under way).
//!
//! A merge goes in steps, one a commit ([`step`], at most [`STEP`] entries), so no commit
//! holds the state stage for long: a level-2 merge in one go would take seconds. The merge's
//! output is not listed until its last step, which lists it and drops its inputs; until then
//! lookups read the inputs. Where it stands (its inputs, the last entry written) is in
//! [`MERGING`], in the same transactions, so a merge cut by a crash goes on from its last
//! durable step.
//!
//! An entry is sixteen bytes: the prefix, then the height (little-endian). A chunk's entries
//! are in (prefix, height) order and a chunk never splits a prefix's entries (nor does a
//! step), so a lookup finds all of them in the one chunk whose first prefix is the greatest not
//! above its own. Runs are listed in [`RUNS`] (id → level, entries).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::{db, IdPrefix, StoreError};

/// Entries a chunk holds before it is cut (at the next new prefix): 64 KiB.
const CHUNK: usize = 4096;
/// Runs of a level that are merged into one of the next.
const FAN_IN: usize = 8;
/// Bytes an entry takes in a chunk.
const ENTRY: usize = 16;

/// Entries a merge writes in one step (one commit): about 16 ms here.
const STEP: u64 = 1 << 18;

/// Run id → (level, entries).
pub(super) const RUNS: TableDefinition<u64, (u8, u64)> = TableDefinition::new("receipt_runs");
/// The merge under way, if any, under its output's id: [`Merge::encode`].
pub(super) const MERGING: TableDefinition<u64, &[u8]> = TableDefinition::new("receipt_merging");

/// The name of run `id`'s table (first prefix of a chunk → the chunk).
fn name(id: u64) -> String {
    format!("receipt_run_{id:020}")
}

fn table(name: &str) -> TableDefinition<'_, IdPrefix, &'static [u8]> {
    TableDefinition::new(name)
}

/// Adds `entries`, in (prefix, height) order without repeats, as a run of level 0 (merged
/// later, by [`step`]).
pub(super) fn add(write: &WriteTransaction, entries: &[(IdPrefix, u64)]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    debug_assert!(
        entries.windows(2).all(|w| w[0] < w[1]),
        "sorted, no repeats"
    );
    let id = next_id(write)?;
    let (count, _) = write_chunks(
        write,
        id,
        &mut entries.iter().copied().map(Ok).peekable(),
        u64::MAX,
    )?;
    write
        .open_table(RUNS)
        .map_err(db)?
        .insert(id, (0, count))
        .map_err(db)?;
    Ok(())
}

/// Goes on with the merge under way, or starts one if a level holds [`FAN_IN`] runs: at most
/// [`STEP`] entries (and the rest of the last one's prefix). One a commit.
pub(super) fn step(write: &WriteTransaction) -> Result<(), StoreError> {
    step_by(write, STEP)
}

/// [`step`], of at most `budget` entries.
fn step_by(write: &WriteTransaction, budget: u64) -> Result<(), StoreError> {
    let merge = match Merge::under_way(write)? {
        Some(merge) => merge,
        None => match Merge::start(write)? {
            Some(merge) => merge,
            None => return Ok(()),
        },
    };
    merge.advance(write, budget)
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
        let entries = entries(chunk.value()).ok_or(StoreError::CorruptIndex(id))?;
        let first = entries.partition_point(|entry| entry[..8] < prefix[..]);
        heights.extend(
            entries[first..]
                .iter()
                .map(decode)
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

/// The id a new run takes: above every run listed and the merge under way, so ids grow with
/// age.
fn next_id(write: &WriteTransaction) -> Result<u64, StoreError> {
    let listed = last_id(write, RUNS)?;
    let merging = last_id(write, MERGING)?;
    Ok(listed.max(merging).map_or(0, |id| id + 1))
}

/// The greatest id in `table`.
fn last_id<V: redb::Value + 'static>(
    write: &WriteTransaction,
    table: TableDefinition<u64, V>,
) -> Result<Option<u64>, StoreError> {
    let table = write.open_table(table).map_err(db)?;
    let last = table.last().map_err(db)?;
    Ok(last.map(|(id, _)| id.value()))
}

/// Appends `entries` (in order, each prefix above any already in the run) to run `id`'s
/// chunks, up to `budget` of them and the rest of the last one's prefix; returns how many it
/// wrote and the last. What it did not take stays in `entries`.
fn write_chunks<I>(
    write: &WriteTransaction,
    id: u64,
    entries: &mut std::iter::Peekable<I>,
    budget: u64,
) -> Result<(u64, Option<(IdPrefix, u64)>), StoreError>
where
    I: Iterator<Item = Result<(IdPrefix, u64), StoreError>>,
{
    let name = name(id);
    let mut chunks = write.open_table(table(&name)).map_err(db)?;
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK * ENTRY);
    let mut first: Option<IdPrefix> = None;
    let mut count = 0;
    let mut last = None;
    while let Some(entry) = entries.next() {
        let (prefix, height) = entry?;
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
        last = Some((prefix, height));
        let same_prefix = matches!(entries.peek(), Some(Ok((next, _))) if *next == prefix);
        if count >= budget && !same_prefix {
            break;
        }
    }
    if let Some(head) = first {
        chunks.insert(head, chunk.as_slice()).map_err(db)?;
    }
    Ok((count, last))
}

/// A merge of `inputs` (runs of one level, oldest first) into run `output` of `level`.
#[derive(Debug, PartialEq, Eq)]
struct Merge {
    output: u64,
    level: u8,
    inputs: Vec<u64>,
    /// Entries written so far.
    written: u64,
    /// The last entry written; `None` before the first step.
    last: Option<(IdPrefix, u64)>,
}

impl Merge {
    /// The merge under way, if there is one.
    fn under_way(write: &WriteTransaction) -> Result<Option<Self>, StoreError> {
        let merging = write.open_table(MERGING).map_err(db)?;
        let Some((output, state)) = merging.first().map_err(db)? else {
            return Ok(None);
        };
        let output = output.value();
        Self::decode(output, state.value())
            .map(Some)
            .ok_or(StoreError::CorruptIndex(output))
    }

    /// A merge of the oldest [`FAN_IN`] runs of the lowest level that holds as many, if one
    /// does.
    fn start(write: &WriteTransaction) -> Result<Option<Self>, StoreError> {
        let mut by_level: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
        for run in write.open_table(RUNS).map_err(db)?.iter().map_err(db)? {
            let (id, meta) = run.map_err(db)?;
            by_level.entry(meta.value().0).or_default().push(id.value());
        }
        let Some((level, mut inputs)) = by_level.into_iter().find(|(_, ids)| ids.len() >= FAN_IN)
        else {
            return Ok(None);
        };
        inputs.truncate(FAN_IN);
        Ok(Some(Self {
            output: next_id(write)?,
            level: level + 1,
            inputs,
            written: 0,
            last: None,
        }))
    }

    /// Writes the next step; the last one lists the output and drops the inputs.
    fn advance(mut self, write: &WriteTransaction, budget: u64) -> Result<(), StoreError> {
        let names: Vec<String> = self.inputs.iter().map(|&id| name(id)).collect();
        let (wrote, last, done) = {
            let tables = names
                .iter()
                .map(|name| write.open_table(table(name)).map_err(db))
                .collect::<Result<Vec<_>, _>>()?;
            let mut readers = Vec::with_capacity(tables.len());
            for (table, &run) in tables.iter().zip(&self.inputs) {
                readers.push(Reader::after(table, run, self.last)?);
            }
            let mut merged = Merged {
                heads: BinaryHeap::new(),
                readers,
                error: None,
                last: self.last,
            };
            for index in 0..merged.readers.len() {
                merged.advance(index);
            }
            let mut merged = merged.peekable();
            let (wrote, last) = write_chunks(write, self.output, &mut merged, budget)?;
            (wrote, last, merged.peek().is_none())
        };
        self.written += wrote;
        self.last = last.or(self.last);
        let mut merging = write.open_table(MERGING).map_err(db)?;
        if !done {
            return merging
                .insert(self.output, self.encode().as_slice())
                .map(drop)
                .map_err(db);
        }
        merging.remove(self.output).map_err(db)?;
        for name in &names {
            write.delete_table(table(name)).map_err(db)?;
        }
        let mut runs = write.open_table(RUNS).map_err(db)?;
        for run in &self.inputs {
            runs.remove(run).map_err(db)?;
        }
        runs.insert(self.output, (self.level, self.written))
            .map_err(db)?;
        Ok(())
    }

    /// level ‖ written (u64) ‖ 1 and the last entry, or 0 ‖ how many inputs (u8) ‖ the inputs
    /// (u64 each); little-endian.
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.level];
        out.extend_from_slice(&self.written.to_le_bytes());
        match self.last {
            Some((prefix, height)) => {
                out.push(1);
                out.extend_from_slice(&prefix);
                out.extend_from_slice(&height.to_le_bytes());
            }
            None => out.push(0),
        }
        // At most FAN_IN inputs.
        out.push(self.inputs.len() as u8);
        for input in &self.inputs {
            out.extend_from_slice(&input.to_le_bytes());
        }
        out
    }

    fn decode(output: u64, bytes: &[u8]) -> Option<Self> {
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let level = *bytes.first()?;
        let written = u64_at(1)?;
        let (last, rest) = match bytes.get(9)? {
            0 => (None, 10),
            1 => {
                let prefix: IdPrefix = bytes.get(10..18)?.try_into().ok()?;
                (Some((prefix, u64_at(18)?)), 26)
            }
            _ => return None,
        };
        let count = usize::from(*bytes.get(rest)?);
        if count == 0 || bytes.len() != rest + 1 + 8 * count {
            return None;
        }
        let inputs = (0..count)
            .map(|i| u64_at(rest + 1 + 8 * i))
            .collect::<Option<_>>()?;
        Some(Self {
            output,
            level,
            inputs,
            written,
            last,
        })
    }
}

/// One input run of a merge, read a chunk at a time.
struct Reader<'t> {
    run: u64,
    chunks: redb::Range<'t, IdPrefix, &'static [u8]>,
    chunk: Vec<(IdPrefix, u64)>,
    at: usize,
}

impl<'t> Reader<'t> {
    /// A reader of run `run` (its chunks in `table`) from the first entry above `last`.
    fn after(
        table: &'t redb::Table<'_, IdPrefix, &'static [u8]>,
        run: u64,
        last: Option<(IdPrefix, u64)>,
    ) -> Result<Self, StoreError> {
        let Some((prefix, _)) = last else {
            return Ok(Self {
                run,
                chunks: table.iter().map_err(db)?,
                chunk: Vec::new(),
                at: 0,
            });
        };
        // The chunk that may hold `last`'s prefix, then on; entries up to `last` are skipped.
        let from = table.range(..=prefix).map_err(db)?.next_back();
        let chunks = match from {
            Some(chunk) => table.range(chunk.map_err(db)?.0.value()..).map_err(db)?,
            None => table.iter().map_err(db)?,
        };
        let mut reader = Self {
            run,
            chunks,
            chunk: Vec::new(),
            at: 0,
        };
        while let Some(entry) = reader.peek()? {
            if Some(entry) > last {
                break;
            }
            reader.at += 1;
        }
        Ok(reader)
    }

    /// The run's next entry, left in place.
    fn peek(&mut self) -> Result<Option<(IdPrefix, u64)>, StoreError> {
        let next = self.next()?;
        if next.is_some() {
            self.at -= 1;
        }
        Ok(next)
    }

    /// The run's next entry.
    fn next(&mut self) -> Result<Option<(IdPrefix, u64)>, StoreError> {
        if self.at == self.chunk.len() {
            let Some(chunk) = self.chunks.next() else {
                return Ok(None);
            };
            let chunk = chunk.map_err(db)?.1;
            let entries = entries(chunk.value()).ok_or(StoreError::CorruptIndex(self.run))?;
            self.chunk = entries.iter().map(decode).collect();
            self.at = 0;
            if self.chunk.is_empty() {
                return Err(StoreError::CorruptIndex(self.run));
            }
        }
        self.at += 1;
        Ok(Some(self.chunk[self.at - 1]))
    }
}

/// The inputs' entries in order, each once; ends after the first error.
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
    type Item = Result<(IdPrefix, u64), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(error) = self.error.take() {
                self.heads.clear();
                return Some(Err(error));
            }
            let Reverse((entry, index)) = self.heads.pop()?;
            self.advance(index);
            if self.last != Some(entry) {
                self.last = Some(entry);
                return Some(Ok(entry));
            }
        }
    }
}

/// A chunk's entries, in place; `None` unless `bytes` are whole entries.
fn entries(bytes: &[u8]) -> Option<&[[u8; ENTRY]]> {
    match bytes.as_chunks::<ENTRY>() {
        (entries, []) => Some(entries),
        _ => None,
    }
}

/// An entry's prefix and height.
fn decode(entry: &[u8; ENTRY]) -> (IdPrefix, u64) {
    let (prefix, height) = entry.split_at(8);
    let prefix = prefix.try_into().expect("8 bytes");
    let height = u64::from_le_bytes(height.try_into().expect("8 bytes"));
    (prefix, height)
}

#[cfg(test)]
mod tests {
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

    /// Whether a merge is under way or due.
    fn merging(db: &Database) -> bool {
        let write = db.begin_write().expect("writes");
        let busy = Merge::under_way(&write).expect("reads").is_some()
            || Merge::start(&write).expect("reads").is_some();
        write.abort().expect("aborts");
        busy
    }

    /// Runs merge a level at a time in steps of 100 entries, each step in its own transaction,
    /// with a reopen in the middle of one; after every step a sample of prefixes finds all its
    /// heights, and at the end every prefix does, each entry once. A chunk's cut and a step's
    /// end never split a prefix's entries. Seeded; the seed is in the failure message.
    #[test]
    fn runs_merge_in_steps_and_every_height_stays_found() {
        let seed = 215;
        let dir = testing::scratch("receipt-runs");
        let path = dir.join("runs.redb");
        let mut db = Database::create(&path).expect("creates");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut model = Model::new();
        let mut steps = 0;
        for n in 0..FAN_IN * FAN_IN + 1 {
            let entries = flush(&mut rng, n % 8 == 3, 100 * n as u64, &mut model);
            let write = db.begin_write().expect("writes");
            add(&write, &entries).expect("adds");
            write.commit().expect("commits");
            while merging(&db) {
                let write = db.begin_write().expect("writes");
                step_by(&write, 100).expect("steps");
                write.commit().expect("commits");
                steps += 1;
                assert!(steps < 10_000, "seed {seed}: a merge that does not end");
                if steps == 7 {
                    drop(db);
                    db = Database::open(&path).expect("reopens");
                }
                let sample = model.iter().step_by(50).chain(model.get_key_value(&[9; 8]));
                for (prefix, heights) in sample {
                    assert_eq!(
                        &found(&db, prefix),
                        heights,
                        "seed {seed}, step {steps}: {prefix:?}"
                    );
                }
            }
        }
        assert!(
            steps > 2 * 9,
            "seed {seed}: merges took several steps each ({steps})"
        );
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
        for n in 1..FAN_IN as u8 {
            add(&write, &[([n; 8], 2)]).expect("adds");
        }
        let merged = step(&write);
        assert!(
            matches!(merged, Err(StoreError::CorruptIndex(0))),
            "{merged:?}"
        );
    }

    /// A merge's state reads back as written, and anything cut short or with a bad flag is
    /// refused.
    #[test]
    fn a_merge_state_reads_back_and_a_damaged_one_is_refused() {
        for last in [None, Some(([7u8; 8], 9u64))] {
            let merge = Merge {
                output: 12,
                level: 2,
                inputs: vec![3, 4, 11],
                written: 5000,
                last,
            };
            let bytes = merge.encode();
            assert_eq!(Merge::decode(12, &bytes), Some(merge));
            for cut in 0..bytes.len() {
                assert_eq!(Merge::decode(12, &bytes[..cut]), None, "cut at {cut}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(Merge::decode(12, &long), None, "a byte too many");
            let mut flag = bytes.clone();
            flag[9] = 2;
            assert_eq!(Merge::decode(12, &flag), None);
        }
    }
}
