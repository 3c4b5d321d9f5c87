//! Transaction format v1: what clients send, what the ledger applies.
//!
//! ```text
//! offset   size field
//!      0      1 version: 1
//!      1      1 payload kind: 1 Transfer, 2 Mint, 3 Price, 4 Trade
//!      2      2 body length B: 48 for kinds 1–3, 56 for a Trade
//!      4      4 chain id: the venue's, so a transaction signed for one venue is void at another
//!      8     32 sender: Ed25519 public key
//!     40      8 nonce: the sender's next, from 0
//!     48      B body (below)
//!   48+B     64 signature R ‖ S by the sender over bytes 0..48+B
//!  112+B     64 a Trade only: the counterparty's signature over the same bytes
//!
//! body of Transfer, Mint, Price (48)     body of Trade (56)
//!   0  4 asset                             0  4 instrument
//!   4  4 reserved, 0                       4  4 contracts (> 0): the sender buys them
//!   8 32 to (a Price: 0)                   8 32 counterparty: sells them
//!  40  8 amount (a Price: the price)      40  8 premium per contract, in the quote asset
//!                                         48  8 last height: void in a later block
//! ```
//!
//! Integers are little-endian. A Transfer, Mint or Price is 160 bytes, a Trade 232. A
//! transaction's length follows from its first four bytes, so transactions back to back — a
//! block's body — need no other framing ([`split_first`]). Its id is the SHA-256 of the signed
//! bytes — the transaction id the card returns for the same message — so a second signature
//! on the same intent is the same transaction to the mempool. A Trade's two signatures cover
//! the same bytes, which hold the sender's nonce: the counterparty's consent applies once, and
//! its last height stops the sender from holding it as a free option.
//!
//! [`Transaction::decode`] borrows the bytes it checks (nothing is copied or allocated), and
//! refuses anything malformed with a [`TxError`]: nothing past the four-byte prefix is read
//! before the length is known to be the kind's. Whether the signatures verify, and whether the
//! ledger can apply it, are later stages' business.
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

use std::sync::Arc;

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use thiserror::Error;
use verity_drivers::{Request, Tag};

/// The format's version.
pub const VERSION: u8 = 1;
/// Bytes of a Transfer, Mint or Price: the length of a transaction with one signature.
pub const TX_LEN: usize = 160;
/// Bytes of a Trade, the longest transaction.
pub const MAX_TX_LEN: usize = TRADE_LEN;
/// Bytes of a Trade.
pub const TRADE_LEN: usize = HEAD_LEN + TRADE_BODY_LEN + 2 * SIGNATURE_LEN;
/// Bytes a Transfer, Mint or Price's signature covers.
pub const SIGNED_LEN: usize = HEAD_LEN + BODY_LEN;
/// Bytes of a Transfer, Mint or Price body.
pub const BODY_LEN: usize = 48;
/// Bytes of a Trade body.
pub const TRADE_BODY_LEN: usize = 56;
/// Bytes before the body.
const HEAD_LEN: usize = 48;
/// Bytes of a signature.
const SIGNATURE_LEN: usize = 64;

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

/// A matched trade of option contracts: the sender buys, the counterparty sells, both sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// The option (genesis names it).
    pub instrument: u32,
    /// How many contracts the sender buys; at least 1.
    pub contracts: u32,
    /// The seller, who signs the same bytes.
    pub counterparty: [u8; 32],
    /// What the buyer pays the seller per contract, in the quote asset.
    pub premium: u64,
    /// The last height whose block may hold it.
    pub last_height: u64,
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
    /// Option contracts change hands; both accounts sign.
    Trade(Trade),
}

impl Payload {
    fn kind(&self) -> u8 {
        match self {
            Payload::Transfer(_) => 1,
            Payload::Mint(_) => 2,
            Payload::Price { .. } => 3,
            Payload::Trade(_) => 4,
        }
    }

    /// The body's bytes.
    fn encode_body(&self) -> Vec<u8> {
        let (first, second, key, amount) = match *self {
            Payload::Transfer(body) | Payload::Mint(body) => (body.asset, 0, body.to, body.amount),
            Payload::Price { asset, price } => (asset, 0, [0; 32], price),
            Payload::Trade(trade) => (
                trade.instrument,
                trade.contracts,
                trade.counterparty,
                trade.premium,
            ),
        };
        let mut out = Vec::with_capacity(TRADE_BODY_LEN);
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&second.to_le_bytes());
        out.extend_from_slice(&key);
        out.extend_from_slice(&amount.to_le_bytes());
        if let Payload::Trade(trade) = self {
            out.extend_from_slice(&trade.last_height.to_le_bytes());
        }
        out
    }
}

