//! Sending extracted transactions to a replica's ingress, and tallying its replies.
//!
//! Over TCP, frames are written on one connection (buffered: at full speed many frames go in
//! one write) and a reader thread takes the replies, which come in order. Over UDP, one
//! datagram per transaction from one socket, buffered until [`UDP_BATCH`] or a flush, and sent
//! with UDP segmentation offload where runs of them are the same size (quinn-udp); replies
//! may be lost, as UDP's may.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use quinn_udp::{Transmit, UdpSocketState};

use super::Transport;
use crate::ingress::{parse_reply, MAX_FRAME};
use crate::pipeline::Outcome;

/// What the replica answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replies {
    /// Replies read.
    pub answered: u64,
    /// Committed and applied.
    pub applied: u64,
    /// Committed, not applied, by the ledger's reason.
    pub failed: BTreeMap<String, u64>,
    /// Refused, by reason's name.
    pub refused: BTreeMap<String, u64>,
    /// Replies that did not parse.
    pub unreadable: u64,
}

impl Replies {
    fn take(&mut self, reply: &[u8]) {
        self.answered += 1;
        match parse_reply(reply) {
            Ok(Outcome::Committed { failure: None, .. }) => self.applied += 1,
            Ok(Outcome::Committed {
                failure: Some(failure),
                ..
            }) => *self.failed.entry(failure.name().to_owned()).or_default() += 1,
            Ok(Outcome::Refused { reason }) => {
                let name = reason.split(':').next().unwrap_or(&reason).to_owned();
                *self.refused.entry(name).or_default() += 1;
            }
            Err(_) => self.unreadable += 1,
        }
    }

    /// Committed, applied or not.
    pub fn committed(&self) -> u64 {
        self.applied + self.failed.values().sum::<u64>()
    }
}

/// Shared between the sender and its reply reader.
#[derive(Debug, Default)]
struct Progress {
    sent: AtomicU64,
    done: AtomicBool,
}

/// Datagrams buffered before they are sent (the kernel segments at most 64 per send).
pub const UDP_BATCH: usize = 64;

/// Datagrams waiting for one `sendmmsg`, back to back.
#[derive(Debug, Default)]
struct Datagrams {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

enum Socket {
    Udp {
        socket: UdpSocket,
        state: UdpSocketState,
        target: SocketAddr,
        pending: Datagrams,
    },
    Tcp(BufWriter<TcpStream>),
}

/// Sends transactions to one replica's ingress.
pub struct Outbound {
    socket: Socket,
    progress: Arc<Progress>,
    reader: JoinHandle<Replies>,
    drain: Arc<AtomicU64>,
    refused: u64,
}

/// How long the reply reader blocks before looking at the sender's progress.
const POLL: Duration = Duration::from_millis(10);

impl Outbound {
    /// Connects to `target` over `over`.
    pub fn connect(over: Transport, target: SocketAddr) -> io::Result<Self> {
        let progress = Arc::new(Progress::default());
        let drain = Arc::new(AtomicU64::new(0));
        let (socket, reader) = match over {
            Transport::Tcp => {
                let stream = TcpStream::connect(target)?;
                stream.set_nodelay(true)?;
                let reading = stream.try_clone()?;
                reading.set_read_timeout(Some(POLL))?;
                let (progress, drain) = (Arc::clone(&progress), Arc::clone(&drain));
                let reader = std::thread::Builder::new()
                    .name("replay-replies".into())
                    .spawn(move || read_tcp(reading, &progress, &drain))?;
                (
                    Socket::Tcp(BufWriter::with_capacity(1 << 18, stream)),
                    reader,
                )
            }
            Transport::Udp => {
                let local: SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(target)?;
                let reading = socket.try_clone()?;
                reading.set_read_timeout(Some(POLL))?;
                let (progress, drain) = (Arc::clone(&progress), Arc::clone(&drain));
                let reader = std::thread::Builder::new()
                    .name("replay-replies".into())
                    .spawn(move || read_udp(&reading, &progress, &drain))?;
                let state = UdpSocketState::new((&socket).into())?;
                let socket = Socket::Udp {
                    socket,
                    state,
                    target,
                    pending: Datagrams::default(),
                };
                (socket, reader)
            }
        };
        Ok(Self {
            socket,
            progress,
            reader,
            drain,
            refused: 0,
        })
    }

