//! The reference interpreter: the golden model of the ECC engine.
//!
//! [`Engine::run`] executes one context instruction by instruction with bit-exact field
//! arithmetic and returns the outcome and what it cost. [`Context`] is public so that a test
//! bench can single-step it beside the HDL and compare registers after every instruction.
//! [`Engine::schedule`] replays many contexts through the documented issue model
//! ([`CostModel`]) and counts cycles.

use std::ops::{Add, Mul, Neg, Sub};
use thiserror::Error;

use crate::field::Fe;
use crate::image::Image;
use crate::isa::{Class, Digits, Flag, Input, Instr, Op, Reg, Seq, FLAGS, REGISTERS};
use crate::scalar::DIGITS;

/// What a context is given: the encodings of A and R and the digits of k and S.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// The public key A as received.
    pub a: [u8; 32],
    /// R as received.
    pub r: [u8; 32],
    /// Width-5 NAF digits of k.
    pub k: [i8; DIGITS],
    /// Width-8 NAF digits of S.
    pub s: [i8; DIGITS],
}

/// What one context's run cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Instructions executed.
    pub instructions: u64,
    /// Multiplier operations (Mul, Sqr, MulC).
    pub multiplier: u64,
    /// Linear-unit operations, sequencing-only words included.
    pub linear: u64,
}

/// How a context ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The `Done` code: a [`Verdict`](crate::Verdict) code.
    pub code: u8,
    /// What it cost.
    pub counts: Counts,
}

/// A run that could not finish: the image is wrong, not the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ExecError {
    /// The program ran past its step bound: it does not terminate.
    #[error("no outcome after {0} instructions")]
    StepLimit(u64),
    /// A table read addressed past the register file or the ROM.
    #[error("word {pc}: table entry outside the {what}")]
    TableOutOfRange {
        /// The word.
        pc: usize,
        /// Register file or ROM.
        what: &'static str,
    },
    /// A digit position outside 0..256 was read (I out of range).
    #[error("word {pc}: digit position {position} outside the scalar")]
    DigitOutOfRange {
        /// The word.
        pc: usize,
        /// I.
        position: i32,
    },
    /// The program counter left the code.
    #[error("program counter {0} outside the code")]
    Pc(usize),
    /// The program ended with a code that is no verdict.
    #[error("outcome code {0} is no verdict")]
    Outcome(u8),
}

/// The bound on one context's instructions: far above the verification program's ≈ 6,000.
pub const STEP_LIMIT: u64 = 100_000;

/// One context's architectural state.
#[derive(Clone, Debug)]
pub struct Context {
    /// Field registers.
    pub regs: [Fe; REGISTERS],
    /// Flags, bit i is flag i.
    pub flags: u16,
    /// Digit-position counter.
    pub i: i32,
    /// Loop counter.
    pub j: i32,
    /// Next word.
    pub pc: usize,
    /// Costs so far.
    pub counts: Counts,
    inputs: Inputs,
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The context continues at `pc`.
    Continue,
    /// The context ended with this code.
    Done(u8),
}

impl Context {
    /// A context at the program's entry with zeroed registers.
    pub fn new(image: &Image, inputs: Inputs) -> Self {
        Self {
            regs: [Fe::ZERO; REGISTERS],
            flags: 0,
            i: 0,
            j: 0,
            pc: image.program.entry.index(),
            counts: Counts::default(),
            inputs,
        }
    }

    fn flag(&self, f: Flag) -> bool {
        self.flags >> f.index() & 1 == 1
    }

    fn set_flag(&mut self, f: Flag, value: bool) {
        self.flags = (self.flags & !(1 << f.index())) | (u16::from(value) << f.index());
    }

    fn digit(&self, digits: Digits, pc: usize) -> Result<i8, ExecError> {
        let position = usize::try_from(self.i).ok().filter(|p| *p < DIGITS).ok_or(
            ExecError::DigitOutOfRange {
                pc,
                position: self.i,
            },
        )?;
        Ok(match digits {
            Digits::K => self.inputs.k[position],
            Digits::S => self.inputs.s[position],
        })
    }

