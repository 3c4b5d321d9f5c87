//! The records that cross PCIe: requests host → card, responses card → host.
//!
//! All integers are little-endian. Records are whole 64-byte DMA words (the 512-bit AXI
//! stream of the XDMA core), so a record never straddles a beat boundary.
//!
//! # Request (host → card), 2 to 18 words
//!
//! ```text
//! offset size field
//!      0    2 magic 0x5652 ("VR")
//!      2    1 words: record length in 64-byte words, 2..=18, = ⌈(112 + msg_len)/64⌉
//!      3    1 flags: must be 0 (none defined in ABI version 1)
//!      4    2 msg_len: 0..=1024
//!      6    2 reserved, 0
//!      8    8 tag
//!     16   32 public key A
//!     48   64 signature R ‖ S
//!    112    n message
//!  112+n    … zero padding to the end of the last word
//! ```
//!
//! The maximum message is 1,024 bytes: a transaction of the ledger or a consensus vote is
//! under 200 bytes, so this leaves room while keeping SHA-512's input to at most 9 blocks and
//! the card's per-request buffer to 18 words; applications sign a digest of anything longer.
//!
//! # Response (card → host), 1 word
//!
//! ```text
//! offset size field
//!      0    8 tag of the request
//!      8    1 status: 0 = verdict, 1 = record rejected
//!      9    1 code: a Verdict code (status 0) or a RecordError code (status 1)
//!     10    1 engine that ran it; 255 when no engine ran (a rejected record, a non-canonical S)
//!     11    1 reserved, 0
//!     12    4 engine cycles spent
//!     16   12 reserved, 0
//!     28    4 check: CRC-32 of the 64 bytes with this field as zero
//!     32   32 transaction id: SHA-256 of the message (zero for a rejected record)
//! ```
//!
//! The check catches a record damaged between the card's response stage and the host (a
//! flipped verdict bit turns into a refused record, not a wrong verdict); the transaction id
//! catches an answer that reached the wrong request.

use thiserror::Error;

use crate::{Tag, Verdict};

/// The DMA word: 512 bits.
pub const WORD: usize = 64;
/// The longest message a request may carry.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// Request header, key and signature.
pub const REQUEST_FIXED: usize = 112;
/// "VR".
pub const REQUEST_MAGIC: u16 = 0x5652;
/// The longest request record, in words.
pub const REQUEST_WORDS_MAX: usize = (REQUEST_FIXED + MAX_MESSAGE_LEN).div_ceil(WORD);
/// A response record's length.
pub const RESPONSE_LEN: usize = WORD;
/// A response's `engine` when no engine ran: the record was rejected, or S was not canonical.
pub const NO_ENGINE: u8 = 0xff;

/// A verification request as the host streams it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Echoed in the response.
    pub tag: Tag,
    /// A as received.
    pub public_key: [u8; 32],
    /// R ‖ S as received.
    pub signature: [u8; 64],
    /// At most [`MAX_MESSAGE_LEN`] bytes.
    pub message: &'a [u8],
}

/// Why a request record is refused. The first four can be answered (the record's extent is
/// known, so the tag is known and the stream stays in step); the framing errors cannot, and
/// the card drops the rest of the DMA transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    /// msg_len is over 1,024.
    #[error("message length {0} is over {MAX_MESSAGE_LEN}")]
    MessageTooLong(u16),
    /// `words` does not match msg_len.
    #[error("record of {words} words cannot hold a {msg_len}-byte message exactly")]
    LengthMismatch {
        /// From the header.
        words: u8,
        /// From the header.
        msg_len: u16,
    },
    /// An undefined flag or a reserved field is set.
    #[error("undefined flags {0:#04x} or reserved bits set")]
    Reserved(u8),
    /// Padding after the message is not zero.
    #[error("padding after the message is not zero")]
    Padding,
    /// The magic is wrong: the stream is out of step.
    #[error("bad magic {0:#06x}: stream out of step")]
    Magic(u16),
    /// `words` is outside 2..=18: the record's extent is unknown.
    #[error("record length {0} words is outside 2..=18")]
    Words(u8),
    /// The bytes end inside the record.
    #[error("record of {needed} bytes truncated to {available}")]
    Truncated {
        /// Bytes the header announces.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
}