/// The body length and the number of signatures of payload kind `kind`.
const fn layout(kind: u8) -> Option<(usize, usize)> {
    match kind {
        1..=3 => Some((BODY_LEN, 1)),
        4 => Some((TRADE_BODY_LEN, 2)),
        _ => None,
    }
}

/// Why bytes are not a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TxError {
    /// Not the kind's length.
    #[error("transaction of {got} bytes, expected {expected}")]
    Length {
        /// The bytes given.
        got: usize,
        /// The kind's length.
        expected: usize,
    },
    /// An unknown version.
    #[error("unknown version {0}")]
    Version(u8),
    /// An unknown payload kind.
    #[error("unknown payload kind {0}")]
    Kind(u8),
    /// The body length is not the kind's.
    #[error("body of {got} bytes, expected {expected}")]
    BodyLength {
        /// The body length given.
        got: u16,
        /// The kind's.
        expected: usize,
    },
    /// A reserved byte is set.
    #[error("reserved bytes set")]
    Reserved,
    /// A trade of no contracts, or with the sender on both sides.
    #[error("a trade of no contracts or with oneself")]
    EmptyTrade,
}

impl TxError {
    /// A short, stable name for metrics and client replies.
    pub const fn reason(self) -> &'static str {
        match self {
            TxError::Length { .. } => "length",
            TxError::Version(_) => "version",
            TxError::Kind(_) => "kind",
            TxError::BodyLength { .. } => "body_length",
            TxError::Reserved => "reserved",
            TxError::EmptyTrade => "empty_trade",
        }
    }
}

/// The length of the transaction `bytes` start with, from its four-byte prefix: version,
/// kind and body length must be right, the bytes need not be all there.
pub fn length_of(bytes: &[u8]) -> Result<usize, TxError> {
    let Some(prefix) = bytes.get(..4) else {
        // Too short to say which kind: the shortest is what is missing.
        return Err(TxError::Length {
            got: bytes.len(),
            expected: TX_LEN,
        });
    };
    if prefix[0] != VERSION {
        return Err(TxError::Version(prefix[0]));
    }
    let (body, signatures) = layout(prefix[1]).ok_or(TxError::Kind(prefix[1]))?;
    let body_len = u16::from_le_bytes([prefix[2], prefix[3]]);
    if usize::from(body_len) != body {
        return Err(TxError::BodyLength {
            got: body_len,
            expected: body,
        });
    }
    Ok(HEAD_LEN + body + signatures * SIGNATURE_LEN)
}

/// The transaction at the start of `bytes` and the bytes after it: how a block's body, or any
/// run of transactions back to back, is read.
pub fn split_first(bytes: &[u8]) -> Result<(Transaction<'_>, &[u8]), TxError> {
    let len = length_of(bytes)?;
    if bytes.len() < len {
        return Err(TxError::Length {
            got: bytes.len(),
            expected: len,
        });
    }
    let (first, rest) = bytes.split_at(len);
    Ok((Transaction::decode(first)?, rest))
}

/// Every transaction of a run of them back to back, in order; the first error ends it.
pub fn split_all(mut bytes: &[u8]) -> impl Iterator<Item = Result<Transaction<'_>, TxError>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        match split_first(bytes) {
            Ok((tx, rest)) => {
                bytes = rest;
                Some(Ok(tx))
            }
            Err(error) => {
                bytes = &[];
                Some(Err(error))
            }
        }
    })
}

/// A well-formed transaction, borrowed from the bytes it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction<'a> {
    bytes: &'a [u8],
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