    /// (|δ| − 1)/2 and whether δ < 0: which odd multiple and its sign. A zero digit reads entry
    /// 0, unsigned (the program never does).
    fn table_index(&self, digits: Digits, pc: usize) -> Result<(usize, bool), ExecError> {
        let digit = self.digit(digits, pc)?;
        Ok((
            usize::from(digit.unsigned_abs().saturating_sub(1) / 2),
            digit < 0,
        ))
    }

    /// Executes the word at `pc`.
    pub fn step(&mut self, image: &Image) -> Result<Step, ExecError> {
        let pc = self.pc;
        let program = &image.program;
        let instr: Instr = *program.code.get(pc).ok_or(ExecError::Pc(pc))?;
        let reg = |ctx: &Context, r: Reg| ctx.regs[r.index()];
        match instr.op.class() {
            Class::Multiplier => self.counts.multiplier += 1,
            Class::Linear => self.counts.linear += 1,
        }
        self.counts.instructions += 1;
        match instr.op {
            Op::Nop => {}
            Op::Mul { d, a, b } => self.regs[d.index()] = reg(self, a).mul(reg(self, b)),
            Op::Sqr { d, a } => self.regs[d.index()] = reg(self, a).square(),
            Op::MulC { d, a, c } => {
                self.regs[d.index()] = reg(self, a).mul(program.constants[c.index()])
            }
            Op::Add { d, a, b } => self.regs[d.index()] = reg(self, a).add(reg(self, b)),
            Op::Sub { d, a, b } => self.regs[d.index()] = reg(self, a).sub(reg(self, b)),
            Op::LdC { d, c } => self.regs[d.index()] = program.constants[c.index()],
            Op::Load { d, sign, input } => {
                let bytes = match input {
                    Input::A => self.inputs.a,
                    Input::R => self.inputs.r,
                };
                self.regs[d.index()] = Fe::from_bytes_mod_p(&bytes);
                self.set_flag(sign, bytes[31] >> 7 == 1);
            }
            Op::CNeg { d, a, f } => {
                let value = reg(self, a);
                self.regs[d.index()] = if self.flag(f) { value.neg() } else { value };
            }
            Op::CSel { d, a, b, f } => {
                self.regs[d.index()] = if self.flag(f) {
                    reg(self, a)
                } else {
                    reg(self, b)
                };
            }
            Op::Eq { f, a, b } => {
                let equal = reg(self, a) == reg(self, b);
                self.set_flag(f, equal);
            }
            Op::Odd { f, a } => {
                let odd = reg(self, a).is_odd();
                self.set_flag(f, odd);
            }
            Op::FAnd { f, a, b } => {
                let value = self.flag(a) && self.flag(b);
                self.set_flag(f, value);
            }
            Op::FOr { f, a, b } => {
                let value = self.flag(a) || self.flag(b);
                self.set_flag(f, value);
            }
            Op::MulT {
                d,
                a,
                base,
                coord,
                digits,
            } => {
                let (index, negative) = self.table_index(digits, pc)?;
                let at = base.index() + 4 * index + usize::from(swap_if(coord, negative));
                let entry = *self.regs.get(at).ok_or(ExecError::TableOutOfRange {
                    pc,
                    what: "register file",
                })?;
                self.regs[d.index()] = reg(self, a) * entry;
            }
            Op::MulTC {
                d,
                a,
                base,
                coord,
                digits,
            } => {
                let (index, negative) = self.table_index(digits, pc)?;
                let at = base.index() + 3 * index + usize::from(swap_if(coord, negative));
                let entry = *program
                    .constants
                    .get(at)
                    .ok_or(ExecError::TableOutOfRange {
                        pc,
                        what: "constant ROM",
                    })?;
                self.regs[d.index()] = reg(self, a) * entry;
            }
            Op::TNeg { d, a, digits } => {
                let negative = self.digit(digits, pc)? < 0;
                let value = reg(self, a);
                self.regs[d.index()] = if negative { value.neg() } else { value };
            }
            Op::SetI { n } => self.i = i32::from(n),
            Op::SetJ { n } => self.j = i32::from(n),
        }
        let branch =
            |taken: bool, target: crate::isa::Addr| if taken { target.index() } else { pc + 1 };
        self.pc = match instr.seq {
            Seq::Next => pc + 1,
            Seq::Jump(t) => t.index(),
            Seq::IfFlag(f, t) => branch(self.flag(f), t),
            Seq::IfNotFlag(f, t) => branch(!self.flag(f), t),
            Seq::IfDigitZero(digits, t) => branch(self.digit(digits, pc)? == 0, t),
            Seq::IfBothDigitsZero(t) => branch(
                self.digit(Digits::K, pc)? == 0 && self.digit(Digits::S, pc)? == 0,
                t,
            ),
            Seq::LoopI(t) => {
                self.i -= 1;
                branch(self.i >= 0, t)
            }
            Seq::LoopJ(t) => {
                self.j -= 1;
                branch(self.j >= 0, t)
            }
            Seq::Done(code) => return Ok(Step::Done(code)),
        };
        Ok(Step::Continue)
    }
}

