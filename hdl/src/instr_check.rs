//! The instruction check of the image upload: is a 64-bit code word an instruction the
//! firmware's `Instr::decode` accepts, with its branch target inside the code?
//!
//! The register block runs every code word of an uploaded image through it before the image
//! can be committed, so the card refuses exactly the images `Image::decode` refuses. The
//! rules are `verity_firmware::isa`'s: a known opcode (0–18) and sequencing (0–8); each field
//! an operation uses within its range (a register is any 6-bit value, a flag is below 16, a
//! digit selector is 0 or 1, a `MulT` coordinate below 4 and a `MulTC` one below 3, `Load`'s
//! input 0 or 1); every field it does not use zero, and bits 63–52 zero (decoding re-encodes
//! and compares); a branch's target below the number of code words.
//!
//! The word's fields: opcode 5:0, f1 11:6, f2 17:12, f3 23:18, imm 31:24, seq 35:32, seq
//! operand 39:36, target 51:40. One word per cycle; the verdict one cycle later.

use num_bigint::BigUint;
use rust_hdl::prelude::*;

use crate::flow::harness::{Beat, Port, StreamBlock};

/// The checker.
#[derive(LogicBlock, Default)]
pub struct InstrCheck {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A word is offered.
    pub in_valid: Signal<In, Bit>,
    /// Ready unless the last verdict waits to be taken.
    pub in_ready: Signal<Out, Bit>,
    /// The code word.
    pub in_word: Signal<In, Bits<64>>,
    /// The image's number of code words (1 to 4,096): branch targets must be below it.
    pub in_words: Signal<In, Bits<13>>,
    /// A verdict is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    /// The word is a valid instruction of this image.
    pub out_ok: Signal<Out, Bit>,
    o_valid: DFF<Bit>,
    o_ok: DFF<Bit>,
    take: Signal<Local, Bit>,
    opcode: Signal<Local, Bits<6>>,
    f1: Signal<Local, Bits<6>>,
    f2: Signal<Local, Bits<6>>,
    f3: Signal<Local, Bits<6>>,
    imm: Signal<Local, Bits<8>>,
    seq: Signal<Local, Bits<4>>,
    seq_operand: Signal<Local, Bits<4>>,
    target: Signal<Local, Bits<12>>,
    f1_ok: Signal<Local, Bit>,
    f2_ok: Signal<Local, Bit>,
    f3_ok: Signal<Local, Bit>,
    imm_ok: Signal<Local, Bit>,
    seq_ok: Signal<Local, Bit>,
    target_ok: Signal<Local, Bit>,
}

