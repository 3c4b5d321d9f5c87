//! Transaction format v1: what clients send, what the ledger applies.
//!
//! ```text
//! offset size field
//!      0    1 version: 1
//!      1    1 payload kind: 1 Transfer, 2 Mint
//!      2    2 body length: 48 for both kinds
//!      4    4 chain id: the venue's, so a transaction signed for one venue is void at another
//!      8   32 sender: Ed25519 public key
//!     40    8 nonce: the sender's next, from 0
//!     48   48 body: asset (u32), reserved (4 bytes, 0), to (32-byte public key), amount (u64)
//!     96   64 signature R ‖ S by the sender over bytes 0..96
//! ```
//!
//! Integers are little-endian; a transaction is exactly 160 bytes. Its id is the SHA-256 of
//! the signed bytes (0..96) — the transaction id the card returns for the same message — so
//! a second signature on the same intent is the same transaction to the mempool.
//!
//! [`Transaction::decode`] borrows the bytes it checks (nothing is copied or allocated), and
//! refuses anything malformed with a [`TxError`]: the length is checked before any field is
//! read. Whether the signature verifies, and whether the ledger can apply it, are later
//! stages' business.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use verity_host::transaction::{Body, Payload, Transaction, Unsigned};
//!
//! let alice = SigningKey::from_bytes(&[1; 32]);
//! let bytes = Unsigned {
//!     chain_id: 7,
//!     sender: alice.verifying_key().to_bytes(),
//!     nonce: 0,
//!     payload: Payload::Transfer(Body { asset: 1, to: [2; 32], amount: 50 }),
//! }
//! .sign(&alice);
//! let tx = Transaction::decode(&bytes).expect("well formed");
//! assert_eq!(tx.nonce(), 0);
//! assert_eq!(tx.payload(), Payload::Transfer(Body { asset: 1, to: [2; 32], amount: 50 }));
//! ```

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use thiserror::Error;
use verity_drivers::{Request, Tag};

/// The format's version.
pub const VERSION: u8 = 1;
/// Bytes of every v1 transaction.
pub const TX_LEN: usize = 160;
/// Bytes the signature covers.
pub const SIGNED_LEN: usize = 96;
/// Bytes of a Transfer or Mint body.
pub const BODY_LEN: usize = 48;

/// A transaction id: SHA-256 of the signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub [u8; 32]);

/// What a Transfer or a Mint moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body {
    /// The asset.
    pub asset: u32,
    /// The receiving account.
    pub to: [u8; 32],
    /// How much.
    pub amount: u64,
}

/// What a transaction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Move `amount` of `asset` from the sender to `to`.
    Transfer(Body),
    /// Create `amount` of `asset` in `to`'s account; only the genesis file's issuers may.
    Mint(Body),
    /// An oracle's price of `asset` (quote units per unit); only the genesis file's oracles
    /// may. The sender's nonce is the update's sequence number.
    Price {
        /// The underlying priced.
        asset: u32,
        /// Quote units per unit of it.
        price: u64,
    },
}

impl Payload {
    fn kind(&self) -> u8 {
        match self {
            Payload::Transfer(_) => 1,
            Payload::Mint(_) => 2,
            Payload::Price { .. } => 3,
        }
    }

    /// The body as the bytes carry it (a price's `to` is zero).
    fn body(&self) -> Body {
        match *self {
            Payload::Transfer(body) | Payload::Mint(body) => body,
            Payload::Price { asset, price } => Body {
                asset,
                to: [0; 32],
                amount: price,
            },
        }
    }
}

/// Why bytes are not a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TxError {
    /// Not 160 bytes.
    #[error("transaction of {0} bytes, expected {TX_LEN}")]
    Length(usize),
    /// An unknown version.
    #[error("unknown version {0}")]
    Version(u8),
    /// An unknown payload kind.
    #[error("unknown payload kind {0}")]
    Kind(u8),
    /// The body length is not the kind's.
    #[error("body of {0} bytes, expected {BODY_LEN}")]
    BodyLength(u16),
    /// A reserved byte is set.
    #[error("reserved bytes set")]
    Reserved,
}

impl TxError {
    /// A short, stable name for metrics and client replies.
    pub const fn reason(self) -> &'static str {
        match self {
            TxError::Length(_) => "length",
            TxError::Version(_) => "version",
            TxError::Kind(_) => "kind",
            TxError::BodyLength(_) => "body_length",
            TxError::Reserved => "reserved",
        }
    }
}

