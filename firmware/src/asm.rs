//! The assembler: a Rust DSL that builds microcode, allocates registers and flags, places
//! constants, resolves labels, and folds sequencing into the preceding word when it can.
//!
//! ```
//! use verity_firmware::asm::Asm;
//! use verity_firmware::field::Fe;
//!
//! let mut asm = Asm::new();
//! let (x, y) = (asm.reg(), asm.reg());
//! let seven = asm.constant(Fe::from_u64(7));
//! asm.ldc(x, seven);
//! asm.sqr_n(y, x, 3); // y = 7^8
//! asm.done(0);
//! let program = asm.finish();
//! assert_eq!(program.code.len(), 4); // ldc, sqr, setj, sqr+loop (done folded into it)
//! ```
//!
//! Misuse (running out of registers, a label never bound) is a bug in the program being
//! built, not bad input, so it panics with the reason.

use std::collections::BTreeSet;

use crate::field::Fe;
use crate::isa::{
    Addr, ConstId, Digits, Flag, Input, Instr, Op, Reg, Seq, CODE_WORDS_MAX, CONSTANTS_MAX, FLAGS,
    REGISTERS,
};

/// A position in the program, bound once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Sequencing whose target is still a label.
#[derive(Clone, Copy, Debug)]
enum PendingSeq {
    Next,
    Jump(Label),
    IfFlag(Flag, Label),
    IfNotFlag(Flag, Label),
    IfDigitZero(Digits, Label),
    IfBothDigitsZero(Label),
    LoopI(Label),
    LoopJ(Label),
    Done(u8),
}

/// An assembled program: code, constants, entry point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The microcode.
    pub code: Vec<Instr>,
    /// The constant ROM.
    pub constants: Vec<Fe>,
    /// Where a context starts.
    pub entry: Addr,
}

/// Builds a [`Program`].
#[derive(Debug)]
pub struct Asm {
    code: Vec<(Op, PendingSeq)>,
    labels: Vec<Option<usize>>,
    /// Positions some label is bound to: sequencing is never folded across them.
    bound: BTreeSet<usize>,
    free_regs: BTreeSet<u8>,
    free_flags: BTreeSet<u8>,
    constants: Vec<Fe>,
}

impl Default for Asm {
    fn default() -> Self {
        Self::new()
    }
}

impl Asm {
    /// An empty program with every register and flag free.
    pub fn new() -> Self {
        Self {
            code: Vec::new(),
            labels: Vec::new(),
            bound: BTreeSet::new(),
            free_regs: (0..REGISTERS as u8).collect(),
            free_flags: (0..FLAGS as u8).collect(),
            constants: Vec::new(),
        }
    }

    /// A free register.
    pub fn reg(&mut self) -> Reg {
        let index = self
            .free_regs
            .pop_first()
            .expect("the program needs more than 64 registers");
        Reg::new(usize::from(index)).expect("a register below 64")
    }

    /// `N` free registers.
    pub fn regs<const N: usize>(&mut self) -> [Reg; N] {
        std::array::from_fn(|_| self.reg())
    }

    /// `n` consecutive free registers (for a table); returns the first.
    pub fn reg_block(&mut self, n: usize) -> Reg {
        let start = (0..=REGISTERS - n)
            .rev()
            .find(|start| (*start..start + n).all(|r| self.free_regs.contains(&(r as u8))))
            .expect("no block of free registers that long");
        for r in start..start + n {
            self.free_regs.remove(&(r as u8));
        }
        Reg::new(start).expect("a register below 64")
    }

    /// Returns registers to the pool.
    pub fn free(&mut self, regs: &[Reg]) {
        for r in regs {
            assert!(
                self.free_regs.insert(r.index() as u8),
                "register {} freed twice",
                r.index()
            );
        }
    }

    /// A free flag.
    pub fn flag(&mut self) -> Flag {
        let index = self
            .free_flags
            .pop_first()
            .expect("the program needs more than 16 flags");
        Flag::new(usize::from(index)).expect("a flag below 16")
    }

    /// Returns a flag to the pool.
    pub fn free_flag(&mut self, flag: Flag) {
        assert!(
            self.free_flags.insert(flag.index() as u8),
            "flag freed twice"
        );
    }

