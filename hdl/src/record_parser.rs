//! The request record parser: the card's host-to-card stream in, checked record words out.
//!
//! The stream carries 512-bit beats (the XDMA core's AXI-Stream width), byte 0 of a beat in
//! bits 7:0, with `last` on the final beat of each DMA transfer and `bytes` saying how many
//! bytes of that beat are real (every other beat is full). Records follow
//! `verity_firmware::abi`: a record is 2 to 18 whole beats, its header in beat 0.
//!
//! Every beat of a record comes out as one beat (its index and data, for the request buffer),
//! and the record's last beat says what the record is, with the same rules and the same
//! precedence as the firmware's `Request::decode`:
//!
//! | `out_kind` | meaning | `out_code` |
//! |---|---|---|
//! | 0 | a word of a record, more to come | 0 |
//! | 1 | the record's last word: the record is answered | 0 = a request; 1 `MessageTooLong`, 2 `LengthMismatch`, 3 `Reserved`, 4 `Padding` (`RecordError::code`) |
//! | 2 | the record cannot be framed: discard its words; the rest of the transfer is dropped | 5 bad magic, 6 `words` outside 2..=18, 7 cut short |
//!
//! A framing error on a record's first beat gives one kind-2 beat; the parser then takes and
//! drops beats until the end of the transfer without output. A record cut short (the transfer
//! ends, or a beat is partial, before its last word) gives its words so far and a kind-2 beat
//! for the beat that cut it. The next transfer starts in step.
//!
//! One beat in, one beat out, registered: the parser keeps up with the stream at one beat per
//! cycle and adds one cycle of latency.

use num_bigint::BigUint;
use rust_hdl::prelude::*;

use crate::flow::harness::{Beat, Port, StreamBlock};

/// Where the parser is in the stream.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum ParseState {
    /// The next beat is a record's header.
    Header,
    /// Inside a record.
    Body,
    /// Dropping beats to the end of the transfer.
    Drop,
}

/// `out_kind` values.
pub mod kind {
    /// A record word, more to come.
    pub const WORD: u8 = 0;
    /// The record's last word, with its verdict in `out_code`.
    pub const END: u8 = 1;
    /// The record cannot be framed.
    pub const DROP: u8 = 2;
}

/// `out_code` values of a framing drop.
pub mod framing {
    /// The magic is not "VR".
    pub const MAGIC: u8 = 5;
    /// `words` is outside 2..=18.
    pub const WORDS: u8 = 6;
    /// The transfer ended inside the record.
    pub const TRUNCATED: u8 = 7;
}

/// The parser.
#[derive(LogicBlock, Default)]
pub struct RecordParser {
    /// The card clock.
    pub clock: Signal<In, Clock>,
    /// A beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The parser takes it this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// The beat, byte 0 in bits 7:0.
    pub in_data: Signal<In, Bits<512>>,
    /// The beat ends its transfer.
    pub in_last: Signal<In, Bit>,
    /// Real bytes in the beat, 1 to 64 (64 on every beat but possibly the last).
    pub in_bytes: Signal<In, Bits<7>>,
    /// A beat is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it this cycle.
    pub out_ready: Signal<In, Bit>,
    /// What the beat is (see [`kind`]).
    pub out_kind: Signal<Out, Bits<2>>,
    /// The word's index in its record, 0 to 17.
    pub out_index: Signal<Out, Bits<5>>,
    /// The word.
    pub out_data: Signal<Out, Bits<512>>,
    /// The record's tag (valid on kind 1).
    pub out_tag: Signal<Out, Bits<64>>,
    /// The record's message length (valid on kind 1 with code 0).
    pub out_msg_len: Signal<Out, Bits<11>>,
    /// The record's verdict (kind 1) or framing error (kind 2).
    pub out_code: Signal<Out, Bits<3>>,
    state: DFF<ParseState>,
    index: DFF<Bits<5>>,
    words: DFF<Bits<5>>,
    tag: DFF<Bits<64>>,
    msg_len: DFF<Bits<16>>,
    reserved: DFF<Bit>,
    mismatch: DFF<Bit>,
    padding: DFF<Bit>,
    /// Message bytes left at the start of the next beat (the end of the message, less the
    /// beats seen), saturating at 0.
    left: DFF<Bits<12>>,
    o_valid: DFF<Bit>,
    o_kind: DFF<Bits<2>>,
    o_index: DFF<Bits<5>>,
    o_data: DFF<Bits<512>>,
    o_tag: DFF<Bits<64>>,
    o_msg_len: DFF<Bits<11>>,
    o_code: DFF<Bits<3>>,
    take: Signal<Local, Bit>,
    h_words: Signal<Local, Bits<8>>,
    h_msg_len: Signal<Local, Bits<16>>,
    h_needed: Signal<Local, Bits<17>>,
    partial: Signal<Local, Bit>,
    complete: Signal<Local, Bit>,
    keep: Signal<Local, Bits<7>>,
    pad_mask: Signal<Local, Bits<512>>,
    pad_bad: Signal<Local, Bit>,
    code: Signal<Local, Bits<3>>,
}

