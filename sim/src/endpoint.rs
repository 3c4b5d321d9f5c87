//! The virtual XDMA endpoint: a card model served through the files the Xilinx XDMA driver
//! gives a host, so the XDMA backend's own code runs unchanged with no card.
//!
//! Under a prefix such as `DIR/xdma0_` it makes:
//!
//! | file | on a server | here |
//! |---|---|---|
//! | `h2c_0` | host-to-card DMA stream | a FIFO: the host `write`s request records |
//! | `c2h_0` | card-to-host DMA stream | a FIFO: the host `read`s response records |
//! | `user` | the user BAR, `mmap`ed | a [`BAR_LEN`]-byte file both sides map ([`MappedBar`]) |
//!
//! One thread serves the card: it takes whole request records off `h2c_0` and gives them to
//! the model, writes the model's responses to `c2h_0` (through [`Faults`], if any), and
//! watches the BAR. A BAR that is shared memory cannot trap a write as a card's register
//! block does, so the endpoint compares the host's registers with what it last published —
//! the ABI makes every host write a state the card acknowledges (`firmware::regs`), so no
//! command is lost — and publishes the card's registers after every change, before responses
//! leave, and every few milliseconds.
//!
//! Where it differs from a card, and why that does not reach the driver: a FIFO keeps no
//! transfer boundaries (a card sees TLAST), so after a record that cannot be framed the
//! endpoint drops what it holds rather than the rest of that one transfer, and a record cut
//! short waits for its remaining bytes; the driver writes whole records only. Registers the
//! host reads may be a few milliseconds stale; the driver waits for acknowledgements, never
//! for a register to change on its own.
//!
//! ```no_run
//! use verity_sim::endpoint::Endpoint;
//! use verity_sim::FunctionalCard;
//!
//! let endpoint = Endpoint::serve("/tmp/card/xdma0_".as_ref(), Box::new(FunctionalCard::new(4)))?;
//! // The XDMA backend now opens /tmp/card/xdma0_h2c_0, …_c2h_0 and …_user.
//! # Ok::<(), verity_sim::endpoint::EndpointError>(())
//! ```

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{mknodat, FileType, Mode, OFlags, CWD};
use tracing::{debug, info, warn};
use verity_firmware::abi::{RecordError, Request, RESPONSE_LEN};
use verity_firmware::regs::{self, control, status, Access, BAR_LEN, IMAGE_WINDOW, REQUEST_HALF};

use crate::card::{Card, StreamError, MAX_TRANSFER};
use crate::faults::{Fate, Faults};
use crate::mapped_bar::MappedBar;

/// The device files of one card: the XDMA driver's names under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFiles {
    /// Host-to-card stream (`<prefix>h2c_0`).
    pub h2c: PathBuf,
    /// Card-to-host stream (`<prefix>c2h_0`).
    pub c2h: PathBuf,
    /// The user BAR (`<prefix>user`).
    pub user: PathBuf,
}

impl DeviceFiles {
    /// The XDMA driver's default prefix, for the first card.
    pub const DEFAULT_PREFIX: &'static str = "/dev/xdma0_";

    /// The files under `prefix` (a path whose last component the names extend).
    pub fn under(prefix: &Path) -> Self {
        let name = |suffix: &str| {
            let mut path = OsString::from(prefix.as_os_str());
            path.push(suffix);
            PathBuf::from(path)
        };
        Self {
            h2c: name("h2c_0"),
            c2h: name("c2h_0"),
            user: name("user"),
        }
    }
}

/// Why the endpoint could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A device file could not be made or used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The model failed (a cycle model's simulator exited).
    #[error("the card model failed: {0}")]
    Card(StreamError),
}

/// How long the serving thread sleeps when nothing happens: the latency of a BAR command
/// once it has been idle for [`SPIN`].
const IDLE_POLL: Duration = Duration::from_micros(500);
/// How long the serving thread keeps looking without sleeping after its last work, so that a
/// doorbell soon after is taken in microseconds.
const SPIN: Duration = Duration::from_micros(200);
/// How often the card's registers are published when nothing else prompts it.
const PUBLISH_EVERY: Duration = Duration::from_millis(5);
/// Response records written to `c2h_0` at once: a pipe write of at most `PIPE_BUF` (4,096
/// bytes) is atomic, so a record is never split.
const RECORDS_PER_WRITE: usize = 4096 / RESPONSE_LEN;

/// Faults as set, with a generation so that the serving thread counts responses afresh.
#[derive(Clone, Copy, Debug, Default)]
struct FaultPlan {
    faults: Faults,
    generation: u64,
}

