//! The modular multiplier of the ECC engine: `a · b mod p`, p = 2^255 − 19, one operation per
//! cycle, [`LATENCY`] cycles, result fully reduced (canonical, below p) for any inputs below
//! 2^255.
//!
//! # Limbs and DSP slices
//!
//! `a` is cut into 10 limbs of 26 bits and `b` into 15 limbs of 17 bits: 150 partial products
//! of 26 × 17 bits, each one UltraScale+ DSP48E2 (a 27 × 18 signed multiplier is a 26 × 17
//! unsigned one), so the multiplier needs 150 DSP slices, under the engine's budget of 200. A
//! square split (15 × 15 limbs of 17 bits) would fit both the DSP48E2 and ECP5's 18 × 18
//! MULT18X18D but needs 225. On ECP5 a 26 × 17 product takes two MULT18X18D; the LFE5U-85
//! has 156, so a full-rate multiplier does not fit it by either split. The ECP5 build uses
//! [`Rate::Quarter`]: the square split, `b`'s 15 limbs taken four at a time from the top over
//! four cycles on 60 MULT18X18D, each pass's products compressed on their own and added to
//! an accumulator shifted up by a pass's 68 bits (Horner). A two-pass build (120 multipliers,
//! the 225 products compressed together) filled the part with its carry-save tree and did not
//! route; this one's tree is a pass's 60 products, and it routes alone (hdl/README).
//!
//! # Pipeline
//!
//! | stage | what |
//! |---|---|
//! | 1 | operands registered |
//! | 2–3 | the 150 products, registered twice (the DSP's M and P registers) |
//! | 4–6 | the products, laid out as non-overlapping rows of a 512-bit bit heap, compressed by carry-save adders (three levels per stage) to two rows (at the quarter rate: a pass's products, then the accumulator, three cycles after the first pass) |
//! | 7–8 | the fold: bits 255 and up weigh 2^255 ≡ 19, so the two rows' high parts are added back ×16, ×2 and ×1 (more carry-save levels) |
//! | 9–10 | the carry chain, in two halves |
//! | 11 | the second fold: the few bits left above 2^255, ×19 |
//! | 12 | the conditional subtraction of p (`t ≥ p` exactly when `t + 19` reaches 2^255) |
//!
//! rust-hdl's `Bits` multiplies only 16 × 16 and its HDL kernels cannot express a parametric
//! adder tree, so this block is a leaf in the style of rust-hdl's own RAM and DFF: its
//! behaviour in Rust (the exact product, delayed [`LATENCY`] cycles) and its Verilog body,
//! generated below. The co-simulation holds the two to each other cycle for cycle.

use crate::field_value::modulus;
use crate::flow::harness::{Beat, Port, StreamBlock};
use num_bigint::BigUint;
use rust_hdl::prelude::*;
use std::fmt::Write as _;

/// Cycles from an operation's operands to its result, at [`Rate::Full`].
pub const LATENCY: usize = 12;
/// Width of the tag that travels with each operation (context and destination register).
pub const TAG_BITS: usize = 16;

/// How often the multiplier takes an operation: the build's choice of DSP budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rate {
    /// Every cycle: `a` as 10 × 26-bit and `b` as 15 × 17-bit limbs, 150 products of
    /// 26 × 17 bits, one UltraScale+ DSP48E2 each. [`LATENCY`] cycles.
    #[default]
    Full,
    /// Every fourth cycle: both operands as 15 × 17-bit limbs, `b` taken four limbs at a time
    /// from the top (Horner), each pass's 60 products of 17 × 17 bits (on 60 multipliers, one
    /// ECP5 MULT18X18D each) compressed and added to the accumulator shifted up by 68 bits.
    /// The operands must stay put for the passes, so the engine issues at most one
    /// multiplication every four cycles. Three cycles longer than [`LATENCY`].
    Quarter,
}