impl Logic for RecordParser {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, index, words, tag, msg_len, reserved, mismatch, padding, left,
            o_valid, o_kind, o_index, o_data, o_tag, o_msg_len, o_code
        );

        // A registered output stage: a new beat is taken when the output is empty or leaves.
        self.in_ready.next = !self.o_valid.q.val() | self.out_ready.val();
        self.take.next = self.in_valid.val() & self.in_ready.val();
        if self.out_ready.val() {
            self.o_valid.d.next = false;
        }

        // The header's fields (beat 0): magic 15:0, words 23:16, flags 31:24, msg_len 47:32,
        // reserved 63:48, tag 127:64. A record of msg_len bytes needs ⌈(112 + msg_len)/64⌉
        // words.
        self.h_words.next = self.in_data.val().get_bits::<8>(16);
        self.h_msg_len.next = self.in_data.val().get_bits::<16>(32);
        self.h_needed.next = (bit_cast::<17, 16>(self.h_msg_len.val()) + 175) >> 6;
        self.partial.next = self.in_bytes.val() != 64;
        self.complete.next = (self.index.q.val() + 1) == self.words.q.val();

        // Padding: the bytes of this beat at or after the message's end must be zero.
        self.keep.next = 64.into();
        if self.left.q.val() < 64 {
            self.keep.next = self.left.q.val().get_bits::<7>(0);
        }
        self.pad_mask.next =
            !bit_cast::<512, 1>(0.into()) << (bit_cast::<10, 7>(self.keep.val()) << 3);
        self.pad_bad.next = (self.in_data.val() & self.pad_mask.val()).any();

        // The record's verdict, in `Request::decode`'s order.
        self.code.next = 0.into();
        if self.padding.q.val() | self.pad_bad.val() {
            self.code.next = 4.into();
        }
        if self.mismatch.q.val() {
            self.code.next = 2.into();
        }
        if self.msg_len.q.val() > 1024 {
            self.code.next = 1.into();
        }
        if self.reserved.q.val() {
            self.code.next = 3.into();
        }

        self.out_valid.next = self.o_valid.q.val();
        self.out_kind.next = self.o_kind.q.val();
        self.out_index.next = self.o_index.q.val();
        self.out_data.next = self.o_data.q.val();
        self.out_tag.next = self.o_tag.q.val();
        self.out_msg_len.next = self.o_msg_len.q.val();
        self.out_code.next = self.o_code.q.val();

        // Kinds and codes as in [`kind`] and [`framing`] (the Verilog export cannot name Rust
        // constants).
        if self.take.val() {
            self.o_data.d.next = self.in_data.val();
            self.o_index.d.next = self.index.q.val();
            self.o_tag.d.next = self.tag.q.val();
            self.o_msg_len.d.next = self.msg_len.q.val().get_bits::<11>(0);
            self.o_kind.d.next = 0.into();
            self.o_code.d.next = 0.into();
            match self.state.q.val() {
                ParseState::Header => {
                    self.o_valid.d.next = true;
                    self.o_index.d.next = 0.into();
                    self.o_tag.d.next = self.in_data.val().get_bits::<64>(64);
                    self.o_msg_len.d.next = self.h_msg_len.val().get_bits::<11>(0);
                    self.tag.d.next = self.in_data.val().get_bits::<64>(64);
                    self.words.d.next = self.h_words.val().get_bits::<5>(0);
                    self.msg_len.d.next = self.h_msg_len.val();
                    self.reserved.d.next = self.in_data.val().get_bits::<8>(24).any()
                        | self.in_data.val().get_bits::<16>(48).any();
                    self.mismatch.d.next =
                        self.h_needed.val() != bit_cast::<17, 8>(self.h_words.val());
                    self.padding.d.next = false;
                    // The header beat holds no padding: a message ends at byte 112 or later.
                    self.left.d.next = bit_cast::<12, 16>(self.h_msg_len.val() + 48);
                    if self.h_msg_len.val() > 1024 {
                        self.left.d.next = 1072.into();
                    }
                    self.index.d.next = 1.into();
                    self.state.d.next = ParseState::Body;
                    if self.in_bytes.val() < 16 {
                        self.o_kind.d.next = 2.into();
                        self.o_code.d.next = 7.into();
                        self.state.d.next = ParseState::Header;
                    } else if self.in_data.val().get_bits::<16>(0) != 0x5652 {
                        self.o_kind.d.next = 2.into();
                        self.o_code.d.next = 5.into();
                        self.state.d.next = ParseState::Drop;
                    } else if (self.h_words.val() < 2) | (self.h_words.val() > 18) {
                        self.o_kind.d.next = 2.into();
                        self.o_code.d.next = 6.into();
                        self.state.d.next = ParseState::Drop;
                    } else if self.in_last.val() | self.partial.val() {
                        self.o_kind.d.next = 2.into();
                        self.o_code.d.next = 7.into();
                        self.state.d.next = ParseState::Drop;
                    }
                    if self.in_last.val() {
                        self.state.d.next = ParseState::Header;
                    }
                }
                ParseState::Body => {
                    self.o_valid.d.next = true;
                    self.index.d.next = self.index.q.val() + 1;
                    self.padding.d.next = self.padding.q.val() | self.pad_bad.val();
                    self.left.d.next = 0.into();
                    if self.left.q.val() > 64 {
                        self.left.d.next = self.left.q.val() - 64;
                    }
                    if self.partial.val() | (self.in_last.val() & !self.complete.val()) {
                        self.o_kind.d.next = 2.into();
                        self.o_code.d.next = 7.into();
                        self.state.d.next = ParseState::Drop;
                        if self.in_last.val() {
                            self.state.d.next = ParseState::Header;
                        }
                    } else if self.complete.val() {
                        self.o_kind.d.next = 1.into();
                        self.o_code.d.next = self.code.val();
                        self.state.d.next = ParseState::Header;
                    }
                }
                ParseState::Drop => {
                    if self.in_last.val() {
                        self.state.d.next = ParseState::Header;
                    }
                }
            }
        }
    }
}

