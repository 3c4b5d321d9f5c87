//! Ethernet frames for what ingress received: a UDP datagram, or a TCP connection's
//! segments (handshake, one segment per frame, FIN), so that a recording reads like a capture
//! taken on the loopback interface.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

/// Zero MAC addresses, as Linux's loopback interface has.
const MAC: [u8; 6] = [0; 6];
const TTL: u8 = 64;
const WINDOW: u16 = 65_535;

/// The IP layer of a packet from `from` to `to`: IPv4 when both are IPv4 (or mapped), else
/// IPv6.
fn ip(from: SocketAddr, to: SocketAddr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let base = PacketBuilder::ethernet2(MAC, MAC);
    match (from.ip().to_canonical(), to.ip().to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => base.ipv4(a.octets(), b.octets(), TTL),
        (a, b) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            base.ipv6(v6(a), v6(b), TTL)
        }
    }
}

/// One UDP datagram from `from` to `to`.
pub fn udp(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let builder = ip(from, to).udp(from.port(), to.port());
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    // Writing to a Vec fails only on a payload too long for IP, which ingress never takes.
    let _ = builder.write(&mut frame, payload);
    frame
}

/// TCP flags of a synthesized segment.
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    syn: bool,
    fin: bool,
    psh: bool,
    ack: Option<u32>,
}

fn tcp(from: SocketAddr, to: SocketAddr, seq: u32, flags: Flags, payload: &[u8]) -> Vec<u8> {
    let mut builder = ip(from, to).tcp(from.port(), to.port(), seq, WINDOW);
    if flags.syn {
        builder = builder.syn();
    }
    if flags.fin {
        builder = builder.fin();
    }
    if flags.psh {
        builder = builder.psh();
    }
    if let Some(ack) = flags.ack {
        builder = builder.ack(ack);
    }
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    let _ = builder.write(&mut frame, payload);
    frame
}

/// Both sides' next sequence numbers of one connection.
#[derive(Clone, Copy, Debug)]
struct Sequence {
    client: u32,
    server: u32,
}

/// Client-to-server TCP streams as segments: a connection seen for the first time gets its
/// handshake, each frame one segment, and a close its FIN.
#[derive(Debug, Default)]
pub struct Streams {
    open: HashMap<(SocketAddr, SocketAddr), Sequence>,
}

impl Streams {
    /// The segments carrying `bytes` (one whole ingress frame, length included) from `from` to
    /// `to`, preceded by the handshake if the connection is new to this recording.
    pub fn data(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::with_capacity(4);
        let sequence = match self.open.get_mut(&(from, to)) {
            Some(sequence) => sequence,
            None => {
                // Initial sequence numbers from the ports: deterministic, and different per
                // connection.
                let isn = u32::from(from.port()) << 16 | u32::from(to.port());
                let sequence = Sequence {
                    client: isn,
                    server: !isn,
                };
                let syn = Flags {
                    syn: true,
                    ..Flags::default()
                };
                frames.push(tcp(from, to, sequence.client, syn, &[]));
                let syn_ack = Flags {
                    syn: true,
                    ack: Some(sequence.client.wrapping_add(1)),
                    ..Flags::default()
                };
                frames.push(tcp(to, from, sequence.server, syn_ack, &[]));
                let sequence = Sequence {
                    client: sequence.client.wrapping_add(1),
                    server: sequence.server.wrapping_add(1),
                };
                let ack = Flags {
                    ack: Some(sequence.server),
                    ..Flags::default()
                };
                frames.push(tcp(from, to, sequence.client, ack, &[]));
                self.open.entry((from, to)).or_insert(sequence)
            }
        };
        if !bytes.is_empty() {
            let push = Flags {
                psh: true,
                ack: Some(sequence.server),
                ..Flags::default()
            };
            frames.push(tcp(from, to, sequence.client, push, bytes));
            sequence.client = sequence.client.wrapping_add(bytes.len() as u32);
        }
        frames
    }

    /// The client's FIN, if the connection is in this recording.
    pub fn close(&mut self, from: SocketAddr, to: SocketAddr) -> Option<Vec<u8>> {
        let sequence = self.open.remove(&(from, to))?;
        let fin = Flags {
            fin: true,
            ack: Some(sequence.server),
            ..Flags::default()
        };
        Some(tcp(from, to, sequence.client, fin, &[]))
    }
}
