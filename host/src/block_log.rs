//! The block log: every ordered block's bytes by height, durable before anyone is told.
//!
//! The log is what an acknowledgement rests on, so an append is the one write on that path:
//! the blocks queued behind one another are encoded back to back ([`record`]), written with
//! one `pwrite` into a segment file whose space was zero-filled and made durable ahead of use
//! ([`segment`]), and made durable with one `fdatasync` (group commit). A record carries a
//! CRC-32, so reopening after a crash keeps the whole records at a segment's start and drops
//! a torn tail, which was never acknowledged. A full segment is sealed with an index of its
//! records' offsets; the one being written keeps its offsets in memory, rebuilt by a scan
//! when the log opens. The rare evidence of misbehaviour is kept beside the segments, in a
//! small redb database.
//!
//! Why not redb for the blocks too, as before: a redb commit wrote the block a page at a
//! time (26 `pwrite`s a commit under `strace`) and grew its file, so its fsync waited for a
//! journal commit, and with it for the state store's writes. Measured with the pipeline
//! bench paced at 100,000 transactions a second: an append took p50 0.40–0.51 ms, p90
//! 1.1–1.3 ms, and 3–8 ms whenever the state store synced; see host/README.md for the
//! figures since.
//!
//! The state follows from the log: whatever the state store lost in a crash is replayed from
//! here when the chain opens.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::store::StoreError;

mod record;
mod segment;

/// Evidence of misbehaviour, by (height, order of arrival); its encoding is
/// `consensus::evidence`'s.
const EVIDENCE: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("evidence");
/// The evidence database's file in the log's directory.
const EVIDENCE_FILE: &str = "evidence.redb";

fn db(error: impl std::fmt::Display) -> StoreError {
    StoreError::Db(error.to_string())
}