impl Logic for InstrCheck {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, o_valid, o_ok);

        self.in_ready.next = !self.o_valid.q.val() | self.out_ready.val();
        self.take.next = self.in_valid.val() & self.in_ready.val();
        self.opcode.next = self.in_word.val().get_bits::<6>(0);
        self.f1.next = self.in_word.val().get_bits::<6>(6);
        self.f2.next = self.in_word.val().get_bits::<6>(12);
        self.f3.next = self.in_word.val().get_bits::<6>(18);
        self.imm.next = self.in_word.val().get_bits::<8>(24);
        self.seq.next = self.in_word.val().get_bits::<4>(32);
        self.seq_operand.next = self.in_word.val().get_bits::<4>(36);
        self.target.next = self.in_word.val().get_bits::<12>(40);

        // f1: a register (Mul … CSel, MulT, MulTC, TNeg), a flag (Eq, Odd, FAnd, FOr), or
        // unused (Nop, SetI, SetJ).
        self.f1_ok.next = !self.f1.val().any();
        if ((self.opcode.val() >= 1) & (self.opcode.val() <= 9))
            | ((self.opcode.val() >= 14) & (self.opcode.val() <= 16))
        {
            self.f1_ok.next = true;
        }
        if (self.opcode.val() >= 10) & (self.opcode.val() <= 13) {
            self.f1_ok.next = self.f1.val() < 16;
        }
        // f2: a register, a flag (Load's sign, FAnd, FOr), or unused (Nop, LdC, SetI, SetJ).
        self.f2_ok.next = true;
        if (self.opcode.val() == 0)
            | (self.opcode.val() == 6)
            | (self.opcode.val() == 17)
            | (self.opcode.val() == 18)
        {
            self.f2_ok.next = !self.f2.val().any();
        }
        if (self.opcode.val() == 7) | (self.opcode.val() == 12) | (self.opcode.val() == 13) {
            self.f2_ok.next = self.f2.val() < 16;
        }
        // f3: a register (Mul, Add, Sub, CSel, Eq, MulT), a flag (CNeg, FAnd, FOr), MulTC's
        // coordinate and digits, TNeg's digits, or unused.
        self.f3_ok.next = !self.f3.val().any();
        if (self.opcode.val() == 1)
            | (self.opcode.val() == 4)
            | (self.opcode.val() == 5)
            | (self.opcode.val() == 9)
            | (self.opcode.val() == 10)
            | (self.opcode.val() == 14)
        {
            self.f3_ok.next = true;
        }
        if (self.opcode.val() == 8) | (self.opcode.val() == 12) | (self.opcode.val() == 13) {
            self.f3_ok.next = self.f3.val() < 16;
        }
        if self.opcode.val() == 15 {
            self.f3_ok.next = (self.f3.val() < 8) & (self.f3.val().get_bits::<2>(0) != 3);
        }
        if self.opcode.val() == 16 {
            self.f3_ok.next = self.f3.val() < 2;
        }
        // imm: a constant (MulC, LdC, MulTC) or a count (SetI, SetJ), Load's input, CSel's
        // flag, MulT's coordinate and digits, or unused.
        self.imm_ok.next = !self.imm.val().any();
        if (self.opcode.val() == 3)
            | (self.opcode.val() == 6)
            | (self.opcode.val() == 15)
            | (self.opcode.val() == 17)
            | (self.opcode.val() == 18)
        {
            self.imm_ok.next = true;
        }
        if self.opcode.val() == 7 {
            self.imm_ok.next = self.imm.val() < 2;
        }
        if self.opcode.val() == 9 {
            self.imm_ok.next = self.imm.val() < 16;
        }
        if self.opcode.val() == 14 {
            self.imm_ok.next = self.imm.val() < 8;
        }
        // Sequencing: the operand is a flag (IfFlag, IfNotFlag: any 4-bit value), digits
        // (IfDigitZero), Done's code, or unused; the target is used by every branch.
        self.seq_ok.next = !self.seq_operand.val().any();
        if (self.seq.val() == 2) | (self.seq.val() == 3) | (self.seq.val() == 7) {
            self.seq_ok.next = true;
        }
        if self.seq.val() == 4 {
            self.seq_ok.next = self.seq_operand.val() < 2;
        }
        self.target_ok.next = bit_cast::<13, 12>(self.target.val()) < self.in_words.val();
        if (self.seq.val() == 0) | (self.seq.val() == 7) {
            self.target_ok.next = !self.target.val().any();
        }

        if self.out_ready.val() {
            self.o_valid.d.next = false;
        }
        if self.take.val() {
            self.o_valid.d.next = true;
            self.o_ok.d.next = (self.opcode.val() <= 18)
                & (self.seq.val() <= 8)
                & !self.in_word.val().get_bits::<12>(52).any()
                & ((self.f1_ok.val() & self.f2_ok.val()) & (self.f3_ok.val() & self.imm_ok.val()))
                & (self.seq_ok.val() & self.target_ok.val());
        }
        self.out_valid.next = self.o_valid.q.val();
        self.out_ok.next = self.o_ok.q.val();
    }
}

impl StreamBlock for InstrCheck {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_word",
            bits: 64,
        },
        Port {
            name: "in_words",
            bits: 13,
        },
    ];
    const OUTPUTS: &'static [Port] = &[Port {
        name: "out_ok",
        bits: 1,
    }];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_word.next = u64::try_from(&beat[0]).unwrap_or(0).into();
            self.in_words.next = u64::try_from(&beat[1]).unwrap_or(0).into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| vec![u8::from(self.out_ok.val()).into()])
    }
}

