//! The link layers a capture may use, and how each reaches the IP header.

use etherparse::{EtherType, SlicedPacket};
use thiserror::Error;

/// A link layer Verity reads: what Linux captures produce (`tcpdump -i eth0`, `-i lo`,
/// `-i any`) and what BSD loopback and raw-IP captures do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II (DLT_EN10MB), VLAN tags included.
    Ethernet,
    /// A bare IPv4 or IPv6 header (DLT_RAW, DLT_IPV4, DLT_IPV6).
    RawIp,
    /// Linux cooked capture v1 (`-i any` before libpcap 1.10).
    LinuxSll,
    /// Linux cooked capture v2 (`-i any` since libpcap 1.10).
    LinuxSll2,
    /// BSD loopback: a 4-byte address family in host (DLT_NULL) or network (DLT_LOOP) order.
    Loopback,
}

/// A capture whose link layer Verity does not read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "link type {linktype} ({name}) is not supported: Verity reads Ethernet, raw IP, Linux \
     cooked (SLL, SLL2) and BSD loopback captures"
)]
pub struct UnsupportedLink {
    /// The DLT number.
    pub linktype: i32,
    /// libpcap's name for it, if it has one.
    pub name: String,
}

impl Link {
    /// The link for a libpcap data link type.
    pub fn from_linktype(linktype: pcap::Linktype) -> Result<Self, UnsupportedLink> {
        match linktype.0 {
            1 => Ok(Link::Ethernet),
            // DLT_RAW is 12 on Linux (14 on OpenBSD); 101 is its number in files.
            12 | 14 | 101 | 228 | 229 => Ok(Link::RawIp),
            113 => Ok(Link::LinuxSll),
            276 => Ok(Link::LinuxSll2),
            0 | 108 => Ok(Link::Loopback),
            other => Err(UnsupportedLink {
                linktype: other,
                name: linktype.get_name().unwrap_or_else(|_| "unknown".to_owned()),
            }),
        }
    }

    /// Slices one frame of this link type down to its IP and transport headers.
    pub fn slice(self, data: &[u8]) -> Result<SlicedPacket<'_>, LinkError> {
        match self {
            Link::Ethernet => SlicedPacket::from_ethernet(data).map_err(LinkError::Header),
            Link::RawIp => SlicedPacket::from_ip(data).map_err(LinkError::Header),
            Link::LinuxSll => SlicedPacket::from_linux_sll(data).map_err(LinkError::Header),
            Link::LinuxSll2 => {
                // Protocol type (2, network order) first; the header is 20 bytes.
                let (Some(protocol), Some(rest)) = (data.get(..2), data.get(20..)) else {
                    return Err(LinkError::Short);
                };
                let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
                SlicedPacket::from_ether_type(ether_type, rest).map_err(LinkError::Header)
            }
            Link::Loopback => {
                let (Some(family), Some(rest)) = (data.get(..4), data.get(4..)) else {
                    return Err(LinkError::Short);
                };
                // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30 (BSDs, macOS).
                // Either byte order: DLT_NULL is the writer's host order.
                let le = u32::from_le_bytes([family[0], family[1], family[2], family[3]]);
                let be = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
                match (le, be) {
                    (2, _) | (_, 2) | (10 | 24 | 28 | 30, _) | (_, 10 | 24 | 28 | 30) => {
                        SlicedPacket::from_ip(rest).map_err(LinkError::Header)
                    }
                    _ => Err(LinkError::NotIp),
                }
            }
        }
    }
}

/// Why a frame did not reach an IP header.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LinkError {
    /// Shorter than its link header.
    #[error("shorter than its link header")]
    Short,
    /// A link header for something other than IP.
    #[error("not IP")]
    NotIp,
    /// A header that does not parse.
    #[error("{0}")]
    Header(etherparse::err::packet::SliceError),
}
