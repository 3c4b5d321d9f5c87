//! Packets to transactions: each UDP datagram going to a server is one, each frame of a TCP
//! stream (reassembled) is one; everything else is skipped and counted by reason.
//!
//! The direction is learned from the traffic: in TCP, the side that sent the SYN is the
//! client; in UDP, the side that spoke first between two endpoints. Replies are skipped, so
//! a capture of both directions (a mirror port) replays as the clients sent it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::link::Link;
use super::packet::{decode, Skip, Skipped};
use super::reassembly::{Delivery, Limits, Reassembler};
use super::{Timestamp, Transport};
use crate::ingress::MAX_FRAME;

/// One transaction as it was received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// When the packet that completed it was captured.
    pub at: Timestamp,
    /// The transport it came on.
    pub transport: Transport,
    /// The client.
    pub from: SocketAddr,
    /// The server.
    pub to: SocketAddr,
    /// The transaction's bytes (a TCP frame without its length).
    pub bytes: Vec<u8>,
}

/// What extraction counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Packets read.
    pub packets: u64,
    /// Transactions extracted.
    pub transactions: u64,
    /// Packets that carried no transaction data and were not skipped (SYN, ACK, FIN, data
    /// held until a hole fills).
    pub control: u64,
    /// Skipped, by reason (a TCP skip may count a connection's end rather than a packet).
    pub skipped: BTreeMap<Skip, u64>,
    /// The first detail seen for each reason that has one.
    pub examples: BTreeMap<Skip, String>,
}

impl ExtractStats {
    /// Every skip, over all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    fn skip(&mut self, skipped: Skipped) {
        metrics::counter!("verity_pcap_skipped_total", "reason" => skipped.reason.name())
            .increment(1);
        *self.skipped.entry(skipped.reason).or_default() += 1;
        if let Some(detail) = skipped.detail {
            self.examples.entry(skipped.reason).or_insert(detail);
        }
    }
}

/// Extracts the transactions of one capture, packet by packet.
#[derive(Debug)]
pub struct Extractor {
    link: Link,
    tcp: Reassembler,
    /// UDP conversations (lower endpoint, higher endpoint) → the endpoint that spoke first.
    udp_clients: HashMap<(SocketAddr, SocketAddr), SocketAddr>,
    udp_limit: usize,
    stats: ExtractStats,
}

impl Extractor {
    /// An extractor for frames of `link`, within `limits` (UDP conversations are bounded by
    /// the same number as TCP connections; beyond it, a datagram is taken as a client's).
    pub fn new(link: Link, limits: Limits) -> Self {
        Self {
            link,
            tcp: Reassembler::new(limits),
            udp_clients: HashMap::new(),
            udp_limit: limits.flows,
            stats: ExtractStats::default(),
        }
    }

    /// Takes one packet captured `at`, of which `data` was kept out of `wire_len` bytes, and
    /// appends the transactions it completes to `out`.
    pub fn packet(&mut self, at: Timestamp, data: &[u8], wire_len: u32, out: &mut Vec<Extracted>) {
        self.stats.packets += 1;
        let segment = match decode(self.link, data, wire_len) {
            Ok(segment) => segment,
            Err(skipped) => return self.stats.skip(skipped),
        };
        let (from, to) = (segment.from, segment.to);
        match segment.tcp {
            None => {
                let conversation = (from.min(to), from.max(to));
                let client = match self.udp_clients.get(&conversation) {
                    Some(client) => *client,
                    None => {
                        if self.udp_clients.len() < self.udp_limit {
                            self.udp_clients.insert(conversation, from);
                        }
                        from
                    }
                };
                let skip = match segment.payload.len() {
                    _ if client != from => Some(Skip::Reply),
                    0 => Some(Skip::Empty),
                    n if n > MAX_FRAME => Some(Skip::Oversize),
                    _ => None,
                };
                if let Some(reason) = skip {
                    return self.stats.skip(reason.into());
                }
                self.stats.transactions += 1;
                out.push(Extracted {
                    at,
                    transport: Transport::Udp,
                    from,
                    to,
                    bytes: segment.payload.to_vec(),
                });
            }
            Some(tcp) => {
                match self.tcp.segment(&segment, tcp) {
                    Delivery::Nothing => self.stats.control += 1,
                    Delivery::Skipped(reason) => self.stats.skip(reason.into()),
                    Delivery::Frames(frames) => {
                        self.stats.transactions += frames.len() as u64;
                        out.extend(frames.into_iter().map(|bytes| Extracted {
                            at,
                            transport: Transport::Tcp,
                            from,
                            to,
                            bytes,
                        }));
                    }
                }
                for reason in self.tcp.take_skips() {
                    self.stats.skip(reason.into());
                }
            }
        }
    }

    /// Takes one packet as libpcap gives it (a capture opened with nanosecond precision).
    pub fn captured(&mut self, packet: &pcap::Packet<'_>, out: &mut Vec<Extracted>) {
        self.packet(
            super::file::timestamp(packet.header),
            packet.data,
            packet.header.len,
            out,
        );
    }

