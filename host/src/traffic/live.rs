//! Live capture: an interface opened for reading packets as they pass, with errors that say
//! what to do (the permission it needs, the interfaces there are).

use std::io;

use pcap::{Active, Capture, Device, Packet, Stat};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use thiserror::Error;

use super::file::{apply_filter, reason, FilterError};
use super::link::{Link, UnsupportedLink};

/// How long a read waits for a packet, so that the reader can look at its stop conditions.
pub const READ_TIMEOUT_MS: i64 = 100;

/// Why an interface could not be captured on.
#[derive(Debug, Error)]
pub enum LiveError {
    /// The process lacks CAP_NET_RAW.
    #[error(
        "capturing on {iface} needs CAP_NET_RAW ({reason}): run as root, or grant it once with \
         `sudo setcap cap_net_raw,cap_net_admin=eip {exe}`"
    )]
    Permission {
        /// The interface.
        iface: String,
        /// libpcap's words.
        reason: String,
        /// This executable, for the `setcap` line.
        exe: String,
    },
    /// No such interface.
    #[error("no interface {iface:?} ({reason}); this machine has: {}", names.join(", "))]
    NoInterface {
        /// The interface asked for.
        iface: String,
        /// libpcap's words.
        reason: String,
        /// The interfaces there are.
        names: Vec<String>,
    },
    /// Any other failure to open.
    #[error("cannot capture on {iface}: {reason}")]
    Open {
        /// The interface.
        iface: String,
        /// libpcap's words.
        reason: String,
    },
    /// A link layer Verity does not read.
    #[error("{iface}: {link}")]
    Link {
        /// The interface.
        iface: String,
        /// Which.
        link: UnsupportedLink,
    },
    /// A filter that does not compile.
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// An interface being captured on, read a packet at a time.
///
/// libpcap's own read timeout does not end a read on Linux while no packet arrives (it bounds
/// how long a packet is buffered, not how long a read blocks: libpcap issues #550 and #1001),
/// so a reader on a quiet interface would never see its stop conditions. The capture is
/// therefore non-blocking, and [`LiveCapture::next_packet`] waits on its descriptor itself.
pub struct LiveCapture {
    capture: Capture<Active>,
    /// The last read found nothing: the next one waits for the descriptor first.
    drained: bool,
}

impl LiveCapture {
    /// The next packet, or `None` when none came within [`READ_TIMEOUT_MS`] (or a signal
    /// ended the wait), so that the caller can look at its stop conditions.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, pcap::Error> {
        if self.drained {
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: READ_TIMEOUT_MS * 1_000_000,
            };
            let mut fds = [PollFd::new(&self.capture, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(None),
                // Readable, or an error condition the read below reports.
                Ok(_) => {}
                Err(error) => return Err(pcap::Error::IoError(io::Error::from(error).kind())),
            }
        }
        match self.capture.next_packet() {
            Ok(packet) => {
                self.drained = false;
                Ok(Some(packet))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.drained = true;
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The kernel's counts of packets received and dropped.
    pub fn stats(&mut self) -> Result<Stat, pcap::Error> {
        self.capture.stats()
    }
}

/// Opens `iface` (immediate mode, whole packets, reads that give up after
/// [`READ_TIMEOUT_MS`]) with `filter` (BPF, tcpdump's syntax) if given.
pub fn open(iface: &str, filter: Option<&str>) -> Result<(LiveCapture, Link), LiveError> {
    let opened = Capture::from_device(iface).and_then(|c| {
        c.immediate_mode(true)
            .snaplen(65_535)
            .open()
            .and_then(Capture::setnonblock)
    });
    let mut capture = opened.map_err(|error| {
        let reason = reason(&error);
        let lower = reason.to_lowercase();
        let iface = iface.to_owned();
        if lower.contains("permit") || lower.contains("permission") {
            let exe =
                std::env::current_exe().map_or("verity".to_owned(), |p| p.display().to_string());
            LiveError::Permission { iface, reason, exe }
        } else if lower.contains("no such device") || lower.contains("doesn't exist") {
            let names = Device::list()
                .map(|list| list.into_iter().map(|d| d.name).collect())
                .unwrap_or_default();
            LiveError::NoInterface {
                iface,
                reason,
                names,
            }
        } else {
            LiveError::Open { iface, reason }
        }
    })?;
    let link = Link::from_linktype(capture.get_datalink()).map_err(|link| LiveError::Link {
        iface: iface.to_owned(),
        link,
    })?;
    apply_filter(&mut capture, filter)?;
    Ok((
        LiveCapture {
            capture,
            drained: true,
        },
        link,
    ))
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;

    /// `lo` opened with `filter`, or `None` where this process may not capture.
    fn loopback(filter: &str) -> Option<LiveCapture> {
        match open("lo", Some(filter)) {
            Ok((capture, _)) => Some(capture),
            Err(LiveError::Permission { .. }) => {
                eprintln!("skipped: capturing on lo needs CAP_NET_RAW");
                None
            }
            Err(error) => panic!("lo opens: {error}"),
        }
    }

    #[test]
    fn a_read_on_a_quiet_interface_gives_up_instead_of_blocking() {
        // IP protocol 253 is reserved for experiments: nothing here sends it. Before the
        // capture was non-blocking, this read never returned.
        let Some(mut capture) = loopback("ip proto 253") else {
            return;
        };
        for _ in 0..3 {
            assert!(capture.next_packet().expect("reads").is_none());
        }
    }

    #[test]
    fn a_datagram_sent_on_loopback_is_read_between_quiet_reads() {
        let sink = UdpSocket::bind("127.0.0.1:0").expect("binds");
        let port = sink.local_addr().expect("an address").port();
        let Some(mut capture) = loopback(&format!("udp dst port {port}")) else {
            return;
        };
        assert!(capture.next_packet().expect("reads").is_none());
        let payload = b"verity live capture";
        UdpSocket::bind("127.0.0.1:0")
            .expect("binds")
            .send_to(payload, ("127.0.0.1", port))
            .expect("sent");
        let mut found = None;
        for _ in 0..50 {
            if let Some(packet) = capture.next_packet().expect("reads") {
                found = Some(packet.data.to_vec());
                break;
            }
        }
        let frame = found.expect("the datagram is captured within 50 reads");
        assert!(frame.ends_with(payload), "{frame:?}");
        // Quiet again: the reads after a packet give up too (a blocking read would not).
        for _ in 0..2 {
            assert!(capture.next_packet().expect("reads").is_none());
        }
    }
}