impl Rate {
    /// Cycles from an operation's operands to its result.
    pub const fn latency(self) -> usize {
        match self {
            Rate::Full => LATENCY,
            Rate::Quarter => LATENCY + 3,
        }
    }

    /// Cycles from one operation to the next the multiplier can take.
    pub const fn interval(self) -> usize {
        match self {
            Rate::Full => 1,
            Rate::Quarter => QUARTER_PASSES,
        }
    }

    /// Limb widths of `a` and `b`.
    const fn limbs(self) -> (usize, usize) {
        match self {
            Rate::Full => (26, 17),
            Rate::Quarter => (17, 17),
        }
    }
}

/// The longest latency of any rate: the Rust model's pipeline length.
const MAX_LATENCY: usize = Rate::Quarter.latency();
/// Passes of [`Rate::Quarter`], and `b`'s limbs per pass.
const QUARTER_PASSES: usize = 4;
const QUARTER_LIMBS: usize = 4;
const FIELD_BITS: usize = 255;
/// Width of the product's bit heap: the product is below 2^510, and carry-save rows may
/// carry a bit or two above it.
const HEAP_BITS: usize = 512;
/// Width of the folded sum (below 2^264).
const FOLD_BITS: usize = 266;

/// One operation in flight in the Rust model.
#[derive(Clone, Debug, Default)]
struct Slot {
    valid: bool,
    product: Bits<255>,
    tag: Bits<TAG_BITS>,
}

/// The multiplier.
#[derive(LogicBlock, Default)]
pub struct FieldMul {
    /// The engine clock.
    pub clock: Signal<In, Clock>,
    /// An operation is issued this cycle.
    pub in_valid: Signal<In, Bit>,
    /// First operand, below 2^255.
    pub in_a: Signal<In, Bits<255>>,
    /// Second operand, below 2^255.
    pub in_b: Signal<In, Bits<255>>,
    /// Travels with the operation.
    pub in_tag: Signal<In, Bits<TAG_BITS>>,
    /// A result leaves this cycle.
    pub out_valid: Signal<Out, Bit>,
    /// `a · b mod p`, canonical.
    pub out_product: Signal<Out, Bits<255>>,
    /// The operation's tag.
    pub out_tag: Signal<Out, Bits<TAG_BITS>>,
    _pipeline: Box<[Slot; MAX_LATENCY]>,
    _clock_was_high: bool,
    _rate: Rate,
}

impl FieldMul {
    /// A multiplier of the given rate ([`FieldMul::default`] is [`Rate::Full`]).
    pub fn new(rate: Rate) -> Self {
        Self {
            _rate: rate,
            ..Self::default()
        }
    }
}

impl Logic for FieldMul {
    fn update(&mut self) {
        // `update` runs several times per clock edge while the design settles: the pipeline
        // moves once, on the first pass that sees the clock high.
        let high = self.clock.val().clk;
        if high && !self._clock_was_high {
            let product =
                BigUint::from(self.in_a.val()) * BigUint::from(self.in_b.val()) % modulus();
            self._pipeline.rotate_right(1);
            self._pipeline[0] = Slot {
                valid: self.in_valid.val(),
                product: product.into(),
                tag: self.in_tag.val(),
            };
        }
        self._clock_was_high = high;
        let head = &self._pipeline[self._rate.latency() - 1];
        self.out_valid.next = head.valid;
        self.out_product.next = head.product;
        self.out_tag.next = head.tag;
    }

    fn connect(&mut self) {
        self.out_valid.connect();
        self.out_product.connect();
        self.out_tag.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(verilog_body(self._rate))
    }
}

/// A limb: its bit offset and width within a 255-bit operand.
fn limbs(width: usize) -> Vec<(usize, usize)> {
    (0..FIELD_BITS)
        .step_by(width)
        .map(|lo| (lo, width.min(FIELD_BITS - lo)))
        .collect()
}

