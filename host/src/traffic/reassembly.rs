//! TCP streams back into ingress frames (`length (u32 LE) ‖ transaction`), from segments
//! that may arrive duplicated, overlapping or out of order.
//!
//! A connection is followed from the client's SYN (a SYN without ACK): the side that opened
//! it is the one sending transactions, and the byte after the SYN starts a frame. Data of a
//! connection whose SYN was not captured cannot be framed and is skipped (`tcp_midstream`);
//! so is the server's direction (`reply_direction`). Segments ahead of the next expected
//! byte wait, up to [`Limits::held_bytes`] per connection and [`Limits::held_total`] in all; a
//! hole that outlives either bound,
//! the connection or the capture loses the rest of that connection (`tcp_gap`), never
//! another's.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::packet::{Segment, Skip, TcpHeader};
use crate::ingress::MAX_FRAME;

/// Bounds of reassembly's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections followed at once.
    pub flows: usize,
    /// Out-of-order bytes held per connection.
    pub held_bytes: usize,
    /// Out-of-order bytes held over all connections.
    pub held_total: usize,
}

impl Default for Limits {
    /// 65,536 connections, 1 MiB held each, 64 MiB in all.
    fn default() -> Self {
        Self {
            flows: 65_536,
            held_bytes: 1 << 20,
            held_total: 64 << 20,
        }
    }
}

/// A connection, client side first.
type FlowKey = (SocketAddr, SocketAddr);

/// One client-to-server byte stream.
#[derive(Debug, Default)]
struct Flow {
    /// Sequence number of the next byte expected.
    next_seq: u32,
    /// Stream offset of that byte.
    next_offset: u64,
    /// Segments ahead of it, by stream offset.
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    /// Bytes in order not yet framed.
    unframed: Vec<u8>,
    /// Lost its framing or a hole (which): its later data is skipped for that reason.
    broken: Option<Skip>,
}

/// What a segment gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Control only (SYN, pure ACK, FIN) or data held for later: nothing to count.
    Nothing,
    /// Whole frames completed by this segment (their transaction bytes), in order.
    Frames(Vec<Vec<u8>>),
    /// The segment's data was skipped, and why.
    Skipped(Skip),
}

/// Reassembles every TCP connection of a capture.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: Limits,
    flows: HashMap<FlowKey, Flow>,
    /// Out-of-order bytes held over all connections.
    held_total: usize,
    /// Skips found outside any one segment (a connection ending mid-frame).
    pending_skips: Vec<Skip>,
}

impl Reassembler {
    /// A reassembler within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Takes one TCP segment.
    pub fn segment(&mut self, segment: &Segment<'_>, tcp: TcpHeader) -> Delivery {
        let key = (segment.from, segment.to);
        if tcp.syn {
            if tcp.ack {
                // The server's SYN-ACK: its direction carries replies.
                return Delivery::Nothing;
            }
            match self.flows.get(&key) {
                // A retransmitted SYN.
                Some(flow) if flow.next_offset == 0 && flow.next_seq == tcp.seq.wrapping_add(1) => {
                }
                _ => {
                    if let Some(old) = self.flows.remove(&key) {
                        self.close(old);
                    }
                    if self.flows.len() >= self.limits.flows {
                        return Delivery::Skipped(Skip::TooManyFlows);
                    }
                    let flow = Flow {
                        next_seq: tcp.seq.wrapping_add(1),
                        ..Flow::default()
                    };
                    self.flows.insert(key, flow);
                }
            }
            return Delivery::Nothing;
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            if segment.payload.is_empty() {
                return Delivery::Nothing;
            }
            if self.flows.contains_key(&(segment.to, segment.from)) {
                return Delivery::Skipped(Skip::Reply);
            }
            return Delivery::Skipped(Skip::TcpMidstream);
        };
        let delivery = if segment.payload.is_empty() {
            Delivery::Nothing
        } else if let Some(reason) = flow.broken {
            Delivery::Skipped(reason)
        } else {
            let before = flow.held_bytes;
            let others = self.held_total - before;
            let delivery = Self::data(flow, tcp.seq, segment.payload, self.limits, others);
            self.held_total = others + flow.held_bytes;
            delivery
        };
        if tcp.fin || tcp.rst {
            if let Some(flow) = self.flows.remove(&key) {
                self.close(flow);
            }
        }
        delivery
    }

