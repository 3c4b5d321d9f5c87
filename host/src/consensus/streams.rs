//! Proposal-part streams: the gossip layer may deliver a stream's messages out of order, so
//! each stream's messages are held until the ones before them arrive, and passed on in order
//! to that stream's [`Assembly`].
//!
//! A stream is named by its publisher and its stream id. Everything is bounded: the number
//! of open streams ([`STREAMS_MAX`]; a new one evicts the oldest), and the messages held per
//! stream (a block's parts plus its header, signature and end — more is refused before it is
//! kept).

use std::collections::BTreeMap;

use malachitebft_app_channel::app::types::PeerId;
use malachitebft_engine::util::streaming::{StreamContent, StreamId, StreamMessage};

use super::context::ProposalPart;
use super::parts::{Assembled, Assembly, PartError, TRANSACTIONS_PER_PART};

/// Streams open at once: a few rounds of a few proposers.
pub const STREAMS_MAX: usize = 64;

/// Why a stream message was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The stream's parts do not make a block.
    #[error(transparent)]
    Part(#[from] PartError),
    /// A sequence number beyond what a block of the largest size needs.
    #[error("sequence {sequence} is beyond the {max} messages a block takes")]
    TooFar {
        /// The message's.
        sequence: u64,
        /// The bound.
        max: u64,
    },
}

struct Stream {
    /// When it opened, for eviction.
    opened: u64,
    next: u64,
    held: BTreeMap<u64, StreamContent<ProposalPart>>,
    assembly: Assembly,
}

/// The open streams.
pub struct Streams {
    block_max: usize,
    opened: u64,
    streams: BTreeMap<(PeerId, StreamId), Stream>,
}

impl Streams {
    /// Streams of blocks of at most `block_max` transactions.
    pub fn new(block_max: usize) -> Self {
        Self {
            block_max,
            opened: 0,
            streams: BTreeMap::new(),
        }
    }

    /// The most messages one stream takes: the parts' header, the block's header, data
    /// parts, signature, end.
    fn messages_max(&self) -> u64 {
        (self.block_max.div_ceil(TRANSACTIONS_PER_PART) + 4) as u64
    }

    /// Takes a message from `publisher`; the block, once every part up to its signature has
    /// arrived. A refused stream is closed.
    pub fn push(
        &mut self,
        publisher: PeerId,
        message: StreamMessage<ProposalPart>,
    ) -> Result<Option<Assembled>, StreamError> {
        let max = self.messages_max();
        if message.sequence >= max {
            return Err(StreamError::TooFar {
                sequence: message.sequence,
                max,
            });
        }
        let key = (publisher, message.stream_id.clone());
        if !self.streams.contains_key(&key) {
            if self.streams.len() >= STREAMS_MAX {
                let oldest = self
                    .streams
                    .iter()
                    .min_by_key(|(_, s)| s.opened)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.streams.remove(&oldest);
                }
            }
            self.opened += 1;
            let stream = Stream {
                opened: self.opened,
                next: 0,
                held: BTreeMap::new(),
                assembly: Assembly::new(self.block_max),
            };
            self.streams.insert(key.clone(), stream);
        }
        let stream = self.streams.get_mut(&key).expect("inserted above");
        if message.sequence >= stream.next {
            stream.held.insert(message.sequence, message.content);
        }
        let mut assembled = None;
        let mut ended = false;
        while let Some(content) = stream.held.remove(&stream.next) {
            stream.next += 1;
            match content {
                StreamContent::Data(part) => match stream.assembly.push(part) {
                    Ok(Some(block)) => assembled = Some(block),
                    Ok(None) => {}
                    Err(error) => {
                        self.streams.remove(&key);
                        return Err(error.into());
                    }
                },
                StreamContent::Fin => ended = true,
            }
        }
        if ended {
            self.streams.remove(&key);
        }
        Ok(assembled)
    }

    /// Streams open.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use malachitebft_core_types::Round;

    use super::*;
    use crate::consensus::context::{Address, Height, PrivateKey};
    use crate::consensus::parts::{split, Header};
    use crate::testing;

    fn peer() -> PeerId {
        let id = malachitebft_app_channel::app::types::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
            .to_bytes();
        PeerId::from_bytes(&id).expect("a peer id")
    }

    fn messages(id: u8, transactions: usize) -> (Vec<StreamMessage<ProposalPart>>, Vec<u8>) {
        let key = PrivateKey(testing::key(1));
        let transactions: Vec<_> = (0..transactions)
            .map(|n| testing::transfer(1, 2, n as u64, 0, 3, 1))
            .collect();
        let block = crate::block::assemble(&crate::block::Header::new(5, [1; 32]), &transactions);
        let header = Header {
            height: Height(5),
            round: Round::new(0),
            pol_round: Round::Nil,
            proposer: Address(key.0.verifying_key().to_bytes()),
        };
        let mut contents: Vec<_> = split(&key, 1, header, &block)
            .into_iter()
            .map(StreamContent::Data)
            .collect();
        contents.push(StreamContent::Fin);
        let stream = StreamId::new(Bytes::from(vec![id]));
        let messages = contents
            .into_iter()
            .enumerate()
            .map(|(n, c)| StreamMessage::new(stream.clone(), n as u64, c))
            .collect();
        (messages, block)
    }

    #[test]
    fn out_of_order_parts_make_the_block_once_all_are_in() {
        let peer = peer();
        let (mut messages, block) = messages(1, 200);
        // Header, block header, 4 data parts, signature, end: delivered backwards.
        assert_eq!(messages.len(), 8);
        messages.reverse();
        let mut streams = Streams::new(4096);
        let last = messages.pop().expect("seven");
        for message in messages {
            assert_eq!(streams.push(peer, message).expect("accepted"), None);
        }
        let assembled = streams.push(peer, last).expect("accepted").expect("whole");
        assert_eq!(assembled.block, block);
        assert!(streams.is_empty(), "the end closed the stream");
    }

    #[test]
    fn bounds_hold_and_a_bad_stream_is_closed() {
        let peer = peer();
        let mut streams = Streams::new(64);
        let (messages, _) = messages(2, 1);
        let far = StreamMessage::new(messages[0].stream_id.clone(), 5, StreamContent::Fin);
        assert_eq!(
            streams.push(peer, far),
            Err(StreamError::TooFar {
                sequence: 5,
                max: 5
            })
        );
        // Data before the header.
        let early = StreamMessage::new(
            messages[1].stream_id.clone(),
            0,
            messages[1].content.clone(),
        );
        assert_eq!(
            streams.push(peer, early),
            Err(StreamError::Part(PartError::BeforeInit))
        );
        assert!(streams.is_empty());
        for id in 0..=STREAMS_MAX {
            let (messages, _) = self::messages(id as u8, 1);
            streams
                .push(peer, messages[0].clone())
                .expect("a header is accepted");
        }
        assert_eq!(streams.len(), STREAMS_MAX, "the oldest was evicted");
    }
}
