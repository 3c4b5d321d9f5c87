//! `verity keygen`: a fresh Ed25519 key for making test data.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::create_new;
use crate::text_file::read_at_most;
use serde::{Deserialize, Serialize};

/// Generate an Ed25519 key pair from the operating system's random source.
///
/// Writes `{"seed": hex, "pubkey": hex}`: the 32-byte secret seed of RFC 8032 and the public
/// key. With `--out` the file is created readable by its owner only and never overwritten.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// File to create; without it the key is printed.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A key file: the secret seed and the public key it gives, both hex.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// RFC 8032 secret seed.
    pub seed: String,
    /// The public key A.
    pub pubkey: String,
}

impl KeyFile {
    /// The file for `key`.
    pub fn new(key: &ed25519_dalek::SigningKey) -> Self {
        Self {
            seed: hex::encode(key.to_bytes()),
            pubkey: hex::encode(key.verifying_key().to_bytes()),
        }
    }

    /// Reads and checks a key file: the seed must be 32 bytes of hex and give the public key
    /// the file names.
    pub fn load(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
        const MAX_KEY_FILE: u64 = 4096;
        let text = read_at_most(path, MAX_KEY_FILE)
            .with_context(|| format!("cannot read key file {}", path.display()))?
            .map_err(|size| {
                anyhow::anyhow!("{} is {size} bytes: not a key file", path.display())
            })?;
        Self::parse(&text).with_context(|| path.display().to_string())
    }

    /// Reads and checks a key file's text.
    pub fn parse(text: &str) -> anyhow::Result<ed25519_dalek::SigningKey> {
        let file: KeyFile = serde_json::from_str(text).context("not a key file")?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&file.seed, &mut seed).context("`seed` must be 64 hex digits")?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        anyhow::ensure!(
            hex::encode(key.verifying_key().to_bytes()) == file.pubkey.to_ascii_lowercase(),
            "`pubkey` does not belong to `seed`"
        );
        Ok(key)
    }
}

/// Runs `verity keygen`.
pub fn run(args: &KeygenArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let text = serde_json::to_string(&KeyFile::new(&key))? + "\n";
    match &args.out {
        None => out.write_all(text.as_bytes())?,
        Some(path) => {
            create_new(path, &text, true)?;
            eprintln!(
                "wrote {} (public key {})",
                path.display(),
                hex::encode(key.verifying_key().to_bytes())
            );
        }
    }
    Ok(())
}
