//! The firmware image: what the host uploads into the card's microcode RAM and constant ROM.
//!
//! ```text
//! offset size field
//!      0    4 magic "VRTY"
//!      4    2 ISA version (1)
//!      6    2 header length (32)
//!      8    2 code words (≤ 4096)
//!     10    2 constants (≤ 256)
//!     12    2 entry point (word address)
//!     14    2 reserved, 0
//!     16    4 image length in bytes (header + code + constants)
//!     20    8 reserved, 0
//!     28    4 CRC-32 (IEEE 802.3) of the whole image with this field as 0
//!     32  8·n code words, little-endian u64
//!      …  32·m constants, little-endian canonical field elements
//! ```

use thiserror::Error;

use crate::asm::Program;
use crate::field::Fe;
use crate::isa::{Addr, DecodeError, Instr, CODE_WORDS_MAX, CONSTANTS_MAX};

/// "VRTY".
pub const MAGIC: [u8; 4] = *b"VRTY";
/// The instruction-set version this crate defines.
pub const ISA_VERSION: u16 = 1;
/// Header bytes.
pub const HEADER_LEN: usize = 32;
/// The largest image: a full microcode RAM and constant ROM.
pub const IMAGE_LEN_MAX: usize = HEADER_LEN + 8 * CODE_WORDS_MAX + 32 * CONSTANTS_MAX;
const CRC_AT: usize = 28;

/// A firmware image, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The program.
    pub program: Program,
}

/// Why bytes are not a usable image.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ImageError {
    /// Shorter than a header, or longer than any image can be.
    #[error("image is {0} bytes: not between {HEADER_LEN} and {IMAGE_LEN_MAX}")]
    Size(usize),
    /// The magic is not "VRTY".
    #[error("bad magic {0:02x?}")]
    Magic([u8; 4]),
    /// Made for another instruction set.
    #[error("ISA version {0}, this firmware speaks {ISA_VERSION}")]
    IsaVersion(u16),
    /// A header field is out of range or a reserved one is set.
    #[error("bad header: {0}")]
    Header(&'static str),
    /// The declared length is not the length given.
    #[error("header says {declared} bytes, image has {actual}")]
    Length {
        /// From the header.
        declared: usize,
        /// Received.
        actual: usize,
    },
    /// The CRC does not match: the image is corrupt.
    #[error("checksum {stored:#010x} stored, {computed:#010x} computed")]
    Checksum {
        /// From the header.
        stored: u32,
        /// Over the bytes.
        computed: u32,
    },
    /// A code word is not an instruction.
    #[error("code word {index}: {error}")]
    Instruction {
        /// Which word.
        index: usize,
        /// Why.
        error: DecodeError,
    },
    /// A constant is not below p.
    #[error("constant {0} is not a canonical field element")]
    Constant(usize),
    /// A branch or the entry point leaves the code.
    #[error("word {0} jumps outside the code")]
    Target(usize),
}

impl Image {
    /// Wraps an assembled program.
    pub fn new(program: Program) -> Self {
        Self { program }
    }