/// A well-formed transaction, borrowed from the bytes it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction<'a> {
    bytes: &'a [u8; TX_LEN],
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

impl<'a> Transaction<'a> {
    /// Checks `bytes` and borrows them. The length is checked first: nothing else is read
    /// from a frame of the wrong size.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, TxError> {
        let bytes: &'a [u8; TX_LEN] = bytes.try_into().map_err(|_| TxError::Length(bytes.len()))?;
        if bytes[0] != VERSION {
            return Err(TxError::Version(bytes[0]));
        }
        if !(1..=3).contains(&bytes[1]) {
            return Err(TxError::Kind(bytes[1]));
        }
        let body_len = u16::from_le_bytes([bytes[2], bytes[3]]);
        if usize::from(body_len) != BODY_LEN {
            return Err(TxError::BodyLength(body_len));
        }
        if bytes[52..56] != [0; 4] {
            return Err(TxError::Reserved);
        }
        // A price names no receiver: its `to` is reserved.
        if bytes[1] == 3 && bytes[56..88] != [0; 32] {
            return Err(TxError::Reserved);
        }
        Ok(Self { bytes })
    }

    /// The bytes, as received.
    pub fn bytes(&self) -> &'a [u8; TX_LEN] {
        self.bytes
    }

    /// The venue it was signed for.
    pub fn chain_id(&self) -> u32 {
        u32::from_le_bytes(array(self.bytes, 4))
    }

    /// The sender's public key.
    pub fn sender(&self) -> &'a [u8; 32] {
        self.bytes[8..40].try_into().expect("32 bytes")
    }

    /// The sender's nonce.
    pub fn nonce(&self) -> u64 {
        u64::from_le_bytes(array(self.bytes, 40))
    }

    /// What it does.
    pub fn payload(&self) -> Payload {
        let body = Body {
            asset: u32::from_le_bytes(array(self.bytes, 48)),
            to: array(self.bytes, 56),
            amount: u64::from_le_bytes(array(self.bytes, 88)),
        };
        match self.bytes[1] {
            1 => Payload::Transfer(body),
            2 => Payload::Mint(body),
            _ => Payload::Price {
                asset: body.asset,
                price: body.amount,
            },
        }
    }

    /// The bytes the signature covers.
    pub fn signed(&self) -> &'a [u8] {
        &self.bytes[..SIGNED_LEN]
    }

    /// R ‖ S.
    pub fn signature(&self) -> &'a [u8; 64] {
        self.bytes[SIGNED_LEN..].try_into().expect("64 bytes")
    }

    /// SHA-256 of the signed bytes.
    pub fn id(&self) -> TxId {
        TxId(Sha256::digest(self.signed()).into())
    }

    /// The signature check this transaction needs, under `tag`.
    pub fn request(&self, tag: Tag) -> Request {
        Request::new(
            tag,
            *self.sender(),
            *self.signature(),
            self.signed().to_vec(),
        )
    }
}

/// A transaction before it is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsigned {
    /// The venue.
    pub chain_id: u32,
    /// The sender's public key (the signer's).
    pub sender: [u8; 32],
    /// The sender's nonce.
    pub nonce: u64,
    /// What it does.
    pub payload: Payload,
}

impl Unsigned {
    /// The signed bytes (0..96).
    pub fn signed_bytes(&self) -> [u8; SIGNED_LEN] {
        let mut out = [0u8; SIGNED_LEN];
        out[0] = VERSION;
        out[1] = self.payload.kind();
        out[2..4].copy_from_slice(&(BODY_LEN as u16).to_le_bytes());
        out[4..8].copy_from_slice(&self.chain_id.to_le_bytes());
        out[8..40].copy_from_slice(&self.sender);
        out[40..48].copy_from_slice(&self.nonce.to_le_bytes());
        let body = self.payload.body();
        out[48..52].copy_from_slice(&body.asset.to_le_bytes());
        out[56..88].copy_from_slice(&body.to);
        out[88..96].copy_from_slice(&body.amount.to_le_bytes());
        out
    }

