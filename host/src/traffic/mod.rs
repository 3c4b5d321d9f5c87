//! Packet captures: what the appliance receives, written to and read from pcap files
//! (libpcap, through the `pcap` crate), and live capture.
//!
//! ```text
//! pcap file / interface ─▶ packet (link, IP, UDP/TCP) ─▶ extract ─▶ transactions ─▶ send
//!                                        TCP: reassembly ┘   (pacing: replay)
//! ingress (UDP datagram, TCP frame) ─▶ recorder (bounded queue) ─▶ synth ─▶ rotating files
//! ```
//!
//! Files are written in nanosecond pcap format with Ethernet framing (zero MAC addresses, as
//! a Linux loopback capture has), so Wireshark, tshark and tcpdump read them and Verity's
//! own reader treats a recording and a capture taken off the wire alike.

pub mod extract;
pub mod file;
pub mod link;
pub mod live;
pub mod pacing;
pub mod packet;
pub mod reassembly;
pub mod recorder;
pub mod send;
pub mod synth;

use std::fmt;

/// Which transport carried a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// One datagram, one transaction.
    Udp,
    /// Length-prefixed frames in a byte stream.
    Tcp,
}

impl Transport {
    /// Its name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            other => Err(format!("{other:?} is not a transport (udp or tcp)")),
        }
    }
}

/// A capture timestamp: nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Now, by the real-time clock (what a capture file records; never used for ordering).
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }
}
