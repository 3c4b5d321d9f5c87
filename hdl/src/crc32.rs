//! CRC-32 (IEEE 802.3, as `crc32fast` and the firmware image's checksum compute it) over a
//! stream of 32-bit little-endian words, one word per cycle.
//!
//! The register block feeds it the firmware image as it is written into the image window (the
//! word holding the image's own CRC field as zero) and shows the running value in
//! `IMAGE_CRC`, so the host can check the upload before committing it.
//!
//! A word updates the CRC bit by bit, least significant first, through 32 unrolled steps of
//! the reflected polynomial 0xEDB88320: a network of XORs, which synthesis flattens. A word
//! may carry fewer than four bytes (`in_bytes`, for an image whose length is not a multiple
//! of four); `in_clear` starts a new CRC with that word. Each word gives one output beat: the
//! CRC of everything since the last clear, finalized (inverted) as `crc32fast` returns it.

use num_bigint::BigUint;
use rust_hdl::prelude::*;

use crate::flow::harness::{Beat, Port, StreamBlock};

/// The CRC unit.
#[derive(LogicBlock)]
pub struct Crc32 {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A word is offered.
    pub in_valid: Signal<In, Bit>,
    /// Always ready: one word a cycle.
    pub in_ready: Signal<Out, Bit>,
    /// Four bytes, the first in bits 7:0.
    pub in_data: Signal<In, Bits<32>>,
    /// Bytes of the word that count, 1 to 4 (from the first).
    pub in_bytes: Signal<In, Bits<3>>,
    /// The word starts a new CRC.
    pub in_clear: Signal<In, Bit>,
    /// The CRC after the last word is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it (the CRC is held until taken, and no word is taken meanwhile).
    pub out_ready: Signal<In, Bit>,
    /// CRC-32 of the bytes since the last clear.
    pub out_crc: Signal<Out, Bits<32>>,
    state: DFF<Bits<32>>,
    o_valid: DFF<Bit>,
    take: Signal<Local, Bit>,
    start: Signal<Local, Bits<32>>,
    step: [Signal<Local, Bits<32>>; 33],
    after: Signal<Local, Bits<32>>,
    poly: Constant<Bits<32>>,
}

impl Default for Crc32 {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_data: Default::default(),
            in_bytes: Default::default(),
            in_clear: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_crc: Default::default(),
            state: Default::default(),
            o_valid: Default::default(),
            take: Default::default(),
            start: Default::default(),
            step: std::array::from_fn(|_| Default::default()),
            after: Default::default(),
            poly: Constant::new(0xedb8_8320u64.into()),
        }
    }
}

impl Logic for Crc32 {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, o_valid);

        self.in_ready.next = !self.o_valid.q.val() | self.out_ready.val();
        self.take.next = self.in_valid.val() & self.in_ready.val();
        // The register holds the CRC before inversion; a clear starts from all ones.
        self.start.next = self.state.q.val();
        if self.in_clear.val() {
            self.start.next = 0xffff_ffff_u64.into();
        }
        self.step[0].next = self.start.val();
        for i in 0..32 {
            self.step[i + 1].next = self.step[i].val() >> 1;
            if self.step[i].val().get_bit(0) ^ self.in_data.val().get_bit(i) {
                self.step[i + 1].next = (self.step[i].val() >> 1) ^ self.poly.val();
            }
        }
        self.after.next = self.step[32].val();
        if self.in_bytes.val() == 1 {
            self.after.next = self.step[8].val();
        }
        if self.in_bytes.val() == 2 {
            self.after.next = self.step[16].val();
        }
        if self.in_bytes.val() == 3 {
            self.after.next = self.step[24].val();
        }

        if self.out_ready.val() {
            self.o_valid.d.next = false;
        }
        if self.take.val() {
            self.state.d.next = self.after.val();
            self.o_valid.d.next = true;
        }
        self.out_valid.next = self.o_valid.q.val();
        self.out_crc.next = !self.state.q.val();
    }
}

impl StreamBlock for Crc32 {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_data",
            bits: 32,
        },
        Port {
            name: "in_bytes",
            bits: 3,
        },
        Port {
            name: "in_clear",
            bits: 1,
        },
    ];
    const OUTPUTS: &'static [Port] = &[Port {
        name: "out_crc",
        bits: 32,
    }];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_data.next = u64::try_from(&beat[0]).unwrap_or(0).into();
            self.in_bytes.next = u64::try_from(&beat[1]).unwrap_or(0).into();
            self.in_clear.next = beat[2] == BigUint::from(1u8);
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| vec![self.out_crc.val().into()])
    }
}

/// The input beats for `messages` (each a new CRC, sent as words of up to four bytes) and the
/// output beats `crc32fast` gives: after each word, the CRC of its message so far.
pub fn stimulus(messages: &[Vec<u8>]) -> (Vec<Beat>, Vec<Beat>) {
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    for message in messages {
        let mut hasher = crc32fast::Hasher::new();
        for (i, word) in message.chunks(4).enumerate() {
            hasher.update(word);
            inputs.push(vec![
                BigUint::from_bytes_le(word),
                BigUint::from(word.len()),
                BigUint::from(u8::from(i == 0)),
            ]);
            outputs.push(vec![BigUint::from(hasher.clone().finalize())]);
        }
    }
    (inputs, outputs)
}

/// Messages for tests: every length from 1 to 9 bytes, the firmware image, and random ones.
pub fn sample_messages(random: usize, seed: u64) -> Vec<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let image = verity_firmware::image::Image::new(verity_firmware::program::ed25519_verify());
    let mut out: Vec<Vec<u8>> = (1..=9)
        .map(|n| (0..n).map(|_| rng.gen()).collect())
        .collect();
    out.push(image.encode());
    out.push(vec![0; 64]);
    out.push(vec![0xff; 13]);
    for _ in 0..random {
        let len = rng.gen_range(1..200);
        out.push((0..len).map(|_| rng.gen()).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};

    #[test]
    fn crc_matches_crc32fast_word_by_word() {
        let seed = 0xc4c_3232;
        let messages = sample_messages(20, seed);
        let (inputs, expected) = stimulus(&messages);
        let mut unit = Crc32::default();
        let trace = run(
            &mut unit,
            &inputs,
            &Stalls::random(seed, 20, 20),
            expected.len(),
            4 * inputs.len() as u64 + 100,
        );
        if let Err(mismatch) = compare(Crc32::OUTPUTS, &trace, &expected) {
            panic!("seed {seed}: {mismatch}");
        }
    }

    #[test]
    fn the_image_checksum_is_the_crc_with_its_field_zeroed() {
        // What the register block does: the word holding the CRC field goes in as zero.
        let image =
            verity_firmware::image::Image::new(verity_firmware::program::ed25519_verify()).encode();
        let mut zeroed = image.clone();
        zeroed[28..32].fill(0);
        let (_, expected) = stimulus(&[zeroed]);
        assert_eq!(
            expected.last().map(|b| b[0].clone()),
            Some(BigUint::from(verity_firmware::image::Image::checksum(
                &image
            )))
        );
    }
}