/// Coordinates 0 and 1 trade places for a negative digit.
fn swap_if(coord: u8, negative: bool) -> u8 {
    match (coord, negative) {
        (0, true) => 1,
        (1, true) => 0,
        (other, _) => other,
    }
}

/// The issue model cycles are counted by (see [`crate::isa`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostModel {
    /// Contexts interleaved on the engine.
    pub contexts: usize,
    /// Cycles from issuing a multiplier operation to its result being readable; the
    /// multiplier accepts one operation every cycle.
    pub multiplier_latency: u64,
    /// Cycles from issuing a linear operation to its result being readable.
    pub linear_latency: u64,
    /// Cycles between a context's `Done` and its first instruction on the next signature
    /// (the next inputs are already loaded in a shadow buffer).
    pub reload: u64,
}

impl Default for CostModel {
    /// 16 contexts over a 12-stage multiplier and a 2-stage linear unit: a multiplier built
    /// from DSP partial products needs about 12 stages at 300–400 MHz.
    fn default() -> Self {
        Self {
            contexts: 16,
            multiplier_latency: 12,
            linear_latency: 2,
            reload: 1,
        }
    }
}

/// What a scheduled run cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Outcome of each signature, in input order.
    pub outcomes: Vec<Outcome>,
    /// Cycles until the last signature finished.
    pub cycles: u64,
    /// Cycles the multiplier accepted an operation.
    pub multiplier_busy: u64,
}

impl Schedule {
    /// Cycles per verification over the whole run.
    pub fn cycles_per_verification(&self) -> f64 {
        self.cycles as f64 / self.outcomes.len().max(1) as f64
    }
}

/// A loaded image, ready to run contexts.
#[derive(Clone, Debug)]
pub struct Engine {
    image: Image,
}

/// A context on the scheduled engine, with its scoreboard.
struct Slot {
    job: usize,
    ctx: Context,
    reg_ready: [u64; REGISTERS],
    flag_ready: [u64; FLAGS],
    /// The context may issue again from this cycle on.
    next_issue: u64,
}

impl Engine {
    /// An engine running `image`.
    pub fn new(image: Image) -> Self {
        Self { image }
    }

    /// The loaded image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// Runs one context to its outcome.
    pub fn run(&self, inputs: Inputs) -> Result<Outcome, ExecError> {
        let mut ctx = Context::new(&self.image, inputs);
        loop {
            if let Step::Done(code) = ctx.step(&self.image)? {
                return Ok(Outcome {
                    code,
                    counts: ctx.counts,
                });
            }
            if ctx.counts.instructions >= STEP_LIMIT {
                return Err(ExecError::StepLimit(STEP_LIMIT));
            }
        }
    }

