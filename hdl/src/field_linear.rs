//! The ECC engine's linear unit: addition, subtraction, negation, reduction and selection
//! mod p = 2^255 − 19, and the equality and parity tests, in [`LATENCY`] cycles, one
//! operation per cycle.
//!
//! Operands are canonical (below p), except for [`LinearOp::Reduce`], which takes any value
//! below 2^255 (a received encoding's low 255 bits) to its residue. Every result is canonical.
//!
//! | stage | what |
//! |---|---|
//! | 1 | `a + b` and `a − b` (with its borrow), `a == b`, the parity of `a`, registered |
//! | 2 | one correction each: `s − p` when `s ≥ p` (exactly when `s + 19` reaches 2^255), `d + p` when `a − b` borrowed; the operation picks its result |
//!
//! The engine maps its instructions onto these operations: `Add`, `Sub`, `CNeg`/`TNeg` (0 − a
//! or a), `CSel`/`LdC` (a or b), `Load` (reduce), `Eq` and `Odd` (the flags).

use crate::field_value::{from_fe, to_fe};
use crate::flow::harness::{Beat, Port, StreamBlock};
use num_bigint::BigUint;
use rust_hdl::prelude::*;

/// Cycles from operands to result.
pub const LATENCY: usize = 2;
/// Width of the tag that travels with each operation.
pub const TAG_BITS: usize = 19;

/// What the unit computes.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum LinearOp {
    /// `a + b mod p`.
    Add,
    /// `a − b mod p`.
    Sub,
    /// `a mod p` for any `a` below 2^255 (`b` must be 0).
    Reduce,
    /// `b` (a move or a select: the engine puts the chosen source on `b`).
    PassB,
}

impl LinearOp {
    /// The operation's code on the `in_op` port.
    pub fn code(self) -> u8 {
        match self {
            Self::Add => 0,
            Self::Sub => 1,
            Self::Reduce => 2,
            Self::PassB => 3,
        }
    }
}

/// The linear unit.
#[derive(LogicBlock)]
pub struct FieldLinear {
    /// The engine clock.
    pub clock: Signal<In, Clock>,
    /// An operation is issued this cycle.
    pub in_valid: Signal<In, Bit>,
    /// The operation.
    pub in_op: Signal<In, LinearOp>,
    /// First operand.
    pub in_a: Signal<In, Bits<255>>,
    /// Second operand.
    pub in_b: Signal<In, Bits<255>>,
    /// Travels with the operation.
    pub in_tag: Signal<In, Bits<TAG_BITS>>,
    /// A result leaves this cycle.
    pub out_valid: Signal<Out, Bit>,
    /// The result, canonical.
    pub out_value: Signal<Out, Bits<255>>,
    /// `a == b`.
    pub out_equal: Signal<Out, Bit>,
    /// `a` is odd.
    pub out_odd: Signal<Out, Bit>,
    /// The operation's tag.
    pub out_tag: Signal<Out, Bits<TAG_BITS>>,
    sum: DFF<Bits<256>>,
    difference: DFF<Bits<255>>,
    borrow: DFF<Bit>,
    pass: DFF<Bits<255>>,
    equal: DFF<Bit>,
    odd: DFF<Bit>,
    op: DFF<LinearOp>,
    valid: DFF<Bit>,
    tag: DFF<Bits<TAG_BITS>>,
    result: DFF<Bits<255>>,
    result_equal: DFF<Bit>,
    result_odd: DFF<Bit>,
    result_valid: DFF<Bit>,
    result_tag: DFF<Bits<TAG_BITS>>,
    nineteen: Constant<Bits<256>>,
    p: Constant<Bits<255>>,
    wide_a: Signal<Local, Bits<256>>,
    wide_b: Signal<Local, Bits<256>>,
    sum_plus_19: Signal<Local, Bits<256>>,
    difference_plus_p: Signal<Local, Bits<255>>,
}

impl Default for FieldLinear {
    fn default() -> Self {
        let p: BigUint = (BigUint::from(1u8) << 255u32) - 19u8;
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_op: Default::default(),
            in_a: Default::default(),
            in_b: Default::default(),
            in_tag: Default::default(),
            out_valid: Default::default(),
            out_value: Default::default(),
            out_equal: Default::default(),
            out_odd: Default::default(),
            out_tag: Default::default(),
            sum: Default::default(),
            difference: Default::default(),
            borrow: Default::default(),
            pass: Default::default(),
            equal: Default::default(),
            odd: Default::default(),
            op: Default::default(),
            valid: Default::default(),
            tag: Default::default(),
            result: Default::default(),
            result_equal: Default::default(),
            result_odd: Default::default(),
            result_valid: Default::default(),
            result_tag: Default::default(),
            nineteen: Constant::new(19u64.into()),
            p: Constant::new(p.into()),
            wide_a: Default::default(),
            wide_b: Default::default(),
            sum_plus_19: Default::default(),
            difference_plus_p: Default::default(),
        }
    }
}