    /// The transaction signed by `key` (whose public key should be `sender`).
    pub fn sign(&self, key: &SigningKey) -> [u8; TX_LEN] {
        let signed = self.signed_bytes();
        let mut out = [0u8; TX_LEN];
        out[..SIGNED_LEN].copy_from_slice(&signed);
        out[SIGNED_LEN..].copy_from_slice(&key.sign(&signed).to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use verity_drivers::zip215;
    use verity_drivers::Verdict;

    use super::*;

    fn sample(kind: u8, nonce: u64) -> (SigningKey, [u8; TX_LEN]) {
        let key = SigningKey::from_bytes(&[9; 32]);
        let body = Body {
            asset: 3,
            to: [4; 32],
            amount: 1_000,
        };
        let payload = if kind == 1 {
            Payload::Transfer(body)
        } else {
            Payload::Mint(body)
        };
        let unsigned = Unsigned {
            chain_id: 0x5652,
            sender: key.verifying_key().to_bytes(),
            nonce,
            payload,
        };
        let bytes = unsigned.sign(&key);
        (key, bytes)
    }

    #[test]
    fn a_signed_transaction_decodes_to_what_was_signed_and_verifies() {
        for kind in [1, 2] {
            let (key, bytes) = sample(kind, 42);
            let tx = Transaction::decode(&bytes).expect("well formed");
            assert_eq!(tx.chain_id(), 0x5652);
            assert_eq!(tx.sender(), &key.verifying_key().to_bytes());
            assert_eq!(tx.nonce(), 42);
            assert_eq!(tx.payload().body().amount, 1_000);
            assert_eq!(tx.payload().kind(), kind);
            assert_eq!(tx.id().0, <[u8; 32]>::from(Sha256::digest(&bytes[..96])));
            assert_eq!(
                zip215::verify_single(&tx.request(Tag::new(1))),
                Verdict::Valid
            );
        }
    }

    #[test]
    fn a_price_decodes_to_what_the_oracle_signed() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let payload = Payload::Price {
            asset: 2,
            price: 41_250_000,
        };
        let bytes = Unsigned {
            chain_id: 1,
            sender: key.verifying_key().to_bytes(),
            nonce: 17,
            payload,
        }
        .sign(&key);
        let tx = Transaction::decode(&bytes).expect("well formed");
        assert_eq!(tx.payload(), payload);
        assert_eq!(bytes[1], 3);
        assert_eq!(bytes[56..88], [0; 32]);
        assert_eq!(
            zip215::verify_single(&tx.request(Tag::new(1))),
            Verdict::Valid
        );
    }

    #[test]
    fn malformed_bytes_are_refused_with_their_reason() {
        let (_, good) = sample(1, 0);
        let with = |at: usize, value: u8| {
            let mut bad = good;
            bad[at] = value;
            bad
        };
        assert_eq!(Transaction::decode(&good[..159]), Err(TxError::Length(159)));
        assert_eq!(Transaction::decode(&[]), Err(TxError::Length(0)));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(Transaction::decode(&long), Err(TxError::Length(161)));
        assert_eq!(Transaction::decode(&with(0, 2)), Err(TxError::Version(2)));
        assert_eq!(Transaction::decode(&with(1, 0)), Err(TxError::Kind(0)));
        assert_eq!(Transaction::decode(&with(1, 4)), Err(TxError::Kind(4)));
        assert_eq!(
            Transaction::decode(&with(1, 3)),
            Err(TxError::Reserved),
            "a price names no receiver"
        );
        assert_eq!(
            Transaction::decode(&with(2, 47)),
            Err(TxError::BodyLength(47))
        );
        for at in 52..56 {
            assert_eq!(Transaction::decode(&with(at, 1)), Err(TxError::Reserved));
        }
        // A signature that does not verify is still a well-formed transaction: the verifier
        // says so.
        let forged = with(100, good[100] ^ 1);
        let tx = Transaction::decode(&forged).expect("well formed");
        assert_ne!(
            zip215::verify_single(&tx.request(Tag::new(1))),
            Verdict::Valid
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(tx) = Transaction::decode(&bytes) {
                prop_assert_eq!(tx.bytes().len(), TX_LEN);
                let _ = (tx.payload(), tx.id(), tx.chain_id(), tx.nonce());
            }
        }

        #[test]
        fn every_field_round_trips(chain_id: u32, nonce: u64, asset: u32, to: [u8; 32], amount: u64, mint: bool) {
            let key = SigningKey::from_bytes(&[5; 32]);
            let body = Body { asset, to, amount };
            let payload = if mint { Payload::Mint(body) } else { Payload::Transfer(body) };
            let unsigned = Unsigned { chain_id, sender: key.verifying_key().to_bytes(), nonce, payload };
            let bytes = unsigned.sign(&key);
            let tx = Transaction::decode(&bytes).expect("well formed");
            prop_assert_eq!(
                Unsigned { chain_id: tx.chain_id(), sender: *tx.sender(), nonce: tx.nonce(), payload: tx.payload() },
                unsigned
            );
        }
    }
}