    /// Runs `jobs` through the issue model: each cycle at most one multiplier and one linear
    /// operation issue, each from a context whose next instruction's sources and destination
    /// have no result in flight; contexts take turns. A context issues in order, at most one
    /// instruction a cycle, and waits for a flag its own branch depends on.
    pub fn schedule(&self, model: CostModel, jobs: &[Inputs]) -> Result<Schedule, ExecError> {
        assert!(model.contexts > 0, "an engine has at least one context");
        let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
        let mut queue = jobs.iter().enumerate();
        let mut slots: Vec<Option<Slot>> = (0..model.contexts)
            .map(|_| {
                queue.next().map(|(job, inputs)| Slot {
                    job,
                    ctx: Context::new(&self.image, inputs.clone()),
                    reg_ready: [0; REGISTERS],
                    flag_ready: [0; FLAGS],
                    next_issue: 0,
                })
            })
            .collect();
        let mut turn = [0usize; 2];
        let mut issued = vec![false; slots.len()];
        let (mut now, mut busy, mut last_done) = (0u64, 0u64, 0u64);
        while slots.iter().any(Option::is_some) {
            issued.fill(false);
            for (unit, class) in [Class::Multiplier, Class::Linear].into_iter().enumerate() {
                let n = slots.len();
                let pick = (0..n).map(|k| (turn[unit] + k) % n).find(|&s| {
                    !issued[s]
                        && slots[s]
                            .as_ref()
                            .is_some_and(|slot| self.ready(slot, class, now))
                });
                let Some(s) = pick else { continue };
                issued[s] = true;
                turn[unit] = (s + 1) % n;
                if class == Class::Multiplier {
                    busy += 1;
                }
                let slot = slots[s].as_mut().expect("picked slots are occupied");
                let instr = self.image.program.code[slot.ctx.pc];
                let latency = match class {
                    Class::Multiplier => model.multiplier_latency,
                    Class::Linear => model.linear_latency,
                };
                let (regs, flags) = writes(&instr.op);
                let step = slot.ctx.step(&self.image)?;
                for r in regs.into_iter().flatten() {
                    slot.reg_ready[r.index()] = now + latency;
                }
                for f in flags.into_iter().flatten() {
                    slot.flag_ready[f.index()] = now + latency;
                }
                // A branch on a flag this instruction writes resolves when the flag does.
                let waits_on_own_flag =
                    branch_flag(&instr.seq).is_some_and(|f| flags.contains(&Some(f)));
                slot.next_issue = if waits_on_own_flag {
                    now + latency
                } else {
                    now + 1
                };
                if slot.ctx.counts.instructions >= STEP_LIMIT {
                    return Err(ExecError::StepLimit(STEP_LIMIT));
                }
                if let Step::Done(code) = step {
                    outcomes[slot.job] = Some(Outcome {
                        code,
                        counts: slot.ctx.counts,
                    });
                    last_done = now + 1;
                    slots[s] = queue.next().map(|(job, inputs)| Slot {
                        job,
                        ctx: Context::new(&self.image, inputs.clone()),
                        reg_ready: [0; REGISTERS],
                        flag_ready: [0; FLAGS],
                        next_issue: now + 1 + model.reload,
                    });
                }
            }
            now += 1;
        }
        Ok(Schedule {
            outcomes: outcomes
                .into_iter()
                .map(|o| o.expect("every job ran to an outcome"))
                .collect(),
            cycles: last_done,
            multiplier_busy: busy,
        })
    }

    fn ready(&self, slot: &Slot, class: Class, now: u64) -> bool {
        if slot.next_issue > now {
            return false;
        }
        let Some(instr) = self.image.program.code.get(slot.ctx.pc) else {
            // Let `step` report the bad program counter.
            return class == Class::Linear;
        };
        if instr.op.class() != class {
            return false;
        }
        let (reads, table, flag_reads) = reads(&instr.op);
        let (writes, flag_writes) = writes(&instr.op);
        let seq_flag = branch_flag(&instr.seq);
        reads
            .into_iter()
            .chain(writes)
            .flatten()
            .all(|r| slot.reg_ready[r.index()] <= now)
            && slot.reg_ready[table].iter().all(|ready| *ready <= now)
            && flag_reads
                .into_iter()
                .chain(flag_writes)
                .chain([seq_flag])
                .flatten()
                .all(|f| slot.flag_ready[f.index()] <= now)
    }
}

fn branch_flag(seq: &Seq) -> Option<Flag> {
    match seq {
        Seq::IfFlag(f, _) | Seq::IfNotFlag(f, _) => Some(*f),
        _ => None,
    }
}