impl<'a> Transaction<'a> {
    /// Checks `bytes` and borrows them. The length is checked against the kind's before
    /// anything past the four-byte prefix is read.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, TxError> {
        if bytes.len() > MAX_TX_LEN {
            return Err(TxError::Length {
                got: bytes.len(),
                expected: MAX_TX_LEN,
            });
        }
        let expected = length_of(bytes)?;
        if bytes.len() != expected {
            return Err(TxError::Length {
                got: bytes.len(),
                expected,
            });
        }
        match bytes[1] {
            // A price names no receiver: its `to` is reserved.
            3 if bytes[52..88].iter().any(|&b| b != 0) => return Err(TxError::Reserved),
            1..=3 if bytes[52..56] != [0; 4] => return Err(TxError::Reserved),
            4 if bytes[52..56] == [0; 4] || bytes[8..40] == bytes[56..88] => {
                return Err(TxError::EmptyTrade)
            }
            _ => {}
        }
        Ok(Self { bytes })
    }

    /// The bytes, as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// An owned copy, which decodes without a check, with its id.
    pub fn to_owned(&self) -> TxBytes {
        TxBytes {
            bytes: Arc::from(self.bytes),
            id: self.id(),
        }
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
        let asset = u32::from_le_bytes(array(self.bytes, 48));
        let key = array(self.bytes, 56);
        let amount = u64::from_le_bytes(array(self.bytes, 88));
        let body = Body {
            asset,
            to: key,
            amount,
        };
        match self.bytes[1] {
            1 => Payload::Transfer(body),
            2 => Payload::Mint(body),
            3 => Payload::Price {
                asset,
                price: amount,
            },
            _ => Payload::Trade(Trade {
                instrument: asset,
                contracts: u32::from_le_bytes(array(self.bytes, 52)),
                counterparty: key,
                premium: amount,
                last_height: u64::from_le_bytes(array(self.bytes, 96)),
            }),
        }
    }

    /// The bytes the signatures cover.
    pub fn signed(&self) -> &'a [u8] {
        &self.bytes[..self.signed_len()]
    }

    fn signed_len(&self) -> usize {
        HEAD_LEN + usize::from(u16::from_le_bytes([self.bytes[2], self.bytes[3]]))
    }

    /// The signers' keys and signatures, the sender's first: one, or a Trade's two.
    pub fn signatures(&self) -> impl Iterator<Item = ([u8; 32], [u8; 64])> + 'a {
        let bytes = self.bytes;
        let signed = self.signed_len();
        let counterparty =
            (bytes[1] == 4).then(|| (array(bytes, 56), array(bytes, signed + SIGNATURE_LEN)));
        std::iter::once((array(bytes, 8), array(bytes, signed))).chain(counterparty)
    }

    /// SHA-256 of the signed bytes.
    pub fn id(&self) -> TxId {
        TxId(Sha256::digest(self.signed()).into())
    }

    /// The signature checks this transaction needs, tagged from `first` up: one, or a
    /// Trade's two. It is valid when every one is.
    pub fn requests(&self, first: u64) -> impl Iterator<Item = Request> + 'a {
        let message = self.signed();
        self.signatures()
            .zip(first..)
            .map(move |((key, signature), tag)| {
                Request::new(Tag::new(tag), key, signature, message.to_vec())
            })
    }
}

/// A well-formed transaction's bytes, owned and cheap to clone, with its id: hashed once,
/// where the transaction is admitted, for every later stage that keys by it (the mempool's
/// dedup, which runs on the sequence thread, the pipeline's busiest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxBytes {
    bytes: Arc<[u8]>,
    id: TxId,
}

impl TxBytes {
    /// The transaction they hold.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction { bytes: &self.bytes }
    }

    /// Its id, [`Transaction::id`].
    pub fn id(&self) -> TxId {
        self.id
    }
}

