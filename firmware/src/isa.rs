//! The ECC engine's instruction set.
//!
//! # Machine
//!
//! An engine runs up to [`CONTEXTS_MAX`] signature *contexts* at once. Each context has
//! [`REGISTERS`] field registers (canonical residues mod p), [`FLAGS`] one-bit flags, two loop
//! counters `I` and `J`, a program counter, and its inputs: the encodings of A and R and the
//! signed digits of two scalars (`K`: width-5 NAF of k, walked against a table of A's odd
//! multiples in registers; `S`: width-8 NAF of S, against the base-point table in the
//! constant ROM). The digit an instruction sees is the one at position `I`.
//!
//! All contexts share the microcode RAM and the constant ROM of the loaded image.
//!
//! # Words
//!
//! Every instruction is one 64-bit word: a datapath operation and a sequencing field, so
//! branches and loops cost no issue slot of their own (horizontal microcode):
//!
//! | bits | field |
//! |---|---|
//! | 0–5 | opcode |
//! | 6–11 | destination register or flag |
//! | 12–17 | first source |
//! | 18–23 | second source |
//! | 24–31 | immediate: constant index, table coordinate, input, count |
//! | 32–35 | sequencing kind |
//! | 36–39 | sequencing operand: flag, digit stream, or outcome code |
//! | 40–51 | branch target |
//! | 52–63 | zero |
//!
//! Fields an operation does not use must be zero; the decoder rejects anything else, so a
//! word has exactly one meaning.
//!
//! # Issue
//!
//! Operations are of two classes. *Multiplier* operations (`Mul`, `Sqr`, `MulC`) go to the
//! pipelined modular multiplier; *linear* ones (everything else, including `Nop`) to the
//! add/select unit. Each cycle the engine issues at most one multiplier and one linear
//! operation, from any contexts whose next instruction is ready (its sources and its
//! destination have no result in flight). A context issues its own instructions in order, one
//! per cycle at most; contexts are picked round-robin. With as many contexts as the multiplier
//! has pipeline stages, the multiplier never waits — the sequential dependency chains of one
//! signature (the 250 squarings of a square root) are hidden behind other signatures'.

use std::fmt;

use thiserror::Error;

/// Field registers per context.
pub const REGISTERS: usize = 64;
/// Flags per context.
pub const FLAGS: usize = 16;
/// Microcode words an image may hold (a 12-bit address).
pub const CODE_WORDS_MAX: usize = 4096;
/// Constants an image may hold (an 8-bit index).
pub const CONSTANTS_MAX: usize = 256;
/// The most contexts one engine may interleave.
pub const CONTEXTS_MAX: usize = 64;

/// A field register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reg(u8);

/// A one-bit flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flag(u8);

/// An index into the constant ROM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConstId(u8);

/// A microcode address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr(u16);

macro_rules! index_type {
    ($name:ident, $inner:ty, $limit:expr, $what:literal) => {
        impl $name {
            /// Checks the index against the machine's limit.
            pub fn new(index: usize) -> Result<Self, DecodeError> {
                if index < $limit {
                    Ok(Self(index as $inner))
                } else {
                    Err(DecodeError::OutOfRange {
                        what: $what,
                        value: index as u64,
                    })
                }
            }

            /// The index.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

index_type!(Reg, u8, REGISTERS, "register");
index_type!(Flag, u8, FLAGS, "flag");
index_type!(ConstId, u8, CONSTANTS_MAX, "constant");
index_type!(Addr, u16, CODE_WORDS_MAX, "address");

/// Which encoding a `Load` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// The public key A.
    A,
    /// R, the signature's first half.
    R,
}

/// Which signed-digit stream a table operation or branch looks at (at position `I`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Digits {
    /// Width-5 NAF of k: odd digits in −15..=15, against a register table of 8 points.
    K,
    /// Width-8 NAF of S: odd digits in −127..=127, against the ROM table of 64 points.
    S,
}

/// The datapath half of an instruction. (Each variant's document names its fields.)
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Nothing (a sequencing-only word).
    Nop,
    /// d = a · b.
    Mul { d: Reg, a: Reg, b: Reg },
    /// d = a².
    Sqr { d: Reg, a: Reg },
    /// d = a · ROM[c].
    MulC { d: Reg, a: Reg, c: ConstId },
    /// d = a + b.
    Add { d: Reg, a: Reg, b: Reg },
    /// d = a − b.
    Sub { d: Reg, a: Reg, b: Reg },
    /// d = ROM[c].
    LdC { d: Reg, c: ConstId },
    /// d = the input's low 255 bits mod p; `sign` = its bit 255.
    Load { d: Reg, sign: Flag, input: Input },
    /// d = f ? −a : a.
    CNeg { d: Reg, a: Reg, f: Flag },
    /// d = f ? a : b.
    CSel { d: Reg, a: Reg, b: Reg, f: Flag },
    /// f = (a == b).
    Eq { f: Flag, a: Reg, b: Reg },
    /// f = a is odd.
    Odd { f: Flag, a: Reg },
    /// f = a ∧ b.
    FAnd { f: Flag, a: Flag, b: Flag },
    /// f = a ∨ b.
    FOr { f: Flag, a: Flag, b: Flag },
    /// d = a · register `base + 4·(|δ| − 1)/2 + c'`, where δ is the current digit and c'
    /// swaps coordinates 0 and 1 when δ < 0 (negating a cached point (Y+X, Y−X, 2Z, 2dT)
    /// but for its T, which `TNeg` handles). The multiplier reads the table entry itself, so
    /// a table addition costs no select operations.
    MulT {
        d: Reg,
        a: Reg,
        base: Reg,
        coord: u8,
        digits: Digits,
    },
    /// d = a · ROM `base + 3·(|δ| − 1)/2 + c'`, c' as for `MulT` (affine (y+x, y−x, 2dxy)).
    MulTC {
        d: Reg,
        a: Reg,
        base: ConstId,
        coord: u8,
        digits: Digits,
    },
    /// d = δ < 0 ? −a : a.
    TNeg { d: Reg, a: Reg, digits: Digits },
    /// I = n.
    SetI { n: u8 },
    /// J = n.
    SetJ { n: u8 },
}

