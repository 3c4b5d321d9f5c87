//! The Ed25519 ZIP-215 verification microcode.
//!
//! One context verifies one signature. Its inputs are the encodings of A and R and the signed
//! digits of k (width-5 NAF) and S (width-8 NAF), prepared by the scalar unit, which has
//! already rejected a non-canonical S. The program:
//!
//! 1. decodes A and R exactly as ZIP-215 says (y reduced mod p, the root of
//!    (y² − 1)/(dy² + 1) chosen even then negated by the sign bit, `x = 0` with the sign bit
//!    set accepted) and ends with `PublicKeyNotOnCurve` / `RNotOnCurve` when there is no root;
//! 2. builds the odd multiples 1·(−A) … 15·(−A) in registers, in cached form;
//! 3. computes `[S]B + [k](−A)` by one joint double-and-add pass over digits 253 … 0
//!    (Straus/Shamir): one doubling per digit, an addition from the register table for each
//!    nonzero k digit (≈ 1 in 6) and a mixed addition from the ROM base-point table for each
//!    nonzero S digit (≈ 1 in 9); the doubling skips T when no addition follows;
//! 4. subtracts R, multiplies by the cofactor 8 (three doublings) and ends `Valid` if the
//!    result is the identity (X = 0, Y = Z), `Invalid` otherwise.

use crate::asm::{Asm, Label, Program};
use crate::field::{d, sqrt_m1, Fe};
use crate::isa::{ConstId, Digits, Input, Reg};
use crate::point::Point;
use crate::{Malformed, Verdict};
use std::ops::Add;

/// Odd multiples of B in the ROM table: 1·B, 3·B, …, 127·B (width-8 NAF digits).
pub const BASE_TABLE_POINTS: usize = 64;
/// Odd multiples of −A in the register table: 1·(−A) … 15·(−A) (width-5 NAF digits).
pub const KEY_TABLE_POINTS: usize = 8;
/// NAF width of k.
pub const K_WIDTH: u32 = 5;
/// NAF width of S.
pub const S_WIDTH: u32 = 8;
/// The highest digit position the pass starts from: scalars below L < 2²⁵³ have NAF digits
/// in positions 0 … 253.
pub const TOP_DIGIT: u8 = 253;

/// (y + x, y − x, 2d·x·y) of 1·B, 3·B, …, 127·B, flattened.
pub fn base_table() -> Vec<Fe> {
    let b = Point::basepoint();
    let two_b = b.double();
    let mut point = b;
    let mut table = Vec::with_capacity(3 * BASE_TABLE_POINTS);
    for _ in 0..BASE_TABLE_POINTS {
        table.extend(point.affine_niels());
        point = point.add(&two_b);
    }
    table
}

/// The registers a point lives in: X, Y, Z, T (extended) or Y+X, Y−X, 2Z, 2dT (cached).
type Quad = [Reg; 4];

/// Where the cached operand of an addition comes from.
#[derive(Clone, Copy)]
enum Cached {
    /// Four registers.
    Regs(Quad),
    /// The key table's entry for the current k digit, read by the multiplier.
    KeyTable(Reg),
}

struct Builder {
    asm: Asm,
    zero: Reg,
    one: Reg,
    c_d: ConstId,
    c_2d: ConstId,
    c_sqrt_m1: ConstId,
}