    /// Data of a followed connection.
    /// `others`: bytes held by every other connection.
    fn data(flow: &mut Flow, seq: u32, payload: &[u8], limits: Limits, others: usize) -> Delivery {
        // Signed distance from the next expected byte, correct across sequence wrap-around.
        let ahead = i64::from(seq.wrapping_sub(flow.next_seq) as i32);
        let len = payload.len() as i64;
        if ahead + len <= 0 {
            return Delivery::Skipped(Skip::TcpRetransmission);
        }
        if ahead > 0 {
            let offset = flow.next_offset + ahead as u64;
            let held = flow.held_bytes + payload.len();
            if held > limits.held_bytes || others + held > limits.held_total {
                flow.broken = Some(Skip::TcpGap);
                flow.held.clear();
                flow.held_bytes = 0;
                return Delivery::Skipped(Skip::TcpGap);
            }
            flow.held_bytes += payload.len();
            let kept = flow.held.entry(offset).or_default();
            if kept.len() < payload.len() {
                flow.held_bytes -= kept.len();
                *kept = payload.to_vec();
            } else {
                flow.held_bytes -= payload.len();
            }
            return Delivery::Nothing;
        }
        // In order, perhaps overlapping what was delivered: take the new part.
        Self::append(flow, &payload[(-ahead) as usize..]);
        while let Some(entry) = flow.held.first_entry() {
            let offset = *entry.key();
            if offset > flow.next_offset {
                break;
            }
            let bytes = entry.remove();
            flow.held_bytes -= bytes.len();
            let skip = (flow.next_offset - offset) as usize;
            if skip < bytes.len() {
                Self::append(flow, &bytes[skip..]);
            }
        }
        Self::frames(flow)
    }

    fn append(flow: &mut Flow, bytes: &[u8]) {
        flow.unframed.extend_from_slice(bytes);
        flow.next_offset += bytes.len() as u64;
        flow.next_seq = flow.next_seq.wrapping_add(bytes.len() as u32);
    }