fn io(error: io::Error) -> StoreError {
    StoreError::Db(format!("block log: {error}"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The log. Clones share one log: the chain appends, the API reads.
#[derive(Clone)]
pub struct BlockLog {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// Held by the one append in progress.
    writer: Mutex<Writer>,
    /// Where each block is: what readers look up, and the appender updates once a write is
    /// durable.
    index: RwLock<Index>,
    /// The sealed segment read last: reads come in runs.
    sealed_open: Mutex<Option<SealedFiles>>,
    evidence: Database,
}

struct Writer {
    /// The records of the append in progress.
    buffer: Vec<u8>,
    /// The next segment's space being zero-filled, and its size.
    spare: Option<(JoinHandle<io::Result<PathBuf>>, u64)>,
}

#[derive(Default)]
struct Index {
    /// Full segments: first height → number of blocks.
    sealed: BTreeMap<u64, u64>,
    /// The segment being written.
    active: Option<Active>,
}

struct Active {
    first: u64,
    file: Arc<File>,
    size: u64,
    /// Where the next record goes.
    end: u64,
    /// Each block's record, by height from `first`.
    offsets: Vec<u32>,
}

impl Index {
    fn first(&self) -> Option<u64> {
        self.sealed.keys().next().copied().or_else(|| {
            self.active
                .as_ref()
                .filter(|a| !a.offsets.is_empty())
                .map(|a| a.first)
        })
    }

    fn head(&self) -> Option<u64> {
        match &self.active {
            Some(active) if !active.offsets.is_empty() => {
                Some(active.first + active.offsets.len() as u64 - 1)
            }
            _ => self
                .sealed
                .last_key_value()
                .map(|(first, count)| first + count - 1),
        }
    }

    /// The number of segments, the one being written included.
    fn segments(&self) -> usize {
        self.sealed.len() + usize::from(self.active.is_some())
    }
}

/// A sealed segment's files, open.
#[derive(Clone)]
struct SealedFiles {
    first: u64,
    segment: Arc<File>,
    index: Arc<File>,
}

/// A block as the log holds it.
struct Logged {
    block: Vec<u8>,
    certificate: Option<Vec<u8>>,
}

/// Where a block's record is.
enum Place {
    Active(Arc<File>, u32),
    Sealed(u64),
}

impl BlockLog {
    /// Opens (or creates) the log in the directory `path`. After a crash the segment being
    /// written keeps its whole records; what follows them is set aside, then zeroed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if path.with_extension("redb").is_file() {
            return Err(StoreError::Db(format!(
                "{} is a block log of an earlier layout (redb); this build keeps blocks in {}: \
                 start from an empty data directory, or sync this replica from its peers",
                path.with_extension("redb").display(),
                path.display()
            )));
        }
        fs::create_dir_all(path).map_err(io)?;
        let firsts = segment::list(path).map_err(io)?;
        let mut index = Index::default();
        for pair in firsts.windows(2) {
            let (first, next) = (pair[0], pair[1]);
            seal_on_open(path, first, next - first)?;
            index.sealed.insert(first, next - first);
        }
        if let Some(&first) = firsts.last() {
            index.active = open_active(path, first)?;
        }
        let evidence = Database::create(path.join(EVIDENCE_FILE)).map_err(db)?;
        let txn = evidence.begin_write().map_err(db)?;
        txn.open_table(EVIDENCE).map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir: path.to_owned(),
                writer: Mutex::new(Writer {
                    buffer: Vec::new(),
                    spare: None,
                }),
                index: RwLock::new(index),
                sealed_open: Mutex::new(None),
                evidence,
            }),
        })
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.inner
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.inner
            .index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The last block's height; `None` for an empty log.
    pub fn head(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.index().head())
    }

    /// The first block's height: 0 from genesis, a snapshot's height if the log started
    /// there; `None` for an empty log.
    pub fn first(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.index().first())
    }

    /// Appends block `height` (the head's successor, or 0 on an empty log) and makes it
    /// durable before returning.
    pub fn append(&self, height: u64, block: &[u8]) -> Result<(), StoreError> {
        self.append_certified(height, block, None)
    }

    /// Appends block `height` with the certificate that decided it, both durable together: a
    /// block the log holds from consensus always has its certificate.
    pub fn append_certified(
        &self,
        height: u64,
        block: &[u8],
        certificate: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.append_all(height, [(block, certificate)])
    }

    /// Appends consecutive blocks from `first` on (the head's successor, or 0 on an empty
    /// log), each with its certificate if it has one, with one `fdatasync` for all of them
    /// (group commit) unless they fill a segment.
    pub fn append_all<'a>(
        &self,
        first: u64,
        blocks: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Result<(), StoreError> {
        let mut writer = lock(&self.inner.writer);
        let last = self.index().head();
        if last.map_or(first != 0, |l| first != l + 1) {
            return Err(StoreError::OutOfOrder { last, got: first });
        }
        self.append_records(&mut writer, first, blocks)
    }

    /// Starts an empty log at `height` with that block and its certificate, from a peer's
    /// snapshot: the blocks below are not this replica's.
    pub fn start_at(
        &self,
        height: u64,
        block: &[u8],
        certificate: &[u8],
    ) -> Result<(), StoreError> {
        let mut writer = lock(&self.inner.writer);
        if let Some(last) = self.index().head() {
            return Err(StoreError::OutOfOrder {
                last: Some(last),
                got: height,
            });
        }
        self.append_records(&mut writer, height, [(block, Some(certificate))])
    }

    /// Encodes the blocks from `first` on and writes them, a segment at a time.
    fn append_records<'a>(
        &self,
        writer: &mut Writer,
        first: u64,
        blocks: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Result<(), StoreError> {
        let mut buffer = std::mem::take(&mut writer.buffer);
        buffer.clear();
        // Each record's offset in `buffer`.
        let mut offsets: Vec<u32> = Vec::new();
        let result = (|| {
            for (height, (block, certificate)) in (first..).zip(blocks) {
                let start = buffer.len();
                let len = record::encode(&mut buffer, height, block, certificate).ok_or(
                    StoreError::BlockTooLarge {
                        height,
                        bytes: block.len() + certificate.map_or(0, <[u8]>::len),
                    },
                )?;
                let room = self
                    .index()
                    .active
                    .as_ref()
                    .map_or(0, |a| a.size.saturating_sub(a.end));
                if (buffer.len() as u64) > room {
                    // This record starts the next segment: what precedes it ends this one.
                    self.write(&buffer[..start], &offsets)?;
                    buffer.drain(..start);
                    offsets.clear();
                    self.next_segment(writer, height, len)?;
                }
                offsets.push((buffer.len() - len) as u32);
            }
            self.write(&buffer, &offsets)
        })();
        writer.buffer = buffer;
        if writer.spare.is_none() {
            // The log is being written: have the next segment's space ready before it is due.
            writer.spare = self.fill();
        }
        result
    }

    /// Writes `records` (their offsets in it: `offsets`) at the end of the segment being
    /// written, durably, then lets readers find them.
    fn write(&self, records: &[u8], offsets: &[u32]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let (file, end) = {
            let index = self.index();
            let active = index
                .active
                .as_ref()
                .ok_or_else(|| io(io::ErrorKind::NotFound.into()))?;
            (Arc::clone(&active.file), active.end)
        };
        file.write_all_at(records, end).map_err(io)?;
        file.sync_data().map_err(io)?;
        if let Some(active) = self.index_mut().active.as_mut() {
            // A segment is at most `segment::LARGEST` or one record long: offsets fit a u32.
            active
                .offsets
                .extend(offsets.iter().map(|o| end as u32 + o));
            active.end += records.len() as u64;
        }
        Ok(())
    }

    /// Seals the segment being written (if it holds blocks) and starts segment `first`, with
    /// room for at least `need` bytes, in the spare's space.
    fn next_segment(&self, writer: &mut Writer, first: u64, need: usize) -> Result<(), StoreError> {
        let dir = &self.inner.dir;
        let held = {
            let index = self.index();
            index.active.as_ref().map(|a| (a.first, a.offsets.clone()))
        };
        match held {
            Some((sealing, offsets)) if !offsets.is_empty() => {
                segment::write_index(dir, sealing, &offsets).map_err(io)?;
                let mut index = self.index_mut();
                index.active = None;
                index.sealed.insert(sealing, offsets.len() as u64);
            }
            Some((empty, _)) => {
                // Started, then a write failed: nothing in it.
                self.index_mut().active = None;
                fs::remove_file(segment::path(dir, empty)).map_err(io)?;
            }
            None => {}
        }
        let size = segment::planned(self.index().segments()).max(need as u64);
        let (spare, size) = match writer.spare.take() {
            Some((filling, filled)) => {
                if !filling.is_finished() {
                    metrics::counter!("verity_log_spare_waits_total").increment(1);
                }
                let spare = filling
                    .join()
                    .map_err(|_| io(io::Error::other("the spare's filler panicked")))?
                    .map_err(io)?;
                if filled >= size {
                    (spare, filled)
                } else {
                    (segment::fill(dir, size).map_err(io)?, size)
                }
            }
            None => (segment::fill(dir, size).map_err(io)?, size),
        };
        let file = segment::install(dir, &spare, first).map_err(io)?;
        self.index_mut().active = Some(Active {
            first,
            file: Arc::new(file),
            size,
            end: 0,
            offsets: Vec::new(),
        });
        writer.spare = self.fill();
        Ok(())
    }

    /// Starts zero-filling the next segment's space on a thread of its own, in the background
    /// ([`crate::priority`]: at normal priority a 1 MiB chunk's write held a core for 2.8 ms
    /// while the sequence stage waited for it); `None` if no thread could be started (the
    /// segment is then filled when it is due).
    fn fill(&self) -> Option<(JoinHandle<io::Result<PathBuf>>, u64)> {
        let dir = self.inner.dir.clone();
        let size = segment::planned(self.index().segments());
        let spawned = std::thread::Builder::new()
            .name("log-spare".to_owned())
            .spawn(move || {
                crate::priority::background();
                segment::fill(&dir, size)
            });
        spawned.ok().map(|handle| (handle, size))
    }

    /// Block `height`'s record: the block and its certificate, checked against its checksum.
    fn read(&self, height: u64) -> Result<Option<Logged>, StoreError> {
        let place = {
            let index = self.index();
            match &index.active {
                Some(a) if height >= a.first => match a.offsets.get((height - a.first) as usize) {
                    Some(&offset) => Place::Active(Arc::clone(&a.file), offset),
                    None => return Ok(None),
                },
                _ => match index.sealed.range(..=height).next_back() {
                    Some((&first, &count)) if height < first + count => Place::Sealed(first),
                    _ => return Ok(None),
                },
            }
        };
        let (file, offset) = match place {
            Place::Active(file, offset) => (file, offset),
            Place::Sealed(first) => {
                let sealed = self.sealed(first)?;
                let offset = segment::read_index(&sealed.index, height - first).map_err(io)?;
                (sealed.segment, offset)
            }
        };
        let corrupt = |_| StoreError::CorruptBlock(height);
        let mut header = [0; record::HEADER_LEN];
        file.read_exact_at(&mut header, u64::from(offset))
            .map_err(io)?;
        let header = record::Header::parse(&header).map_err(corrupt)?;
        if header.height != height {
            return Err(StoreError::CorruptBlock(height));
        }
        let mut body = vec![0; header.len() - record::HEADER_LEN];
        file.read_exact_at(&mut body, u64::from(offset) + record::HEADER_LEN as u64)
            .map_err(io)?;
        let (block, certificate) = header.check(&body).map_err(corrupt)?;
        Ok(Some(Logged {
            block: block.to_vec(),
            certificate: certificate.map(<[u8]>::to_vec),
        }))
    }

    /// Sealed segment `first`'s file and index, opened.
    fn sealed(&self, first: u64) -> Result<SealedFiles, StoreError> {
        let mut open = lock(&self.inner.sealed_open);
        if let Some(sealed) = open.as_ref().filter(|s| s.first == first) {
            return Ok(sealed.clone());
        }
        let dir = &self.inner.dir;
        let sealed = SealedFiles {
            first,
            segment: Arc::new(File::open(segment::path(dir, first)).map_err(io)?),
            index: Arc::new(File::open(segment::index_path(dir, first)).map_err(io)?),
        };
        *open = Some(sealed.clone());
        Ok(sealed)
    }

    /// Block `height`'s bytes.
    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read(height)?.map(|logged| logged.block))
    }

    /// The encoded certificate that decided block `height`; `None` for a block a single
    /// replica ordered, or one not logged.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read(height)?.and_then(|logged| logged.certificate))
    }

    /// Stores evidence found at `height` (encoded), after what is stored for it already.
    pub fn record_evidence(&self, height: u64, evidence: &[Vec<u8>]) -> Result<(), StoreError> {
        let txn = self.inner.evidence.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(EVIDENCE).map_err(db)?;
            let next = table
                .range((height, 0)..=(height, u32::MAX))
                .map_err(db)?
                .next_back()
                .transpose()
                .map_err(db)?
                .map_or(0, |(key, _)| key.value().1 + 1);
            for (i, item) in evidence.iter().enumerate() {
                table
                    .insert((height, next + i as u32), item.as_slice())
                    .map_err(db)?;
            }
        }
        txn.commit().map_err(db)
    }

    /// The latest `max` pieces of evidence stored (encoded), oldest first, with their heights.
    pub fn evidence(&self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.inner.evidence.begin_read().map_err(db)?;
        let table = txn.open_table(EVIDENCE).map_err(db)?;
        let mut latest = Vec::new();
        for entry in table.iter().map_err(db)?.rev().take(max) {
            let (key, value) = entry.map_err(db)?;
            latest.push((key.value().0, value.value().to_vec()));
        }
        latest.reverse();
        Ok(latest)
    }
}

