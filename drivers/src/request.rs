//! What goes into a verifier and what comes out.

use verity_firmware::{Tag, Verdict};

/// One signature to check: the public key A, the signature R ‖ S, and the signed message.
///
/// The fixed-size fields are exactly what the card's request record carries; turning
/// untrusted text or frames into a `Request` (lengths, hex) is the caller's parser's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Echoed in the response.
    pub tag: Tag,
    /// The encoding of A, as received (it may be non-canonical; ZIP-215 accepts that).
    pub public_key: [u8; 32],
    /// R (32 bytes) followed by S (32 bytes), as received.
    pub signature: [u8; 64],
    /// The signed message.
    pub message: Vec<u8>,
}

impl Request {
    /// Builds a request from its parts.
    pub fn new(tag: Tag, public_key: [u8; 32], signature: [u8; 64], message: Vec<u8>) -> Self {
        Self {
            tag,
            public_key,
            signature,
            message,
        }
    }

    /// The encoding of R, the signature's first half.
    pub fn r_bytes(&self) -> &[u8; 32] {
        self.signature
            .first_chunk::<32>()
            .expect("a 64-byte signature has a 32-byte first half")
    }

    /// The encoding of S, the signature's second half.
    pub fn s_bytes(&self) -> &[u8; 32] {
        self.signature
            .last_chunk::<32>()
            .expect("a 64-byte signature has a 32-byte second half")
    }
}

/// The verdict on one request, under the request's tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The tag of the request this answers.
    pub tag: Tag,
    /// What ZIP-215 says of it.
    pub verdict: Verdict,
}