    /// Cuts whole frames off the in-order bytes.
    fn frames(flow: &mut Flow) -> Delivery {
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some(header) = flow.unframed.get(at..at + 4) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len == 0 || len > MAX_FRAME {
                flow.broken = Some(Skip::TcpBadFrame);
                flow.unframed.clear();
                flow.held.clear();
                flow.held_bytes = 0;
                if frames.is_empty() {
                    return Delivery::Skipped(Skip::TcpBadFrame);
                }
                return Delivery::Frames(frames);
            }
            let Some(body) = flow.unframed.get(at + 4..at + 4 + len) else {
                break;
            };
            frames.push(body.to_vec());
            at += 4 + len;
        }
        flow.unframed.drain(..at);
        if frames.is_empty() {
            Delivery::Nothing
        } else {
            Delivery::Frames(frames)
        }
    }

    /// A connection ends: what it left unfinished is counted.
    fn close(&mut self, flow: Flow) {
        self.held_total -= flow.held_bytes;
        if flow.broken.is_some() {
            return;
        }
        if !flow.held.is_empty() {
            self.pending_skips.push(Skip::TcpGap);
        } else if !flow.unframed.is_empty() {
            self.pending_skips.push(Skip::TcpIncomplete);
        }
    }

    /// The capture ended: every connection still open is closed.
    pub fn finish(&mut self) {
        let flows: Vec<Flow> = self.flows.drain().map(|(_, flow)| flow).collect();
        for flow in flows {
            self.close(flow);
        }
    }

    /// Skips found when connections ended, taken once.
    pub fn take_skips(&mut self) -> Vec<Skip> {
        std::mem::take(&mut self.pending_skips)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::traffic::Transport;

    fn client() -> SocketAddr {
        "10.0.0.1:40000".parse().expect("an address")
    }

    fn server() -> SocketAddr {
        "10.0.0.2:7381".parse().expect("an address")
    }

    /// Feeds one segment from `from` to `to`.
    fn feed(
        r: &mut Reassembler,
        (from, to): (SocketAddr, SocketAddr),
        seq: u32,
        flags: (bool, bool, bool),
        payload: &[u8],
    ) -> Delivery {
        let (syn, ack, fin) = flags;
        let segment = Segment {
            transport: Transport::Tcp,
            from,
            to,
            tcp: None,
            payload,
        };
        let header = TcpHeader {
            seq,
            syn,
            ack,
            fin,
            rst: false,
        };
        r.segment(&segment, header)
    }

    const DATA: (bool, bool, bool) = (false, true, false);
    const SYN: (bool, bool, bool) = (true, false, false);
    const FIN: (bool, bool, bool) = (false, true, true);

    fn stream_of(frames: &[Vec<u8>]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|f| [&(f.len() as u32).to_le_bytes()[..], f].concat())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the segmentation, the order of arrival, duplicates and re-segmented
        /// retransmissions, and wherever the sequence numbers wrap, the frames come out whole
        /// and in order.
        #[test]
        fn any_segmentation_order_and_retransmission_gives_the_frames_back(
            frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 1..30),
            isn in any::<u32>(),
            seed in any::<u64>(),
        ) {
            let stream = stream_of(&frames);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut segments: Vec<(usize, usize)> = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                let len = rng.gen_range(1..=400).min(stream.len() - at);
                segments.push((at, len));
                at += len;
            }
            for _ in 0..segments.len() / 3 {
                let start = rng.gen_range(0..stream.len());
                let len = rng.gen_range(1..=200).min(stream.len() - start);
                segments.push((start, len));
            }
            // Local disorder: each segment moves at most a few places.
            for i in 0..segments.len() {
                let j = (i + rng.gen_range(0..4)).min(segments.len() - 1);
                segments.swap(i, j);
            }
            let mut r = Reassembler::new(Limits::default());
            let data_seq = isn.wrapping_add(1);
            prop_assert_eq!(feed(&mut r, (client(), server()), isn, SYN, &[]), Delivery::Nothing);
            let mut out = Vec::new();
            for (start, len) in &segments {
                let seq = data_seq.wrapping_add(*start as u32);
                match feed(&mut r, (client(), server()), seq, DATA, &stream[*start..start + len]) {
                    Delivery::Frames(f) => out.extend(f),
                    Delivery::Nothing | Delivery::Skipped(Skip::TcpRetransmission) => {}
                    other => prop_assert!(false, "seed {seed}: {other:?}"),
                }
            }
            let end = data_seq.wrapping_add(stream.len() as u32);
            feed(&mut r, (client(), server()), end, FIN, &[]);
            r.finish();
            prop_assert_eq!(r.take_skips(), Vec::<Skip>::new(), "seed {}", seed);
            prop_assert_eq!(out, frames, "seed {}", seed);
        }
    }

    #[test]
    fn a_hole_that_never_fills_loses_that_connection_only() {
        let frames: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 50]).collect();
        let stream = stream_of(&frames);
        let mut r = Reassembler::new(Limits::default());
        feed(&mut r, (client(), server()), 99, SYN, &[]);
        let other: SocketAddr = "10.0.0.3:40001".parse().expect("an address");
        feed(&mut r, (other, server()), 7, SYN, &[]);
        let mut out = Vec::new();
        // Segments of one frame each; the third never arrives.
        for (i, chunk) in stream.chunks(54).enumerate() {
            if i == 2 {
                continue;
            }
            if let Delivery::Frames(f) = feed(
                &mut r,
                (client(), server()),
                100 + (i * 54) as u32,
                DATA,
                chunk,
            ) {
                out.extend(f);
            }
        }
        assert_eq!(out, frames[..2].to_vec());
        let theirs = stream_of(&[vec![9; 10]]);
        assert_eq!(
            feed(&mut r, (other, server()), 8, DATA, &theirs),
            Delivery::Frames(vec![vec![9; 10]])
        );
        r.finish();
        assert_eq!(r.take_skips(), vec![Skip::TcpGap]);
    }

    #[test]
    fn bytes_held_over_all_connections_are_bounded() {
        let mut r = Reassembler::new(Limits {
            flows: 4,
            held_bytes: 100,
            held_total: 150,
        });
        let other: SocketAddr = "10.0.0.3:40001".parse().expect("an address");
        feed(&mut r, (client(), server()), 0, SYN, &[]);
        feed(&mut r, (other, server()), 0, SYN, &[]);
        // Each holds 80 ahead of a hole: the second would pass the total.
        let frame = stream_of(&[vec![5; 85]]);
        assert_eq!(
            feed(&mut r, (client(), server()), 10, DATA, &frame[9..]),
            Delivery::Nothing
        );
        assert_eq!(
            feed(&mut r, (other, server()), 10, DATA, &[0; 80]),
            Delivery::Skipped(Skip::TcpGap)
        );
        // The first fills its hole: its bytes are no longer held, and another may hold again.
        assert_eq!(
            feed(&mut r, (client(), server()), 1, DATA, &frame[..9]),
            Delivery::Frames(vec![vec![5; 85]])
        );
        assert_eq!(r.held_total, 0);
        let third: SocketAddr = "10.0.0.4:40002".parse().expect("an address");
        feed(&mut r, (third, server()), 0, SYN, &[]);
        assert_eq!(
            feed(&mut r, (third, server()), 10, DATA, &[0; 80]),
            Delivery::Nothing
        );
        assert_eq!(r.held_total, 80);
        r.finish();
        assert_eq!(r.held_total, 0);
    }

    #[test]
    fn replies_midstream_data_bad_frames_and_the_bound_are_skipped_with_reasons() {
        let mut r = Reassembler::new(Limits {
            flows: 1,
            held_bytes: 100,
            held_total: 1000,
        });
        // No SYN seen: no framing.
        assert_eq!(
            feed(&mut r, (client(), server()), 5, DATA, &[1, 2, 3]),
            Delivery::Skipped(Skip::TcpMidstream)
        );
        feed(&mut r, (client(), server()), 0, SYN, &[]);
        assert_eq!(
            feed(&mut r, (server(), client()), 0, (true, true, false), &[]),
            Delivery::Nothing
        );
        assert_eq!(
            feed(&mut r, (server(), client()), 1, DATA, &[1, 0, 0, 0, 0]),
            Delivery::Skipped(Skip::Reply)
        );
        // The flow bound: a second connection is not followed.
        let other: SocketAddr = "10.0.0.3:40001".parse().expect("an address");
        assert_eq!(
            feed(&mut r, (other, server()), 0, SYN, &[]),
            Delivery::Skipped(Skip::TooManyFlows)
        );
        // More held out of order than the bound: the connection is lost.
        assert_eq!(
            feed(&mut r, (client(), server()), 50, DATA, &[0; 101]),
            Delivery::Skipped(Skip::TcpGap)
        );
        assert_eq!(
            feed(&mut r, (client(), server()), 1, DATA, &[1, 0, 0, 0, 7]),
            Delivery::Skipped(Skip::TcpGap)
        );
        // A new connection on the same ports starts over; a zero length is not a frame.
        feed(&mut r, (client(), server()), 1000, SYN, &[]);
        assert_eq!(
            feed(&mut r, (client(), server()), 1001, DATA, &[0, 0, 0, 0, 1]),
            Delivery::Skipped(Skip::TcpBadFrame)
        );
        assert_eq!(
            feed(&mut r, (client(), server()), 1006, DATA, &[1, 0, 0, 0, 7]),
            Delivery::Skipped(Skip::TcpBadFrame)
        );
        // A connection closed mid-frame.
        feed(&mut r, (client(), server()), 5000, SYN, &[]);
        assert_eq!(
            feed(&mut r, (client(), server()), 5001, FIN, &[3, 0, 0, 0, 1]),
            Delivery::Nothing
        );
        assert_eq!(r.take_skips(), vec![Skip::TcpIncomplete]);
    }
}