    /// The capture ended: connections left mid-frame or with holes are counted.
    pub fn finish(&mut self) {
        self.tcp.finish();
        for reason in self.tcp.take_skips() {
            self.stats.skip(reason.into());
        }
    }

    /// What it counted so far.
    pub fn stats(&self) -> &ExtractStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    use super::*;
    use crate::traffic::synth::{self, Streams};

    fn client() -> SocketAddr {
        "192.168.1.10:40000".parse().expect("an address")
    }

    fn server() -> SocketAddr {
        "192.168.1.2:7382".parse().expect("an address")
    }

    fn run(frames: &[(Vec<u8>, u32)]) -> (Vec<Extracted>, ExtractStats) {
        let mut extractor = Extractor::new(Link::Ethernet, Limits::default());
        let mut out = Vec::new();
        for (i, (frame, wire_len)) in frames.iter().enumerate() {
            extractor.packet(Timestamp(i as u64), frame, *wire_len, &mut out);
        }
        extractor.finish();
        (out, extractor.stats().clone())
    }

    fn whole(frame: Vec<u8>) -> (Vec<u8>, u32) {
        let len = frame.len() as u32;
        (frame, len)
    }

    #[test]
    fn datagrams_and_frames_to_servers_are_transactions_and_replies_are_not() {
        let v6_client: SocketAddr = "[fd00::10]:40001".parse().expect("an address");
        let v6_server: SocketAddr = "[fd00::2]:7382".parse().expect("an address");
        let mut streams = Streams::default();
        let tcp_server: SocketAddr = "192.168.1.2:7381".parse().expect("an address");
        let mut frames = vec![
            whole(synth::udp(client(), server(), b"first")),
            whole(synth::udp(server(), client(), b"a reply")),
            whole(synth::udp(v6_client, v6_server, b"over IPv6")),
        ];
        for bytes in [&b"one"[..], b"two"] {
            let frame = [&(bytes.len() as u32).to_le_bytes()[..], bytes].concat();
            frames.extend(
                streams
                    .data(client(), tcp_server, &frame)
                    .into_iter()
                    .map(whole),
            );
        }
        frames.extend(streams.close(client(), tcp_server).map(whole));
        let (out, stats) = run(&frames);
        let got: Vec<(&[u8], Transport)> =
            out.iter().map(|e| (&e.bytes[..], e.transport)).collect();
        assert_eq!(
            got,
            vec![
                (&b"first"[..], Transport::Udp),
                (b"over IPv6", Transport::Udp),
                (b"one", Transport::Tcp),
                (b"two", Transport::Tcp),
            ]
        );
        assert_eq!(out[3].at, Timestamp(7), "the packet that completed it");
        assert_eq!(stats.skipped, BTreeMap::from([(Skip::Reply, 1)]));
        // SYN, SYN-ACK, ACK, FIN.
        assert_eq!(stats.control, 4);
        assert_eq!(stats.packets, 9);
        assert_eq!(stats.transactions, 4);
    }

    #[test]
    fn frames_that_carry_no_transaction_are_counted_by_reason() {
        let good = synth::udp(client(), server(), &[7; 160]);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut icmp = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, &[0; 8])
            .expect("an echo request");
        let mut bad_version = good.clone();
        bad_version[14] = 0x75;
        let mut fragment = good.clone();
        fragment[20] |= 0x20; // more fragments
        let cut = good[..60].to_vec();
        let frames = vec![
            whole(arp),
            whole(icmp),
            whole(bad_version),
            whole(fragment),
            (cut, good.len() as u32),
            whole(synth::udp(client(), server(), &[])),
            whole(synth::udp(client(), server(), &[1; MAX_FRAME + 1])),
            whole(vec![1, 2, 3]),
            whole(good),
        ];
        let (out, stats) = run(&frames);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bytes, vec![7; 160]);
        let named: BTreeMap<&str, u64> =
            stats.skipped.iter().map(|(s, n)| (s.name(), *n)).collect();
        assert_eq!(
            named,
            BTreeMap::from([
                ("not_ip", 1),
                ("not_udp_or_tcp", 1),
                ("bad_header", 2),
                ("ip_fragment", 1),
                ("snaplen_cut", 1),
                ("empty_datagram", 1),
                ("oversize", 1),
            ])
        );
        assert!(
            stats.examples[&Skip::SnaplenCut].contains("60 of"),
            "{:?}",
            stats.examples
        );
    }

    proptest! {
        /// No frame, however broken, panics the reader, on any link type.
        #[test]
        fn arbitrary_frames_are_skipped_or_read_never_a_panic(
            data in prop::collection::vec(any::<u8>(), 0..200),
            extra in 0u32..100,
        ) {
            for link in [Link::Ethernet, Link::RawIp, Link::LinuxSll, Link::LinuxSll2, Link::Loopback] {
                let mut extractor = Extractor::new(link, Limits::default());
                let mut out = Vec::new();
                extractor.packet(Timestamp(0), &data, data.len() as u32 + extra, &mut out);
                extractor.finish();
                let s = extractor.stats();
                prop_assert_eq!(s.packets, 1);
                prop_assert!(s.transactions + s.control + s.skipped_total() >= 1);
            }
        }
    }
}