impl StreamBlock for RecordParser {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_data",
            bits: 512,
        },
        Port {
            name: "in_last",
            bits: 1,
        },
        Port {
            name: "in_bytes",
            bits: 7,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_kind",
            bits: 2,
        },
        Port {
            name: "out_index",
            bits: 5,
        },
        Port {
            name: "out_data",
            bits: 512,
        },
        Port {
            name: "out_tag",
            bits: 64,
        },
        Port {
            name: "out_msg_len",
            bits: 11,
        },
        Port {
            name: "out_code",
            bits: 3,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_data.next = beat[0].clone().into();
            self.in_last.next = beat[1] == BigUint::from(1u8);
            self.in_bytes.next = u64::try_from(&beat[2]).unwrap_or(0).into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid.val().then(|| {
            vec![
                self.out_kind.val().into(),
                self.out_index.val().into(),
                self.out_data.val().into(),
                self.out_tag.val().into(),
                self.out_msg_len.val().into(),
                self.out_code.val().into(),
            ]
        })
    }
}

/// The input beats of `transfers`: 64-byte beats, `last` on each transfer's final beat, which
/// may be partial (its missing bytes zero).
pub fn beats(transfers: &[Vec<u8>]) -> Vec<Beat> {
    let mut out = Vec::new();
    for transfer in transfers {
        let chunks: Vec<&[u8]> = transfer.chunks(64).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            out.push(vec![
                BigUint::from_bytes_le(chunk),
                BigUint::from(u8::from(i + 1 == chunks.len())),
                BigUint::from(chunk.len()),
            ]);
        }
    }
    out
}

