//! A whole SHA-2 hash unit of the card: the padder feeding the compression core.
//!
//! Messages in as tagged word streams, digests out with their tags, valid/ready on both sides.
//! [`Sha512`] hashes R ‖ A ‖ M for the signature check; [`Sha256`] gives each transaction its
//! id.

use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::padder::{Padder, TAG_BITS};
use crate::sha2_core::Sha2Core;
use crate::sha2_spec::Sha2Spec;
use num_bigint::BigUint;
use rust_hdl::prelude::*;

/// SHA-512: 64-bit message words in, 512-bit digests out.
pub type Sha512 = Sha2<64, 1024, 512>;
/// SHA-256: 32-bit message words in, 256-bit digests out.
pub type Sha256 = Sha2<32, 512, 256>;

/// The padder and compression core of one SHA-2 function (`W`-bit words, `B`-bit blocks,
/// `D`-bit digests).
#[derive(LogicBlock)]
pub struct Sha2<const W: usize, const B: usize, const D: usize> {
    /// Clock of the hash pipeline.
    pub clock: Signal<In, Clock>,
    /// A message word is offered.
    pub in_valid: Signal<In, Bit>,
    /// The unit takes the offered word this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// Message bytes, first byte in the most significant position.
    pub in_data: Signal<In, Bits<W>>,
    /// Bytes used in a `last` word (0 to `W/8`).
    pub in_len: Signal<In, Bits<4>>,
    /// This word ends its message.
    pub in_last: Signal<In, Bit>,
    /// The message's tag.
    pub in_tag: Signal<In, Bits<TAG_BITS>>,
    /// A digest is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the digest this cycle.
    pub out_ready: Signal<In, Bit>,
    /// The digest, first byte in the most significant position.
    pub out_digest: Signal<Out, Bits<D>>,
    /// The digest's message tag.
    pub out_tag: Signal<Out, Bits<TAG_BITS>>,
    padder: Padder<W, B>,
    core: Sha2Core<W, B, D>,
}

impl<const W: usize, const B: usize, const D: usize> Default for Sha2<W, B, D> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_data: Default::default(),
            in_len: Default::default(),
            in_last: Default::default(),
            in_tag: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_digest: Default::default(),
            out_tag: Default::default(),
            padder: Default::default(),
            core: Sha2Core::new(&Sha2Spec::for_word_bits(W)),
        }
    }
}

impl<const W: usize, const B: usize, const D: usize> Logic for Sha2<W, B, D> {
    #[hdl_gen]
    fn update(&mut self) {
        self.padder.clock.next = self.clock.val();
        self.core.clock.next = self.clock.val();
        self.padder.in_valid.next = self.in_valid.val();
        self.in_ready.next = self.padder.in_ready.val();
        self.padder.in_data.next = self.in_data.val();
        self.padder.in_len.next = self.in_len.val();
        self.padder.in_last.next = self.in_last.val();
        self.padder.in_tag.next = self.in_tag.val();
        self.core.in_valid.next = self.padder.blk_valid.val();
        self.padder.blk_ready.next = self.core.in_ready.val();
        self.core.in_block.next = self.padder.blk_data.val();
        self.core.in_first.next = self.padder.blk_first.val();
        self.core.in_last.next = self.padder.blk_last.val();
        self.core.in_tag.next = self.padder.blk_tag.val();
        self.out_valid.next = self.core.out_valid.val();
        self.core.out_ready.next = self.out_ready.val();
        self.out_digest.next = self.core.out_digest.val();
        self.out_tag.next = self.core.out_tag.val();
    }
}

impl<const W: usize, const B: usize, const D: usize> Sha2<W, B, D> {
    /// The input beats that carry `message` with `tag`: full big-endian words, then a last
    /// word holding the remaining 0 to `W/8` bytes (the empty message is one empty last word).
    pub fn message_beats(message: &[u8], tag: u16) -> Vec<Beat> {
        let word_bytes = W / 8;
        // A message ending on a word boundary ends with a full last word; any other (the
        // empty one included) ends with a last word holding its remaining bytes.
        let split = match message.len() % word_bytes {
            0 if !message.is_empty() => message.len() - word_bytes,
            tail => message.len() - tail,
        };
        let (body, tail) = message.split_at(split);
        body.chunks(word_bytes)
            .map(|word| word_beat(word, word_bytes, false, tag))
            .chain(std::iter::once(word_beat(tail, word_bytes, true, tag)))
            .collect()
    }

    /// The output beat for `digest` with `tag`.
    pub fn digest_beat(digest: &[u8], tag: u16) -> Beat {
        vec![BigUint::from_bytes_be(digest), BigUint::from(tag)]
    }
}