impl Logic for FieldLinear {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            sum,
            difference,
            borrow,
            pass,
            equal,
            odd,
            op,
            valid,
            tag,
            result,
            result_equal,
            result_odd,
            result_valid,
            result_tag
        );
        // Stage 1.
        self.wide_a.next = bit_cast::<256, 255>(self.in_a.val());
        self.wide_b.next = bit_cast::<256, 255>(self.in_b.val());
        self.sum.d.next = self.wide_a.val() + self.wide_b.val();
        // Modulo 2^255: a − b + p lies in [0, p) whenever a − b borrows.
        self.difference.d.next = self.in_a.val() - self.in_b.val();
        self.borrow.d.next = self.in_a.val() < self.in_b.val();
        self.pass.d.next = self.in_b.val();
        self.equal.d.next = self.in_a.val() == self.in_b.val();
        self.odd.d.next = self.in_a.val().get_bit(0);
        self.op.d.next = self.in_op.val();
        self.valid.d.next = self.in_valid.val();
        self.tag.d.next = self.in_tag.val();
        // Stage 2.
        self.sum_plus_19.next = self.sum.q.val() + self.nineteen.val();
        self.difference_plus_p.next = self.difference.q.val() + self.p.val();
        match self.op.q.val() {
            LinearOp::Add => {
                self.result.d.next = self.sum.q.val().get_bits::<255>(0);
                if self.sum_plus_19.val().get_bit(255) {
                    self.result.d.next = self.sum_plus_19.val().get_bits::<255>(0);
                }
            }
            LinearOp::Reduce => {
                self.result.d.next = self.sum.q.val().get_bits::<255>(0);
                if self.sum_plus_19.val().get_bit(255) {
                    self.result.d.next = self.sum_plus_19.val().get_bits::<255>(0);
                }
            }
            LinearOp::Sub => {
                self.result.d.next = self.difference.q.val();
                if self.borrow.q.val() {
                    self.result.d.next = self.difference_plus_p.val();
                }
            }
            LinearOp::PassB => {
                self.result.d.next = self.pass.q.val();
            }
        }
        self.result_equal.d.next = self.equal.q.val();
        self.result_odd.d.next = self.odd.q.val();
        self.result_valid.d.next = self.valid.q.val();
        self.result_tag.d.next = self.tag.q.val();
        self.out_valid.next = self.result_valid.q.val();
        self.out_value.next = self.result.q.val();
        self.out_equal.next = self.result_equal.q.val();
        self.out_odd.next = self.result_odd.q.val();
        self.out_tag.next = self.result_tag.q.val();
    }
}

impl StreamBlock for FieldLinear {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_op",
            bits: 2,
        },
        Port {
            name: "in_a",
            bits: 255,
        },
        Port {
            name: "in_b",
            bits: 255,
        },
        Port {
            name: "in_tag",
            bits: TAG_BITS,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_value",
            bits: 255,
        },
        Port {
            name: "out_equal",
            bits: 1,
        },
        Port {
            name: "out_odd",
            bits: 1,
        },
        Port {
            name: "out_tag",
            bits: TAG_BITS,
        },
    ];
    const BACK_PRESSURE: bool = false;

    crate::pipeline_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_op.next = match u8::try_from(&beat[0]).unwrap_or(0) {
                0 => LinearOp::Add,
                1 => LinearOp::Sub,
                2 => LinearOp::Reduce,
                _ => LinearOp::PassB,
            };
            self.in_a.next = beat[1].clone().into();
            self.in_b.next = beat[2].clone().into();
            self.in_tag.next = beat[3].clone().into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid.val().then(|| {
            vec![
                self.out_value.val().into(),
                BigUint::from(u8::from(self.out_equal.val())),
                BigUint::from(u8::from(self.out_odd.val())),
                self.out_tag.val().into(),
            ]
        })
    }
}

impl FieldLinear {
    /// The input beat of one operation.
    pub fn operation(op: LinearOp, a: &BigUint, b: &BigUint, tag: u16) -> Beat {
        vec![
            BigUint::from(op.code()),
            a.clone(),
            b.clone(),
            BigUint::from(tag),
        ]
    }
}

/// What the firmware's reference arithmetic gives for `op` on `a` and `b`: the unit's expected
/// output beat.
pub fn reference(op: LinearOp, a: &BigUint, b: &BigUint, tag: u16) -> Beat {
    let value = match op {
        LinearOp::Add => to_fe(a) + to_fe(b),
        LinearOp::Sub => to_fe(a) - to_fe(b),
        LinearOp::Reduce => to_fe(a),
        LinearOp::PassB => to_fe(b),
    };
    vec![
        from_fe(value),
        BigUint::from(u8::from(a == b)),
        BigUint::from(u8::from(a.bit(0))),
        BigUint::from(tag),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};

    #[test]
    fn every_operation_on_edge_values_matches_the_firmware() {
        let p = crate::field_value::modulus();
        let one = BigUint::from(1u8);
        let canonical = [
            BigUint::from(0u8),
            one.clone(),
            BigUint::from(19u8),
            &p - 1u8,
            &p - 2u8,
            &one << 254,
        ];
        let mut inputs = Vec::new();
        let mut expected = Vec::new();
        let mut tag = 0u16;
        for op in [LinearOp::Add, LinearOp::Sub, LinearOp::PassB] {
            for a in &canonical {
                for b in &canonical {
                    inputs.push(FieldLinear::operation(op, a, b, tag));
                    expected.push(reference(op, a, b, tag));
                    tag += 1;
                }
            }
        }
        // Reduce takes anything below 2^255: p, p + 1 and 2^255 − 1 among them.
        for a in canonical
            .iter()
            .cloned()
            .chain([p.clone(), &p + 1u8, (&one << 255) - 1u8])
        {
            let zero = BigUint::from(0u8);
            inputs.push(FieldLinear::operation(LinearOp::Reduce, &a, &zero, tag));
            expected.push(reference(LinearOp::Reduce, &a, &zero, tag));
            tag += 1;
        }
        let mut uut = FieldLinear::default();
        uut.connect_all();
        let trace = run(
            &mut uut,
            &inputs,
            &Stalls::random(9, 20, 0),
            expected.len(),
            10_000,
        );
        compare(FieldLinear::OUTPUTS, &trace, &expected).unwrap_or_else(|m| panic!("{m}"));
    }
}
