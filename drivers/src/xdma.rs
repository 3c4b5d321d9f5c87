//! A Verity card behind the Xilinx XDMA Linux driver, as a [`Card`].
//!
//! The driver gives one card as files under a prefix (default `/dev/xdma0_`): the user BAR
//! (`user`), which is mapped and read and written a word at a time; the host-to-card stream
//! (`h2c_0`), where one `write` is one DMA transfer of whole request records; and the
//! card-to-host stream (`c2h_0`), read for response records. A writer thread and a reader
//! thread own the two streams, so the caller never blocks on a DMA: transfers queue to the
//! writer (at most [`XdmaConfig::queue`] of them, then the caller waits — back-pressure), and
//! the reader's bytes queue to the caller, who takes them as whole records. Tag matching,
//! ordering and the ABI's checks are [`CardVerifier`](crate::CardVerifier)'s, over this card.
//!
//! The same code serves the virtual endpoint of `verity_sim::endpoint`, whose files are FIFOs
//! and a shared BAR file; nothing here knows which it has.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{fcntl_getfl, fcntl_setfl, flock, FlockOperation, OFlags};
use thiserror::Error;
use tracing::{debug, warn};
use verity_firmware::abi::RESPONSE_LEN;
use verity_firmware::regs::Offset;
use verity_sim::mapped_bar::MappedBar;
use verity_sim::{Card, DeviceFiles, StreamError, MAX_TRANSFER};

/// How the device is reached and how much it may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdmaConfig {
    /// The device files' prefix (`/dev/xdma0_`).
    pub prefix: PathBuf,
    /// Transfers queued to the writer thread before `write_stream` waits.
    pub queue: usize,
    /// How long `write_stream` waits for room before it calls the stream stalled.
    pub stall: Duration,
}

impl Default for XdmaConfig {
    /// The first card, 8 transfers queued, 2 s to stall.
    fn default() -> Self {
        Self {
            prefix: PathBuf::from(DeviceFiles::DEFAULT_PREFIX),
            queue: 8,
            stall: Duration::from_secs(2),
        }
    }
}

/// Why the device could not be opened.
#[derive(Debug, Error)]
pub enum XdmaError {
    /// A device file is missing.
    #[error("{}: no such device file (XDMA driver not loaded, wrong prefix, or no `verity sim serve` there)", .0.display())]
    Missing(PathBuf),
    /// The stream exists but nothing serves it (a FIFO without its endpoint).
    #[error("{}: no card behind this stream (its endpoint is not running)", .0.display())]
    NotServed(PathBuf),
    /// Another host process holds the card.
    #[error("{}: the card is in use by another process", .0.display())]
    InUse(PathBuf),
    /// Any other failure of a device file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> XdmaError + '_ {
    move |source| match source.kind() {
        io::ErrorKind::NotFound => XdmaError::Missing(path.to_owned()),
        _ => XdmaError::Io {
            path: path.to_owned(),
            source,
        },
    }
}

/// A card reached through XDMA device files.
pub struct XdmaCard {
    files: DeviceFiles,
    config: XdmaConfig,
    bar: MappedBar,
    /// Held for its lock: one host process per card.
    _user: File,
    to_writer: Sender<Vec<u8>>,
    /// The writer's failure, once it has one.
    writer_failed: Arc<Mutex<Option<String>>>,
    /// `c2h_0` until the reader thread starts, at the first transfer or the first read: a card
    /// has nothing to say before, and whatever a previous host left unread was drained by the
    /// reset at open.
    c2h: Option<File>,
    from_reader: Option<Receiver<Result<Vec<u8>, String>>>,
    /// Closed by the reader thread as it ends, with its handle on `c2h_0`.
    reader_done: Option<Receiver<()>>,
    stop: Arc<AtomicBool>,
    /// Bytes read and not yet handed out as whole records.
    received: Vec<u8>,
    failed: Option<StreamError>,
}