/// A card model served as an XDMA device. Dropping it stops serving and removes the files,
/// as a card that leaves the bus.
#[derive(Debug)]
pub struct Endpoint {
    files: DeviceFiles,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<FaultPlan>>,
    thread: Option<JoinHandle<Result<(), EndpointError>>>,
}

impl Endpoint {
    /// Makes the device files under `prefix` (replacing stale ones) and serves `card` through
    /// them on a thread of its own.
    pub fn serve(prefix: &Path, card: Box<dyn Card>) -> Result<Self, EndpointError> {
        let files = DeviceFiles::under(prefix);
        let serving = Serving::create(&files, card)?;
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Mutex::new(FaultPlan::default()));
        let thread = {
            let (stop, faults) = (Arc::clone(&stop), Arc::clone(&faults));
            std::thread::Builder::new()
                .name("xdma-endpoint".into())
                .spawn(move || serving.run(&stop, &faults))
                .map_err(|source| EndpointError::Io {
                    path: files.user.clone(),
                    source,
                })?
        };
        info!(prefix = %prefix.display(), "virtual XDMA endpoint serving");
        Ok(Self {
            files,
            stop,
            faults,
            thread: Some(thread),
        })
    }

    /// The device files.
    pub fn files(&self) -> &DeviceFiles {
        &self.files
    }

    /// Injects `faults` from now on, counting responses from here.
    pub fn set_faults(&self, faults: Faults) {
        let mut plan = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        plan.faults = faults;
        plan.generation += 1;
    }

    /// Serves until the device vanishes (a fault) or the model fails.
    pub fn wait(mut self) -> Result<(), EndpointError> {
        self.join()
    }

    fn join(&mut self) -> Result<(), EndpointError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Err(error) = self.join() {
            warn!(%error, "virtual XDMA endpoint stopped with an error");
        }
        remove(&self.files);
    }
}

fn remove(files: &DeviceFiles) {
    for path in [&files.h2c, &files.c2h, &files.user] {
        // Already gone (a vanished device) is what we want.
        let _ = std::fs::remove_file(path);
    }
}

/// The serving thread's state.
struct Serving {
    card: Box<dyn Card>,
    files: DeviceFiles,
    bar: MappedBar,
    h2c: File,
    c2h: File,
    /// Host-to-card bytes not yet given to the card; at most [`MAX_TRANSFER`].
    inbox: Vec<u8>,
    /// Responses to send, each with when it may leave.
    outbox: VecDeque<(Instant, [u8; RESPONSE_LEN])>,
    /// `CONTROL` as last published, `DOORBELL` as last seen.
    control: u32,
    doorbell: u32,
    /// Responses produced under the current fault plan, and its generation.
    produced: u32,
    generation: u64,
    published: Instant,
}

/// What one turn of the loop did.
#[derive(PartialEq, Eq)]
enum Turn {
    Busy,
    Idle,
    Vanished,
}