/// What `Image::decode` says of `word` in an image of `words` code words: the word decodes
/// and, if it branches, its target is inside the code.
pub fn reference(word: u64, words: usize) -> bool {
    use verity_firmware::isa::{Instr, Seq};
    match Instr::decode(word) {
        Err(_) => false,
        Ok(instr) => match instr.seq {
            Seq::Next | Seq::Done(_) => true,
            Seq::Jump(t)
            | Seq::IfFlag(_, t)
            | Seq::IfNotFlag(_, t)
            | Seq::IfDigitZero(_, t)
            | Seq::LoopI(t)
            | Seq::LoopJ(t)
            | Seq::IfBothDigitsZero(t) => t.index() < words,
        },
    }
}

/// Words for tests, with the image length each is checked against: every word of the Ed25519
/// program; each again with every field set to each value at a range's edge, with one random
/// bit flipped, and in an image that ends at its target or just after; and words of random
/// fields (opcodes and sequencing codes near their ranges).
pub fn sample_words(seed: u64) -> Vec<(u64, usize)> {
    use rand::{Rng, SeedableRng};
    let program = verity_firmware::program::ed25519_verify();
    let words = program.code.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for instr in &program.code {
        let word = instr.encode();
        out.push((word, words));
        out.push((word ^ (1 << rng.gen_range(0..64)), words));
        for (at, width) in [(0, 6), (6, 6), (12, 6), (18, 6), (24, 8), (32, 4), (36, 4)] {
            let mask = ((1u64 << width) - 1) << at;
            for value in [0u64, 1, 2, 3, 4, 7, 8, 15, 16, 18, 19, 63, 255] {
                out.push(((word & !mask) | ((value << at) & mask), words));
            }
        }
        // The same word in an image that ends at its target, and one word later.
        let target = ((word >> 40) & 0xfff) as usize;
        out.push((word, target.max(1)));
        out.push((word, target + 1));
    }
    for _ in 0..2_000 {
        let small = |rng: &mut rand_chacha::ChaCha8Rng, bits: u32| -> u64 {
            // Mostly small values, where the ranges' edges are.
            if rng.gen_bool(0.7) {
                rng.gen_range(0..20).min((1 << bits) - 1)
            } else {
                rng.gen_range(0..1u64 << bits)
            }
        };
        let word = small(&mut rng, 5)
            | small(&mut rng, 6) << 6
            | small(&mut rng, 6) << 12
            | small(&mut rng, 6) << 18
            | small(&mut rng, 8) << 24
            | rng.gen_range(0..10u64) << 32
            | small(&mut rng, 4) << 36
            | rng.gen_range(0..600u64) << 40
            | u64::from(rng.gen_bool(0.02)) << rng.gen_range(52..64);
        out.push((word, words));
    }
    out
}

/// Input beats and expected output beats for `words`.
pub fn stimulus(words: &[(u64, usize)]) -> (Vec<Beat>, Vec<Beat>) {
    words
        .iter()
        .map(|&(word, n)| {
            (
                vec![BigUint::from(word), BigUint::from(n)],
                vec![BigUint::from(u8::from(reference(word, n)))],
            )
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};

    #[test]
    fn verdicts_match_the_firmware_decoder() {
        let seed = 0x1257_c4ec;
        let words = sample_words(seed);
        let (inputs, expected) = stimulus(&words);
        let accepted = expected
            .iter()
            .filter(|b| b[0] == BigUint::from(1u8))
            .count();
        assert!(
            accepted > expected.len() / 4 && accepted < expected.len() * 3 / 4,
            "seed {seed}: the sample must mix accepted ({accepted}) and refused words"
        );
        let mut unit = InstrCheck::default();
        let trace = run(
            &mut unit,
            &inputs,
            &Stalls::random(seed, 20, 20),
            expected.len(),
            4 * inputs.len() as u64 + 100,
        );
        if let Err(mismatch) = compare(InstrCheck::OUTPUTS, &trace, &expected) {
            let beat = match &mismatch {
                crate::flow::harness::Mismatch::Value { index, .. } => Some(*index),
                _ => None,
            };
            let word = beat.map(|b| format!("{:#018x}", words[b].0));
            panic!("seed {seed}: {mismatch} (word {word:?})");
        }
    }
}