/// One carry-save level: `x + y + z` as the sum `s` and the carry `c`, `bits` wide.
fn full_adders(v: &mut String, bits: usize, (s, c): (&str, &str), (x, y, z): (&str, &str, &str)) {
    let _ = writeln!(v, "wire [{}:0] {s} = {x} ^ {y} ^ {z};", bits - 1);
    let _ = writeln!(
        v,
        "wire [{}:0] {c} = (({x} & {y}) | ({x} & {z}) | ({y} & {z})) << 1;",
        bits - 1
    );
}

/// Carry-save compression of `rows` (names of `bits`-wide wires) down to two, `per_stage`
/// levels per pipeline stage; appends the Verilog and returns the two final rows (registered)
/// and the number of stages used.
fn compress(
    v: &mut String,
    prefix: &str,
    mut rows: Vec<String>,
    bits: usize,
    per_stage: usize,
) -> (Vec<String>, usize) {
    let mut level = 0;
    let mut stages = 0;
    while rows.len() > 2 {
        let mut next = Vec::new();
        for (n, triple) in rows.chunks(3).enumerate() {
            if let [x, y, z] = triple {
                let (s, c) = (
                    format!("{prefix}_l{level}_s{n}"),
                    format!("{prefix}_l{level}_c{n}"),
                );
                full_adders(v, bits, (&s, &c), (x, y, z));
                next.extend([s, c]);
            } else {
                next.extend(triple.iter().cloned());
            }
        }
        rows = next;
        level += 1;
        if level % per_stage == 0 || rows.len() <= 2 {
            let registered: Vec<String> = (0..rows.len())
                .map(|n| format!("{prefix}_r{stages}_{n}"))
                .collect();
            for name in &registered {
                let _ = writeln!(v, "reg [{}:0] {name};", bits - 1);
            }
            let _ = writeln!(v, "always @(posedge clock) begin");
            for (name, row) in registered.iter().zip(&rows) {
                let _ = writeln!(v, "  {name} <= {row};");
            }
            let _ = writeln!(v, "end");
            rows = registered;
            stages += 1;
        }
    }
    (rows, stages)
}

/// Lays `products` (bit offset, width, register name) out as non-overlapping rows of a
/// `bits`-wide bit heap and compresses them to a registered pair, three carry-save levels per
/// stage; returns the pair and the stages used.
fn bit_heap(
    v: &mut String,
    prefix: &str,
    mut products: Vec<(usize, usize, String)>,
    bits: usize,
) -> (Vec<String>, usize) {
    products.sort_by_key(|&(offset, _, _)| offset);
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    for (offset, width, name) in products {
        let term = format!("({{{}'d0, {name}}} << {offset})", bits - width);
        match rows.iter_mut().find(|(end, _)| *end <= offset) {
            Some((end, terms)) => {
                *end = offset + width;
                terms.push(term);
            }
            None => rows.push((offset + width, vec![term])),
        }
    }
    let mut heap = Vec::new();
    for (n, (_, terms)) in rows.iter().enumerate() {
        let _ = writeln!(
            v,
            "wire [{}:0] {prefix}heap_{n} = {};",
            bits - 1,
            terms.join(" | ")
        );
        heap.push(format!("{prefix}heap_{n}"));
    }
    compress(v, prefix, heap, bits, 3)
}

