//! Public keys decoded before, kept per thread.
//!
//! Decoding the key and R (a square root in the field each) is close to half of what a
//! signature costs the CPU backend in a batch of 64, and senders sign many transactions: a
//! worker that has decoded a key keeps it, so the next batch that holds the key decodes only
//! its signatures' R points.
//!
//! Decoding is a pure function of the 32 bytes, so a kept key is the very point a fresh
//! decode gives (or the same refusal): the predicate does not change.

use std::cell::RefCell;
use std::collections::HashMap;

use curve25519_dalek::edwards::EdwardsPoint;

/// The most keys a thread keeps. A thread that meets more starts over, so a flood of new keys
/// costs only what decoding cost without the cache; about 0.8 MB a thread.
pub const KEYS_KEPT: usize = 4096;

thread_local! {
    // Keyed by std's randomly keyed hasher: the keys come from outside.
    static KEYS: RefCell<HashMap<[u8; 32], Option<EdwardsPoint>>> = RefCell::new(HashMap::new());
}

/// `decode(key)`, or what it gave when this thread last decoded `key`.
pub(crate) fn decoded(
    key: &[u8; 32],
    decode: impl FnOnce(&[u8; 32]) -> Option<EdwardsPoint>,
) -> Option<EdwardsPoint> {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(point) = keys.get(key) {
            return *point;
        }
        let point = decode(key);
        if keys.len() >= KEYS_KEPT {
            keys.clear();
        }
        keys.insert(*key, point);
        point
    })
}

/// How many keys this thread keeps now.
#[cfg(test)]
pub(crate) fn kept() -> usize {
    KEYS.with(|keys| keys.borrow().len())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    use super::*;

    fn decompress(key: &[u8; 32]) -> Option<EdwardsPoint> {
        CompressedEdwardsY(*key).decompress()
    }

    #[test]
    fn a_kept_key_is_what_decoding_gives_and_is_decoded_once() {
        let calls = Cell::new(0);
        let counted = |key: &[u8; 32]| {
            calls.set(calls.get() + 1);
            decompress(key)
        };
        let basepoint = ED25519_BASEPOINT_POINT.compress().to_bytes();
        // y = 2 has no x on the curve: a refusal is kept as well.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(decompress(&off_curve), None, "the fixture is off the curve");
        for key in [basepoint, off_curve] {
            for _ in 0..3 {
                assert_eq!(decoded(&key, counted), decompress(&key));
            }
        }
        assert_eq!(calls.get(), 2, "each key decoded once");
    }

    #[test]
    fn a_thread_that_meets_more_keys_than_it_keeps_starts_over() {
        for n in 0..KEYS_KEPT as u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&n.to_le_bytes());
            decoded(&key, |_| None);
        }
        assert_eq!(kept(), KEYS_KEPT);
        decoded(&[0xff; 32], |_| None);
        assert_eq!(kept(), 1);
    }
}
