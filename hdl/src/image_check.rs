//! The image upload's checker: the register block's `IMAGE_LEN`, image window and
//! `IMAGE_COMMIT` writes in, the image's code words and constants out to the engines' RAMs,
//! and at commit the verdict `Image::decode` gives, as the register block reports it.
//!
//! An upload starts with the announced length (`IMAGE_LEN`); each data write brings the next
//! four bytes. Like `sim::bar`, the checker keeps nothing past the announced length (or
//! anything, if the length is beyond the largest image) and remembers the overrun. The first
//! eight words are the header; after it, pairs of words are code words (each checked by
//! [`crate::instr_check`] and handed out as it completes) and groups of eight are constants
//! (each checked below p and handed out). The CRC runs over every byte kept, the header's CRC
//! field as zero ([`crate::crc32`]).
//!
//! The verdict at commit has `Image::decode`'s precedence: a wrong size, header field or
//! declared length is a header error; then a CRC that differs from the header's is a checksum
//! error; then a code word that is not an instruction (or branches outside the code), a
//! constant not below p or an entry point outside the code is a header error again.
//!
//! | `out_kind` | beat |
//! |---|---|
//! | 0 | a code word: `out_addr` its index, `out_data` bits 63:0 |
//! | 1 | a constant: `out_addr` its index, `out_data` the value |
//! | 2 | the verdict at commit: `out_verdict` 0 good, 1 checksum error, 2 header error; `out_crc` the CRC of the bytes kept |

use num_bigint::BigUint;
use rust_hdl::prelude::*;

use crate::crc32::Crc32;
use crate::field_value::{excess_addend, modulus};
use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::instr_check::InstrCheck;

/// `in_cmd` values.
pub mod command {
    /// A new upload of `in_value` bytes (`IMAGE_LEN`).
    pub const START: u8 = 0;
    /// The next four bytes (an image window write).
    pub const DATA: u8 = 1;
    /// Check what was uploaded (`IMAGE_COMMIT`).
    pub const COMMIT: u8 = 2;
}

/// The checker.
#[derive(LogicBlock)]
pub struct ImageCheck {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A command is offered.
    pub in_valid: Signal<In, Bit>,
    /// The checker takes it this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// What it is (see [`command`]).
    pub in_cmd: Signal<In, Bits<2>>,
    /// The length (start) or the four bytes, first in bits 7:0 (data).
    pub in_value: Signal<In, Bits<32>>,
    /// A beat is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    /// What the beat is (see the module's table).
    pub out_kind: Signal<Out, Bits<2>>,
    /// The code word's or constant's index.
    pub out_addr: Signal<Out, Bits<12>>,
    /// The code word or constant.
    pub out_data: Signal<Out, Bits<256>>,
    /// The verdict.
    pub out_verdict: Signal<Out, Bits<2>>,
    /// The CRC of the bytes kept.
    pub out_crc: Signal<Out, Bits<32>>,
    /// The header's entry point (meaningful once the verdict is good).
    pub entry: Signal<Out, Bits<12>>,
    crc: Crc32,
    check: InstrCheck,
    minus_p: Constant<Bits<257>>,
    announced: DFF<Bits<32>>,
    received: DFF<Bits<16>>,
    overrun: DFF<Bit>,
    header: [DFF<Bits<32>>; 8],
    low: DFF<Bits<32>>,
    constant: DFF<Bits<224>>,
    code_words: DFF<Bits<13>>,
    constants: DFF<Bits<9>>,
    content_bad: DFF<Bit>,
    o_valid: DFF<Bit>,
    o_kind: DFF<Bits<2>>,
    o_addr: DFF<Bits<12>>,
    o_data: DFF<Bits<256>>,
    o_verdict: DFF<Bits<2>>,
    take: Signal<Local, Bit>,
    index: Signal<Local, Bits<16>>,
    keep: Signal<Local, Bit>,
    left: Signal<Local, Bits<32>>,
    code_end: Signal<Local, Bits<16>>,
    const_end: Signal<Local, Bits<16>>,
    in_code: Signal<Local, Bit>,
    in_constants: Signal<Local, Bit>,
    code_index: Signal<Local, Bits<12>>,
    const_index: Signal<Local, Bits<12>>,
    const_offset: Signal<Local, Bits<16>>,
    value: Signal<Local, Bits<256>>,
    value_excess: Signal<Local, Bits<257>>,
    h_words: Signal<Local, Bits<16>>,
    h_consts: Signal<Local, Bits<16>>,
    declared: Signal<Local, Bits<32>>,
    header_bad: Signal<Local, Bit>,
    last_word_bad: Signal<Local, Bit>,
    header_write: Signal<Local, Bits<8>>,
}