/// The sequencing half: where the context goes after the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seq {
    /// The next word.
    Next,
    /// Always to the target.
    Jump(Addr),
    /// To the target if the flag is set.
    IfFlag(Flag, Addr),
    /// To the target if the flag is clear.
    IfNotFlag(Flag, Addr),
    /// To the target if the current digit of the stream is zero.
    IfDigitZero(Digits, Addr),
    /// To the target if the current digits of both streams are zero.
    IfBothDigitsZero(Addr),
    /// I ← I − 1; to the target if I ≥ 0.
    LoopI(Addr),
    /// J ← J − 1; to the target if J ≥ 0.
    LoopJ(Addr),
    /// The context ends with this outcome code (a [`Verdict`](crate::Verdict) code).
    Done(u8),
}

/// One microinstruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Instr {
    /// What the datapath does.
    pub op: Op,
    /// Where the context goes next.
    pub seq: Seq,
}

/// Which unit executes an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// The pipelined modular multiplier.
    Multiplier,
    /// The add/select unit (and sequencing-only words).
    Linear,
}

/// A word that is not an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The opcode names no operation.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    /// The sequencing kind names no sequencing.
    #[error("unknown sequencing kind {0}")]
    UnknownSeq(u8),
    /// A field is beyond the machine's limit.
    #[error("{what} {value} is out of range")]
    OutOfRange {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// A field the instruction does not use is not zero.
    #[error("word {word:#018x}: unused bits are set ({bits:#018x})")]
    UnusedBits {
        /// The word.
        word: u64,
        /// The offending bits.
        bits: u64,
    },
}

impl Op {
    /// The unit that executes it.
    pub const fn class(&self) -> Class {
        match self {
            Op::Mul { .. }
            | Op::Sqr { .. }
            | Op::MulC { .. }
            | Op::MulT { .. }
            | Op::MulTC { .. } => Class::Multiplier,
            _ => Class::Linear,
        }
    }

    /// The register it writes, if any.
    pub const fn destination(&self) -> Option<Reg> {
        match *self {
            Op::Mul { d, .. }
            | Op::Sqr { d, .. }
            | Op::MulC { d, .. }
            | Op::Add { d, .. }
            | Op::Sub { d, .. }
            | Op::LdC { d, .. }
            | Op::Load { d, .. }
            | Op::CNeg { d, .. }
            | Op::CSel { d, .. }
            | Op::MulT { d, .. }
            | Op::MulTC { d, .. }
            | Op::TNeg { d, .. } => Some(d),
            Op::Nop
            | Op::Eq { .. }
            | Op::Odd { .. }
            | Op::FAnd { .. }
            | Op::FOr { .. }
            | Op::SetI { .. }
            | Op::SetJ { .. } => None,
        }
    }
}

const OPCODES: [&str; 19] = [
    "nop", "mul", "sqr", "mulc", "add", "sub", "ldc", "load", "cneg", "csel", "eq", "odd", "fand",
    "for", "mult", "multc", "tneg", "seti", "setj",
];

