//! Keys and signed transactions for the host's tests.

use ed25519_dalek::SigningKey;

use crate::ledger::AccountId;
use crate::transaction::{Body, Payload, Unsigned, TX_LEN};

/// Test key `n`.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// Test key `n`'s account.
pub fn id(n: u8) -> AccountId {
    key(n).verifying_key().to_bytes()
}

/// `payload` from key `from` at `nonce` on `chain_id`, signed.
pub fn signed(chain_id: u32, from: u8, nonce: u64, payload: Payload) -> [u8; TX_LEN] {
    Unsigned {
        chain_id,
        sender: id(from),
        nonce,
        payload,
    }
    .sign(&key(from))
}

/// A transfer of `amount` of `asset` from key `from` to key `to`, signed.
pub fn transfer(
    chain_id: u32,
    from: u8,
    nonce: u64,
    to: u8,
    asset: u32,
    amount: u64,
) -> [u8; TX_LEN] {
    let body = Body {
        asset,
        to: id(to),
        amount,
    };
    signed(chain_id, from, nonce, Payload::Transfer(body))
}