impl RecordError {
    /// The response code for an answerable error; `None` for framing errors.
    pub const fn code(self) -> Option<u8> {
        match self {
            RecordError::MessageTooLong(_) => Some(1),
            RecordError::LengthMismatch { .. } => Some(2),
            RecordError::Reserved(_) => Some(3),
            RecordError::Padding => Some(4),
            RecordError::Magic(_) | RecordError::Words(_) | RecordError::Truncated { .. } => None,
        }
    }
}

/// A request record that could not be used but whose tag is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The record's tag.
    pub tag: Tag,
    /// Why.
    pub error: RecordError,
    /// The record's length in bytes, to step over it.
    pub len: usize,
}

impl Request<'_> {
    /// Words the record occupies.
    pub fn words(&self) -> usize {
        (REQUEST_FIXED + self.message.len()).div_ceil(WORD)
    }

    /// Appends the record. The message must be at most [`MAX_MESSAGE_LEN`]; a longer one is
    /// refused (its verdict is `MessageTooLong` without the card).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let len = self.message.len();
        if len > MAX_MESSAGE_LEN {
            return Err(RecordError::MessageTooLong(
                u16::try_from(len).unwrap_or(u16::MAX),
            ));
        }
        let start = out.len();
        out.extend_from_slice(&REQUEST_MAGIC.to_le_bytes());
        out.push(self.words() as u8);
        out.push(0);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.tag.get().to_le_bytes());
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(self.message);
        out.resize(start + self.words() * WORD, 0);
        Ok(())
    }

    /// Decodes the record at the start of `bytes`. `Ok` carries the request and its length.
    /// `Err(Ok(rejected))` is a record to answer with an error; `Err(Err(framing))` means the
    /// stream cannot be followed. Nothing is allocated and nothing panics, whatever the bytes.
    #[allow(clippy::type_complexity)]
    pub fn decode(bytes: &[u8]) -> Result<(Request<'_>, usize), Result<Rejected, RecordError>> {
        let truncated = |needed| RecordError::Truncated {
            needed,
            available: bytes.len(),
        };
        let header: &[u8; 16] = bytes.first_chunk().ok_or(Err(truncated(16)))?;
        let magic = u16::from_le_bytes([header[0], header[1]]);
        if magic != REQUEST_MAGIC {
            return Err(Err(RecordError::Magic(magic)));
        }
        let words = header[2];
        if !(2..=REQUEST_WORDS_MAX as u8).contains(&words) {
            return Err(Err(RecordError::Words(words)));
        }
        let len = usize::from(words) * WORD;
        let record = bytes.get(..len).ok_or(Err(truncated(len)))?;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&record[8..16]);
        let tag = Tag::new(u64::from_le_bytes(tag));
        let reject = |error| Err(Ok(Rejected { tag, error, len }));
        let msg_len = u16::from_le_bytes([header[4], header[5]]);
        if header[3] != 0 || header[6] != 0 || header[7] != 0 {
            return reject(RecordError::Reserved(header[3]));
        }
        if usize::from(msg_len) > MAX_MESSAGE_LEN {
            return reject(RecordError::MessageTooLong(msg_len));
        }
        let end = REQUEST_FIXED + usize::from(msg_len);
        if end.div_ceil(WORD) != usize::from(words) {
            return reject(RecordError::LengthMismatch { words, msg_len });
        }
        if record[end..].iter().any(|b| *b != 0) {
            return reject(RecordError::Padding);
        }
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(&record[16..48]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&record[48..112]);
        Ok((
            Request {
                tag,
                public_key,
                signature,
                message: &record[REQUEST_FIXED..end],
            },
            len,
        ))
    }
}

/// What the card says about one request record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The signature was checked (or found malformed) under ZIP-215.
    Verdict(Verdict),
    /// The record itself was refused (code of an answerable [`RecordError`]).
    Rejected(u8),
}

/// A response record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request's tag.
    pub tag: Tag,
    /// The answer.
    pub status: Status,
    /// The engine that ran it; [`NO_ENGINE`] when none did.
    pub engine: u8,
    /// Engine cycles spent.
    pub cycles: u32,
    /// SHA-256 of the message.
    pub txid: [u8; 32],
}