/// The fields of a word, before their meaning is checked.
#[derive(Default)]
struct Fields {
    opcode: u64,
    f1: u64,
    f2: u64,
    f3: u64,
    imm: u64,
    seq: u64,
    seq_operand: u64,
    target: u64,
}

impl Fields {
    fn pack(&self) -> u64 {
        self.opcode
            | self.f1 << 6
            | self.f2 << 12
            | self.f3 << 18
            | self.imm << 24
            | self.seq << 32
            | self.seq_operand << 36
            | self.target << 40
    }

    fn unpack(word: u64) -> Fields {
        Fields {
            opcode: word & 0x3f,
            f1: (word >> 6) & 0x3f,
            f2: (word >> 12) & 0x3f,
            f3: (word >> 18) & 0x3f,
            imm: (word >> 24) & 0xff,
            seq: (word >> 32) & 0xf,
            seq_operand: (word >> 36) & 0xf,
            target: (word >> 40) & 0xfff,
        }
    }
}

fn digits_code(d: Digits) -> u64 {
    match d {
        Digits::K => 0,
        Digits::S => 1,
    }
}

fn digits_of(code: u64) -> Result<Digits, DecodeError> {
    match code {
        0 => Ok(Digits::K),
        1 => Ok(Digits::S),
        other => Err(DecodeError::OutOfRange {
            what: "digit stream",
            value: other,
        }),
    }
}

impl Instr {
    /// An instruction that falls through to the next word.
    pub const fn op(op: Op) -> Instr {
        Instr { op, seq: Seq::Next }
    }

    /// The 64-bit word.
    pub fn encode(&self) -> u64 {
        let mut f = Fields::default();
        let r = |reg: Reg| reg.0 as u64;
        let fl = |flag: Flag| flag.0 as u64;
        match self.op {
            Op::Nop => f.opcode = 0,
            Op::Mul { d, a, b } => (f.opcode, f.f1, f.f2, f.f3) = (1, r(d), r(a), r(b)),
            Op::Sqr { d, a } => (f.opcode, f.f1, f.f2) = (2, r(d), r(a)),
            Op::MulC { d, a, c } => (f.opcode, f.f1, f.f2, f.imm) = (3, r(d), r(a), c.0 as u64),
            Op::Add { d, a, b } => (f.opcode, f.f1, f.f2, f.f3) = (4, r(d), r(a), r(b)),
            Op::Sub { d, a, b } => (f.opcode, f.f1, f.f2, f.f3) = (5, r(d), r(a), r(b)),
            Op::LdC { d, c } => (f.opcode, f.f1, f.imm) = (6, r(d), c.0 as u64),
            Op::Load { d, sign, input } => {
                (f.opcode, f.f1, f.f2, f.imm) =
                    (7, r(d), fl(sign), matches!(input, Input::R) as u64)
            }
            Op::CNeg { d, a, f: flag } => (f.opcode, f.f1, f.f2, f.f3) = (8, r(d), r(a), fl(flag)),
            Op::CSel { d, a, b, f: flag } => {
                (f.opcode, f.f1, f.f2, f.f3, f.imm) = (9, r(d), r(a), r(b), fl(flag))
            }
            Op::Eq { f: flag, a, b } => (f.opcode, f.f1, f.f2, f.f3) = (10, fl(flag), r(a), r(b)),
            Op::Odd { f: flag, a } => (f.opcode, f.f1, f.f2) = (11, fl(flag), r(a)),
            Op::FAnd { f: flag, a, b } => {
                (f.opcode, f.f1, f.f2, f.f3) = (12, fl(flag), fl(a), fl(b))
            }
            Op::FOr { f: flag, a, b } => {
                (f.opcode, f.f1, f.f2, f.f3) = (13, fl(flag), fl(a), fl(b))
            }
            Op::MulT {
                d,
                a,
                base,
                coord,
                digits,
            } => {
                (f.opcode, f.f1, f.f2, f.f3, f.imm) = (
                    14,
                    r(d),
                    r(a),
                    r(base),
                    coord as u64 | digits_code(digits) << 2,
                )
            }
            Op::MulTC {
                d,
                a,
                base,
                coord,
                digits,
            } => {
                (f.opcode, f.f1, f.f2, f.f3, f.imm) = (
                    15,
                    r(d),
                    r(a),
                    coord as u64 | digits_code(digits) << 2,
                    base.0 as u64,
                )
            }
            Op::TNeg { d, a, digits } => {
                (f.opcode, f.f1, f.f2, f.f3) = (16, r(d), r(a), digits_code(digits))
            }
            Op::SetI { n } => (f.opcode, f.imm) = (17, n as u64),
            Op::SetJ { n } => (f.opcode, f.imm) = (18, n as u64),
        }
        match self.seq {
            Seq::Next => {}
            Seq::Jump(t) => (f.seq, f.target) = (1, t.0 as u64),
            Seq::IfFlag(flag, t) => (f.seq, f.seq_operand, f.target) = (2, fl(flag), t.0 as u64),
            Seq::IfNotFlag(flag, t) => (f.seq, f.seq_operand, f.target) = (3, fl(flag), t.0 as u64),
            Seq::IfDigitZero(d, t) => {
                (f.seq, f.seq_operand, f.target) = (4, digits_code(d), t.0 as u64)
            }
            Seq::LoopI(t) => (f.seq, f.target) = (5, t.0 as u64),
            Seq::LoopJ(t) => (f.seq, f.target) = (6, t.0 as u64),
            Seq::Done(code) => (f.seq, f.seq_operand) = (7, code as u64),
            Seq::IfBothDigitsZero(t) => (f.seq, f.target) = (8, t.0 as u64),
        }
        f.pack()
    }