/// The output beats the firmware's `Request::decode` implies for `transfers`: each record's
/// words, its last one carrying the record's verdict, or a framing drop where decoding stops.
pub fn expected(transfers: &[Vec<u8>]) -> Vec<Beat> {
    use verity_firmware::abi::{RecordError, Request};
    let mut out = Vec::new();
    for transfer in transfers {
        let mut at = 0;
        while at < transfer.len() {
            let rest = &transfer[at..];
            let header = |i: usize| rest.get(i).copied().unwrap_or(0);
            let tag = BigUint::from_bytes_le(&rest[8.min(rest.len())..16.min(rest.len())]);
            let msg_len = u16::from_le_bytes([header(4), header(5)]) & 0x7ff;
            let beat = |index: usize, kind: u8, code: u8| {
                let data = &rest[(64 * index).min(rest.len())..(64 * index + 64).min(rest.len())];
                vec![
                    BigUint::from(kind),
                    BigUint::from(index),
                    BigUint::from_bytes_le(data),
                    tag.clone(),
                    BigUint::from(msg_len),
                    BigUint::from(code),
                ]
            };
            let (len, code) = match Request::decode(rest) {
                Ok((_, len)) => (len, 0),
                Err(Ok(rejected)) => (rejected.len, rejected.error.code().unwrap_or(0)),
                Err(Err(error)) => {
                    let (words, code) = match error {
                        RecordError::Magic(_) => (0, framing::MAGIC),
                        RecordError::Words(_) => (0, framing::WORDS),
                        // The words before the beat that cut the record, then that beat.
                        _ => ((rest.len() - 1) / 64, framing::TRUNCATED),
                    };
                    out.extend((0..words).map(|i| beat(i, kind::WORD, 0)));
                    out.push(beat(words, kind::DROP, code));
                    break;
                }
            };
            let words = len / 64;
            out.extend((0..words - 1).map(|i| beat(i, kind::WORD, 0)));
            out.push(beat(words - 1, kind::END, code));
            at += len;
        }
    }
    out
}

/// Transfers for tests: `count` transfers of one to four records each, a mix of good records
/// and every kind of bad one the ABI names (answerable and unframeable), from `seed`.
pub fn sample_transfers(count: usize, seed: u64) -> Vec<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    use verity_firmware::abi::Request;
    use verity_firmware::Tag;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut transfer = Vec::new();
            for _ in 0..rng.gen_range(1..=4) {
                let len = match rng.gen_range(0..10) {
                    0 => 1024,
                    1 => 0,
                    _ => rng.gen_range(0..300),
                };
                let message: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                let at = transfer.len();
                Request {
                    tag: Tag::new(rng.gen()),
                    public_key: rng.gen(),
                    signature: {
                        let mut s = [0u8; 64];
                        rng.fill(&mut s[..]);
                        s
                    },
                    message: &message,
                }
                .encode(&mut transfer)
                .expect("at most 1,024 bytes");
                let end = transfer.len();
                let record = &mut transfer[at..];
                match rng.gen_range(0..16) {
                    // A byte anywhere in the padding, the first one included.
                    0 if 112 + len < end - at => {
                        record[rng.gen_range(112 + len..end - at)] = rng.gen_range(1..=255)
                    }
                    1 => record[3] = rng.gen_range(1..=255),
                    2 => record[6 + rng.gen_range(0..2)] = 1,
                    3 => record[4..6]
                        .copy_from_slice(&rng.gen_range(1025u16..=u16::MAX).to_le_bytes()),
                    4 => record[2] = rng.gen_range(2..=18),
                    5 => record[rng.gen_range(0..2)] ^= 1 << rng.gen_range(0..8),
                    6 => record[2] = [0, 1, 19, 255][rng.gen_range(0..4)],
                    7 => {
                        let cut = rng.gen_range(1..end - at);
                        transfer.truncate(at + cut);
                        break;
                    }
                    _ => {}
                }
            }
            transfer
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};

    #[test]
    fn records_are_classified_as_the_firmware_decodes_them() {
        let seed = 0x0bad_f00d;
        let transfers = sample_transfers(40, seed);
        let inputs = beats(&transfers);
        let expected = expected(&transfers);
        let kinds: Vec<u8> = expected
            .iter()
            .map(|b| u8::try_from(&b[0]).unwrap_or(9) * 10 + u8::try_from(&b[5]).unwrap_or(9))
            .collect();
        for code in [10, 11, 12, 13, 14, 25, 26, 27] {
            assert!(
                kinds.contains(&code),
                "seed {seed}: no kind/code {code} in the sample"
            );
        }
        let mut parser = RecordParser::default();
        let trace = run(
            &mut parser,
            &inputs,
            &Stalls::random(seed, 20, 20),
            expected.len(),
            10 * inputs.len() as u64 + 100,
        );
        if let Err(mismatch) = compare(RecordParser::OUTPUTS, &trace, &expected) {
            panic!("seed {seed}: {mismatch}");
        }
    }
}