/// A response record that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ResponseError {
    /// Fewer than 64 bytes.
    #[error("response of {0} bytes, expected {RESPONSE_LEN}")]
    Length(usize),
    /// Status byte is neither 0 nor 1.
    #[error("unknown status {0}")]
    Status(u8),
    /// The code names no verdict or record error.
    #[error("unknown code {code} for status {status}")]
    Code {
        /// Status byte.
        status: u8,
        /// Code byte.
        code: u8,
    },
    /// A reserved byte is set.
    #[error("reserved bytes set")]
    Reserved,
    /// The check field does not match the record: it was damaged on the way.
    #[error("check {found:#010x} does not match the record's {computed:#010x}")]
    Check {
        /// In the record.
        found: u32,
        /// Computed over it.
        computed: u32,
    },
}

/// Where a response record's check sits.
pub const RESPONSE_CHECK_AT: usize = 28;

/// Writes `record`'s check field: what a card does last to every response.
pub fn seal_response(record: &mut [u8; RESPONSE_LEN]) {
    let check = response_check(record);
    record[RESPONSE_CHECK_AT..RESPONSE_CHECK_AT + 4].copy_from_slice(&check.to_le_bytes());
}

/// The check of a response record: CRC-32 of its 64 bytes with the check field as zero.
pub fn response_check(record: &[u8; RESPONSE_LEN]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&record[..RESPONSE_CHECK_AT]);
    hasher.update(&[0; 4]);
    hasher.update(&record[RESPONSE_CHECK_AT + 4..]);
    hasher.finalize()
}

impl Response {
    /// The 64-byte record.
    pub fn encode(&self) -> [u8; RESPONSE_LEN] {
        let mut out = [0u8; RESPONSE_LEN];
        out[..8].copy_from_slice(&self.tag.get().to_le_bytes());
        let (status, code) = match self.status {
            Status::Verdict(v) => (0, v.code()),
            Status::Rejected(code) => (1, code),
        };
        out[8] = status;
        out[9] = code;
        out[10] = self.engine;
        out[12..16].copy_from_slice(&self.cycles.to_le_bytes());
        out[32..].copy_from_slice(&self.txid);
        seal_response(&mut out);
        out
    }