/// Assembles the program.
pub fn ed25519_verify() -> Program {
    let mut asm = Asm::new();
    let c_zero = asm.constant(Fe::ZERO);
    let c_one = asm.constant(Fe::ONE);
    let c_d = asm.constant(d());
    let c_2d = asm.constant(d().add(d()));
    let c_sqrt_m1 = asm.constant(sqrt_m1());
    let c_base = asm.constant_block(&base_table());
    let [zero, one] = asm.regs();
    let mut b = Builder {
        asm,
        zero,
        one,
        c_d,
        c_2d,
        c_sqrt_m1,
    };
    let a_bad = b.asm.label();
    let r_bad = b.asm.label();
    b.asm.ldc(zero, c_zero);
    b.asm.ldc(one, c_one);

    // −A in extended coordinates, then the table of its odd multiples.
    let (ax, ay) = b.decompress(Input::A, a_bad);
    b.asm.sub(ax, zero, ax);
    let at = b.asm.reg();
    b.asm.mul(at, ax, ay);
    let key_table = b.asm.reg_block(4 * KEY_TABLE_POINTS);
    b.build_key_table([ax, ay, one, at], key_table);
    b.asm.free(&[ax, ay, at]);

    let (rx, ry) = b.decompress(Input::R, r_bad);

    // Joint pass over the digits: acc = [S]B + [k](−A).
    let acc: Quad = b.asm.regs();
    let [e, h] = b.asm.regs();
    b.asm.ldc(acc[0], c_zero);
    b.asm.ldc(acc[1], c_one);
    b.asm.ldc(acc[2], c_one);
    b.asm.ldc(acc[3], c_zero);
    b.asm.seti(TOP_DIGIT);
    let top = b.asm.here();
    let s_add = b.asm.label();
    let next_without_t = b.asm.label();
    let next_with_t = b.asm.label();
    let finish = b.asm.label();
    b.double(acc, e, h, false);
    // No addition follows: T is not needed (except after the last digit, below).
    b.asm.if_both_digits_zero(next_without_t);
    b.asm.mul(acc[3], e, h);
    b.asm.if_digit_zero(Digits::K, s_add);
    b.add_cached(acc, Cached::KeyTable(key_table));
    b.asm.if_digit_zero(Digits::S, next_with_t);
    b.asm.bind(s_add);
    b.add_base_table(acc, c_base);
    b.asm.loop_i(top);
    b.asm.jump(finish);
    // No addition at all. After the last digit T is needed by the subtraction of R.
    b.asm.bind(next_without_t);
    b.asm.loop_i(top);
    b.asm.mul(acc[3], e, h);
    b.asm.jump(finish);
    b.asm.bind(next_with_t);
    b.asm.loop_i(top);

    // acc − R, times 8, is it the identity?
    b.asm.bind(finish);
    let q: Quad = b.asm.regs();
    b.asm.sub(q[0], ry, rx);
    b.asm.add(q[1], ry, rx);
    b.asm.add(q[2], one, one);
    b.asm.mul(q[3], rx, ry);
    b.asm.mulc(q[3], q[3], c_2d);
    b.asm.sub(q[3], zero, q[3]);
    b.add_cached(acc, Cached::Regs(q));
    for _ in 0..3 {
        b.double(acc, e, h, false);
    }
    let [x_zero, y_is_z] = [b.asm.flag(), b.asm.flag()];
    b.asm.eq(x_zero, acc[0], zero);
    b.asm.eq(y_is_z, acc[1], acc[2]);
    b.asm.fand(x_zero, x_zero, y_is_z);
    let valid = b.asm.label();
    b.asm.if_flag(x_zero, valid);
    b.asm.done(Verdict::Invalid.code());
    b.asm.bind(valid);
    b.asm.done(Verdict::Valid.code());
    b.asm.bind(a_bad);
    b.asm
        .done(Verdict::Malformed(Malformed::PublicKeyNotOnCurve).code());
    b.asm.bind(r_bad);
    b.asm
        .done(Verdict::Malformed(Malformed::RNotOnCurve).code());
    b.asm.finish()
}

fn table_reg(base: Reg, offset: usize) -> Reg {
    Reg::new(base.index() + offset).expect("table inside the register file")
}