impl AsRef<[u8]> for TxBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
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
    /// The signed bytes: the prefix, the header and the body.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let body = self.payload.encode_body();
        let mut out = Vec::with_capacity(MAX_TX_LEN);
        out.push(VERSION);
        out.push(self.payload.kind());
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.chain_id.to_le_bytes());
        out.extend_from_slice(&self.sender);
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// A Transfer, Mint or Price signed by `key` (whose public key should be `sender`).
    ///
    /// # Panics
    ///
    /// On a Trade, which needs its counterparty's signature too: [`Unsigned::sign_trade`].
    pub fn sign(&self, key: &SigningKey) -> [u8; TX_LEN] {
        let signed = self.signed_bytes();
        assert_eq!(signed.len(), SIGNED_LEN, "one signature: not a trade");
        let mut out = [0u8; TX_LEN];
        out[..SIGNED_LEN].copy_from_slice(&signed);
        out[SIGNED_LEN..].copy_from_slice(&key.sign(&signed).to_bytes());
        out
    }

    /// A Trade signed by `key` (the sender's) and countersigned by `counterparty`.
    ///
    /// # Panics
    ///
    /// On any other kind, which has one signature: [`Unsigned::sign`].
    pub fn sign_trade(&self, key: &SigningKey, counterparty: &SigningKey) -> [u8; TRADE_LEN] {
        let signed = self.signed_bytes();
        assert!(matches!(self.payload, Payload::Trade(_)), "not a trade");
        let mut out = [0u8; TRADE_LEN];
        let (body, signatures) = out.split_at_mut(signed.len());
        body.copy_from_slice(&signed);
        signatures[..SIGNATURE_LEN].copy_from_slice(&key.sign(&signed).to_bytes());
        signatures[SIGNATURE_LEN..].copy_from_slice(&counterparty.sign(&signed).to_bytes());
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
            assert!(
                matches!(tx.payload(), Payload::Transfer(b) | Payload::Mint(b) if b.amount == 1_000)
            );
            assert_eq!(tx.payload().kind(), kind);
            assert_eq!(tx.id().0, <[u8; 32]>::from(Sha256::digest(&bytes[..96])));
            let owned = tx.to_owned();
            assert_eq!((owned.id(), owned.as_ref()), (tx.id(), &bytes[..]));
            assert_eq!(verdicts(&tx), [Verdict::Valid]);
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
        assert_eq!(verdicts(&tx), [Verdict::Valid]);
    }

    fn verdicts(tx: &Transaction<'_>) -> Vec<Verdict> {
        tx.requests(1).map(|r| zip215::verify_single(&r)).collect()
    }

    fn trade(buyer: &SigningKey, seller: &SigningKey) -> (Trade, [u8; TRADE_LEN]) {
        let trade = Trade {
            instrument: 11,
            contracts: 5,
            counterparty: seller.verifying_key().to_bytes(),
            premium: 2_500_000,
            last_height: 90,
        };
        let bytes = Unsigned {
            chain_id: 1,
            sender: buyer.verifying_key().to_bytes(),
            nonce: 3,
            payload: Payload::Trade(trade),
        }
        .sign_trade(buyer, seller);
        (trade, bytes)
    }

    #[test]
    fn a_trade_carries_both_signatures_over_the_same_bytes() {
        let (buyer, seller) = (
            SigningKey::from_bytes(&[3; 32]),
            SigningKey::from_bytes(&[4; 32]),
        );
        let (terms, bytes) = trade(&buyer, &seller);
        assert_eq!(bytes.len(), 232);
        assert_eq!(length_of(&bytes[..4]), Ok(232));
        let tx = Transaction::decode(&bytes).expect("well formed");
        assert_eq!(tx.payload(), Payload::Trade(terms));
        assert_eq!(tx.signed(), &bytes[..104]);
        assert_eq!(tx.id().0, <[u8; 32]>::from(Sha256::digest(&bytes[..104])));
        let signers: Vec<[u8; 32]> = tx.signatures().map(|(key, _)| key).collect();
        assert_eq!(
            signers,
            [
                buyer.verifying_key().to_bytes(),
                seller.verifying_key().to_bytes()
            ]
        );
        assert_eq!(verdicts(&tx), [Verdict::Valid, Verdict::Valid]);
        assert_eq!(
            tx.requests(7).map(|r| r.tag).collect::<Vec<_>>(),
            [Tag::new(7), Tag::new(8)]
        );
        // Either signature broken: that one check fails, the other still passes.
        for (at, broken) in [(104, 0), (168, 1)] {
            let mut forged = bytes;
            forged[at] ^= 1;
            let verdicts = verdicts(&Transaction::decode(&forged).expect("well formed"));
            assert_ne!(verdicts[broken], Verdict::Valid);
            assert_eq!(verdicts[1 - broken], Verdict::Valid);
        }
        // The seller signing as the sender's counterparty does not sign for anyone else.
        let stranger = SigningKey::from_bytes(&[5; 32]);
        let mut swapped = bytes;
        swapped[56..88].copy_from_slice(&stranger.verifying_key().to_bytes());
        let tx = Transaction::decode(&swapped).expect("well formed");
        assert_ne!(verdicts(&tx)[1], Verdict::Valid);
    }

    #[test]
    fn transactions_back_to_back_split_on_their_own_lengths() {
        let (buyer, seller) = (
            SigningKey::from_bytes(&[3; 32]),
            SigningKey::from_bytes(&[4; 32]),
        );
        let (_, traded) = trade(&buyer, &seller);
        let (_, moved) = sample(1, 0);
        let mut run = Vec::new();
        for part in [&moved[..], &traded, &traded, &moved] {
            run.extend_from_slice(part);
        }
        let lengths: Vec<usize> = split_all(&run)
            .map(|tx| tx.expect("whole").bytes().len())
            .collect();
        assert_eq!(lengths, [160, 232, 232, 160]);
        assert_eq!(
            split_all(&run[..run.len() - 1]).last(),
            Some(Err(TxError::Length {
                got: 159,
                expected: 160
            }))
        );
        assert_eq!(
            split_all(&run[..2]).collect::<Vec<_>>(),
            [Err(TxError::Length {
                got: 2,
                expected: 160
            })]
        );
        let mut bad = run.clone();
        bad[160 + 1] = 9;
        let read: Vec<_> = split_all(&bad).collect();
        assert_eq!(
            read.len(),
            2,
            "an unknown kind ends the run: its length is unknown"
        );
        assert_eq!(read[1], Err(TxError::Kind(9)));
    }

    #[test]
    fn a_trade_of_nothing_or_with_oneself_is_malformed() {
        let (buyer, seller) = (
            SigningKey::from_bytes(&[3; 32]),
            SigningKey::from_bytes(&[4; 32]),
        );
        let (_, bytes) = trade(&buyer, &seller);
        let mut none = bytes;
        none[52..56].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Transaction::decode(&none), Err(TxError::EmptyTrade));
        let mut oneself = bytes;
        oneself[56..88].copy_from_slice(&bytes[8..40]);
        assert_eq!(Transaction::decode(&oneself), Err(TxError::EmptyTrade));
        assert_eq!(
            Transaction::decode(&bytes[..160]),
            Err(TxError::Length {
                got: 160,
                expected: 232
            })
        );
        let mut short_body = bytes;
        short_body[2] = 48;
        assert_eq!(
            Transaction::decode(&short_body),
            Err(TxError::BodyLength {
                got: 48,
                expected: 56
            })
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
        let length = |got| Err(TxError::Length { got, expected: 160 });
        assert_eq!(Transaction::decode(&good[..159]), length(159));
        assert_eq!(Transaction::decode(&[]), length(0));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(Transaction::decode(&long), length(161));
        assert_eq!(
            Transaction::decode(&[1; 300]),
            Err(TxError::Length {
                got: 300,
                expected: MAX_TX_LEN
            })
        );
        assert_eq!(Transaction::decode(&with(0, 2)), Err(TxError::Version(2)));
        assert_eq!(Transaction::decode(&with(1, 0)), Err(TxError::Kind(0)));
        assert_eq!(Transaction::decode(&with(1, 5)), Err(TxError::Kind(5)));
        assert_eq!(
            Transaction::decode(&with(1, 4)),
            Err(TxError::BodyLength {
                got: 48,
                expected: 56
            })
        );
        assert_eq!(
            Transaction::decode(&with(1, 3)),
            Err(TxError::Reserved),
            "a price names no receiver"
        );
        assert_eq!(
            Transaction::decode(&with(2, 47)),
            Err(TxError::BodyLength {
                got: 47,
                expected: 48
            })
        );
        for at in 52..56 {
            assert_eq!(Transaction::decode(&with(at, 1)), Err(TxError::Reserved));
        }
        // A signature that does not verify is still a well-formed transaction: the verifier
        // says so.
        let forged = with(100, good[100] ^ 1);
        let tx = Transaction::decode(&forged).expect("well formed");
        assert_ne!(verdicts(&tx), [Verdict::Valid]);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..600),
            kind in 0..6u8,
        ) {
            // Most random prefixes are refused at once; give most cases a real one, so the
            // checks past it run too.
            if bytes.len() >= 4 && kind > 0 {
                let body = if kind == 4 { TRADE_BODY_LEN } else { BODY_LEN };
                bytes[..4].copy_from_slice(&[VERSION, kind, body as u8, 0]);
            }
            if let Ok(tx) = Transaction::decode(&bytes) {
                prop_assert_eq!(Ok(tx.bytes().len()), length_of(&bytes));
                let _ = (tx.payload(), tx.id(), tx.chain_id(), tx.nonce());
                prop_assert_eq!(tx.requests(0).count(), if kind == 4 { 2 } else { 1 });
            }
            for tx in split_all(&bytes).flatten() {
                let _ = (tx.payload(), tx.id());
            }
        }

        #[test]
        fn a_trade_round_trips(nonce: u64, instrument: u32, contracts in 1..=u32::MAX, premium: u64, last_height: u64) {
            let (buyer, seller) = (SigningKey::from_bytes(&[6; 32]), SigningKey::from_bytes(&[7; 32]));
            let payload = Payload::Trade(Trade {
                instrument,
                contracts,
                counterparty: seller.verifying_key().to_bytes(),
                premium,
                last_height,
            });
            let unsigned = Unsigned { chain_id: 2, sender: buyer.verifying_key().to_bytes(), nonce, payload };
            let bytes = unsigned.sign_trade(&buyer, &seller);
            let tx = Transaction::decode(&bytes).expect("well formed");
            prop_assert_eq!(
                Unsigned { chain_id: tx.chain_id(), sender: *tx.sender(), nonce: tx.nonce(), payload: tx.payload() },
                unsigned
            );
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
