//! Device files for the virtual XDMA endpoint in the tests, and the mixed workloads run
//! through them.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_drivers::Request;

use crate::{adversarial, signed};

/// A directory of one test's own for a card's device files, removed when dropped.
pub struct DeviceDir(PathBuf);

impl DeviceDir {
    /// `$TMPDIR/verity-<suite>-<pid>-<test>`, created.
    pub fn new(suite: &str, test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("verity-{suite}-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// The first card's prefix in it: `…/xdma0_`.
    pub fn prefix(&self) -> PathBuf {
        self.0.join("xdma0_")
    }
}

impl Drop for DeviceDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A seed from `$VERITY_TEST_SEED`, or a fresh one; tests print it when they fail.
pub fn seed() -> u64 {
    std::env::var("VERITY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen())
}

/// `n` requests tagged 0.., a `valid` share of them signed messages of up to 200 bytes, the
/// rest adversarial cases of every kind.
pub fn mixed(n: u64, seed: u64, valid: f64) -> Vec<Request> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&rng.gen());
    (0..n)
        .map(|tag| {
            if rng.gen_bool(valid) {
                let mut message = vec![0u8; rng.gen_range(0..200)];
                rng.fill(&mut message[..]);
                signed(tag, &key, message)
            } else {
                adversarial::case(rng.gen(), &mut rng, tag)
            }
        })
        .collect()
}
