//! The test vectors every verification path must answer alike.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use verity_drivers::{Request, Tag};

/// One line of a vector file: hex fields as in `shared/vectors/README.md`.
#[derive(Clone, Debug, Deserialize)]
pub struct Vector {
    /// The vector's name.
    pub id: String,
    /// The message, hex.
    pub msg: String,
    /// The public key A, hex.
    pub pubkey: String,
    /// R ‖ S, hex.
    pub sig: String,
    /// The verdict under ZIP-215: `true` means valid.
    pub zip215: bool,
    /// For RFC 8032 vectors: the secret seed, hex, so that signing can be checked too.
    #[serde(default)]
    pub seed: Option<String>,
}

impl Vector {
    /// The vector as a verification request tagged `tag`.
    ///
    /// # Panics
    /// If a field is not hex of the right length: vector files are test data under review.
    pub fn request(&self, tag: u64) -> Request {
        Request::new(
            Tag::new(tag),
            fixed(&self.pubkey, &self.id),
            fixed(&self.sig, &self.id),
            hex::decode(&self.msg).unwrap_or_else(|e| panic!("{}: msg: {e}", self.id)),
        )
    }
}

fn fixed<const N: usize>(text: &str, id: &str) -> [u8; N] {
    let bytes = hex::decode(text).unwrap_or_else(|e| panic!("{id}: {e}"));
    bytes
        .try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("{id}: {} bytes, expected {N}", b.len()))
}

/// `shared/vectors/`: `$VERITY_SHARED_VECTORS` if set, else `../shared/vectors` beside the
/// repository.
///
/// # Panics
/// If the folder is missing, naming where it was looked for.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("VERITY_SHARED_VECTORS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "the shared vectors are not at {} (set VERITY_SHARED_VECTORS to their folder)",
        dir.display()
    );
    dir
}

/// This repository's own vector files (`tests/data/`).
pub fn own_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Reads a JSON-lines vector file.
///
/// # Panics
/// If the file cannot be read or a line is not a vector.
pub fn load(path: &Path) -> Vec<Vector> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), n + 1))
        })
        .collect()
}