    /// Decodes a word; rejects unknown opcodes, out-of-range fields and stray bits.
    pub fn decode(word: u64) -> Result<Instr, DecodeError> {
        let f = Fields::unpack(word);
        let reg = |v: u64| Reg::new(v as usize);
        let flag = |v: u64| Flag::new(v as usize);
        let coord = |v: u64, limit: u64| {
            if v < limit {
                Ok(v as u8)
            } else {
                Err(DecodeError::OutOfRange {
                    what: "table coordinate",
                    value: v,
                })
            }
        };
        let op = match f.opcode {
            0 => Op::Nop,
            1 => Op::Mul {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                b: reg(f.f3)?,
            },
            2 => Op::Sqr {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
            },
            3 => Op::MulC {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                c: ConstId(f.imm as u8),
            },
            4 => Op::Add {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                b: reg(f.f3)?,
            },
            5 => Op::Sub {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                b: reg(f.f3)?,
            },
            6 => Op::LdC {
                d: reg(f.f1)?,
                c: ConstId(f.imm as u8),
            },
            7 => Op::Load {
                d: reg(f.f1)?,
                sign: flag(f.f2)?,
                input: match f.imm {
                    0 => Input::A,
                    1 => Input::R,
                    other => {
                        return Err(DecodeError::OutOfRange {
                            what: "input",
                            value: other,
                        })
                    }
                },
            },
            8 => Op::CNeg {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                f: flag(f.f3)?,
            },
            9 => Op::CSel {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                b: reg(f.f3)?,
                f: flag(f.imm)?,
            },
            10 => Op::Eq {
                f: flag(f.f1)?,
                a: reg(f.f2)?,
                b: reg(f.f3)?,
            },
            11 => Op::Odd {
                f: flag(f.f1)?,
                a: reg(f.f2)?,
            },
            12 => Op::FAnd {
                f: flag(f.f1)?,
                a: flag(f.f2)?,
                b: flag(f.f3)?,
            },
            13 => Op::FOr {
                f: flag(f.f1)?,
                a: flag(f.f2)?,
                b: flag(f.f3)?,
            },
            14 => Op::MulT {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                base: reg(f.f3)?,
                coord: coord(f.imm & 3, 4)?,
                digits: digits_of(f.imm >> 2)?,
            },
            15 => Op::MulTC {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                base: ConstId(f.imm as u8),
                coord: coord(f.f3 & 3, 3)?,
                digits: digits_of(f.f3 >> 2)?,
            },
            16 => Op::TNeg {
                d: reg(f.f1)?,
                a: reg(f.f2)?,
                digits: digits_of(f.f3)?,
            },
            17 => Op::SetI { n: f.imm as u8 },
            18 => Op::SetJ { n: f.imm as u8 },
            other => return Err(DecodeError::UnknownOpcode(other as u8)),
        };
        let target = Addr(f.target as u16);
        let seq = match f.seq {
            0 => Seq::Next,
            1 => Seq::Jump(target),
            2 => Seq::IfFlag(flag(f.seq_operand)?, target),
            3 => Seq::IfNotFlag(flag(f.seq_operand)?, target),
            4 => Seq::IfDigitZero(digits_of(f.seq_operand)?, target),
            5 => Seq::LoopI(target),
            6 => Seq::LoopJ(target),
            7 => Seq::Done(f.seq_operand as u8),
            8 => Seq::IfBothDigitsZero(target),
            other => return Err(DecodeError::UnknownSeq(other as u8)),
        };
        let instr = Instr { op, seq };
        // Every field the instruction does not use must be zero: re-encoding must give the
        // same word.
        let canonical = instr.encode();
        if canonical != word {
            return Err(DecodeError::UnusedBits {
                word,
                bits: canonical ^ word,
            });
        }
        Ok(instr)
    }
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = OPCODES[(self.encode() & 0x3f) as usize];
        write!(f, "{name:<6}")?;
        match self.op {
            Op::Nop => {}
            Op::Mul { d, a, b } | Op::Add { d, a, b } | Op::Sub { d, a, b } => {
                write!(f, " r{}, r{}, r{}", d.0, a.0, b.0)?
            }
            Op::Sqr { d, a } => write!(f, " r{}, r{}", d.0, a.0)?,
            Op::MulC { d, a, c } => write!(f, " r{}, r{}, c{}", d.0, a.0, c.0)?,
            Op::LdC { d, c } => write!(f, " r{}, c{}", d.0, c.0)?,
            Op::Load { d, sign, input } => write!(f, " r{}, f{}, {input:?}", d.0, sign.0)?,
            Op::CNeg { d, a, f: flag } => write!(f, " r{}, r{}, f{}", d.0, a.0, flag.0)?,
            Op::CSel { d, a, b, f: flag } => {
                write!(f, " r{}, r{}, r{}, f{}", d.0, a.0, b.0, flag.0)?
            }
            Op::Eq { f: flag, a, b } => write!(f, " f{}, r{}, r{}", flag.0, a.0, b.0)?,
            Op::Odd { f: flag, a } => write!(f, " f{}, r{}", flag.0, a.0)?,
            Op::FAnd { f: flag, a, b } | Op::FOr { f: flag, a, b } => {
                write!(f, " f{}, f{}, f{}", flag.0, a.0, b.0)?
            }
            Op::MulT {
                d,
                a,
                base,
                coord,
                digits,
            } => write!(f, " r{}, r{}, r{}[{coord}], {digits:?}", d.0, a.0, base.0)?,
            Op::MulTC {
                d,
                a,
                base,
                coord,
                digits,
            } => write!(f, " r{}, r{}, c{}[{coord}], {digits:?}", d.0, a.0, base.0)?,
            Op::TNeg { d, a, digits } => write!(f, " r{}, r{}, {digits:?}", d.0, a.0)?,
            Op::SetI { n } | Op::SetJ { n } => write!(f, " {n}")?,
        }
        match self.seq {
            Seq::Next => Ok(()),
            Seq::Jump(t) => write!(f, "  ; jump {}", t.0),
            Seq::IfFlag(flag, t) => write!(f, "  ; if f{} -> {}", flag.0, t.0),
            Seq::IfNotFlag(flag, t) => write!(f, "  ; if !f{} -> {}", flag.0, t.0),
            Seq::IfDigitZero(d, t) => write!(f, "  ; if {d:?}=0 -> {}", t.0),
            Seq::LoopI(t) => write!(f, "  ; loop I -> {}", t.0),
            Seq::LoopJ(t) => write!(f, "  ; loop J -> {}", t.0),
            Seq::Done(code) => write!(f, "  ; done {code}"),
            Seq::IfBothDigitsZero(t) => write!(f, "  ; if K=0 and S=0 -> {}", t.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every word either decodes to an instruction that encodes back to it, or is rejected.
        #[test]
        fn decode_then_encode_is_the_identity_on_valid_words(word in any::<u64>()) {
            if let Ok(instr) = Instr::decode(word) {
                prop_assert_eq!(instr.encode(), word);
            }
        }

        #[test]
        fn words_with_low_fields_only_mostly_decode(word in 0u64..(1 << 40)) {
            if let Ok(instr) = Instr::decode(word) {
                prop_assert_eq!(Instr::decode(instr.encode()), Ok(instr));
            }
        }
    }

    #[test]
    fn stray_bits_and_unknown_opcodes_are_rejected() {
        let add = Instr::op(Op::Add {
            d: Reg(1),
            a: Reg(2),
            b: Reg(3),
        })
        .encode();
        assert_eq!(Instr::decode(add).map(|i| i.encode()), Ok(add));
        assert!(matches!(
            Instr::decode(add | 1 << 60),
            Err(DecodeError::UnusedBits { .. })
        ));
        assert!(matches!(
            Instr::decode(add | 0xff << 24),
            Err(DecodeError::UnusedBits { .. })
        ));
        assert_eq!(Instr::decode(63), Err(DecodeError::UnknownOpcode(63)));
        assert_eq!(Instr::decode(9 << 32), Err(DecodeError::UnknownSeq(9)));
    }
}
