//! One block's record in a segment: a checksummed header, the block, and the certificate
//! that decided it, if any.
//!
//! ```text
//! crc32 (u32) ‖ magic "VBL1" ‖ height (u64) ‖ block length (u32) ‖ certificate length + 1
//! (u32; 0: none) ‖ block ‖ certificate
//! ```
//!
//! Little-endian. The CRC-32 covers everything after itself, so a record torn by a crash, or
//! bytes that were never a record (the zeros a segment is filled with), fail it: the scan of
//! a segment ends there.

use thiserror::Error;

/// The header's length.
pub const HEADER_LEN: usize = 24;
/// The longest record: a block and its certificate. Blocks are bounded far below this (a
/// block's transactions by the builder's limit, a peer's block by the consensus codec), so
/// a header that claims more is not a record.
pub const MAX_RECORD: usize = 32 << 20;
const MAGIC: [u8; 4] = *b"VBL1";

/// Why bytes are not a record.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than the header, or than the header says.
    #[error("record truncated")]
    Truncated,
    /// Not a record's header (the zeros after the last record, or garbage).
    #[error("no record header")]
    NoHeader,
    /// A header that claims more than [`MAX_RECORD`].
    #[error("record of {0} bytes, more than the largest")]
    TooLong(u64),
    /// The checksum does not match: a torn or damaged record.
    #[error("record checksum mismatch")]
    Checksum,
}

/// A record's header, read before its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    crc: u32,
    /// The block's height.
    pub height: u64,
    block_len: u32,
    /// The certificate's length plus one; 0 for none.
    certificate_len: u32,
}

impl Header {
    /// Parses and bounds a header; the body is checked by [`Header::check`].
    pub fn parse(bytes: &[u8]) -> Result<Self, RecordError> {
        let bytes: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Truncated)?;
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if bytes[4..8] != MAGIC {
            return Err(RecordError::NoHeader);
        }
        let mut height = [0; 8];
        height.copy_from_slice(&bytes[8..16]);
        let header = Self {
            crc: word(0),
            height: u64::from_le_bytes(height),
            block_len: word(16),
            certificate_len: word(20),
        };
        let body = header.body_len();
        if body > (MAX_RECORD - HEADER_LEN) as u64 {
            return Err(RecordError::TooLong(body + HEADER_LEN as u64));
        }
        Ok(header)
    }

    /// The body's length: block and certificate.
    pub fn body_len(&self) -> u64 {
        u64::from(self.block_len) + u64::from(self.certificate_len.saturating_sub(1))
    }

    /// The whole record's length.
    pub fn len(&self) -> usize {
        // Bounded by `parse`.
        HEADER_LEN + self.body_len() as usize
    }

    /// Checks `body` (exactly [`Header::body_len`] bytes) against the checksum and splits it
    /// into the block and its certificate.
    pub fn check<'a>(&self, body: &'a [u8]) -> Result<(&'a [u8], Option<&'a [u8]>), RecordError> {
        if body.len() as u64 != self.body_len() {
            return Err(RecordError::Truncated);
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.encode()[4..]);
        crc.update(body);
        if crc.finalize() != self.crc {
            return Err(RecordError::Checksum);
        }
        let (block, certificate) = body.split_at(self.block_len as usize);
        Ok((block, (self.certificate_len != 0).then_some(certificate)))
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[0..4].copy_from_slice(&self.crc.to_le_bytes());
        bytes[4..8].copy_from_slice(&MAGIC);
        bytes[8..16].copy_from_slice(&self.height.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.block_len.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.certificate_len.to_le_bytes());
        bytes
    }
}

/// Appends the record of block `height` to `out`; `None` if it would be longer than
/// [`MAX_RECORD`].
pub fn encode(
    out: &mut Vec<u8>,
    height: u64,
    block: &[u8],
    certificate: Option<&[u8]>,
) -> Option<usize> {
    let len = HEADER_LEN + block.len() + certificate.map_or(0, <[u8]>::len);
    if len > MAX_RECORD {
        return None;
    }
    // Both fit in u32: bounded by MAX_RECORD.
    let mut header = Header {
        crc: 0,
        height,
        block_len: block.len() as u32,
        certificate_len: certificate.map_or(0, |c| c.len() as u32 + 1),
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header.encode()[4..]);
    crc.update(block);
    crc.update(certificate.unwrap_or_default());
    header.crc = crc.finalize();
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(block);
    out.extend_from_slice(certificate.unwrap_or_default());
    Some(len)
}

