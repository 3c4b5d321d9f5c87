//! The state store's file: redb's own file backend, whose durable sync first writes what
//! changed back a chunk at a time, each chunk on the disk before the next one starts.
//!
//! Why: the state store makes a second of commits durable at once (`CHECKPOINT_EVERY`), tens
//! of megabytes. Left to one `fdatasync`, the kernel queues all of it on the device together,
//! and the block log's own `fdatasync` — what every acknowledgement waits for — queues behind
//! it: a probe of the pipeline bench at 153,000 tx/s put nearly every transaction above the p99
//! inside such a sync (up to 276 ms), with log appends of up to 76 ms beside it. A chunk at a
//! time, the log's write queues behind a chunk rather than the whole second's writes: in two
//! pairs the longest append fell from 31 and 28 ms to 8 and 7 (host/README.md, Figures).
//!
//! `unsafe` is allowed in this module for the one `sync_file_range` call, which has no safe
//! wrapper in std or rustix; it reads nothing from memory.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// How much one step of a sync writes back before it waits for the disk: about 2 ms of this
/// machine's disk (chosen from its rate, not tuned).
const CHUNK: u64 = 1 << 20;

/// redb's [`FileBackend`], with the ranges written since the last sync kept so that the sync
/// can write them back in [`CHUNK`]s.
#[derive(Debug)]
pub(super) struct PacedFile {
    inner: FileBackend,
    /// The same open file, for `sync_file_range`.
    file: File,
    /// `(offset, end)` of every write since the last sync: in the order written, merged once
    /// there are [`MERGE_AT`] (into one range if merging leaves half as many).
    written: Mutex<Vec<(u64, u64)>>,
}

impl PacedFile {
    /// Opens the file at `path`, creating it if it is not there, as redb's `create` would.
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Self::new(file)
    }

    fn new(file: File) -> io::Result<Self> {
        let own = file.try_clone()?;
        Ok(Self {
            inner: FileBackend::new(file).map_err(io::Error::other)?,
            file: own,
            written: Mutex::new(Vec::new()),
        })
    }

    /// Starts the writeback of `offset..end` and waits for it to be on the disk (not for
    /// the disk's cache to be flushed: the `fdatasync` after does that, once).
    fn write_back(&self, offset: u64, end: u64) -> io::Result<()> {
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(end - offset),
        ) else {
            return Ok(());
        };
        // SAFETY: a system call on a file descriptor this struct owns; no memory is passed.
        let status = unsafe { libc::sync_file_range(self.file.as_raw_fd(), offset, len, flags) };
        if status == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Ranges kept before they are merged in place: redb writes a few thousand pages a second,
/// and a store whose commits are never made durable must not grow the list for ever.
const MERGE_AT: usize = 1 << 16;

/// `ranges` sorted, with those that touch or overlap merged.
fn merged(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `ranges` [`merged`], each then cut into [`CHUNK`]s.
fn chunks(ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let merged = merged(ranges);
    let mut out = Vec::with_capacity(merged.len());
    for (mut start, end) in merged {
        while start < end {
            let next = end.min(start + CHUNK);
            out.push((start, next));
            start = next;
        }
    }
    out
}

impl StorageBackend for PacedFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let written =
            std::mem::take(&mut *self.written.lock().unwrap_or_else(PoisonError::into_inner));
        for (offset, end) in chunks(written) {
            // A failed step only loses the pacing: the `fdatasync` below writes what is left
            // and reports the error that matters.
            if let Err(error) = self.write_back(offset, end) {
                metrics::counter!("verity_state_writeback_errors_total").increment(1);
                tracing::debug!(%error, "sync_file_range failed; the fdatasync writes the rest");
                break;
            }
        }
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.inner.write(offset, data)?;
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        written.push((offset, offset + data.len() as u64));
        if written.len() >= MERGE_AT {
            *written = merged(std::mem::take(&mut *written));
            // Still that scattered: one range over them all. `sync_file_range` skips the clean
            // pages in it, so this costs lookups, not writes, and the list stays small.
            if written.len() >= MERGE_AT / 2 {
                if let (Some(first), Some(last)) = (written.first(), written.last()) {
                    *written = vec![(first.0, last.1)];
                }
            }
        }
        Ok(())
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Scratch;

    /// A new file in a scratch directory for test `name`, wrapped.
    fn opened(name: &str) -> (Scratch, PacedFile) {
        let dir = crate::testing::scratch(name);
        let paced = PacedFile::create(&dir.as_ref().join("paced")).expect("opens");
        (dir, paced)
    }

    #[test]
    fn the_kept_ranges_are_merged_once_they_reach_the_bound() {
        let (_dir, paced) = opened("paced-file");
        paced.set_len(8 << 10).expect("grows");
        for i in 0..MERGE_AT as u64 {
            // Every write lands on one of two neighbouring pages: merged, one range.
            paced.write((i % 2) * 4096, &[1; 4096]).expect("writes");
        }
        let kept = paced.written.lock().expect("lock").clone();
        assert_eq!(kept, vec![(0, 8192)]);
        paced.sync_data().expect("syncs");
        assert!(paced.written.lock().expect("lock").is_empty());
        let mut back = [0; 4096];
        paced.read(4096, &mut back).expect("reads");
        assert_eq!(back, [1; 4096]);
    }

    #[test]
    fn scattered_ranges_collapse_into_one_that_covers_them() {
        let (_dir, paced) = opened("paced-file-scattered");
        let gaps = MERGE_AT as u64;
        paced.set_len(2 * gaps).expect("grows");
        for i in 0..gaps {
            // A byte, then a gap: no two ranges merge.
            paced.write(2 * i, &[1]).expect("writes");
        }
        let kept = paced.written.lock().expect("lock").clone();
        assert_eq!(kept, vec![(0, 2 * gaps - 1)]);
        paced.sync_data().expect("syncs");
    }

    #[test]
    fn written_ranges_are_merged_in_order_and_cut_into_chunks() {
        let ranges = vec![(10, 20), (0, 5), (15, 30), (5, 8), (40, 50)];
        assert_eq!(chunks(ranges), vec![(0, 8), (10, 30), (40, 50)]);
        let long = chunks(vec![(3, 3 + 2 * CHUNK + 1)]);
        assert_eq!(
            long,
            vec![
                (3, 3 + CHUNK),
                (3 + CHUNK, 3 + 2 * CHUNK),
                (3 + 2 * CHUNK, 3 + 2 * CHUNK + 1)
            ]
        );
    }
}