impl XdmaCard {
    /// Opens the card under `config.prefix`.
    pub fn open(config: XdmaConfig) -> Result<Self, XdmaError> {
        let files = DeviceFiles::under(&config.prefix);
        let user = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&files.user)
            .map_err(io_error(&files.user))?;
        flock(&user, FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| XdmaError::InUse(files.user.clone()))?;
        let bar = MappedBar::map(&user).map_err(io_error(&files.user))?;
        // Opened without blocking, then made blocking: a FIFO that no endpoint serves is
        // refused at once (ENXIO) instead of hanging the open; a device node ignores it.
        let h2c = OpenOptions::new()
            .write(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32)
            .open(&files.h2c)
            .map_err(|e| match e.raw_os_error() {
                Some(code) if code == rustix::io::Errno::NXIO.raw_os_error() => {
                    XdmaError::NotServed(files.h2c.clone())
                }
                _ => io_error(&files.h2c)(e),
            })?;
        let c2h = OpenOptions::new()
            .read(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32)
            .open(&files.c2h)
            .map_err(io_error(&files.c2h))?;
        for (file, path) in [(&h2c, &files.h2c), (&c2h, &files.c2h)] {
            let flags = fcntl_getfl(file).map_err(|e| io_error(path)(e.into()))?;
            fcntl_setfl(file, flags - OFlags::NONBLOCK).map_err(|e| io_error(path)(e.into()))?;
        }
        let (to_writer, transfers) = bounded(config.queue.max(1));
        let writer_failed = Arc::new(Mutex::new(None));
        {
            let (failed, path) = (Arc::clone(&writer_failed), files.h2c.clone());
            std::thread::Builder::new()
                .name("xdma-h2c".into())
                .spawn(move || write_transfers(h2c, &path, &transfers, &failed))
                .map_err(io_error(&files.h2c))?;
        }
        debug!(prefix = %config.prefix.display(), "XDMA device open");
        Ok(Self {
            files,
            config,
            bar,
            _user: user,
            to_writer,
            writer_failed,
            c2h: Some(c2h),
            from_reader: None,
            reader_done: None,
            stop: Arc::new(AtomicBool::new(false)),
            received: Vec::new(),
            failed: None,
        })
    }

    /// The device files.
    pub fn files(&self) -> &DeviceFiles {
        &self.files
    }

    fn fail(&mut self, device: &'static str, reason: String) -> StreamError {
        let error = StreamError::Device { device, reason };
        warn!(%error, "XDMA device failed");
        self.failed = Some(error.clone());
        error
    }

    fn start_reader(&mut self) -> Result<(), StreamError> {
        let Some(c2h) = self.c2h.take() else {
            return Ok(());
        };
        // Enough chunks to hold every record a full queue of transfers can be answered with.
        let (tx, rx) = bounded(256);
        let (done_tx, done_rx) = bounded::<()>(0);
        let stop = Arc::clone(&self.stop);
        std::thread::Builder::new()
            .name("xdma-c2h".into())
            .spawn(move || {
                read_responses(c2h, &tx, &stop);
                drop(done_tx);
            })
            .map_err(|e| self.fail("c2h", e.to_string()))?;
        self.from_reader = Some(rx);
        self.reader_done = Some(done_rx);
        Ok(())
    }

    /// Moves what the reader has into `received`, waiting up to `wait` for the first chunk.
    fn receive(&mut self, wait: Duration) -> Result<(), StreamError> {
        let Some(rx) = &self.from_reader else {
            return Ok(());
        };
        let mut next = match rx.recv_timeout(wait) {
            Ok(chunk) => Some(chunk),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err("the reader stopped".to_owned())),
        };
        while let Some(chunk) = next {
            match chunk {
                Ok(bytes) => self.received.extend_from_slice(&bytes),
                Err(reason) => return Err(self.fail("c2h", reason)),
            }
            next = rx.try_recv().ok();
        }
        Ok(())
    }
}

impl Drop for XdmaCard {
    /// Waits for the reader to let go of `c2h_0`, so that the next host to open the card
    /// gets every response; the writer ends when its queue closes, as `to_writer` drops.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(done) = &self.reader_done {
            // A device whose read ignores poll may hold the reader in `read` until the
            // card's next response: then it is left to end on its own.
            if done.recv_timeout(Duration::from_secs(1)) == Err(RecvTimeoutError::Timeout) {
                warn!("the card-to-host reader is still in a read; left to end on its own");
            }
        }
    }
}

/// The writer thread: one `write` per transfer, as one DMA transfer ends with TLAST.
fn write_transfers(
    mut h2c: File,
    path: &Path,
    transfers: &Receiver<Vec<u8>>,
    failed: &Mutex<Option<String>>,
) {
    for transfer in transfers {
        if let Err(error) = h2c.write_all(&transfer) {
            warn!(path = %path.display(), %error, "host-to-card write failed");
            *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
            return;
        }
    }
}

/// The reader thread: response bytes as they come, an end of file or an error last.
fn read_responses(mut c2h: File, tx: &Sender<Result<Vec<u8>, String>>, stop: &AtomicBool) {
    /// How often the reader looks at `stop` while the card is quiet.
    const POLL: Timespec = Timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    let mut buffer = vec![0u8; 1 << 16];
    while !stop.load(Ordering::Relaxed) {
        // A device without poll support reports ready and the read blocks; either way works.
        let mut fds = [PollFd::new(&c2h, PollFlags::IN)];
        if let Ok(0) = poll(&mut fds, Some(&POLL)) {
            continue;
        }
        let chunk = match c2h.read(&mut buffer) {
            Ok(0) => Err("end of file: the device went away".to_owned()),
            Ok(n) => Ok(buffer[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e.to_string()),
        };
        let last = chunk.is_err();
        if tx.send(chunk).is_err() || last {
            return;
        }
    }
}

impl Card for XdmaCard {
    fn read_register(&mut self, offset: Offset) -> u32 {
        self.bar.read(offset)
    }

    fn write_register(&mut self, offset: Offset, value: u32) {
        self.bar.write(offset, value);
    }

    fn write_stream(&mut self, transfer: &[u8]) -> Result<(), StreamError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if transfer.len() > MAX_TRANSFER {
            return Err(StreamError::TooLarge(transfer.len()));
        }
        self.start_reader()?;
        let writer_failed = self
            .writer_failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(reason) = writer_failed {
            return Err(self.fail("h2c", reason));
        }
        match self
            .to_writer
            .send_timeout(transfer.to_vec(), self.config.stall)
        {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => {
                let reason = format!("stalled: no transfer taken for {:?}", self.config.stall);
                Err(self.fail("h2c", reason))
            }
            Err(SendTimeoutError::Disconnected(_)) => {
                let reason = self
                    .writer_failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| "the writer stopped".to_owned());
                Err(self.fail("h2c", reason))
            }
        }
    }

    fn read_stream(
        &mut self,
        out: &mut Vec<u8>,
        max_records: usize,
        wait: Duration,
    ) -> Result<usize, StreamError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        // Requests may have gone through the BAR's request window, not the stream.
        self.start_reader()?;
        if self.received.len() < RESPONSE_LEN {
            self.receive(wait)?;
        } else {
            self.receive(Duration::ZERO)?;
        }
        let n = (self.received.len() / RESPONSE_LEN).min(max_records);
        out.extend_from_slice(&self.received[..n * RESPONSE_LEN]);
        self.received.drain(..n * RESPONSE_LEN);
        Ok(n)
    }
}