/// [`Rate::Quarter`]'s operand and product stages: `b`'s limbs four at a time from the top,
/// one pass a cycle while the operands stay put, each pass's products compressed to a pair and
/// added, carry-save, to the accumulator shifted up by one pass's width. Returns the
/// accumulator's pair, which holds the whole product the cycle after the last pass lands, and
/// the stages from the operands to it.
fn quarter_passes(
    v: &mut String,
    declarations: &mut String,
    a_limbs: &[(usize, usize)],
    b_limbs: &[(usize, usize)],
) -> (Vec<String>, usize) {
    let passes = b_limbs.len().div_ceil(QUARTER_LIMBS);
    assert_eq!(
        passes, QUARTER_PASSES,
        "b's limbs make the quarter rate's passes"
    );
    let limb = b_limbs[0].1;
    let shift = QUARTER_LIMBS * limb;
    let pass_bits = FIELD_BITS + shift;
    // Stage 1: operands, held for the passes. Pass k is at the multipliers the cycle
    // `valid_line[k]` is set (the engine issues at most every `QUARTER_PASSES` cycles, so one
    // bit at most), the first taking b's top limbs.
    let _ = writeln!(
        v,
        "reg [254:0] a1, b1;\nalways @(posedge clock) begin\n  if (in_valid) begin\n    \
         a1 <= in_a;\n    b1 <= in_b;\n  end\nend"
    );
    // The pass's limb j of b, one `limb`-wide wire shared by the row of products (written
    // inside the products, Yosys kept it as wide as the product and gave most two DSPs).
    for j in 0..QUARTER_LIMBS {
        let operand = |k: usize| match b_limbs.get((passes - 1 - k) * QUARTER_LIMBS + j) {
            Some(&(lo, w)) => format!("b1[{}:{lo}]", lo + w - 1),
            None => format!("{limb}'d0"),
        };
        let mut pick = operand(passes - 1);
        for k in (0..passes - 1).rev() {
            pick = format!("valid_line[{k}] ? {} : {pick}", operand(k));
        }
        let _ = writeln!(v, "wire [{}:0] pass_b{j} = {pick};", limb - 1);
    }
    let mut products = Vec::new();
    let _ = writeln!(v, "always @(posedge clock) begin");
    for (i, &(a_lo, a_w)) in a_limbs.iter().enumerate() {
        for j in 0..QUARTER_LIMBS {
            let w = a_w + limb;
            let _ = writeln!(declarations, "reg [{}:0] m_{i}_{j}, q_{i}_{j};", w - 1);
            let _ = writeln!(
                v,
                "  m_{i}_{j} <= a1[{}:{a_lo}] * pass_b{j};\n  q_{i}_{j} <= m_{i}_{j};",
                a_lo + a_w - 1
            );
            products.push((a_lo + j * limb, w, format!("q_{i}_{j}")));
        }
    }
    let _ = writeln!(v, "end");
    let (pair, heap_stages) = bit_heap(v, "x", products, pass_bits);
    // The accumulator: a pass's pair lands `2 + heap_stages` cycles after it was at the
    // multipliers; the first pass starts from zero. Every row stays non-negative and their
    // sum below the product (< 2^510), so no carry leaves the 512 bits.
    let first = 2 + heap_stages;
    let pad = HEAP_BITS - pass_bits;
    let top = HEAP_BITS - 1;
    let _ = writeln!(
        v,
        "reg [{top}:0] acc_s, acc_c;\nwire acc_first = valid_line[{first}];"
    );
    for (row, held) in [("x", "acc_s"), ("y", "acc_c")] {
        let _ = writeln!(
            v,
            "wire [{top}:0] acc_{row} = acc_first ? {HEAP_BITS}'d0 : {held} << {shift};"
        );
    }
    for (n, row) in pair.iter().enumerate() {
        let _ = writeln!(v, "wire [{top}:0] acc_h{n} = {{{pad}'d0, {row}}};");
    }
    full_adders(
        v,
        HEAP_BITS,
        ("acc_s1", "acc_c1"),
        ("acc_x", "acc_y", "acc_h0"),
    );
    full_adders(
        v,
        HEAP_BITS,
        ("acc_s2", "acc_c2"),
        ("acc_s1", "acc_c1", "acc_h1"),
    );
    let _ = writeln!(
        v,
        "always @(posedge clock) begin\n  acc_s <= acc_s2;\n  acc_c <= acc_c2;\nend"
    );
    let stages = 1 + (passes - 1) + 2 + heap_stages + 1;
    (vec!["acc_s".into(), "acc_c".into()], stages)
}