fn word_beat(bytes: &[u8], word_bytes: usize, last: bool, tag: u16) -> Beat {
    let mut word = bytes.to_vec();
    word.resize(word_bytes, 0);
    vec![
        BigUint::from_bytes_be(&word),
        BigUint::from(if last { bytes.len() } else { word_bytes }),
        BigUint::from(u8::from(last)),
        BigUint::from(tag),
    ]
}

impl<const W: usize, const B: usize, const D: usize> StreamBlock for Sha2<W, B, D> {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_data",
            bits: W,
        },
        Port {
            name: "in_len",
            bits: 4,
        },
        Port {
            name: "in_last",
            bits: 1,
        },
        Port {
            name: "in_tag",
            bits: TAG_BITS,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_digest",
            bits: D,
        },
        Port {
            name: "out_tag",
            bits: TAG_BITS,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_data.next = beat[0].clone().into();
            self.in_len.next = beat[1].clone().into();
            self.in_last.next = beat[2] == BigUint::from(1u8);
            self.in_tag.next = beat[3].clone().into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| vec![self.out_digest.val().into(), self.out_tag.val().into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use sha2::Digest;

    /// Lengths around every padding boundary of both functions.
    const BOUNDARIES: [usize; 16] = [
        0, 1, 55, 56, 63, 64, 111, 112, 119, 120, 127, 128, 239, 240, 247, 248,
    ];

    fn messages(seed: u64, lengths: &[usize]) -> Vec<Vec<u8>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        lengths
            .iter()
            .map(|&len| (0..len).map(|_| rng.gen()).collect())
            .collect()
    }

    /// Streams `messages` through a fresh unit under `stalls` and checks every digest and
    /// tag; returns the cycles at which the digests came out.
    fn check<const W: usize, const B: usize, const D: usize>(
        messages: &[Vec<u8>],
        reference: fn(&[u8]) -> Vec<u8>,
        stalls: &Stalls,
        seed: u64,
    ) -> Vec<u64> {
        let mut uut = Sha2::<W, B, D>::default();
        uut.connect_all();
        let inputs: Vec<Beat> = messages
            .iter()
            .enumerate()
            .flat_map(|(tag, m)| Sha2::<W, B, D>::message_beats(m, tag as u16))
            .collect();
        let expected: Vec<Beat> = messages
            .iter()
            .enumerate()
            .map(|(tag, m)| Sha2::<W, B, D>::digest_beat(&reference(m), tag as u16))
            .collect();
        let trace = run(&mut uut, &inputs, stalls, expected.len(), 200_000);
        if let Err(mismatch) = compare(Sha2::<W, B, D>::OUTPUTS, &trace, &expected) {
            panic!("seed {seed}: {mismatch}");
        }
        trace.outputs.iter().map(|(cycle, _)| *cycle).collect()
    }

    fn sha512(m: &[u8]) -> Vec<u8> {
        sha2::Sha512::digest(m).to_vec()
    }

    fn sha256(m: &[u8]) -> Vec<u8> {
        sha2::Sha256::digest(m).to_vec()
    }

    #[test]
    fn sha512_padding_boundaries() {
        check::<64, 1024, 512>(&messages(1, &BOUNDARIES), sha512, &Stalls::none(), 1);
    }

    #[test]
    fn sha256_padding_boundaries() {
        check::<32, 512, 256>(&messages(2, &BOUNDARIES), sha256, &Stalls::none(), 2);
    }

    #[test]
    fn sha512_takes_one_block_per_80_cycles() {
        // 111 bytes pad to exactly one block: back-to-back digests are one block apart.
        let cycles = check::<64, 1024, 512>(&messages(3, &[111; 6]), sha512, &Stalls::none(), 3);
        let gaps: Vec<u64> = cycles.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, [80; 5]);
    }

    #[test]
    fn sha256_takes_one_block_per_64_cycles() {
        let cycles = check::<32, 512, 256>(&messages(4, &[55; 6]), sha256, &Stalls::none(), 4);
        let gaps: Vec<u64> = cycles.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, [64; 5]);
    }

    #[test]
    fn random_lengths_under_random_stalls() {
        let seed = 0x5a17;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let max = verity_firmware::abi::MAX_MESSAGE_LEN + 64;
        let lengths: Vec<usize> = (0..6).map(|_| rng.gen_range(0..=max)).collect();
        let stalls = Stalls::random(seed, 30, 30);
        check::<64, 1024, 512>(&messages(seed, &lengths), sha512, &stalls, seed);
        check::<32, 512, 256>(&messages(seed, &lengths), sha256, &stalls, seed);
    }
}
