//! Recording what ingress receives to rotating capture files, without slowing ingress.
//!
//! Ingress hands each UDP datagram and each TCP frame to [`Recorder::udp`] /
//! [`Recorder::tcp_frame`]. Off, that costs one atomic load. On, it costs a clock read, one
//! copy of the bytes and a `try_send` into a bounded queue: never a wait, never a write. A
//! full queue drops the event and counts it (`verity_pcap_dropped_total`); a TCP frame
//! dropped leaves the recorded stream whole, one frame short. The [`RecordWriter`] thread
//! turns events into Ethernet frames (`synth`) and writes them to `DIR/ingress-NNNNNN.pcap`,
//! starting a new file past the size bound and keeping the newest `keep`. Each file starts its
//! TCP connections with a handshake, so each replays on its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn};

use super::file::Writer;
use super::synth::{self, Streams};
use super::Timestamp;

/// Where and how to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordConfig {
    /// The directory of the files.
    pub dir: PathBuf,
    /// A file past this many bytes is closed and the next one started.
    pub rotate_bytes: u64,
    /// Files kept (the oldest are deleted); 0: all.
    pub keep: usize,
    /// Events waiting for the writer.
    pub queue: usize,
    /// Recording from the start.
    pub on: bool,
}

/// What ingress saw.
#[derive(Debug)]
enum Event {
    Udp {
        at: Timestamp,
        from: SocketAddr,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A whole frame, its length included.
    TcpFrame {
        at: Timestamp,
        from: SocketAddr,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    TcpClose {
        at: Timestamp,
        from: SocketAddr,
        to: SocketAddr,
    },
}

/// Counters, shared with the writer.
#[derive(Debug, Default)]
struct Counters {
    packets: AtomicU64,
    dropped: AtomicU64,
    files: AtomicU64,
    errors: AtomicU64,
    current: Mutex<Option<PathBuf>>,
}

/// The recording switch and queue ingress holds.
#[derive(Debug)]
pub struct Recorder {
    on: AtomicBool,
    queue: Option<Sender<Event>>,
    dir: Option<PathBuf>,
    counters: Arc<Counters>,
}

/// Why recording cannot be switched on.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    /// This daemon was started without a recording directory.
    #[error("recording is not configured on this replica ([pcap] dir)")]
    Unavailable,
}

/// The admin API's request body: switch recording on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSwitch {
    /// Record from now on, or stop.
    pub record: bool,
}

/// The recorder's state, as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RecordStatus {
    /// Recording now.
    pub recording: bool,
    /// The directory, if recording is configured.
    pub dir: Option<PathBuf>,
    /// The file being written.
    pub file: Option<PathBuf>,
    /// Packets written since the start.
    pub packets: u64,
    /// Events dropped because the writer was behind.
    pub dropped: u64,
    /// Files started.
    pub files: u64,
    /// Files that could not be created or written.
    pub errors: u64,
}

impl Recorder {
    /// A recorder that cannot record (ingress tests, replicas without `[pcap]`).
    pub fn unavailable() -> Arc<Self> {
        Arc::new(Self {
            on: AtomicBool::new(false),
            queue: None,
            dir: None,
            counters: Arc::default(),
        })
    }