/// Registers and flags an operation reads. A register-table read depends on the digit, so it
/// waits for the whole table: the range of registers is returned separately.
fn reads(op: &Op) -> ([Option<Reg>; 2], std::ops::Range<usize>, [Option<Flag>; 2]) {
    let none: [Option<Reg>; 2] = [None, None];
    let no_flags: [Option<Flag>; 2] = [None, None];
    let (regs, table, flags) = match *op {
        Op::Nop | Op::LdC { .. } | Op::Load { .. } | Op::SetI { .. } | Op::SetJ { .. } => {
            (none, 0..0, no_flags)
        }
        Op::Mul { a, b, .. }
        | Op::Add { a, b, .. }
        | Op::Sub { a, b, .. }
        | Op::Eq { a, b, .. } => ([Some(a), Some(b)], 0..0, no_flags),
        Op::Sqr { a, .. }
        | Op::MulC { a, .. }
        | Op::MulTC { a, .. }
        | Op::Odd { a, .. }
        | Op::TNeg { a, .. } => ([Some(a), None], 0..0, no_flags),
        Op::CNeg { a, f, .. } => ([Some(a), None], 0..0, [Some(f), None]),
        Op::CSel { a, b, f, .. } => ([Some(a), Some(b)], 0..0, [Some(f), None]),
        Op::FAnd { a, b, .. } | Op::FOr { a, b, .. } => (none, 0..0, [Some(a), Some(b)]),
        Op::MulT { a, base, .. } => (
            [Some(a), None],
            base.index()..(base.index() + TABLE_SPAN).min(REGISTERS),
            no_flags,
        ),
    };
    (regs, table, flags)
}

/// Registers a register-table read may touch: 8 cached points of 4 coordinates.
const TABLE_SPAN: usize = 32;

/// The register and flags an operation writes.
fn writes(op: &Op) -> ([Option<Reg>; 1], [Option<Flag>; 1]) {
    let flag = match *op {
        Op::Load { sign, .. } => Some(sign),
        Op::Eq { f, .. } | Op::Odd { f, .. } | Op::FAnd { f, .. } | Op::FOr { f, .. } => Some(f),
        _ => None,
    };
    ([op.destination()], [flag])
}

#[cfg(test)]
mod tests {
    use num_bigint::BigUint;
    use proptest::prelude::*;

    use super::*;
    use crate::asm::Program;
    use crate::field::tests::{arb, big, fe, p};
    use crate::isa::{Addr, ConstId};

    fn r(i: usize) -> Reg {
        Reg::new(i).expect("register")
    }

    fn f(i: usize) -> Flag {
        Flag::new(i).expect("flag")
    }

    fn c(i: usize) -> ConstId {
        ConstId::new(i).expect("constant")
    }

    /// A word that ends the context with `code`.
    fn done(code: u8) -> Instr {
        Instr {
            op: Op::Nop,
            seq: Seq::Done(code),
        }
    }

    /// An image of `code` and `constants`, entered at word 0.
    fn image(code: Vec<Instr>, constants: Vec<Fe>) -> Image {
        Image::new(Program {
            code,
            constants,
            entry: Addr::new(0).expect("0"),
        })
    }

    fn inputs(k_digit: i8, s_digit: i8) -> Inputs {
        let mut k = [0; DIGITS];
        let mut s = [0; DIGITS];
        k[5] = k_digit;
        s[5] = s_digit;
        Inputs {
            a: [0; 32],
            r: [0; 32],
            k,
            s,
        }
    }

    /// Loads the first (up to 32) constants into r0, r1, …, sets I = 5, runs `ops`, and
    /// returns the context.
    fn run(constants: &[Fe], ops: &[Op], inputs: Inputs) -> Context {
        let mut code: Vec<Instr> = (0..constants.len().min(32))
            .map(|i| Instr::op(Op::LdC { d: r(i), c: c(i) }))
            .collect();
        code.push(Instr::op(Op::SetI { n: 5 }));
        code.extend(ops.iter().map(|op| Instr::op(*op)));
        code.push(done(0));
        let image = image(code, constants.to_vec());
        let mut ctx = Context::new(&image, inputs);
        while ctx.step(&image).expect("runs") == Step::Continue {}
        ctx
    }