    /// Sends one transaction, or buffers it: [`Outbound::flush`] sends what is buffered. A
    /// TCP error is returned (the connection is gone); a datagram the network refused is
    /// counted ([`Outbound::refused`]).
    pub fn send(&mut self, transaction: &[u8]) -> io::Result<()> {
        match &mut self.socket {
            Socket::Tcp(stream) => {
                stream.write_all(&(transaction.len() as u32).to_le_bytes())?;
                stream.write_all(transaction)?;
                self.progress.sent.fetch_add(1, Ordering::Release);
            }
            Socket::Udp { pending, .. } => {
                pending.bytes.extend_from_slice(transaction);
                pending.ends.push(pending.bytes.len());
                if pending.ends.len() == UDP_BATCH {
                    self.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Sends what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.socket {
            Socket::Tcp(stream) => stream.flush(),
            Socket::Udp {
                socket,
                state,
                target,
                pending,
            } => {
                let (sent, refused) = send_datagrams(socket, state, *target, pending);
                pending.bytes.clear();
                pending.ends.clear();
                self.refused += refused;
                self.progress.sent.fetch_add(sent, Ordering::Release);
                Ok(())
            }
        }
    }

    /// Datagrams the network refused so far (sent to a closed port, say).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Sends what is buffered and waits up to `drain` for the outstanding replies.
    pub fn finish(mut self, drain: Duration) -> io::Result<Replies> {
        self.flush()?;
        self.drain.store(
            u64::try_from(drain.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        self.progress.done.store(true, Ordering::Release);
        self.reader
            .join()
            .map_err(|_| io::Error::other("the reply reader panicked"))
    }
}

/// The most bytes one segmented send carries (an IP packet's bound, with room for headers).
const GSO_BYTES: usize = 65_000;

/// Sends `pending` to `target`: each run of equal-sized datagrams as one segmented send (UDP
/// segmentation offload, where the kernel has it: the stack is crossed once per run, not
/// once per datagram), the rest one by one. A datagram the kernel refuses is skipped.
/// Returns (sent, refused).
fn send_datagrams(
    socket: &UdpSocket,
    state: &UdpSocketState,
    target: SocketAddr,
    pending: &Datagrams,
) -> (u64, u64) {
    let send = |contents: &[u8], segment_size: Option<usize>| {
        let transmit = Transmit {
            destination: target,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        state.try_send(socket.into(), &transmit)
    };
    let start = |i: usize| if i == 0 { 0 } else { pending.ends[i - 1] };
    let size = |i: usize| pending.ends[i] - start(i);
    let (mut sent, mut refused) = (0u64, 0u64);
    let mut i = 0;
    while i < pending.ends.len() {
        let max = state
            .max_gso_segments()
            .min(GSO_BYTES / size(i).max(1))
            .max(1);
        let mut j = i + 1;
        while j < pending.ends.len() && j - i < max && size(j) == size(i) {
            j += 1;
        }
        let run = &pending.bytes[start(i)..pending.ends[j - 1]];
        let segmented = (j - i > 1).then(|| size(i));
        match send(run, segmented) {
            Ok(()) => sent += (j - i) as u64,
            // Segmentation offload refused: the run goes again datagram by datagram.
            Err(_) if segmented.is_some() && state.max_gso_segments() == 1 => {
                for k in i..j {
                    match send(&pending.bytes[start(k)..pending.ends[k]], None) {
                        Ok(()) => sent += 1,
                        Err(_) => refused += 1,
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "datagrams were not sent");
                refused += (j - i) as u64;
            }
        }
        i = j;
    }
    (sent, refused)
}

/// Whether the reader should stop: everything sent is answered, or the drain is over.
fn over(
    progress: &Progress,
    replies: &Replies,
    drain: &AtomicU64,
    since: &mut Option<Instant>,
) -> bool {
    if !progress.done.load(Ordering::Acquire) {
        return false;
    }
    if replies.answered >= progress.sent.load(Ordering::Acquire) {
        return true;
    }
    let started = *since.get_or_insert_with(Instant::now);
    started.elapsed() >= Duration::from_nanos(drain.load(Ordering::Acquire))
}

fn read_tcp(mut stream: TcpStream, progress: &Progress, drain: &AtomicU64) -> Replies {
    let mut replies = Replies::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::new();
    let mut since = None;
    while !over(progress, &replies, drain, &mut since) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let mut at = 0;
        while let Some(header) = pending.get(at..at + 4) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len > MAX_FRAME {
                // Not a replica's reply stream: nothing more can be read from it.
                replies.unreadable += 1;
                return replies;
            }
            let Some(reply) = pending.get(at + 4..at + 4 + len) else {
                break;
            };
            replies.take(reply);
            at += 4 + len;
        }
        pending.drain(..at);
    }
    replies
}

fn read_udp(socket: &UdpSocket, progress: &Progress, drain: &AtomicU64) -> Replies {
    let mut replies = Replies::default();
    let mut buf = vec![0u8; MAX_FRAME + 1];
    let mut since = None;
    while !over(progress, &replies, drain, &mut since) {
        match socket.recv(&mut buf) {
            Ok(n) => replies.take(&buf[..n]),
            // Timeouts, and ICMP unreachable reported on a connected socket.
            Err(_) => continue,
        }
    }
    replies
}
