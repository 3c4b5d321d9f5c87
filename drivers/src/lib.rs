//! How the host reaches a signature verifier: the [`Verifier`] interface and its backends.
//!
//! Every backend gives the same [`Verdict`] for the same [`Request`] — the ZIP-215 predicate
//! of [`zip215`] — so a replica with a card, one without, and one in batch mode never disagree.
//!
//! The shortest correct use:
//!
//! ```
//! use ed25519_dalek::{Signer, SigningKey};
//! use verity_drivers::{verify_all, PoolConfig, PoolVerifier, Request, Tag, Verdict};
//!
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let message = b"transfer 10 to bob".to_vec();
//! let signature = key.sign(&message).to_bytes();
//! let request = Request::new(Tag::new(1), key.verifying_key().to_bytes(), signature, message);
//!
//! let mut cpu = PoolVerifier::cpu(PoolConfig::default());
//! let responses = verify_all(&mut cpu, vec![request]).expect("the CPU backend runs");
//! assert_eq!(responses[0].tag, Tag::new(1));
//! assert_eq!(responses[0].verdict, Verdict::Valid);
//! ```

mod card;
mod failover;
mod key_cache;
pub mod known_answers;
mod pool;
mod request;
mod verifier;
mod xdma;
pub mod zip215;

pub use card::{CardConfig, CardState, CardVerifier, OpenError, Paths};
pub use failover::{Failover, FailoverConfig, FailoverCounters, Health, Opener};
pub use key_cache::KEYS_KEPT;
pub use pool::{PoolConfig, PoolVerifier};
pub use request::{Request, Response};
pub use verifier::{verify_all, BackendState, Verifier, VerifierError};
pub use verity_firmware::{Malformed, Tag, Verdict};
pub use xdma::{XdmaCard, XdmaConfig, XdmaError};