impl Drop for Inner {
    /// Waits for a fill in progress: the log's directory may be opened again at once.
    fn drop(&mut self) {
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((filling, _)) = writer.spare.take() {
            if let Ok(Ok(spare)) = filling.join() {
                let _ = fs::remove_file(spare);
            }
        }
    }
}

/// Checks that full segment `first` has an index of `count` blocks, and writes it from a scan
/// of the segment if not (a crash between the segment's last write and its index's).
fn seal_on_open(dir: &Path, first: u64, count: u64) -> Result<(), StoreError> {
    let indexed = fs::metadata(segment::index_path(dir, first)).map(|m| m.len());
    if matches!(indexed, Ok(len) if len == count * 4) {
        return Ok(());
    }
    let (offsets, _) = record::scan(&read_segment(dir, first)?, first);
    if offsets.len() as u64 != count {
        return Err(StoreError::Db(format!(
            "block log: segment {first} holds {} whole blocks, {count} expected before the next \
             segment",
            offsets.len()
        )));
    }
    segment::write_index(dir, first, &offsets).map_err(io)
}

/// Opens the segment being written, `first`: its whole records, and zeros over whatever
/// follows them (a torn append, never acknowledged), so that a later append cannot be
/// followed by a stale record. Those bytes are first copied aside, to `<first>-<offset>.torn`
/// beside the segment: a scan cannot tell a torn append from a damaged record with whole
/// ones after it, and the second must not be lost. A segment with no whole record is removed
/// (after the same copy, if it holds anything).
fn open_active(dir: &Path, first: u64) -> Result<Option<Active>, StoreError> {
    let bytes = read_segment(dir, first)?;
    let (offsets, end) = record::scan(&bytes, first);
    let path = segment::path(dir, first);
    // Up to the last byte that is not zero: the space after it is as it was filled.
    let torn_len = bytes[end..]
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    if torn_len > 0 {
        let torn = &bytes[end..end + torn_len];
        metrics::counter!("verity_log_torn_tails_total").increment(1);
        tracing::warn!(
            segment = first,
            offset = end,
            bytes = torn.len(),
            "the block log's tail after its last whole record is set aside and dropped"
        );
        let aside = dir.join(format!("{first:020}-{end}.torn"));
        let mut file = File::create(aside).map_err(io)?;
        io::Write::write_all(&mut file, torn).map_err(io)?;
        file.sync_all().map_err(io)?;
        segment::sync_dir(dir).map_err(io)?;
    }
    if offsets.is_empty() {
        fs::remove_file(&path).map_err(io)?;
        let _ = fs::remove_file(segment::index_path(dir, first));
        segment::sync_dir(dir).map_err(io)?;
        return Ok(None);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    if torn_len > 0 {
        file.write_all_at(&vec![0; torn_len], end as u64)
            .map_err(io)?;
        file.sync_data().map_err(io)?;
    }
    Ok(Some(Active {
        first,
        file: Arc::new(file),
        size: bytes.len() as u64,
        end: end as u64,
        offsets,
    }))
}

/// A segment's bytes, bounded before they are read.
fn read_segment(dir: &Path, first: u64) -> Result<Vec<u8>, StoreError> {
    let path = segment::path(dir, first);
    let len = fs::metadata(&path).map_err(io)?.len();
    let largest = segment::LARGEST.max(record::MAX_RECORD as u64);
    if len > largest {
        return Err(StoreError::Db(format!(
            "block log: segment {first} is {len} bytes, more than the largest ({largest})"
        )));
    }
    fs::read(&path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn blocks_append_in_order_and_survive_reopening() {
        let dir = testing::scratch("block-log");
        let path = dir.join("blocks");
        {
            let log = BlockLog::open(&path).expect("opens");
            assert_eq!(log.head().expect("reads"), None);
            assert!(matches!(
                log.append(1, b"one"),
                Err(StoreError::OutOfOrder { last: None, got: 1 })
            ));
            log.append(0, b"").expect("appends");
            log.append(1, b"one").expect("appends");
            log.append_certified(2, b"two", Some(b"cert"))
                .expect("appends");
            assert!(matches!(
                log.append(1, b"again"),
                Err(StoreError::OutOfOrder {
                    last: Some(2),
                    got: 1
                })
            ));
        }
        let log = BlockLog::open(&path).expect("reopens");
        assert_eq!(log.head().expect("reads"), Some(2));
        assert_eq!(log.block(1).expect("reads").as_deref(), Some(&b"one"[..]));
        assert_eq!(log.certificate(1).expect("reads"), None);
        assert_eq!(
            log.certificate(2).expect("reads").as_deref(),
            Some(&b"cert"[..])
        );
        assert_eq!(log.block(3).expect("reads"), None);
        assert!(matches!(
            log.append_all(4, [(&b"four"[..], None)]),
            Err(StoreError::OutOfOrder {
                last: Some(2),
                got: 4
            })
        ));
        log.append_all(3, [(&b"three"[..], None), (&b"four"[..], Some(&b"c4"[..]))])
            .expect("appends");
        assert_eq!(log.head().expect("reads"), Some(4));
        assert_eq!(log.block(3).expect("reads").as_deref(), Some(&b"three"[..]));
        assert_eq!(log.certificate(3).expect("reads"), None);
        assert_eq!(
            log.certificate(4).expect("reads").as_deref(),
            Some(&b"c4"[..])
        );
        log.record_evidence(2, &[b"a".to_vec()]).expect("records");
        log.record_evidence(2, &[b"b".to_vec(), b"c".to_vec()])
            .expect("records");
        log.record_evidence(1, &[b"z".to_vec()]).expect("records");
        assert_eq!(
            log.evidence(3).expect("reads"),
            [(2, b"a".to_vec()), (2, b"b".to_vec()), (2, b"c".to_vec())]
        );
        assert_eq!(log.evidence(10).expect("reads")[0], (1, b"z".to_vec()));
        assert_eq!(log.first().expect("reads"), Some(0));
        assert!(log.start_at(9, b"nine", b"cert").is_err(), "not empty");
        let started = BlockLog::open(&dir.join("started")).expect("opens");
        started.start_at(9, b"nine", b"cert").expect("starts");
        assert_eq!(started.first().expect("reads"), Some(9));
        assert_eq!(started.head().expect("reads"), Some(9));
        started.append(10, b"ten").expect("appends");
        assert_eq!(
            started.certificate(9).expect("reads").as_deref(),
            Some(&b"cert"[..])
        );
    }

    /// Block `height`'s bytes in the tests below: its height, repeated to a length that
    /// varies.
    fn block(height: u64) -> Vec<u8> {
        height
            .to_le_bytes()
            .iter()
            .copied()
            .cycle()
            .take(1_000 + (height as usize * 7_919) % 60_000)
            .collect()
    }

    #[test]
    fn blocks_span_segments_and_read_back_after_reopening_without_their_indexes() {
        let dir = testing::scratch("block-log-segments");
        let path = dir.join("blocks");
        // A record longer than the first segment's planned size gets a segment of its own.
        let big = vec![7u8; 3 << 20];
        {
            let log = BlockLog::open(&path).expect("opens");
            log.append(0, &big).expect("appends");
            for chunk in (1..400).collect::<Vec<u64>>().chunks(7) {
                let blocks: Vec<Vec<u8>> = chunk.iter().map(|&h| block(h)).collect();
                log.append_all(chunk[0], blocks.iter().map(|b| (b.as_slice(), None)))
                    .expect("appends");
            }
            log.append(400, &block(400)).expect("appends");
            assert_eq!(log.block(0).expect("reads"), Some(big.clone()));
        }
        let segments = segment::list(&path).expect("lists");
        assert!(segments.len() >= 4, "{segments:?}");
        // A crash between a segment's last write and its index: rebuilt from a scan.
        for &first in &segments {
            let _ = fs::remove_file(segment::index_path(&path, first));
        }
        let log = BlockLog::open(&path).expect("reopens");
        assert_eq!(
            (log.first().expect("reads"), log.head().expect("reads")),
            (Some(0), Some(400))
        );
        let own = fs::metadata(segment::path(&path, 0))
            .expect("a segment")
            .len();
        assert_eq!(own, big.len() as u64 + record::HEADER_LEN as u64);
        for height in (1..=400).rev().step_by(3) {
            assert_eq!(
                log.block(height).expect("reads"),
                Some(block(height)),
                "block {height}"
            );
        }
        assert_eq!(log.block(0).expect("reads"), Some(big));
        assert_eq!(log.block(401).expect("reads"), None);
        log.append(401, b"more").expect("appends after reopening");
    }

    #[test]
    fn a_torn_append_is_dropped_and_zeroed_and_a_damaged_block_is_refused() {
        let dir = testing::scratch("block-log-torn");
        let path = dir.join("blocks");
        {
            let log = BlockLog::open(&path).expect("opens");
            log.append_all(0, [(&block(0)[..], None), (&block(1)[..], None)])
                .expect("appends");
        }
        let first = segment::path(&path, 0);
        let mut bytes = fs::read(&first).expect("reads");
        let end = record::HEADER_LEN * 2 + block(0).len() + block(1).len();
        // Half of a third record: written, never made durable whole.
        let mut torn = Vec::new();
        record::encode(&mut torn, 2, &block(2), None).expect("fits");
        bytes[end..end + torn.len() / 2].copy_from_slice(&torn[..torn.len() / 2]);
        fs::write(&first, &bytes).expect("writes");
        {
            let log = BlockLog::open(&path).expect("reopens");
            assert_eq!(log.head().expect("reads"), Some(1));
            assert!(fs::read(&first).expect("reads")[end..]
                .iter()
                .all(|&b| b == 0));
            // What was dropped is kept aside, up to its last byte that is not zero.
            let aside = fs::read(path.join(format!("{:020}-{end}.torn", 0))).expect("set aside");
            let half = &torn[..torn.len() / 2];
            assert!(!aside.is_empty() && half.starts_with(&aside));
            assert!(half[aside.len()..].iter().all(|&b| b == 0));
            log.append(2, b"short").expect("appends");
        }
        let log = BlockLog::open(&path).expect("reopens");
        assert_eq!(log.head().expect("reads"), Some(2));
        assert_eq!(log.block(2).expect("reads").as_deref(), Some(&b"short"[..]));
        // A bit flipped in a stored block: refused on read, not returned.
        let mut bytes = fs::read(&first).expect("reads");
        bytes[record::HEADER_LEN + 5] ^= 1;
        fs::write(&first, &bytes).expect("writes");
        assert!(matches!(log.block(0), Err(StoreError::CorruptBlock(0))));
        // The redb log of earlier builds is refused with a reason.
        fs::write(dir.join("old.redb"), b"").expect("writes");
        let refused = BlockLog::open(&dir.join("old")).err().expect("refused");
        assert!(refused.to_string().contains("earlier layout"), "{refused}");
    }
}