    /// Reads a record from the card; every field is checked.
    pub fn decode(bytes: &[u8]) -> Result<Response, ResponseError> {
        let record: &[u8; RESPONSE_LEN] = bytes
            .try_into()
            .map_err(|_| ResponseError::Length(bytes.len()))?;
        let mut found = [0u8; 4];
        found.copy_from_slice(&record[RESPONSE_CHECK_AT..RESPONSE_CHECK_AT + 4]);
        let (found, computed) = (u32::from_le_bytes(found), response_check(record));
        if found != computed {
            return Err(ResponseError::Check { found, computed });
        }
        if record[11] != 0 || record[16..RESPONSE_CHECK_AT].iter().any(|b| *b != 0) {
            return Err(ResponseError::Reserved);
        }
        let (status, code) = (record[8], record[9]);
        let status = match status {
            0 => Status::Verdict(
                Verdict::from_code(code).map_err(|_| ResponseError::Code { status, code })?,
            ),
            1 if (1..=4).contains(&code) => Status::Rejected(code),
            1 => return Err(ResponseError::Code { status, code }),
            other => return Err(ResponseError::Status(other)),
        };
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&record[..8]);
        let mut cycles = [0u8; 4];
        cycles.copy_from_slice(&record[12..16]);
        let mut txid = [0u8; 32];
        txid.copy_from_slice(&record[32..]);
        Ok(Response {
            tag: Tag::new(u64::from_le_bytes(tag)),
            status,
            engine: record[10],
            cycles: u32::from_le_bytes(cycles),
            txid,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Malformed;

    fn request(message: &[u8]) -> Request<'_> {
        Request {
            tag: Tag::new(0x0102_0304_0506_0708),
            public_key: [0xaa; 32],
            signature: [0xbb; 64],
            message,
        }
    }

    #[test]
    fn records_round_trip_at_every_length() {
        for len in [0, 1, 15, 16, 17, 80, 81, 1024] {
            let message = vec![0x5a; len];
            let mut bytes = Vec::new();
            request(&message).encode(&mut bytes).expect("fits");
            assert_eq!(bytes.len() % WORD, 0);
            assert_eq!(bytes.len(), request(&message).words() * WORD);
            let (decoded, used) = Request::decode(&bytes).expect("decodes");
            assert_eq!((decoded, used), (request(&message), bytes.len()));
        }
        assert_eq!(REQUEST_WORDS_MAX, 18);
    }

    #[test]
    fn bad_records_are_answered_or_flagged_as_framing_errors() {
        let mut bytes = Vec::new();
        request(b"hello").encode(&mut bytes).expect("fits");
        let tag = Tag::new(0x0102_0304_0506_0708);
        let mut long = bytes.clone();
        long[4..6].copy_from_slice(&2000u16.to_le_bytes());
        assert_eq!(
            Request::decode(&long),
            Err(Ok(Rejected {
                tag,
                error: RecordError::MessageTooLong(2000),
                len: 128
            }))
        );
        let mut flagged = bytes.clone();
        flagged[3] = 1;
        assert!(matches!(
            Request::decode(&flagged),
            Err(Ok(Rejected {
                error: RecordError::Reserved(1),
                ..
            }))
        ));
        let mut padded = bytes.clone();
        padded[127] = 1;
        assert!(matches!(
            Request::decode(&padded),
            Err(Ok(Rejected {
                error: RecordError::Padding,
                ..
            }))
        ));
        let mut mismatch = bytes.clone();
        mismatch[4..6].copy_from_slice(&100u16.to_le_bytes());
        assert!(matches!(
            Request::decode(&mismatch),
            Err(Ok(Rejected {
                error: RecordError::LengthMismatch { .. },
                ..
            }))
        ));
        let mut magic = bytes.clone();
        magic[0] = 0;
        assert_eq!(
            Request::decode(&magic),
            Err(Err(RecordError::Magic(0x5600)))
        );
        let mut words = bytes.clone();
        words[2] = 19;
        assert_eq!(Request::decode(&words), Err(Err(RecordError::Words(19))));
        assert_eq!(
            Request::decode(&bytes[..100]),
            Err(Err(RecordError::Truncated {
                needed: 128,
                available: 100
            }))
        );
        assert!(Request::decode(&[]).is_err());
        let message = vec![0; 1025];
        assert_eq!(
            request(&message).encode(&mut Vec::new()),
            Err(RecordError::MessageTooLong(1025))
        );
    }

    #[test]
    fn responses_round_trip_and_bad_ones_are_refused() {
        for status in [
            Status::Verdict(Verdict::Valid),
            Status::Verdict(Verdict::Malformed(Malformed::RNotOnCurve)),
            Status::Rejected(3),
        ] {
            let response = Response {
                tag: Tag::new(9),
                status,
                engine: 3,
                cycles: 3100,
                txid: [7; 32],
            };
            assert_eq!(Response::decode(&response.encode()), Ok(response));
        }
        let good = Response {
            tag: Tag::new(1),
            status: Status::Verdict(Verdict::Valid),
            engine: 0,
            cycles: 0,
            txid: [0; 32],
        }
        .encode();
        // A field changed with the check recomputed: refused for what it says.
        let resealed = |at: usize, value: u8| {
            let mut bad = good;
            bad[at] = value;
            seal_response(&mut bad);
            bad
        };
        assert_eq!(
            Response::decode(&resealed(8, 2)),
            Err(ResponseError::Status(2))
        );
        assert_eq!(
            Response::decode(&resealed(9, 99)),
            Err(ResponseError::Code {
                status: 0,
                code: 99
            })
        );
        assert_eq!(
            Response::decode(&resealed(20, 1)),
            Err(ResponseError::Reserved)
        );
        // Any one bit flipped on the way is caught by the check.
        for bit in 0..RESPONSE_LEN * 8 {
            let mut bad = good;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(Response::decode(&bad), Err(ResponseError::Check { .. })),
                "bit {bit}"
            );
        }
        assert_eq!(
            Response::decode(&good[..10]),
            Err(ResponseError::Length(10))
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes);
        }

        #[test]
        fn decoding_a_mutated_record_never_panics(len in 0usize..=1024, at in 0usize..1152, value in any::<u8>()) {
            let message = vec![1; len];
            let mut bytes = Vec::new();
            request(&message).encode(&mut bytes).expect("fits");
            let at = at % bytes.len();
            bytes[at] = value;
            if let Ok((_, used)) = Request::decode(&bytes) {
                prop_assert_eq!(used, bytes.len());
            }
        }
    }
}