    /// A recorder for `config`, and the writer that must run for it to write
    /// ([`RecordWriter::spawn`]).
    pub fn new(config: &RecordConfig) -> (Arc<Self>, RecordWriter) {
        let (queue, events) = bounded(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let recorder = Arc::new(Self {
            on: AtomicBool::new(config.on),
            queue: Some(queue),
            dir: Some(config.dir.clone()),
            counters: Arc::clone(&counters),
        });
        let writer = RecordWriter {
            config: config.clone(),
            events,
            counters,
            recorder: Arc::downgrade(&recorder),
        };
        (recorder, writer)
    }

    /// Switches recording on or off.
    pub fn set(&self, on: bool) -> Result<(), RecordError> {
        if on && self.queue.is_none() {
            return Err(RecordError::Unavailable);
        }
        if self.on.swap(on, Ordering::AcqRel) != on {
            info!(recording = on, "ingress recording switched");
        }
        Ok(())
    }

    /// Stops recording and waits (up to a second) for the writer to close its file, so that
    /// a clean stop leaves every file whole.
    pub fn close(&self) {
        let _ = self.set(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while self.status().file.is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether it records now.
    pub fn recording(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// The state for the admin API.
    pub fn status(&self) -> RecordStatus {
        let c = &self.counters;
        RecordStatus {
            recording: self.recording(),
            dir: self.dir.clone(),
            file: c.current.lock().map(|f| f.clone()).unwrap_or_default(),
            packets: c.packets.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            files: c.files.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    fn offer(&self, at: Option<Timestamp>, event: impl FnOnce(Timestamp) -> Event) {
        if !self.recording() {
            return;
        }
        let Some(queue) = &self.queue else {
            return;
        };
        let at = at.unwrap_or_else(Timestamp::now);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            queue.try_send(event(at))
        {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("verity_pcap_dropped_total", "reason" => "queue_full").increment(1);
        }
    }

    /// A UDP datagram `from` a client `to` this replica, received `at` (the kernel's
    /// timestamp, if it gave one; else now).
    pub fn udp(&self, at: Option<Timestamp>, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.offer(at, |at| Event::Udp {
            at,
            from,
            to,
            bytes: bytes.to_vec(),
        });
    }

    /// A TCP frame (its 4-byte length, then `body`), read `at` (else now).
    pub fn tcp_frame(
        &self,
        at: Option<Timestamp>,
        from: SocketAddr,
        to: SocketAddr,
        length: [u8; 4],
        body: &[u8],
    ) {
        self.offer(at, |at| {
            let mut bytes = Vec::with_capacity(4 + body.len());
            bytes.extend_from_slice(&length);
            bytes.extend_from_slice(body);
            Event::TcpFrame {
                at,
                from,
                to,
                bytes,
            }
        });
    }

    /// A TCP connection closed.
    pub fn tcp_close(&self, from: SocketAddr, to: SocketAddr) {
        self.offer(None, |at| Event::TcpClose { at, from, to });
    }
}

/// The thread that writes recorded events to files.
pub struct RecordWriter {
    config: RecordConfig,
    events: Receiver<Event>,
    counters: Arc<Counters>,
    recorder: std::sync::Weak<Recorder>,
}

/// How often the writer flushes, or closes its file once recording is off.
const IDLE: Duration = Duration::from_millis(100);
/// How long after a failure to create a file the writer tries again.
const RETRY: Duration = Duration::from_secs(1);

impl RecordWriter {
    /// Runs the writer on its own thread, until the recorder is dropped.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("pcap-record".into())
            .spawn(move || self.run())
    }

    /// Writes events until the recorder is gone and the queue is empty.
    pub fn run(self) {
        let mut file: Option<(Writer, Streams)> = None;
        let mut next = next_index(&self.config.dir);
        // After a file could not be created, events are dropped (counted) until this instant,
        // rather than failing on each.
        let mut retry_at: Option<std::time::Instant> = None;
        loop {
            let event = match self.events.recv_timeout(IDLE) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    let on = self.recorder.upgrade().is_some_and(|r| r.recording());
                    if on {
                        if let Some((writer, _)) = &mut file {
                            self.flushed(writer);
                        }
                    } else if let Some((writer, _)) = file.take() {
                        self.close(writer);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if file.is_none() && retry_at.is_none_or(|at| std::time::Instant::now() >= at) {
                file = self
                    .open(&mut next)
                    .map(|writer| (writer, Streams::default()));
                retry_at = file.is_none().then(|| std::time::Instant::now() + RETRY);
            }
            let Some((writer, streams)) = &mut file else {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("verity_pcap_dropped_total", "reason" => "no_file").increment(1);
                continue;
            };
            let before = writer.packets();
            match event {
                Event::Udp {
                    at,
                    from,
                    to,
                    bytes,
                } => writer.write(at, &synth::udp(from, to, &bytes)),
                Event::TcpFrame {
                    at,
                    from,
                    to,
                    bytes,
                } => {
                    for frame in streams.data(from, to, &bytes) {
                        writer.write(at, &frame);
                    }
                }
                Event::TcpClose { at, from, to } => {
                    if let Some(frame) = streams.close(from, to) {
                        writer.write(at, &frame);
                    }
                }
            }
            let written = writer.packets() - before;
            self.counters.packets.fetch_add(written, Ordering::Relaxed);
            metrics::counter!("verity_pcap_packets_total").increment(written);
            if writer.bytes() >= self.config.rotate_bytes {
                if let Some((writer, _)) = file.take() {
                    self.close(writer);
                }
            }
        }
        if let Some((writer, _)) = file.take() {
            self.close(writer);
        }
    }

    fn open(&self, next: &mut u64) -> Option<Writer> {
        let path = self.config.dir.join(format!("ingress-{:06}.pcap", *next));
        let created = std::fs::create_dir_all(&self.config.dir)
            .map_err(|e| e.to_string())
            .and_then(|()| Writer::create(&path).map_err(|e| e.to_string()));
        match created {
            Ok(writer) => {
                *next += 1;
                self.counters.files.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut current) = self.counters.current.lock() {
                    *current = Some(path.clone());
                }
                info!(file = %path.display(), "recording ingress");
                self.prune();
                Some(writer)
            }
            Err(error) => {
                self.error(&path, &error);
                None
            }
        }
    }

    fn flushed(&self, writer: &mut Writer) {
        if let Err(error) = writer.flush() {
            self.error(writer.path(), &error.to_string());
        }
    }

    fn close(&self, mut writer: Writer) {
        self.flushed(&mut writer);
        if let Ok(mut current) = self.counters.current.lock() {
            *current = None;
        }
    }

    fn error(&self, path: &Path, error: &str) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("verity_pcap_errors_total").increment(1);
        warn!(file = %path.display(), error, "recording failed");
    }

    /// Deletes the oldest files beyond `keep`.
    fn prune(&self) {
        if self.config.keep == 0 {
            return;
        }
        let mut files = recorded(&self.config.dir);
        while files.len() > self.config.keep {
            let (_, oldest) = files.remove(0);
            if let Err(error) = std::fs::remove_file(&oldest) {
                self.error(&oldest, &error.to_string());
            }
        }
    }
}

/// The recording files in `dir`, oldest first, with their numbers.
pub fn recorded(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let index = name
                .to_str()?
                .strip_prefix("ingress-")?
                .strip_suffix(".pcap")?
                .parse()
                .ok()?;
            Some((index, entry.path()))
        })
        .collect();
    files.sort();
    files
}

/// The number after the newest file's, so a restart never overwrites a recording.
fn next_index(dir: &Path) -> u64 {
    recorded(dir).last().map_or(1, |(index, _)| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use crate::traffic::extract::Extractor;
    use crate::traffic::file;
    use crate::traffic::reassembly::Limits;

    fn scratch(name: &str) -> testing::Scratch {
        testing::scratch(&format!("rec-{name}"))
    }

    fn config(dir: &Path, queue: usize, rotate_bytes: u64, keep: usize) -> RecordConfig {
        RecordConfig {
            dir: dir.to_path_buf(),
            rotate_bytes,
            keep,
            queue,
            on: true,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    /// Transactions in a recorded file, and its packets.
    fn read(path: &Path) -> (Vec<Vec<u8>>, u64) {
        let (mut capture, link) = file::open(path, None).expect("opens");
        let mut extractor = Extractor::new(link, Limits::default());
        let mut out = Vec::new();
        while let Ok(p) = capture.next_packet() {
            extractor.captured(&p, &mut out);
        }
        extractor.finish();
        assert_eq!(
            extractor.stats().skipped_total(),
            0,
            "{:?}",
            extractor.stats()
        );
        (
            out.into_iter().map(|e| e.bytes).collect(),
            extractor.stats().packets,
        )
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_never_waits() {
        let dir = scratch("queue");
        let (recorder, writer) = Recorder::new(&config(&dir, 4, 1 << 20, 0));
        // The writer is not running: the queue fills, the rest is dropped at once.
        for i in 0..10u8 {
            recorder.udp(
                None,
                addr("127.0.0.1:5000"),
                addr("127.0.0.1:7382"),
                &[i; 8],
            );
        }
        let status = recorder.status();
        assert_eq!((status.dropped, status.packets), (6, 0));
        recorder.set(false).expect("switches");
        recorder.udp(
            None,
            addr("127.0.0.1:5000"),
            addr("127.0.0.1:7382"),
            &[99; 8],
        );
        assert_eq!(recorder.status().dropped, 6, "off: not offered at all");
        drop(recorder);
        writer.run();
        let files = recorded(&dir);
        assert_eq!(files.len(), 1);
        let (transactions, packets) = read(&files[0].1);
        assert_eq!(
            transactions,
            (0..4u8).map(|i| vec![i; 8]).collect::<Vec<_>>()
        );
        assert_eq!(packets, 4);
        assert_eq!(
            Recorder::unavailable().set(true),
            Err(RecordError::Unavailable)
        );
    }

    #[test]
    fn a_directory_that_cannot_be_made_counts_errors_and_drops_never_panics() {
        let dir = scratch("blocked");
        let blocker = dir.join("blocker");
        std::fs::write(&blocker, b"a file where the directory should be").expect("written");
        let (recorder, writer) = Recorder::new(&config(&blocker.join("pcap"), 64, 1 << 20, 0));
        let writing = writer.spawn().expect("the writer starts");
        for i in 0..5u8 {
            recorder.udp(
                None,
                addr("127.0.0.1:5000"),
                addr("127.0.0.1:7382"),
                &[i; 8],
            );
        }
        // The writer takes the five, fails once to make a file, and drops them all.
        let mut status = recorder.status();
        for _ in 0..1000 {
            if status.dropped == 5 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            status = recorder.status();
        }
        assert_eq!(
            (status.errors, status.dropped, status.files),
            (1, 5, 0),
            "{status:?}"
        );
        drop(recorder);
        writing.join().expect("the writer ends");
    }

    #[test]
    fn files_rotate_by_size_keep_the_newest_and_each_replays_on_its_own() {
        let dir = scratch("rotate");
        // A file left by an earlier run is not overwritten: numbering goes on after it.
        std::fs::write(dir.join("ingress-000007.pcap"), b"old").expect("written");
        let (recorder, writer) = Recorder::new(&config(&dir, 1024, 2000, 3));
        let (client, server) = (addr("127.0.0.1:40000"), addr("127.0.0.1:7381"));
        for i in 0..40u8 {
            recorder.tcp_frame(None, client, server, 160u32.to_le_bytes(), &[i; 160]);
        }
        recorder.tcp_close(client, server);
        drop(recorder);
        writer.run();
        let files = recorded(&dir);
        let numbers: Vec<u64> = files.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers.len(), 3, "{numbers:?}");
        assert!(numbers[0] > 7 && numbers.windows(2).all(|w| w[1] == w[0] + 1));
        let mut seen = Vec::new();
        for (_, path) in &files {
            assert!(std::fs::metadata(path).expect("exists").len() <= 2000 + 300);
            seen.extend(read(path).0);
        }
        let last: Vec<Vec<u8>> = (40 - seen.len() as u8..40).map(|i| vec![i; 160]).collect();
        assert_eq!(
            seen, last,
            "the newest files hold the last frames, in order"
        );
    }
}