    /// The image's bytes, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let p = &self.program;
        let len = HEADER_LEN + 8 * p.code.len() + 32 * p.constants.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&ISA_VERSION.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&(p.code.len() as u16).to_le_bytes());
        out.extend_from_slice(&(p.constants.len() as u16).to_le_bytes());
        out.extend_from_slice(&(p.entry.index() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 2]);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        for instr in &p.code {
            out.extend_from_slice(&instr.encode().to_le_bytes());
        }
        for constant in &p.constants {
            out.extend_from_slice(&constant.to_bytes());
        }
        let crc = crc32fast::hash(&out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The CRC-32 the header must carry: over `bytes` with the CRC field read as zero.
    pub fn checksum(bytes: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes[..CRC_AT.min(bytes.len())]);
        if bytes.len() >= CRC_AT + 4 {
            hasher.update(&[0; 4]);
            hasher.update(&bytes[CRC_AT + 4..]);
        }
        hasher.finalize()
    }

    /// Decodes and checks untrusted bytes: sizes before anything is allocated, then the
    /// checksum, then every word and constant.
    pub fn decode(bytes: &[u8]) -> Result<Image, ImageError> {
        if !(HEADER_LEN..=IMAGE_LEN_MAX).contains(&bytes.len()) {
            return Err(ImageError::Size(bytes.len()));
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != MAGIC {
            return Err(ImageError::Magic(magic));
        }
        if u16_at(4) != ISA_VERSION {
            return Err(ImageError::IsaVersion(u16_at(4)));
        }
        if usize::from(u16_at(6)) != HEADER_LEN {
            return Err(ImageError::Header("header length is not 32"));
        }
        let words = usize::from(u16_at(8));
        let constants = usize::from(u16_at(10));
        if words > CODE_WORDS_MAX || words == 0 {
            return Err(ImageError::Header("code word count out of 1..=4096"));
        }
        if constants > CONSTANTS_MAX {
            return Err(ImageError::Header("more than 256 constants"));
        }
        if u16_at(14) != 0 || bytes[20..28].iter().any(|b| *b != 0) {
            return Err(ImageError::Header("reserved field is not zero"));
        }
        let declared = u32_at(16) as usize;
        let expected = HEADER_LEN + 8 * words + 32 * constants;
        if declared != expected || bytes.len() != expected {
            return Err(ImageError::Length {
                declared,
                actual: bytes.len(),
            });
        }
        let stored = u32_at(CRC_AT);
        let computed = Image::checksum(bytes);
        if stored != computed {
            return Err(ImageError::Checksum { stored, computed });
        }
        let code_bytes = &bytes[HEADER_LEN..HEADER_LEN + 8 * words];
        let code = code_bytes
            .chunks_exact(8)
            .enumerate()
            .map(|(index, chunk)| {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                Instr::decode(u64::from_le_bytes(word))
                    .map_err(|error| ImageError::Instruction { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let constants = bytes[HEADER_LEN + 8 * words..]
            .chunks_exact(32)
            .enumerate()
            .map(|(index, chunk)| {
                let mut value = [0u8; 32];
                value.copy_from_slice(chunk);
                Fe::from_canonical_bytes(&value).ok_or(ImageError::Constant(index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let entry = Addr::new(usize::from(u16_at(12)))
            .ok()
            .filter(|a| a.index() < code.len())
            .ok_or(ImageError::Header("entry point outside the code"))?;
        let program = Program {
            code,
            constants,
            entry,
        };
        check_targets(&program)?;
        Ok(Image { program })
    }
}

/// Every branch target is inside the code, every direct constant index inside the ROM, and
/// the last word does not fall off the end. (Table reads depend on digits: the interpreter
/// and the hardware check them when they happen.)
fn check_targets(program: &Program) -> Result<(), ImageError> {
    use crate::isa::{Op, Seq};
    let words = program.code.len();
    for (index, instr) in program.code.iter().enumerate() {
        let target = match instr.seq {
            Seq::Next => (index + 1 < words).then_some(index + 1),
            Seq::Jump(t)
            | Seq::IfFlag(_, t)
            | Seq::IfNotFlag(_, t)
            | Seq::IfDigitZero(_, t)
            | Seq::IfBothDigitsZero(t)
            | Seq::LoopI(t)
            | Seq::LoopJ(t) => (t.index() < words
                && (index + 1 < words || matches!(instr.seq, Seq::Jump(_))))
            .then_some(t.index()),
            Seq::Done(_) => Some(index),
        };
        if target.is_none() {
            return Err(ImageError::Target(index));
        }
        let constant = match instr.op {
            Op::MulC { c, .. } | Op::LdC { c, .. } => Some(c.index()),
            _ => None,
        };
        if constant.is_some_and(|c| c >= program.constants.len()) {
            return Err(ImageError::Constant(constant.unwrap_or_default()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::program::ed25519_verify;

    fn bytes() -> Vec<u8> {
        Image::new(ed25519_verify()).encode()
    }

    #[test]
    fn the_verification_image_round_trips() {
        let image = Image::new(ed25519_verify());
        let encoded = image.encode();
        assert_eq!(Image::decode(&encoded), Ok(image));
        assert_eq!(
            Image::checksum(&encoded).to_le_bytes(),
            encoded[CRC_AT..CRC_AT + 4]
        );
    }

    #[test]
    fn header_defects_are_named() {
        let good = bytes();
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(Image::decode(&bad), Err(ImageError::Magic(_))));
        bad = good.clone();
        bad[4] = 2;
        assert_eq!(Image::decode(&bad), Err(ImageError::IsaVersion(2)));
        assert_eq!(
            Image::decode(&good[..good.len() - 1]).map(|_| ()),
            Err(ImageError::Length {
                declared: good.len(),
                actual: good.len() - 1
            })
        );
        assert_eq!(Image::decode(&good[..10]), Err(ImageError::Size(10)));
        let mut long = good.clone();
        long.resize(IMAGE_LEN_MAX + 1, 0);
        assert_eq!(
            Image::decode(&long),
            Err(ImageError::Size(IMAGE_LEN_MAX + 1))
        );
    }

    proptest! {
        /// Any single corrupted byte is caught: by the checksum, or by a header check first.
        #[test]
        fn a_corrupted_byte_is_rejected(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let mut corrupt = bytes();
            let at = at.index(corrupt.len());
            corrupt[at] ^= flip;
            prop_assert!(Image::decode(&corrupt).is_err());
        }
    }

    #[test]
    fn a_well_formed_image_with_a_bad_word_is_rejected_after_the_checksum() {
        let mut corrupt = bytes();
        corrupt[HEADER_LEN + 7] = 0xff; // top byte of the first word: reserved bits
        let crc = Image::checksum(&corrupt);
        corrupt[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Image::decode(&corrupt),
            Err(ImageError::Instruction { index: 0, .. })
        ));
    }
}
