//! Reference arithmetic on the Edwards curve −x² + y² = 1 + d·x²·y², in the extended
//! coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, xy = T/Z, with the same formulas the
//! microcode uses (Hisil–Wong–Carter–Dawson 2008, a = −1). It builds the image's base-point
//! table and gives the tests a second, plain implementation to compare against.

use crate::field::{d, sqrt_m1, Fe};
use std::ops::{Add, Mul, Neg, Sub};

/// A curve point in extended coordinates.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// X.
    pub x: Fe,
    /// Y.
    pub y: Fe,
    /// Z.
    pub z: Fe,
    /// T = XY/Z.
    pub t: Fe,
}

/// The encoding of the base point B (y = 4/5, x even).
pub const BASEPOINT_ENCODING: [u8; 32] = [
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
];

impl PartialEq for Point {
    /// Projective equality: X₁Z₂ = X₂Z₁ and Y₁Z₂ = Y₂Z₁.
    fn eq(&self, other: &Point) -> bool {
        self.x.mul(other.z) == other.x.mul(self.z) && self.y.mul(other.z) == other.y.mul(self.z)
    }
}

impl Eq for Point {}

/// √(u/v) as curve25519-dalek's `sqrt_ratio_i` and the microcode compute it: the
/// non-negative (even) root, and whether u/v is a square.
pub fn sqrt_ratio(u: Fe, v: Fe) -> (bool, Fe) {
    let v3 = v.square().mul(v);
    let v7 = v3.square().mul(v);
    let r = u.mul(v3).mul(pow_p58(u.mul(v7)));
    let check = v.mul(r.square());
    let correct = check == u;
    let flipped = check == u.neg();
    let flipped_i = check == u.neg().mul(sqrt_m1());
    let r = if flipped || flipped_i {
        r.mul(sqrt_m1())
    } else {
        r
    };
    let r = if r.is_odd() { r.neg() } else { r };
    (correct || flipped, r)
}

/// z^((p − 5)/8) = z^(2²⁵² − 3).
pub fn pow_p58(z: Fe) -> Fe {
    let exponent = [
        0xffff_ffff_ffff_fffd,
        0xffff_ffff_ffff_ffff,
        0xffff_ffff_ffff_ffff,
        0x0fff_ffff_ffff_ffff,
    ];
    z.pow(&exponent)
}

impl Point {
    /// The neutral element (0 : 1 : 1 : 0).
    pub const IDENTITY: Point = Point {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ONE,
        t: Fe::ZERO,
    };

    /// Decodes as ZIP-215 says: y is the low 255 bits reduced mod p (non-canonical accepted);
    /// x is the root of (y² − 1)/(dy² + 1) whose parity is bit 255 (x = 0 with the bit set
    /// accepted); `None` if there is no root.
    pub fn decompress(bytes: &[u8; 32]) -> Option<Point> {
        let y = Fe::from_bytes_mod_p(bytes);
        let yy = y.square();
        let u = yy.sub(Fe::ONE);
        let v = yy.mul(d()).add(Fe::ONE);
        let (is_square, x) = sqrt_ratio(u, v);
        if !is_square {
            return None;
        }
        let x = if bytes[31] >> 7 == 1 { x.neg() } else { x };
        Some(Point {
            x,
            y,
            z: Fe::ONE,
            t: x.mul(y),
        })
    }

    /// The canonical encoding.
    pub fn compress(&self) -> [u8; 32] {
        let (x, y) = self.affine();
        let mut out = y.to_bytes();
        out[31] |= u8::from(x.is_odd()) << 7;
        out
    }

    /// (x, y).
    pub fn affine(&self) -> (Fe, Fe) {
        let z_inv = self.z.invert();
        (self.x.mul(z_inv), self.y.mul(z_inv))
    }

    /// B.
    pub fn basepoint() -> Point {
        Point::decompress(&BASEPOINT_ENCODING).expect("the base point decodes")
    }

    /// −P.
    pub fn neg(&self) -> Point {
        Point {
            x: self.x.neg(),
            y: self.y,
            z: self.z,
            t: self.t.neg(),
        }
    }

    /// 2P (dbl-2008-hwcd).
    pub fn double(&self) -> Point {
        let a = self.x.square();
        let b = self.y.square();
        let c = self.z.square();
        let c = c.add(c);
        let ab = a.add(b);
        let e = self.x.add(self.y).square().sub(ab);
        let g = b.sub(a);
        let f = g.sub(c);
        let h = Fe::ZERO.sub(ab);
        Point {
            x: e.mul(f),
            y: g.mul(h),
            z: f.mul(g),
            t: e.mul(h),
        }
    }

    /// P + Q (add-2008-hwcd-3, complete).
    pub fn add(&self, other: &Point) -> Point {
        let two_d = d().add(d());
        let a = self.y.sub(self.x).mul(other.y.sub(other.x));
        let b = self.y.add(self.x).mul(other.y.add(other.x));
        let c = self.t.mul(two_d).mul(other.t);
        let d = self.z.mul(other.z.add(other.z));
        let (e, f, g, h) = (b.sub(a), d.sub(c), d.add(c), b.add(a));
        Point {
            x: e.mul(f),
            y: g.mul(h),
            z: f.mul(g),
            t: e.mul(h),
        }
    }

    /// nP for a small n ≥ 0.
    pub fn mul_small(&self, n: u32) -> Point {
        (0..n).fold(Point::IDENTITY, |acc, _| acc.add(self))
    }

    /// (y + x, y − x, 2d·x·y): the affine "Niels" form the base-point table stores.
    pub fn affine_niels(&self) -> [Fe; 3] {
        let (x, y) = self.affine();
        [y.add(x), y.sub(x), d().add(d()).mul(x).mul(y)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_point_round_trips_and_has_the_right_order_structure() {
        let b = Point::basepoint();
        assert_eq!(b.compress(), BASEPOINT_ENCODING);
        assert_eq!(b.double(), b.add(&b));
        assert_eq!(b.mul_small(3), b.double().add(&b));
        assert_eq!(b.add(&b.neg()), Point::IDENTITY);
        assert_eq!(b.add(&Point::IDENTITY), b);
    }
}
