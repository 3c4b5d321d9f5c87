//! Keys and signed transactions for the host's tests.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use verity_drivers::{PoolConfig, PoolVerifier};

use crate::chain::Chain;
use crate::genesis::Genesis;
use crate::ledger::{AccountId, BookRules, PriceRules, Rules};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::sequence::Ordering;
use crate::transaction::{Body, Payload, Trade, Unsigned, TRADE_LEN, TX_LEN};

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

/// A trade of `contracts` of `instrument` that key `buyer` buys from key `seller` at
/// `premium` each, valid through height 1,000,000, signed by both.
pub fn trade(
    chain_id: u32,
    buyer: u8,
    nonce: u64,
    seller: u8,
    instrument: u32,
    contracts: u32,
    premium: u64,
) -> [u8; TRADE_LEN] {
    let trade = Trade {
        instrument,
        contracts,
        counterparty: id(seller),
        premium,
        last_height: 1_000_000,
    };
    Unsigned {
        chain_id,
        sender: id(buyer),
        nonce,
        payload: Payload::Trade(trade),
    }
    .sign_trade(&key(buyer), &key(seller))
}

/// A fresh scratch directory `verity-NAME-PID` under the system's temporary one, removed with
/// what it holds when dropped: a test leaves nothing behind, whether it passes or panics.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new [`Scratch`] directory for test `name`; keep it alive while the test uses it.
pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("verity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    Scratch(dir)
}

/// A pipeline on the CPU over a new chain (id 5, asset 1, key 1 holding 1,000) in
/// [`scratch`]`(name)`, which it returns too.
pub fn pipeline(name: &str) -> (Arc<Pipeline>, Scratch) {
    let dir = scratch(name);
    let genesis = Genesis {
        rules: Rules {
            chain_id: 5,
            assets: [1].into(),
            issuers: [].into(),
            prices: PriceRules::default(),
            book: BookRules::default(),
        },
        balances: vec![(id(1), 1, 1_000)],
        validators: vec![],
    };
    let chain = Chain::open(&dir, &genesis).expect("opens");
    let one = NonZeroUsize::new(1).expect("1");
    let cpu = PoolVerifier::cpu(PoolConfig::new(one, NonZeroUsize::new(64).expect("64")));
    let pipeline = Pipeline::start(
        Box::new(cpu),
        chain,
        Ordering::Local,
        PipelineConfig::default(),
    );
    (Arc::new(pipeline), dir)
}
