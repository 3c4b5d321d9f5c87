//! Field elements as the benches and command streams carry them: `BigUint` numbers, and
//! their passage to and from the firmware's [`Fe`], the reference arithmetic of every
//! field block.

use num_bigint::BigUint;
use verity_firmware::field::Fe;

/// p = 2^255 − 19.
pub fn modulus() -> BigUint {
    (BigUint::from(1u8) << 255u32) - 19u8
}

/// 2^256 − `bound` as 257 bits: adding it to a value below 2^256 carries into bit 256 exactly
/// when the value is at least `bound`, so one adder's carry is the comparison.
pub fn excess_addend(bound: &BigUint) -> rust_hdl::prelude::Bits<257> {
    let value: BigUint = (BigUint::from(1u8) << 256usize) - bound;
    value.into()
}

/// The residue of `value`'s low 255 bits (any value below 2^256), as the firmware reads an
/// encoding.
pub fn to_fe(value: &BigUint) -> Fe {
    let mut bytes = [0u8; 32];
    let le = value.to_bytes_le();
    bytes[..le.len()].copy_from_slice(&le);
    Fe::from_bytes_mod_p(&bytes)
}

/// The canonical value of `fe`.
pub fn from_fe(fe: Fe) -> BigUint {
    BigUint::from_bytes_le(&fe.to_bytes())
}