impl Builder {
    /// Decodes `input` into (x, y); goes to `bad` if y has no x.
    fn decompress(&mut self, input: Input, bad: Label) -> (Reg, Reg) {
        let asm = &mut self.asm;
        let [x, y] = asm.regs();
        let [u, v, t0, t1, t2, r] = asm.regs();
        let sign = asm.flag();
        asm.load(y, sign, input);
        asm.sqr(t0, y);
        asm.sub(u, t0, self.one);
        asm.mulc(v, t0, self.c_d);
        asm.add(v, v, self.one);
        // r = u·v³ · (u·v⁷)^((p−5)/8)
        asm.sqr(t0, v);
        asm.mul(t0, t0, v); // v³
        asm.sqr(t1, t0);
        asm.mul(t1, t1, v); // v⁷
        asm.mul(t0, u, t0); // u·v³
        asm.mul(t1, u, t1); // u·v⁷
        self.pow_p58(t2, t1, [x, r]);
        let asm = &mut self.asm;
        asm.mul(r, t0, t2);
        // v·r² against ±u
        asm.sqr(t1, r);
        asm.mul(t1, t1, v);
        let [correct, flipped] = [asm.flag(), asm.flag()];
        asm.eq(correct, t1, u);
        asm.sub(t2, self.zero, u);
        asm.eq(flipped, t1, t2);
        asm.mulc(t0, r, self.c_sqrt_m1);
        asm.csel(x, t0, r, flipped);
        asm.for_(correct, correct, flipped);
        asm.if_not_flag(correct, bad);
        // The even root, then the encoded sign.
        asm.odd(flipped, x);
        asm.cneg(x, x, flipped);
        asm.cneg(x, x, sign);
        asm.free(&[u, v, t0, t1, t2, r]);
        for f in [sign, correct, flipped] {
            asm.free_flag(f);
        }
        (x, y)
    }

    /// out = z^(2²⁵² − 3), with two scratch registers (z is kept).
    fn pow_p58(&mut self, out: Reg, z: Reg, [t0, t1]: [Reg; 2]) {
        let asm = &mut self.asm;
        asm.sqr(t0, z); // z²
        asm.sqr_n(t1, t0, 2); // z⁸
        asm.mul(t1, z, t1); // z⁹
        asm.mul(t0, t0, t1); // z¹¹
        asm.sqr(t0, t0); // z²²
        asm.mul(t0, t1, t0); // z^(2⁵−1)
        asm.sqr_n(t1, t0, 5);
        asm.mul(t0, t1, t0); // z^(2¹⁰−1)
        asm.sqr_n(t1, t0, 10);
        asm.mul(t1, t1, t0); // z^(2²⁰−1)
        asm.sqr_n(out, t1, 20);
        asm.mul(out, out, t1); // z^(2⁴⁰−1)
        asm.sqr_n(out, out, 10);
        asm.mul(out, out, t0); // z^(2⁵⁰−1), kept in out
        asm.sqr_n(t1, out, 50);
        asm.mul(t1, t1, out); // z^(2¹⁰⁰−1)
        asm.sqr_n(t0, t1, 100);
        asm.mul(t0, t0, t1); // z^(2²⁰⁰−1)
        asm.sqr_n(t0, t0, 50);
        asm.mul(t0, t0, out); // z^(2²⁵⁰−1)
        asm.sqr_n(t0, t0, 2); // z^(2²⁵²−4)
        asm.mul(out, t0, z);
    }

    /// p ← 2p; T only if `with_t` (e, h keep E and H so T = E·H can follow).
    fn double(&mut self, p: Quad, e: Reg, h: Reg, with_t: bool) {
        let asm = &mut self.asm;
        let [a, b, c, g] = asm.regs();
        asm.sqr(a, p[0]);
        asm.sqr(b, p[1]);
        asm.sqr(c, p[2]);
        asm.add(c, c, c);
        asm.add(h, p[0], p[1]);
        asm.sqr(e, h);
        asm.add(h, a, b);
        asm.sub(e, e, h);
        asm.sub(g, b, a);
        asm.sub(c, g, c); // F
        asm.sub(h, self.zero, h);
        asm.mul(p[0], e, c);
        asm.mul(p[1], g, h);
        asm.mul(p[2], c, g);
        if with_t {
            asm.mul(p[3], e, h);
        }
        asm.free(&[a, b, c, g]);
    }