impl Default for ImageCheck {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_cmd: Default::default(),
            in_value: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_kind: Default::default(),
            out_addr: Default::default(),
            out_data: Default::default(),
            out_verdict: Default::default(),
            out_crc: Default::default(),
            entry: Default::default(),
            crc: Default::default(),
            check: Default::default(),
            minus_p: Constant::new(excess_addend(&modulus())),
            announced: Default::default(),
            received: Default::default(),
            overrun: Default::default(),
            header: Default::default(),
            low: Default::default(),
            constant: Default::default(),
            code_words: Default::default(),
            constants: Default::default(),
            content_bad: Default::default(),
            o_valid: Default::default(),
            o_kind: Default::default(),
            o_addr: Default::default(),
            o_data: Default::default(),
            o_verdict: Default::default(),
            take: Default::default(),
            index: Default::default(),
            keep: Default::default(),
            left: Default::default(),
            code_end: Default::default(),
            const_end: Default::default(),
            in_code: Default::default(),
            in_constants: Default::default(),
            code_index: Default::default(),
            const_index: Default::default(),
            const_offset: Default::default(),
            value: Default::default(),
            value_excess: Default::default(),
            h_words: Default::default(),
            h_consts: Default::default(),
            declared: Default::default(),
            header_bad: Default::default(),
            last_word_bad: Default::default(),
            header_write: Default::default(),
        }
    }
}

