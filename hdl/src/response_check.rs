//! The response record's check (`firmware::abi::response_check`): CRC-32 of the 64-byte
//! record with its check field as zero, written into that field as the record leaves the
//! card. Combinational: the card's last step before the card-to-host stream.
//!
//! CRC-32 is affine in its input — crc(m) = L·m ⊕ crc(0) — so each bit of the check is the
//! parity of the record under a mask (that bit's row of L), flipped by the same bit of
//! crc(0). The masks are computed at construction from the firmware's own `response_check`,
//! one record bit at a time, so the block cannot drift from the ABI; the check field's own
//! bits are zero in every mask. Synthesis makes each check bit an XOR tree of about half the
//! record's 480 other bits: some 32 × 80 six-input LUTs, four levels deep.

use num_bigint::BigUint;
use rust_hdl::prelude::*;
use verity_firmware::abi::{response_check, RESPONSE_CHECK_AT, RESPONSE_LEN};

/// Fills in a response record's check field.
#[derive(LogicBlock)]
pub struct ResponseCheck {
    /// The record, check field as zero (byte 0 in bits 7:0).
    pub record: Signal<In, Bits<512>>,
    /// The record with its check.
    pub sealed: Signal<Out, Bits<512>>,
    masks: [Constant<Bits<512>>; 32],
    ones: [Constant<Bits<32>>; 32],
    zero: Constant<Bits<32>>,
    keep: Constant<Bits<512>>,
    crc: Signal<Local, Bits<32>>,
}

/// The record bits of the check field.
const CHECK_BITS: std::ops::Range<usize> = RESPONSE_CHECK_AT * 8..RESPONSE_CHECK_AT * 8 + 32;

fn wide(bits: impl Iterator<Item = usize>) -> Bits<512> {
    let mut value = BigUint::default();
    for bit in bits {
        value.set_bit(bit as u64, true);
    }
    value.into()
}

impl Default for ResponseCheck {
    fn default() -> Self {
        let zero = response_check(&[0; RESPONSE_LEN]);
        // Column i of L: what record bit i alone changes in the check.
        let columns: Vec<u32> = (0..RESPONSE_LEN * 8)
            .map(|i| {
                let mut record = [0u8; RESPONSE_LEN];
                record[i / 8] = 1 << (i % 8);
                response_check(&record) ^ zero
            })
            .collect();
        Self {
            record: Default::default(),
            sealed: Default::default(),
            masks: std::array::from_fn(|j| {
                Constant::new(wide(
                    (0..columns.len()).filter(|&i| columns[i] >> j & 1 == 1),
                ))
            }),
            ones: std::array::from_fn(|j| Constant::new((1u64 << j).into())),
            zero: Constant::new(u64::from(zero).into()),
            keep: Constant::new(wide(
                (0..RESPONSE_LEN * 8).filter(|i| !CHECK_BITS.contains(i)),
            )),
            crc: Default::default(),
        }
    }
}

impl Logic for ResponseCheck {
    #[hdl_gen]
    fn update(&mut self) {
        self.crc.next = self.zero.val();
        for j in 0..32 {
            if (self.record.val() & self.masks[j].val()).xor() {
                self.crc.next = self.crc.val() ^ self.ones[j].val();
            }
        }
        // The check field is bytes 28..32: record bits 224..255.
        self.sealed.next =
            (self.record.val() & self.keep.val()) | (bit_cast::<512, 32>(self.crc.val()) << 224);
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use verity_firmware::abi::{Response, Status};
    use verity_firmware::{Tag, Verdict};

    use super::*;

    #[test]
    fn the_check_is_the_firmwares_on_random_and_real_records() {
        let seed = 0x5ea1;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut uut = ResponseCheck::default();
        uut.connect_all();
        let mut records: Vec<[u8; RESPONSE_LEN]> = (0..30)
            .map(|_| {
                let mut record = [0u8; RESPONSE_LEN];
                rng.fill(&mut record[..]);
                record
            })
            .collect();
        records.push([0; RESPONSE_LEN]);
        records.push(
            Response {
                tag: Tag::new(7),
                status: Status::Verdict(Verdict::Valid),
                engine: 2,
                cycles: 3475,
                txid: [0xab; 32],
            }
            .encode(),
        );
        for record in records {
            uut.record.next = BigUint::from_bytes_le(&record).into();
            assert!(simulate(&mut uut, 20), "settles");
            let mut want = record;
            verity_firmware::abi::seal_response(&mut want);
            let got = BigUint::from(uut.sealed.val()).to_bytes_le();
            let mut sealed = [0u8; RESPONSE_LEN];
            sealed[..got.len()].copy_from_slice(&got);
            assert_eq!(sealed, want, "seed {seed:#x}");
        }
    }
}