    proptest! {
        #[test]
        fn arithmetic_instructions_match_big_integers(a in arb(), b in arb()) {
            let p = p();
            let ops = [
                Op::Mul { d: r(10), a: r(0), b: r(1) },
                Op::Sqr { d: r(11), a: r(0) },
                Op::MulC { d: r(12), a: r(0), c: c(1) },
                Op::Add { d: r(13), a: r(0), b: r(1) },
                Op::Sub { d: r(14), a: r(0), b: r(1) },
            ];
            let ctx = run(&[fe(&a), fe(&b)], &ops, inputs(0, 0));
            prop_assert_eq!(big(ctx.regs[10]), (&a * &b) % &p);
            prop_assert_eq!(big(ctx.regs[11]), (&a * &a) % &p);
            prop_assert_eq!(big(ctx.regs[12]), (&a * &b) % &p);
            prop_assert_eq!(big(ctx.regs[13]), (&a + &b) % &p);
            prop_assert_eq!(big(ctx.regs[14]), (&a + &p - &b) % &p);
            prop_assert_eq!(ctx.counts.multiplier, 3);
        }

        #[test]
        fn compare_select_and_negate_match_big_integers(a in arb(), b in arb(), same in any::<bool>()) {
            let p = p();
            let b = if same { a.clone() } else { b };
            let ops = [
                Op::Eq { f: f(0), a: r(0), b: r(1) },
                Op::Odd { f: f(1), a: r(0) },
                Op::CNeg { d: r(10), a: r(0), f: f(0) },
                Op::CSel { d: r(11), a: r(0), b: r(1), f: f(1) },
                Op::FAnd { f: f(2), a: f(0), b: f(1) },
                Op::FOr { f: f(3), a: f(0), b: f(1) },
            ];
            let ctx = run(&[fe(&a), fe(&b)], &ops, inputs(0, 0));
            let equal = a == b;
            let odd = a.bit(0);
            prop_assert_eq!(ctx.flags & 0b1111, u16::from(equal) | u16::from(odd) << 1 | u16::from(equal && odd) << 2 | u16::from(equal || odd) << 3);
            prop_assert_eq!(big(ctx.regs[10]), if equal { (&p - &a) % &p } else { a.clone() });
            prop_assert_eq!(big(ctx.regs[11]), if odd { a } else { b });
        }

        #[test]
        fn loads_reduce_the_low_255_bits(bytes in any::<[u8; 32]>()) {
            let mut job = inputs(0, 0);
            job.a = bytes;
            let ctx = run(&[], &[Op::Load { d: r(3), sign: f(4), input: crate::isa::Input::A }], job);
            let low = BigUint::from_bytes_le(&bytes) % (BigUint::from(1u8) << 255u32);
            prop_assert_eq!(big(ctx.regs[3]), low % p());
            prop_assert_eq!(ctx.flags >> 4 & 1, u16::from(bytes[31] >> 7));
        }

        #[test]
        fn table_reads_follow_the_digit(digit in -15i8..=15, s_digit in -127i8..=127) {
            let digit = digit | 1;
            let s_digit = s_digit | 1;
            // Registers 0..32 hold 1..=32; the ROM holds 1..=200; r0 (= 1) is the multiplicand,
            // r1 (= 2) in the last line.
            let values: Vec<Fe> = (0..200u64).map(|v| Fe::from_u64(v + 1)).collect();
            let ops: Vec<Op> = (0..4u8)
                .map(|coord| Op::MulT { d: r(40 + coord as usize), a: r(0), base: r(0), coord, digits: Digits::K })
                .chain((0..3u8).map(|coord| Op::MulTC { d: r(50 + coord as usize), a: r(0), base: c(0), coord, digits: Digits::S }))
                .chain([Op::MulTC { d: r(53), a: r(1), base: c(0), coord: 2, digits: Digits::S }])
                .chain([Op::TNeg { d: r(60), a: r(0), digits: Digits::K }])
                .collect();
            let ctx = run(&values, &ops, inputs(digit, s_digit));
            let index = usize::from(digit.unsigned_abs() / 2);
            let swap = |coord: usize, negative: bool| if negative && coord < 2 { 1 - coord } else { coord };
            for coord in 0..4 {
                prop_assert_eq!(ctx.regs[40 + coord], values[4 * index + swap(coord, digit < 0)]);
            }
            let s_index = usize::from(s_digit.unsigned_abs() / 2);
            for coord in 0..3 {
                prop_assert_eq!(ctx.regs[50 + coord], values[3 * s_index + swap(coord, s_digit < 0)]);
            }
            prop_assert_eq!(ctx.regs[53], values[3 * s_index + 2] * Fe::from_u64(2));
            prop_assert_eq!(ctx.regs[60], if digit < 0 { values[0].neg() } else { values[0] });
            prop_assert_eq!(ctx.counts.multiplier, 8);
        }
    }