    /// p ← p + q, q cached (Y+X, Y−X, 2Z, 2dT).
    fn add_cached(&mut self, p: Quad, q: Cached) {
        let asm = &mut self.asm;
        let [a, b, c, dd] = asm.regs();
        let times = |asm: &mut Asm, d: Reg, x: Reg, coord: usize| match q {
            Cached::Regs(q) => asm.mul(d, x, q[coord]),
            Cached::KeyTable(base) => asm.mult(d, x, base, coord as u8, Digits::K),
        };
        asm.sub(a, p[1], p[0]);
        times(asm, a, a, 1);
        asm.add(b, p[1], p[0]);
        times(asm, b, b, 0);
        times(asm, c, p[3], 3);
        if matches!(q, Cached::KeyTable(_)) {
            // A negative digit negates the entry's 2dT.
            asm.tneg(c, c, Digits::K);
        }
        times(asm, dd, p[2], 2);
        Self::finish_add(asm, p, [a, b, c, dd]);
    }

    /// p ← p + the ROM base-point table's entry for the current S digit (affine
    /// (y+x, y−x, 2dxy), Z = 1).
    fn add_base_table(&mut self, p: Quad, table: ConstId) {
        let asm = &mut self.asm;
        let [a, b, c, dd] = asm.regs();
        asm.sub(a, p[1], p[0]);
        asm.multc(a, a, table, 1, Digits::S);
        asm.add(b, p[1], p[0]);
        asm.multc(b, b, table, 0, Digits::S);
        asm.multc(c, p[3], table, 2, Digits::S);
        asm.tneg(c, c, Digits::S);
        asm.add(dd, p[2], p[2]);
        Self::finish_add(asm, p, [a, b, c, dd]);
    }

    /// The common tail: E = B − A, F = D − C, G = D + C, H = B + A; X = EF, Y = GH, Z = FG,
    /// T = EH. Frees the four temporaries.
    fn finish_add(asm: &mut Asm, p: Quad, [a, b, c, dd]: [Reg; 4]) {
        let [e, f] = asm.regs();
        asm.sub(e, b, a);
        asm.add(b, b, a); // H
        asm.sub(f, dd, c);
        asm.add(dd, dd, c); // G
        asm.mul(p[0], e, f);
        asm.mul(p[1], dd, b);
        asm.mul(p[2], f, dd);
        asm.mul(p[3], e, b);
        asm.free(&[a, b, c, dd, e, f]);
    }

    /// Stores p in cached form at `at`.
    fn store_cached(&mut self, p: Quad, at: Reg) {
        let slot = |i| table_reg(at, i);
        self.asm.add(slot(0), p[1], p[0]);
        self.asm.sub(slot(1), p[1], p[0]);
        self.asm.add(slot(2), p[2], p[2]);
        self.asm.mulc(slot(3), p[3], self.c_2d);
    }

    /// table[j] = cached((2j + 1)·p) for j in 0..8.
    fn build_key_table(&mut self, p: Quad, table: Reg) {
        self.store_cached(p, table);
        let twice: Quad = self.asm.regs();
        let [e, h] = self.asm.regs();
        for (dst, src) in twice.iter().zip(p) {
            self.asm.add(*dst, src, self.zero);
        }
        self.double(twice, e, h, true);
        let twice_cached = self.asm.reg_block(4);
        self.store_cached(twice, twice_cached);
        let tc = [0, 1, 2, 3].map(|i| table_reg(twice_cached, i));
        let acc: Quad = self.asm.regs();
        for (dst, src) in acc.iter().zip(p) {
            self.asm.add(*dst, src, self.zero);
        }
        for j in 1..KEY_TABLE_POINTS {
            self.add_cached(acc, Cached::Regs(tc));
            self.store_cached(acc, table_reg(table, 4 * j));
        }
        self.asm.free(&twice);
        self.asm.free(&tc);
        self.asm.free(&acc);
        self.asm.free(&[e, h]);
    }
}