/// The records at the start of `segment` (a whole segment's bytes) for consecutive heights
/// from `first`: each one's offset, and where the last one ends. The scan stops at the first
/// thing that is not the next record — the zeros after the last, a torn record, a record of
/// another height.
pub fn scan(segment: &[u8], first: u64) -> (Vec<u32>, usize) {
    let mut offsets = Vec::new();
    let mut at = 0;
    while let Ok(header) = Header::parse(&segment[at..]) {
        let end = at + header.len();
        let body = segment.get(at + HEADER_LEN..end).unwrap_or_default();
        if header.height != first + offsets.len() as u64 || header.check(body).is_err() {
            break;
        }
        // A segment is far shorter than 4 GiB (`segment::LARGEST`).
        offsets.push(at as u32);
        at = end;
    }
    (offsets, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn records(blocks: &[(Vec<u8>, Option<Vec<u8>>)], first: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (block, certificate)) in blocks.iter().enumerate() {
            encode(&mut out, first + i as u64, block, certificate.as_deref()).expect("fits");
        }
        out
    }

    #[test]
    fn a_record_reads_back_and_any_flipped_bit_fails_it() {
        let mut out = Vec::new();
        encode(&mut out, 7, b"block", Some(b"cert")).expect("fits");
        let header = Header::parse(&out).expect("a header");
        assert_eq!(header.height, 7);
        assert_eq!(header.len(), out.len());
        let (block, certificate) = header.check(&out[HEADER_LEN..]).expect("checks");
        assert_eq!((block, certificate), (&b"block"[..], Some(&b"cert"[..])));
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let read = Header::parse(&bad).and_then(|h| {
                let body = bad.get(HEADER_LEN..h.len()).ok_or(RecordError::Truncated)?;
                h.check(body).map(|_| h)
            });
            assert!(read.is_err(), "bit {bit} flipped still reads");
        }
    }

    #[test]
    fn an_empty_certificate_is_not_no_certificate() {
        let mut out = Vec::new();
        encode(&mut out, 1, b"b", Some(b"")).expect("fits");
        let header = Header::parse(&out).expect("a header");
        assert_eq!(
            header.check(&out[HEADER_LEN..]),
            Ok((&b"b"[..], Some(&b""[..])))
        );
    }

    #[test]
    fn oversize_records_are_refused_both_ways() {
        let big = vec![0u8; MAX_RECORD];
        assert_eq!(encode(&mut Vec::new(), 0, &big, None), None);
        let mut out = Vec::new();
        encode(&mut out, 0, b"", None).expect("fits");
        out[16..20].copy_from_slice(&(MAX_RECORD as u32).to_le_bytes());
        assert!(matches!(Header::parse(&out), Err(RecordError::TooLong(_))));
        assert_eq!(Header::parse(&[0; HEADER_LEN]), Err(RecordError::NoHeader));
        assert_eq!(Header::parse(&out[..10]), Err(RecordError::Truncated));
    }

    proptest! {
        /// Cut anywhere and zero-filled after the cut, a segment scans to the records whose
        /// bytes all survived (a record whose lost tail was zeros is whole again), and to none
        /// after a record of another height.
        #[test]
        fn a_scan_keeps_exactly_the_whole_records_before_a_tear(
            blocks in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..300),
                 prop::option::of(prop::collection::vec(any::<u8>(), 0..50))),
                0..12),
            cut in any::<prop::sample::Index>(),
            first in 0u64..1_000,
        ) {
            let bytes = records(&blocks, first);
            let cut = cut.index(bytes.len() + 1);
            let mut segment = bytes[..cut].to_vec();
            segment.resize(bytes.len() + 64, 0);
            let (offsets, end) = scan(&segment, first);
            let mut whole = 0;
            let mut at = 0;
            for (block, certificate) in &blocks {
                let len = HEADER_LEN + block.len() + certificate.as_ref().map_or(0, Vec::len);
                if segment[at..at + len] != bytes[at..at + len] {
                    break;
                }
                prop_assert_eq!(offsets.get(whole).copied(), Some(at as u32));
                whole += 1;
                at += len;
            }
            prop_assert_eq!(offsets.len(), whole);
            prop_assert_eq!(end, at);
            if !blocks.is_empty() {
                prop_assert!(scan(&bytes, first + 1).0.is_empty());
            }
        }
    }
}
