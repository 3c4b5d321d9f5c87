//! One captured frame down to its transport segment: addresses, ports, TCP's sequence and
//! flags, and the payload, or the reason it carries no transaction.

use std::net::{IpAddr, SocketAddr};

use etherparse::{NetSlice, TransportSlice};

use super::link::{Link, LinkError};
use super::Transport;

/// A UDP datagram or TCP segment, borrowed from its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// UDP or TCP.
    pub transport: Transport,
    /// Source address and port.
    pub from: SocketAddr,
    /// Destination address and port.
    pub to: SocketAddr,
    /// TCP's header fields (`None` for UDP).
    pub tcp: Option<TcpHeader>,
    /// The transport payload.
    pub payload: &'a [u8],
}

/// What reassembly needs of a TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeader {
    /// Sequence number of the first payload byte (of the SYN, for a SYN).
    pub seq: u32,
    /// SYN set.
    pub syn: bool,
    /// ACK set.
    pub ack: bool,
    /// FIN set.
    pub fin: bool,
    /// RST set.
    pub rst: bool,
}

/// Why a packet gave no segment. Each is counted by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// ARP, LLDP, anything that is not IPv4 or IPv6.
    NotIp,
    /// IP, but neither UDP nor TCP (ICMP, …).
    NotUdpOrTcp,
    /// An IP fragment (Verity's transactions fit one packet; fragments are not reassembled).
    Fragment,
    /// The capture kept fewer bytes than the packet had (its snaplen cut it).
    SnaplenCut,
    /// A link, IP or transport header that does not parse.
    BadHeader,
    /// A UDP datagram with no payload.
    Empty,
    /// A UDP datagram longer than ingress takes.
    Oversize,
    /// A datagram or segment going back to the client (a reply).
    Reply,
    /// TCP data of a connection whose start (SYN) is not in the capture: its framing is
    /// unknown.
    TcpMidstream,
    /// TCP data already delivered (a retransmission), wholly.
    TcpRetransmission,
    /// A TCP connection with a hole that never filled: what followed it is lost.
    TcpGap,
    /// A TCP stream whose bytes are not frames (a length of 0 or over the bound): the rest of
    /// that connection is lost.
    TcpBadFrame,
    /// A TCP connection that ended, or the capture did, in the middle of a frame.
    TcpIncomplete,
    /// More TCP connections at once than reassembly tracks.
    TooManyFlows,
}

impl Skip {
    /// Every reason, in table order.
    pub const ALL: [Skip; 14] = [
        Skip::NotIp,
        Skip::NotUdpOrTcp,
        Skip::Fragment,
        Skip::SnaplenCut,
        Skip::BadHeader,
        Skip::Empty,
        Skip::Oversize,
        Skip::Reply,
        Skip::TcpMidstream,
        Skip::TcpRetransmission,
        Skip::TcpGap,
        Skip::TcpBadFrame,
        Skip::TcpIncomplete,
        Skip::TooManyFlows,
    ];

    /// Its name in tables and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Skip::NotIp => "not_ip",
            Skip::NotUdpOrTcp => "not_udp_or_tcp",
            Skip::Fragment => "ip_fragment",
            Skip::SnaplenCut => "snaplen_cut",
            Skip::BadHeader => "bad_header",
            Skip::Empty => "empty_datagram",
            Skip::Oversize => "oversize",
            Skip::Reply => "reply_direction",
            Skip::TcpMidstream => "tcp_midstream",
            Skip::TcpRetransmission => "tcp_retransmission",
            Skip::TcpGap => "tcp_gap",
            Skip::TcpBadFrame => "tcp_bad_frame",
            Skip::TcpIncomplete => "tcp_incomplete",
            Skip::TooManyFlows => "too_many_flows",
        }
    }
}

/// A skipped packet: the reason and, for the table's first example, a detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Why.
    pub reason: Skip,
    /// What exactly (a parser's message), if there is more to say.
    pub detail: Option<String>,
}

impl From<Skip> for Skipped {
    fn from(reason: Skip) -> Self {
        Skipped {
            reason,
            detail: None,
        }
    }
}

/// Decodes one frame of `link` whose original length was `wire_len` (`data` may be shorter:
/// the capture's snaplen).
pub fn decode(link: Link, data: &[u8], wire_len: u32) -> Result<Segment<'_>, Skipped> {
    let sliced = match link.slice(data) {
        Ok(sliced) => sliced,
        Err(LinkError::NotIp) => return Err(Skip::NotIp.into()),
        Err(error) if (data.len() as u64) < u64::from(wire_len) => {
            return Err(Skipped {
                reason: Skip::SnaplenCut,
                detail: Some(format!("{} of {wire_len} bytes kept: {error}", data.len())),
            })
        }
        Err(error) => {
            return Err(Skipped {
                reason: Skip::BadHeader,
                detail: Some(error.to_string()),
            })
        }
    };
    let (source, destination, fragmented) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
        ),
        Some(NetSlice::Arp(_)) | None => return Err(Skip::NotIp.into()),
    };
    if fragmented {
        return Err(Skip::Fragment.into());
    }
    // The IP header's length says how long the packet was; a capture may keep less.
    if (data.len() as u64) < u64::from(wire_len) {
        return Err(Skipped {
            reason: Skip::SnaplenCut,
            detail: Some(format!("{} of {wire_len} bytes kept", data.len())),
        });
    }
    match sliced.transport {
        Some(TransportSlice::Udp(udp)) => Ok(Segment {
            transport: Transport::Udp,
            from: SocketAddr::new(source, udp.source_port()),
            to: SocketAddr::new(destination, udp.destination_port()),
            tcp: None,
            payload: udp.payload(),
        }),
        Some(TransportSlice::Tcp(tcp)) => Ok(Segment {
            transport: Transport::Tcp,
            from: SocketAddr::new(source, tcp.source_port()),
            to: SocketAddr::new(destination, tcp.destination_port()),
            tcp: Some(TcpHeader {
                seq: tcp.sequence_number(),
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            }),
            payload: tcp.payload(),
        }),
        Some(_) | None => Err(Skip::NotUdpOrTcp.into()),
    }
}