    /// The constant's ROM index, placing it if new.
    pub fn constant(&mut self, value: Fe) -> ConstId {
        let index = self
            .constants
            .iter()
            .position(|c| *c == value)
            .unwrap_or_else(|| {
                self.constants.push(value);
                self.constants.len() - 1
            });
        ConstId::new(index).expect("the program needs more than 256 constants")
    }

    /// Places `values` consecutively (a table); returns the first index.
    pub fn constant_block(&mut self, values: &[Fe]) -> ConstId {
        let start = self.constants.len();
        self.constants.extend_from_slice(values);
        assert!(
            self.constants.len() <= CONSTANTS_MAX,
            "the program needs more than 256 constants"
        );
        ConstId::new(start).expect("checked above")
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the next word emitted.
    pub fn bind(&mut self, label: Label) {
        assert!(self.labels[label.0].is_none(), "label bound twice");
        self.labels[label.0] = Some(self.code.len());
        self.bound.insert(self.code.len());
    }

    /// A new label bound here.
    pub fn here(&mut self) -> Label {
        let label = self.label();
        self.bind(label);
        label
    }

    fn emit(&mut self, op: Op) {
        self.code.push((op, PendingSeq::Next));
    }

    /// Sets where the context goes after the last word — folded into it when that word falls
    /// through and nothing jumps between it and what follows; otherwise a `Nop` carries it.
    fn sequence(&mut self, seq: PendingSeq) {
        let foldable = !self.bound.contains(&self.code.len())
            && matches!(self.code.last(), Some((_, PendingSeq::Next)));
        if foldable {
            if let Some(last) = self.code.last_mut() {
                last.1 = seq;
                return;
            }
        }
        self.code.push((Op::Nop, seq));
    }

    /// d = a · b.
    pub fn mul(&mut self, d: Reg, a: Reg, b: Reg) {
        self.emit(Op::Mul { d, a, b });
    }

    /// d = a².
    pub fn sqr(&mut self, d: Reg, a: Reg) {
        self.emit(Op::Sqr { d, a });
    }

    /// d = a^(2ⁿ), n ≥ 1: one squaring, then a one-word loop for the rest.
    pub fn sqr_n(&mut self, d: Reg, a: Reg, n: u32) {
        assert!((1..=257).contains(&n), "square count {n} out of 1..=257");
        self.sqr(d, a);
        match n {
            1 => {}
            2 | 3 => (1..n).for_each(|_| self.sqr(d, d)),
            _ => {
                self.emit(Op::SetJ { n: (n - 2) as u8 });
                let top = self.here();
                self.sqr(d, d);
                self.sequence(PendingSeq::LoopJ(top));
            }
        }
    }

    /// d = a · ROM[c].
    pub fn mulc(&mut self, d: Reg, a: Reg, c: ConstId) {
        self.emit(Op::MulC { d, a, c });
    }

    /// d = a + b.
    pub fn add(&mut self, d: Reg, a: Reg, b: Reg) {
        self.emit(Op::Add { d, a, b });
    }

    /// d = a − b.
    pub fn sub(&mut self, d: Reg, a: Reg, b: Reg) {
        self.emit(Op::Sub { d, a, b });
    }

    /// d = ROM[c].
    pub fn ldc(&mut self, d: Reg, c: ConstId) {
        self.emit(Op::LdC { d, c });
    }

    /// d = input's y mod p; sign = its bit 255.
    pub fn load(&mut self, d: Reg, sign: Flag, input: Input) {
        self.emit(Op::Load { d, sign, input });
    }

    /// d = f ? −a : a.
    pub fn cneg(&mut self, d: Reg, a: Reg, f: Flag) {
        self.emit(Op::CNeg { d, a, f });
    }

    /// d = f ? a : b.
    pub fn csel(&mut self, d: Reg, a: Reg, b: Reg, f: Flag) {
        self.emit(Op::CSel { d, a, b, f });
    }

    /// f = a == b.
    pub fn eq(&mut self, f: Flag, a: Reg, b: Reg) {
        self.emit(Op::Eq { f, a, b });
    }

    /// f = a is odd.
    pub fn odd(&mut self, f: Flag, a: Reg) {
        self.emit(Op::Odd { f, a });
    }

    /// f = a ∧ b.
    pub fn fand(&mut self, f: Flag, a: Flag, b: Flag) {
        self.emit(Op::FAnd { f, a, b });
    }

    /// f = a ∨ b.
    pub fn for_(&mut self, f: Flag, a: Flag, b: Flag) {
        self.emit(Op::FOr { f, a, b });
    }

    /// d = a · register table entry for the current digit (see [`Op::MulT`]).
    pub fn mult(&mut self, d: Reg, a: Reg, base: Reg, coord: u8, digits: Digits) {
        self.emit(Op::MulT {
            d,
            a,
            base,
            coord,
            digits,
        });
    }

    /// d = a · ROM table entry for the current digit (see [`Op::MulTC`]).
    pub fn multc(&mut self, d: Reg, a: Reg, base: ConstId, coord: u8, digits: Digits) {
        self.emit(Op::MulTC {
            d,
            a,
            base,
            coord,
            digits,
        });
    }

    /// d = digit < 0 ? −a : a.
    pub fn tneg(&mut self, d: Reg, a: Reg, digits: Digits) {
        self.emit(Op::TNeg { d, a, digits });
    }

    /// I = n.
    pub fn seti(&mut self, n: u8) {
        self.emit(Op::SetI { n });
    }

    /// Go to `label`.
    pub fn jump(&mut self, label: Label) {
        self.sequence(PendingSeq::Jump(label));
    }

    /// Go to `label` if `f`.
    pub fn if_flag(&mut self, f: Flag, label: Label) {
        self.sequence(PendingSeq::IfFlag(f, label));
    }

    /// Go to `label` unless `f`.
    pub fn if_not_flag(&mut self, f: Flag, label: Label) {
        self.sequence(PendingSeq::IfNotFlag(f, label));
    }

    /// Go to `label` if the current digit of `digits` is zero.
    pub fn if_digit_zero(&mut self, digits: Digits, label: Label) {
        self.sequence(PendingSeq::IfDigitZero(digits, label));
    }

    /// Go to `label` if the current digits of both streams are zero.
    pub fn if_both_digits_zero(&mut self, label: Label) {
        self.sequence(PendingSeq::IfBothDigitsZero(label));
    }

    /// I ← I − 1; go to `label` if I ≥ 0.
    pub fn loop_i(&mut self, label: Label) {
        self.sequence(PendingSeq::LoopI(label));
    }

    /// End the context with outcome `code`.
    pub fn done(&mut self, code: u8) {
        self.sequence(PendingSeq::Done(code));
    }

    /// Resolves labels; the program starts at word 0.
    pub fn finish(self) -> Program {
        assert!(
            self.code.len() <= CODE_WORDS_MAX,
            "{} words do not fit the microcode RAM",
            self.code.len()
        );
        let at = |label: Label| {
            let position = self.labels[label.0].expect("a label is used but never bound");
            Addr::new(position).expect("checked against the RAM size")
        };
        let code = self
            .code
            .iter()
            .map(|(op, seq)| Instr {
                op: *op,
                seq: match *seq {
                    PendingSeq::Next => Seq::Next,
                    PendingSeq::Jump(l) => Seq::Jump(at(l)),
                    PendingSeq::IfFlag(f, l) => Seq::IfFlag(f, at(l)),
                    PendingSeq::IfNotFlag(f, l) => Seq::IfNotFlag(f, at(l)),
                    PendingSeq::IfDigitZero(d, l) => Seq::IfDigitZero(d, at(l)),
                    PendingSeq::IfBothDigitsZero(l) => Seq::IfBothDigitsZero(at(l)),
                    PendingSeq::LoopI(l) => Seq::LoopI(at(l)),
                    PendingSeq::LoopJ(l) => Seq::LoopJ(at(l)),
                    PendingSeq::Done(code) => Seq::Done(code),
                },
            })
            .collect();
        Program {
            code,
            constants: self.constants,
            entry: Addr::new(0).expect("0 is an address"),
        }
    }
}