impl Logic for ImageCheck {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            announced,
            received,
            overrun,
            low,
            constant,
            code_words,
            constants,
            content_bad,
            o_valid,
            o_kind,
            o_addr,
            o_data,
            o_verdict
        );
        for k in 0..8 {
            self.header[k].clock.next = self.clock.val();
            self.header[k].d.next = self.header[k].q.val();
        }
        self.crc.clock.next = self.clock.val();
        self.check.clock.next = self.clock.val();
        self.crc.out_ready.next = true;
        self.check.out_ready.next = true;

        self.in_ready.next = !self.o_valid.q.val() | self.out_ready.val();
        self.take.next = self.in_valid.val() & self.in_ready.val();
        if self.out_ready.val() {
            self.o_valid.d.next = false;
        }

        // Where the next word goes: bytes kept so far / 4.
        self.index.next = self.received.q.val() >> 2;
        self.header_write.next = bit_cast::<8, 1>(1.into()) << self.index.val().get_bits::<3>(0);
        self.left.next = self.announced.q.val() - bit_cast::<32, 16>(self.received.q.val());
        self.keep.next = !self.overrun.q.val() & self.left.val().any();
        self.h_words.next = self.header[2].q.val().get_bits::<16>(0);
        self.h_consts.next = self.header[2].q.val().get_bits::<16>(16);
        self.code_end.next = 8 + (self.h_words.val() << 1);
        self.const_end.next = self.code_end.val() + (self.h_consts.val() << 3);
        self.in_code.next = (self.index.val() >= 8) & (self.index.val() < self.code_end.val());
        self.in_constants.next =
            (self.index.val() >= self.code_end.val()) & (self.index.val() < self.const_end.val());
        self.code_index.next = bit_cast::<12, 16>((self.index.val() - 8) >> 1);
        // Computed into a signal of its own: Verilog would widen `a[2:0] + 7` to 32 bits.
        self.const_offset.next = self.index.val() - self.code_end.val();
        self.const_index.next = bit_cast::<12, 16>(self.const_offset.val() >> 3);
        self.value.next = (bit_cast::<256, 32>(self.in_value.val()) << 224)
            | bit_cast::<256, 224>(self.constant.q.val());
        self.value_excess.next = bit_cast::<257, 256>(self.value.val()) + self.minus_p.val();

        // The CRC unit sees every kept word, the CRC field (word 7) as zero.
        self.crc.in_valid.next = self.take.val() & (self.in_cmd.val() == 1) & self.keep.val();
        self.crc.in_clear.next = !self.received.q.val().any();
        self.crc.in_data.next = self.in_value.val();
        if self.index.val() == 7 {
            self.crc.in_data.next = 0.into();
        }
        self.crc.in_bytes.next = 4.into();
        if self.left.val() < 4 {
            self.crc.in_bytes.next = self.left.val().get_bits::<3>(0);
        }
        self.check.in_valid.next = false;
        self.check.in_word.next =
            (bit_cast::<64, 32>(self.in_value.val()) << 32) | bit_cast::<64, 32>(self.low.q.val());
        self.check.in_words.next = self.h_words.val().get_bits::<13>(0);

        // The header: "VRTY", ISA 1 and header length 32, 1 to 4,096 code words and at most 256
        // constants, the entry point inside the code, reserved fields zero, and a declared
        // length that is the length computed and the length uploaded.
        self.declared.next = 32
            + (bit_cast::<32, 16>(self.h_words.val()) << 3)
            + (bit_cast::<32, 16>(self.h_consts.val()) << 5);
        self.header_bad.next = self.overrun.q.val()
            | (bit_cast::<32, 16>(self.received.q.val()) != self.announced.q.val())
            | (self.announced.q.val() < 32)
            | (self.header[0].q.val() != 0x5954_5256)
            | (self.header[1].q.val() != 0x0020_0001)
            | !self.h_words.val().any()
            | (self.h_words.val() > 4096)
            | (self.h_consts.val() > 256)
            | self.header[3].q.val().get_bits::<16>(16).any()
            | self.header[5].q.val().any()
            | self.header[6].q.val().any()
            | (self.header[4].q.val() != self.declared.val())
            | (self.declared.val() != self.announced.q.val());
        // A code word whose check is still in flight counts at commit.
        self.last_word_bad.next = self.check.out_valid.val() & !self.check.out_ok.val();

        self.out_valid.next = self.o_valid.q.val();
        self.out_kind.next = self.o_kind.q.val();
        self.out_addr.next = self.o_addr.q.val();
        self.out_data.next = self.o_data.q.val();
        self.out_verdict.next = self.o_verdict.q.val();
        self.out_crc.next = self.crc.out_crc.val();
        // Header bytes 12–13; a good image's entry is inside its at most 4,096 words.
        self.entry.next = self.header[3].q.val().get_bits::<12>(0);
        if !self.received.q.val().any() {
            self.out_crc.next = 0.into();
        }
        if self.last_word_bad.val() {
            self.content_bad.d.next = true;
        }

        // Commands, as in [`command`] (the Verilog export cannot name Rust constants).
        if self.take.val() {
            self.o_verdict.d.next = 0.into();
            if self.in_cmd.val() == 0 {
                self.announced.d.next = self.in_value.val();
                self.received.d.next = 0.into();
                // Beyond `image::IMAGE_LEN_MAX` (41,000 bytes): nothing is kept.
                self.overrun.d.next = self.in_value.val() > 41_000;
                self.content_bad.d.next = false;
                for k in 0..8 {
                    self.header[k].d.next = 0.into();
                }
            }
            if self.in_cmd.val() == 1 {
                if !self.keep.val() {
                    self.overrun.d.next = true;
                } else {
                    self.received.d.next = self.received.q.val() + 4;
                    if self.left.val() < 4 {
                        self.received.d.next =
                            self.received.q.val() + self.left.val().get_bits::<16>(0);
                    }
                    for k in 0..8 {
                        if (self.index.val() < 8) & self.header_write.val().get_bit(k) {
                            self.header[k].d.next = self.in_value.val();
                        }
                    }
                    if self.in_code.val() {
                        if self.index.val().get_bit(0) {
                            self.check.in_valid.next = true;
                            self.o_valid.d.next = true;
                            self.o_kind.d.next = 0.into();
                            self.o_addr.d.next = self.code_index.val();
                            self.o_data.d.next = bit_cast::<256, 64>(self.check.in_word.val());
                        } else {
                            self.low.d.next = self.in_value.val();
                        }
                    }
                    if self.in_constants.val() {
                        self.constant.d.next = (self.constant.q.val() >> 32)
                            | (bit_cast::<224, 32>(self.in_value.val()) << 192);
                        if self.const_offset.val().get_bits::<3>(0) == 7 {
                            self.o_valid.d.next = true;
                            self.o_kind.d.next = 1.into();
                            self.o_addr.d.next = self.const_index.val();
                            self.o_data.d.next = self.value.val();
                            if self.value_excess.val().get_bit(256) {
                                self.content_bad.d.next = true;
                            }
                        }
                    }
                }
            }
            if self.in_cmd.val() == 2 {
                self.o_valid.d.next = true;
                self.o_kind.d.next = 2.into();
                self.o_addr.d.next = 0.into();
                self.o_data.d.next = 0.into();
                if self.content_bad.q.val()
                    | self.last_word_bad.val()
                    | (self.header[3].q.val().get_bits::<16>(0) >= self.h_words.val())
                {
                    self.o_verdict.d.next = 2.into();
                }
                if self.crc.out_crc.val() != self.header[7].q.val() {
                    self.o_verdict.d.next = 1.into();
                }
                if self.header_bad.val() {
                    self.o_verdict.d.next = 2.into();
                }
            }
        }
    }
}