fn verilog_body(rate: Rate) -> String {
    let mut v = String::new();
    let (limb_a, limb_b) = rate.limbs();
    let a_limbs = limbs(limb_a);
    let b_limbs = limbs(limb_b);
    let latency = rate.latency();
    let mut products = Vec::new();
    // The valid bit and the tag travel alongside (declared first: the passes use the line).
    let mut declarations = format!(
        "reg [{}:0] valid_line;\nreg [{}:0] tag_line [0:{}];\n",
        latency - 2,
        TAG_BITS - 1,
        latency - 2
    );
    let (pair, product_stages) = match rate {
        Rate::Full => {
            // Stage 1: operands. Stages 2-3: products (the DSP's M and P registers).
            let _ = writeln!(v, "reg [254:0] a1, b1;");
            let _ = writeln!(
                v,
                "always @(posedge clock) begin\n  a1 <= in_a;\n  b1 <= in_b;\nend"
            );
            let _ = writeln!(v, "always @(posedge clock) begin");
            for (i, &(a_lo, a_w)) in a_limbs.iter().enumerate() {
                for (j, &(b_lo, b_w)) in b_limbs.iter().enumerate() {
                    let w = a_w + b_w;
                    let _ = writeln!(declarations, "reg [{}:0] m_{i}_{j}, p_{i}_{j};", w - 1);
                    let _ = writeln!(
                        v,
                        "  m_{i}_{j} <= a1[{}:{a_lo}] * b1[{}:{b_lo}];\n  p_{i}_{j} <= m_{i}_{j};",
                        a_lo + a_w - 1,
                        b_lo + b_w - 1
                    );
                    products.push((a_lo + b_lo, w, format!("p_{i}_{j}")));
                }
            }
            let _ = writeln!(v, "end");
            // Stages 4-6: the bit heap.
            let (pair, heap_stages) = bit_heap(&mut v, "h", products, HEAP_BITS);
            (pair, 3 + heap_stages)
        }
        Rate::Quarter => quarter_passes(&mut v, &mut declarations, &a_limbs, &b_limbs),
    };
    v = declarations + &v;
    // Stages 7-8: fold bits 255 and up (weight 2^255 ≡ 19 = 16 + 2 + 1).
    let mut fold = Vec::new();
    for (n, row) in pair.iter().enumerate() {
        let _ = writeln!(v, "wire [{}:0] f_lo{n} = {row}[254:0];", FOLD_BITS - 1);
        let _ = writeln!(
            v,
            "wire [{}:0] f_hi{n} = {row}[{}:255];",
            FOLD_BITS - 1,
            HEAP_BITS - 1
        );
        fold.push(format!("f_lo{n}"));
        for shift in [0, 1, 4] {
            fold.push(format!("(f_hi{n} << {shift})"));
        }
    }
    let (pair, fold_stages) = compress(&mut v, "f", fold, FOLD_BITS, 2);
    // Stages 9-10: the carry chain in two halves.
    let half = FOLD_BITS / 2;
    let (x, y) = (&pair[0], &pair[1]);
    let _ = writeln!(
        v,
        "reg [{half}:0] s_low;\nreg [{}:0] s_x, s_y;\nreg [{}:0] s;",
        FOLD_BITS - half - 1,
        FOLD_BITS - 1
    );
    let _ = writeln!(v, "reg [255:0] t;\nwire [255:0] w = t + 19;");
    let _ = writeln!(v, "always @(posedge clock) begin");
    let _ = writeln!(v, "  s_low <= {x}[{}:0] + {y}[{}:0];", half - 1, half - 1);
    let _ = writeln!(
        v,
        "  s_x <= {x}[{}:{half}];\n  s_y <= {y}[{}:{half}];",
        FOLD_BITS - 1,
        FOLD_BITS - 1
    );
    let _ = writeln!(
        v,
        "  s <= {{s_x + s_y + s_low[{half}], s_low[{}:0]}};",
        half - 1
    );
    // Stage 11: the second fold. Stage 12: canonical.
    let _ = writeln!(v, "  t <= s[254:0] + 19 * s[{}:255];", FOLD_BITS - 1);
    let _ = writeln!(v, "  out_product <= w[255] ? w[254:0] : t[254:0];");
    let _ = writeln!(v, "end");
    assert_eq!(
        product_stages + fold_stages + 4,
        latency,
        "the pipeline stages add up: products {product_stages}, fold {fold_stages}"
    );
    // Power-on values, as the FPGA's configuration gives them: no operation in flight.
    let _ = writeln!(v, "initial begin\n  valid_line = 0;\n  out_valid = 0;\nend");
    let _ = writeln!(v, "integer k;\nalways @(posedge clock) begin");
    let _ = writeln!(
        v,
        "  valid_line <= {{valid_line[{}:0], in_valid}};",
        latency - 3
    );
    let _ = writeln!(v, "  out_valid <= valid_line[{}];", latency - 2);
    let _ = writeln!(v, "  tag_line[0] <= in_tag;\n  for (k = 1; k < {}; k = k + 1) tag_line[k] <= tag_line[k - 1];", latency - 1);
    let _ = writeln!(v, "  out_tag <= tag_line[{}];\nend", latency - 2);
    v
}