    #[test]
    fn loops_and_branches_sequence_as_documented() {
        // r1 = r0^(2^5) by a J loop; the I loop counts 3 passes into r2; flags branch.
        let two = Fe::from_u64(2);
        let code = vec![
            Instr::op(Op::LdC { d: r(0), c: c(0) }),
            Instr::op(Op::LdC { d: r(2), c: c(1) }),
            Instr::op(Op::Sqr { d: r(1), a: r(0) }),
            Instr::op(Op::SetJ { n: 3 }),
            Instr {
                op: Op::Sqr { d: r(1), a: r(1) },
                seq: Seq::LoopJ(Addr::new(4).expect("4")),
            },
            Instr::op(Op::SetI { n: 2 }),
            Instr {
                op: Op::Add {
                    d: r(2),
                    a: r(2),
                    b: r(0),
                },
                seq: Seq::LoopI(Addr::new(6).expect("6")),
            },
            Instr::op(Op::Eq {
                f: f(0),
                a: r(2),
                b: r(0),
            }),
            Instr {
                op: Op::Nop,
                seq: Seq::IfFlag(f(0), Addr::new(10).expect("10")),
            },
            done(1),
            done(0),
        ];
        let image = image(code, vec![two, Fe::ZERO]);
        let mut ctx = Context::new(&image, inputs(0, 0));
        let outcome = loop {
            if let Step::Done(code) = ctx.step(&image).expect("runs") {
                break code;
            }
        };
        assert_eq!(ctx.regs[1], Fe::from_u64(2).pow(&[32, 0, 0, 0]), "2^(2^5)");
        assert_eq!(ctx.regs[2], Fe::from_u64(6), "three passes of the I loop");
        assert_eq!(outcome, 1, "r2 != r0");
        assert_eq!(ctx.i, -1);
        assert_eq!(ctx.j, -1);
    }

    #[test]
    fn the_both_digits_branch_needs_both_zero() {
        for (k, s, taken) in [(0, 0, true), (1, 0, false), (0, -3, false), (5, 7, false)] {
            let code = vec![
                Instr::op(Op::SetI { n: 5 }),
                Instr {
                    op: Op::Nop,
                    seq: Seq::IfBothDigitsZero(Addr::new(3).expect("3")),
                },
                done(1),
                done(0),
            ];
            let engine = Engine::new(image(code, vec![]));
            let outcome = engine.run(inputs(k, s)).expect("runs");
            assert_eq!(outcome.code == 0, taken, "digits {k}, {s}");
        }
    }

    #[test]
    fn a_program_that_never_ends_is_stopped() {
        let code = vec![Instr {
            op: Op::Nop,
            seq: Seq::Jump(Addr::new(0).expect("0")),
        }];
        let engine = Engine::new(image(code, vec![]));
        assert_eq!(
            engine.run(inputs(0, 0)),
            Err(ExecError::StepLimit(STEP_LIMIT))
        );
    }

    #[test]
    fn table_reads_past_the_register_file_are_faults_not_panics() {
        let ops = [Op::MulT {
            d: r(0),
            a: r(0),
            base: r(60),
            coord: 3,
            digits: Digits::K,
        }];
        let code: Vec<Instr> = [Instr::op(Op::SetI { n: 5 })]
            .into_iter()
            .chain(ops.map(Instr::op))
            .chain([done(0)])
            .collect();
        let engine = Engine::new(image(code, vec![]));
        assert_eq!(
            engine.run(inputs(15, 0)),
            Err(ExecError::TableOutOfRange {
                pc: 1,
                what: "register file"
            })
        );
    }
}
