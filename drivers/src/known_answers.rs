//! The known-answer tests a card must pass before it is trusted, and again periodically: a
//! valid signature, the same with a flipped message bit, and inputs that do not decode, with
//! the verdicts the CPU path gives them.

use crate::{zip215, Request, Tag, Verdict};

/// RFC 8032, section 7.1, test 1: the key and signature of the empty message.
const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065\
224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
/// The group order L, little-endian: added to S it makes S non-canonical.
const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn bytes<const N: usize>(hex: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a hex constant");
    }
    out
}

/// One known-answer test.
#[derive(Clone, Debug)]
pub struct KnownAnswer {
    /// What it checks.
    pub name: &'static str,
    /// The request.
    pub request: Request,
    /// The CPU path's verdict on it.
    pub verdict: Verdict,
}

/// The known-answer set, each with the verdict of the CPU path.
pub fn known_answers() -> Vec<KnownAnswer> {
    let public_key = bytes::<32>(PUBLIC_KEY);
    let signature = bytes::<64>(SIGNATURE);
    let valid = Request::new(Tag::new(0), public_key, signature, Vec::new());
    let mut flipped = valid.clone();
    flipped.message = vec![1];
    let mut high_s = valid.clone();
    let mut carry = 0u16;
    for (s, l) in high_s.signature[32..].iter_mut().zip(ORDER) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    let mut bad_r = valid.clone();
    // y = 2 has no x on the curve.
    bad_r.signature[..32].copy_from_slice(&{
        let mut r = [0u8; 32];
        r[0] = 2;
        r
    });
    let mut bad_key = valid.clone();
    bad_key.public_key = bad_r.signature[..32].try_into().expect("32 bytes");
    [
        ("valid", valid),
        ("flipped message bit", flipped),
        ("S not below L", high_s),
        ("R not on the curve", bad_r),
        ("A not on the curve", bad_key),
    ]
    .into_iter()
    .map(|(name, request)| KnownAnswer {
        name,
        verdict: zip215::verify_single(&request),
        request,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Malformed;

    #[test]
    fn the_set_spans_every_kind_of_verdict() {
        let verdicts: Vec<Verdict> = known_answers().iter().map(|k| k.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Valid,
                Verdict::Invalid,
                Verdict::Malformed(Malformed::NonCanonicalS),
                Verdict::Malformed(Malformed::RNotOnCurve),
                Verdict::Malformed(Malformed::PublicKeyNotOnCurve),
            ]
        );
    }
}