impl StreamBlock for FieldMul {
    const INPUTS: &'static [Port] = &[
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
            name: "out_product",
            bits: 255,
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
            self.in_a.next = beat[0].clone().into();
            self.in_b.next = beat[1].clone().into();
            self.in_tag.next = beat[2].clone().into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| vec![self.out_product.val().into(), self.out_tag.val().into()])
    }
}

impl FieldMul {
    /// The input beat of one operation.
    pub fn operation(a: &BigUint, b: &BigUint, tag: u16) -> Beat {
        vec![a.clone(), b.clone(), BigUint::from(tag)]
    }

    /// The output beat the operation must give.
    pub fn result(a: &BigUint, b: &BigUint, tag: u16) -> Beat {
        vec![a * b % modulus(), BigUint::from(tag)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};

    #[test]
    fn the_generated_pipeline_has_the_cost_models_latency() {
        // `verilog_body` asserts that its stages add up to LATENCY.
        assert!(verilog_body(Rate::Full).contains("out_product <="));
        assert!(verilog_body(Rate::Quarter).contains("out_product <="));
        let model = verity_firmware::interp::CostModel::default();
        assert_eq!(LATENCY as u64, model.multiplier_latency);
    }

    #[test]
    fn the_model_is_one_product_per_cycle_after_latency_cycles() {
        for rate in [Rate::Full, Rate::Quarter] {
            model_latency(rate);
        }
    }

    fn model_latency(rate: Rate) {
        let mut uut = FieldMul::new(rate);
        uut.connect_all();
        let p = modulus();
        let values = [
            BigUint::from(0u8),
            BigUint::from(1u8),
            &p - 1u8,
            p.clone(),
            (BigUint::from(1u8) << 255) - 1u8,
        ];
        let mut inputs = Vec::new();
        let mut expected = Vec::new();
        for (n, (a, b)) in values
            .iter()
            .flat_map(|a| values.iter().map(move |b| (a, b)))
            .enumerate()
        {
            inputs.push(FieldMul::operation(a, b, n as u16));
            expected.push(FieldMul::result(a, b, n as u16));
        }
        let trace = run(&mut uut, &inputs, &Stalls::none(), expected.len(), 1_000);
        compare(FieldMul::OUTPUTS, &trace, &expected).unwrap_or_else(|m| panic!("{m}"));
        // The first result leaves the rate's latency after the first operand went in, and one
        // follows every cycle (the model does not hold a slower rate's spacing: the engine does).
        let cycles: Vec<u64> = trace.outputs.iter().map(|(cycle, _)| *cycle).collect();
        assert_eq!(cycles[0], rate.latency() as u64);
        assert!(cycles.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