impl StreamBlock for ImageCheck {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_cmd",
            bits: 2,
        },
        Port {
            name: "in_value",
            bits: 32,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_kind",
            bits: 2,
        },
        Port {
            name: "out_addr",
            bits: 12,
        },
        Port {
            name: "out_data",
            bits: 256,
        },
        Port {
            name: "out_verdict",
            bits: 2,
        },
        Port {
            name: "out_crc",
            bits: 32,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_cmd.next = u64::try_from(&beat[0]).unwrap_or(0).into();
            self.in_value.next = u64::try_from(&beat[1]).unwrap_or(0).into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid.val().then(|| {
            vec![
                self.out_kind.val().into(),
                self.out_addr.val().into(),
                self.out_data.val().into(),
                self.out_verdict.val().into(),
                self.out_crc.val().into(),
            ]
        })
    }
}

/// One upload as the register block sees it: the announced length, the data words, and
/// whether it is committed.
#[derive(Clone, Debug)]
pub struct Upload {
    /// `IMAGE_LEN`.
    pub len: u32,
    /// Image window writes.
    pub words: Vec<u32>,
}

impl Upload {
    /// `bytes` announced at their length and sent in full.
    pub fn of(bytes: &[u8]) -> Self {
        Self::cut(bytes, bytes.len() as u32)
    }

    /// `bytes` sent in full but announced as `len` bytes.
    pub fn cut(bytes: &[u8], len: u32) -> Self {
        let words = verity_firmware::regs::image_writes(bytes)
            .map(|(_, w)| w)
            .collect();
        Self { len, words }
    }
}

/// The input beats of `uploads`, each started, sent and committed.
pub fn beats(uploads: &[Upload]) -> Vec<Beat> {
    let beat = |cmd: u8, value: u32| vec![BigUint::from(cmd), BigUint::from(value)];
    uploads
        .iter()
        .flat_map(|u| {
            std::iter::once(beat(command::START, u.len))
                .chain(u.words.iter().map(|w| beat(command::DATA, *w)))
                .chain(std::iter::once(beat(command::COMMIT, 0)))
        })
        .collect()
}

/// The output beats `sim::bar`'s rules and `Image::decode` imply for `uploads`.
pub fn expected(uploads: &[Upload]) -> Vec<Beat> {
    use verity_firmware::image::{Image, ImageError, IMAGE_LEN_MAX};
    let mut out = Vec::new();
    for upload in uploads {
        let len = upload.len as usize;
        let mut kept: Vec<u8> = Vec::new();
        let mut overrun = len > IMAGE_LEN_MAX;
        let mut written: Vec<u32> = Vec::new();
        for &word in &upload.words {
            let room = len.saturating_sub(kept.len());
            if overrun || room == 0 {
                overrun = true;
                continue;
            }
            let index = kept.len() / 4;
            kept.extend_from_slice(&word.to_le_bytes()[..room.min(4)]);
            written.push(word);
            let header = |i: usize| written.get(i).copied().unwrap_or(0);
            let code_words = (header(2) & 0xffff) as usize;
            let constants = (header(2) >> 16) as usize;
            let code_end = 8 + 2 * code_words;
            let const_end = code_end + 8 * constants;
            let crc = Image::checksum(&kept);
            let beat = |kind: u8, addr: usize, data: BigUint| {
                vec![
                    BigUint::from(kind),
                    BigUint::from(addr & 0xfff),
                    data,
                    BigUint::from(0u8),
                    BigUint::from(crc),
                ]
            };
            if (8..code_end).contains(&index) && index % 2 == 1 {
                let data = u64::from(written[index - 1]) | u64::from(word) << 32;
                out.push(beat(0, (index - 8) / 2, BigUint::from(data)));
            }
            if (code_end..const_end).contains(&index) && (index - code_end) % 8 == 7 {
                let mut value = BigUint::default();
                for (k, w) in written[index - 7..=index].iter().enumerate() {
                    value |= BigUint::from(*w) << (32 * k);
                }
                out.push(beat(1, (index - code_end) / 8, value));
            }
        }
        let verdict = if overrun || kept.len() != len {
            2u8
        } else {
            match Image::decode(&kept) {
                Ok(_) => 0,
                Err(ImageError::Checksum { .. }) => 1,
                Err(_) => 2,
            }
        };
        out.push(vec![
            BigUint::from(2u8),
            BigUint::default(),
            BigUint::default(),
            BigUint::from(verdict),
            BigUint::from(Image::checksum(&kept)),
        ]);
    }
    out
}