impl Serving {
    fn create(files: &DeviceFiles, card: Box<dyn Card>) -> Result<Self, EndpointError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| EndpointError::Io { path, source }
        };
        remove(files);
        for path in [&files.h2c, &files.c2h] {
            mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                .map_err(|e| io(path)(e.into()))?;
        }
        // Both FIFOs are held open for reading and writing: opening never blocks, a host that
        // closes its end is not an end of file here, and a reset can drain what the host left.
        let fifo = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(OFlags::NONBLOCK.bits() as i32)
                .open(path)
                .map_err(io(path))
        };
        let (h2c, c2h) = (fifo(&files.h2c)?, fifo(&files.c2h)?);
        let user = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&files.user)
            .map_err(io(&files.user))?;
        user.set_len(BAR_LEN as u64).map_err(io(&files.user))?;
        let bar = MappedBar::map(&user).map_err(io(&files.user))?;
        let mut serving = Self {
            card,
            files: files.clone(),
            bar,
            h2c,
            c2h,
            inbox: Vec::new(),
            outbox: VecDeque::new(),
            control: 0,
            doorbell: 0,
            produced: 0,
            generation: 0,
            published: Instant::now(),
        };
        serving.control = serving.card.read_register(regs::CONTROL);
        serving.bar.write(regs::CONTROL, serving.control);
        serving.doorbell = serving.card.read_register(regs::DOORBELL);
        serving.bar.write(regs::DOORBELL, serving.doorbell);
        serving.publish();
        Ok(serving)
    }

    fn run(mut self, stop: &AtomicBool, faults: &Mutex<FaultPlan>) -> Result<(), EndpointError> {
        let mut worked = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let plan = *faults.lock().unwrap_or_else(PoisonError::into_inner);
            let turn = self.turn(&plan)?;
            if self.published.elapsed() >= PUBLISH_EVERY {
                self.publish();
            }
            match turn {
                Turn::Busy => worked = Instant::now(),
                Turn::Idle if worked.elapsed() < SPIN => std::thread::yield_now(),
                Turn::Idle => self.sleep(),
                Turn::Vanished => {
                    warn!("virtual XDMA device vanishes (injected fault)");
                    remove(&self.files);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn turn(&mut self, plan: &FaultPlan) -> Result<Turn, EndpointError> {
        let mut busy = self.serve_registers();
        busy |= self.take_input()?;
        busy |= self.feed()?;
        match self.collect(plan)? {
            // The registers are published before the responses leave, as a card counts a
            // response before it sends it: a host that has a response sees it counted.
            Some(true) => {
                busy = true;
                self.publish();
            }
            Some(false) => {}
            None => return Ok(Turn::Vanished),
        }
        busy |= self.send()?;
        Ok(if busy { Turn::Busy } else { Turn::Idle })
    }

    /// Carries out what the host wrote into the BAR since the last look.
    fn serve_registers(&mut self) -> bool {
        let mut busy = false;
        let control = self.bar.read(regs::CONTROL);
        if control != self.control {
            debug!(control, "CONTROL written");
            self.card.write_register(regs::CONTROL, control);
            if control & control::RESET != 0 {
                self.reset();
            }
            self.control = self.card.read_register(regs::CONTROL);
            self.publish();
            // The acknowledgement: the value the card reads back, self-clearing bits gone.
            self.bar.write(regs::CONTROL, self.control);
            busy = true;
        }
        if self.bar.read(regs::IMAGE_COMMIT) & 1 != 0 {
            self.commit();
            busy = true;
        }
        let doorbell = self.bar.read(regs::DOORBELL);
        if doorbell != self.doorbell {
            self.ring(doorbell);
            busy = true;
        }
        busy
    }

    /// A new `DOORBELL`: the half's words go to the card as the host wrote them, then the
    /// doorbell; `DOORBELL_DONE` is published once the card has taken them.
    fn ring(&mut self, doorbell: u32) {
        self.doorbell = doorbell;
        let half = regs::request_half((doorbell >> 16) as u16);
        let words = (doorbell as u16 as usize * RESPONSE_LEN).min(REQUEST_HALF) / 4;
        for offset in (half.0..).step_by(4).take(words).map(regs::Offset) {
            let word = self.bar.read(offset);
            self.card.write_register(offset, word);
        }
        self.card.write_register(regs::DOORBELL, doorbell);
        self.publish();
        debug!(doorbell, "request window submitted");
    }

    /// `CONTROL.RESET`: forget every request and response, including what waits in the FIFOs.
    fn reset(&mut self) {
        self.inbox.clear();
        self.outbox.clear();
        let mut scrap = [0u8; 4096];
        for mut fifo in [&self.h2c, &self.c2h] {
            while matches!(fifo.read(&mut scrap), Ok(n) if n > 0) {}
        }
    }

    /// `IMAGE_COMMIT`: the image window's words go to the card in order, as a card's window
    /// takes them, then the commit; the acknowledgement follows the verdict.
    fn commit(&mut self) {
        let len = self.bar.read(regs::IMAGE_LEN);
        self.card.write_register(regs::IMAGE_LEN, len);
        let window_words = (BAR_LEN - IMAGE_WINDOW.0 as usize) / 4;
        let words = (len as usize).div_ceil(4).min(window_words);
        for offset in (0..words as u32).map(|i| regs::Offset(IMAGE_WINDOW.0 + 4 * i)) {
            let word = self.bar.read(offset);
            self.card.write_register(offset, word);
        }
        self.card.write_register(regs::IMAGE_COMMIT, 1);
        // A card checks an image in a few cycles; a model that stopped answering reads all
        // ones for ever, and then the host's own wait for the acknowledgement times out.
        let start = Instant::now();
        while self.card.read_register(regs::IMAGE_COMMIT) != 0 {
            if start.elapsed() > Duration::from_secs(1) {
                warn!("the card model did not finish checking the image");
                return;
            }
        }
        self.publish();
        MappedBar::fence();
        self.bar.write(regs::IMAGE_COMMIT, 0);
        debug!(len, "image committed");
    }

    /// Takes what the host wrote to `h2c_0`, up to [`MAX_TRANSFER`] held.
    fn take_input(&mut self) -> Result<bool, EndpointError> {
        let mut got = false;
        let mut buffer = [0u8; 65536];
        while self.inbox.len() < MAX_TRANSFER {
            let room = (MAX_TRANSFER - self.inbox.len()).min(buffer.len());
            match self.h2c.read(&mut buffer[..room]) {
                Ok(0) => break,
                Ok(n) => {
                    self.inbox.extend_from_slice(&buffer[..n]);
                    got = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(EndpointError::Io {
                        path: self.files.h2c.clone(),
                        source,
                    })
                }
            }
        }
        Ok(got)
    }

    /// Gives the card the whole records at the front of the inbox as one transfer.
    fn feed(&mut self) -> Result<bool, EndpointError> {
        let mut end = 0;
        let mut framing = false;
        loop {
            let len = match Request::decode(&self.inbox[end..]) {
                Ok((_, len)) => len,
                Err(Ok(rejected)) => rejected.len,
                Err(Err(RecordError::Truncated { .. })) => break,
                Err(Err(_)) => {
                    framing = true;
                    break;
                }
            };
            end += len;
        }
        if framing {
            // The card drops the rest of the transfer; here, all that has arrived.
            end = self.inbox.len();
        }
        if end == 0 {
            return Ok(false);
        }
        match self.card.write_stream(&self.inbox[..end]) {
            Ok(()) => {
                self.inbox.drain(..end);
                Ok(true)
            }
            // A card that is not running holds the stream: the records wait.
            Err(StreamError::NotRunning) => Ok(false),
            Err(error) => Err(EndpointError::Card(error)),
        }
    }

    /// Moves the card's responses to the outbox through the faults. `None`: the device
    /// vanishes.
    fn collect(&mut self, plan: &FaultPlan) -> Result<Option<bool>, EndpointError> {
        if plan.generation != self.generation {
            self.generation = plan.generation;
            self.produced = 0;
        }
        let mut records = Vec::new();
        let mut got = false;
        loop {
            records.clear();
            let n = self
                .card
                .read_stream(&mut records, RECORDS_PER_WRITE, Duration::ZERO)
                .map_err(EndpointError::Card)?;
            if n == 0 {
                return Ok(Some(got));
            }
            got = true;
            for record in records.chunks_exact(RESPONSE_LEN) {
                self.produced = self.produced.wrapping_add(1);
                let record = record.try_into().expect("a chunk of RESPONSE_LEN bytes");
                match plan.faults.apply(self.produced, record) {
                    Fate::Send { record, copies } => {
                        let due = Instant::now() + plan.faults.delay;
                        for _ in 0..copies {
                            self.outbox.push_back((due, record));
                        }
                    }
                    Fate::Vanish => return Ok(None),
                }
            }
        }
    }

    /// Writes the responses that are due to `c2h_0`, as far as the FIFO takes them.
    fn send(&mut self) -> Result<bool, EndpointError> {
        let mut sent = false;
        let now = Instant::now();
        let mut chunk = Vec::with_capacity(RECORDS_PER_WRITE * RESPONSE_LEN);
        loop {
            chunk.clear();
            let ready = self
                .outbox
                .iter()
                .take(RECORDS_PER_WRITE)
                .take_while(|(due, _)| *due <= now)
                .count();
            if ready == 0 {
                return Ok(sent);
            }
            for (_, record) in self.outbox.iter().take(ready) {
                chunk.extend_from_slice(record);
            }
            match self.c2h.write(&chunk) {
                Ok(n) => {
                    // Atomic below PIPE_BUF: all of it.
                    debug_assert_eq!(n, chunk.len());
                    self.outbox.drain(..ready);
                    sent = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(EndpointError::Io {
                        path: self.files.c2h.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// Writes the card's read-only registers into the BAR — never a register the host writes,
    /// which would overwrite a command not yet seen. `STATUS.IDLE` also needs the endpoint's
    /// own queues empty.
    fn publish(&mut self) {
        for &(_, offset, access) in regs::ALL {
            if access != Access::ReadOnly {
                continue;
            }
            let mut value = self.card.read_register(offset);
            if offset == regs::STATUS && !(self.inbox.is_empty() && self.outbox.is_empty()) {
                value &= !status::IDLE;
            }
            self.bar.write(offset, value);
        }
        MappedBar::fence();
        self.published = Instant::now();
    }

    /// Waits for host-to-card bytes, room in `c2h_0`, or the next look at the BAR.
    fn sleep(&self) {
        let mut fds = [
            PollFd::new(&self.h2c, PollFlags::IN),
            PollFd::new(&self.c2h, PollFlags::empty()),
        ];
        // Room in `c2h_0` matters only for a response that may leave now (not one held back
        // by an injected delay).
        if self
            .outbox
            .front()
            .is_some_and(|(due, _)| *due <= Instant::now())
        {
            fds[1] = PollFd::new(&self.c2h, PollFlags::OUT);
        }
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: IDLE_POLL.as_nanos() as _,
        };
        // Woken early or late, the loop looks at everything again.
        let _ = poll(&mut fds, Some(&timeout));
    }
}