/// Uploads for tests: the Ed25519 image, and that image spoilt in every way the checks name —
/// each header field, the CRC, a code word, a branch target, a constant, the entry point (the
/// CRC fixed up so the later check is the one that fails), a length announced short or long,
/// an oversized length — and the empty upload.
pub fn sample_uploads() -> Vec<Upload> {
    use verity_firmware::image::Image;
    let image = Image::new(verity_firmware::program::ed25519_verify()).encode();
    let words = usize::from(u16::from_le_bytes([image[8], image[9]]));
    let code = 32;
    let constants = code + 8 * words;
    let with = |at: usize, bytes: &[u8], fix_crc: bool| {
        let mut spoilt = image.clone();
        spoilt[at..at + bytes.len()].copy_from_slice(bytes);
        if fix_crc {
            let crc = Image::checksum(&spoilt);
            spoilt[28..32].copy_from_slice(&crc.to_le_bytes());
        }
        Upload::of(&spoilt)
    };
    // A code word that decodes nowhere (opcode 63) and one that jumps past the code.
    let bad_word = 63u64.to_le_bytes();
    let far_jump = (1u64 << 32 | (words as u64) << 40).to_le_bytes();
    vec![
        Upload::of(&image),
        with(0, b"VRTZ", true),
        with(4, &[2, 0], true),
        with(6, &[33, 0], true),
        with(8, &[0, 0], true),
        with(10, &[1, 1], true),
        with(12, &((words as u16).to_le_bytes()), true),
        with(14, &[1, 0], true),
        with(16, &[0, 0, 0, 0], true),
        with(20, &[0, 0, 0, 1], true),
        with(24, &[1], true),
        with(28, &[0, 0, 0, 0], false),
        with(code + 8 * 5, &bad_word, false),
        with(code + 8 * 5, &bad_word, true),
        with(code + 8 * 7, &far_jump, true),
        with(constants + 31, &[0x80], true),
        Upload::cut(&image, image.len() as u32 - 4),
        Upload::cut(&image, image.len() as u32 + 4),
        Upload::cut(&image[..64], 50_000),
        Upload::of(&[]),
        Upload::of(&image),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};

    #[test]
    fn verdicts_and_contents_match_the_firmware_image_decoder() {
        let seed = 0x1a9e_c4ec;
        let uploads = sample_uploads();
        let inputs = beats(&uploads);
        let expected = expected(&uploads);
        let verdicts: Vec<u8> = expected
            .iter()
            .filter(|b| b[0] == BigUint::from(2u8))
            .map(|b| u8::try_from(&b[3]).unwrap_or(9))
            .collect();
        assert_eq!(verdicts.first(), Some(&0), "the image itself is good");
        assert!(verdicts.contains(&1) && verdicts.iter().filter(|v| **v == 2).count() > 10);
        let mut unit = ImageCheck::default();
        let trace = run(
            &mut unit,
            &inputs,
            &Stalls::random(seed, 10, 10),
            expected.len(),
            4 * inputs.len() as u64 + 100,
        );
        if let Err(mismatch) = compare(ImageCheck::OUTPUTS, &trace, &expected) {
            panic!("seed {seed}: {mismatch}");
        }
    }
}
