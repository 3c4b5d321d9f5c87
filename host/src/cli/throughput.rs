//! `verity throughput`: admission alone — verify a stream of signed transactions, some of
//! them forged or malformed, on one backend, and report verdicts and throughput.

use std::io::Write;
use std::num::NonZeroUsize;
use std::time::Instant;

use anyhow::Context;
use ed25519_dalek::Signer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use verity_drivers::{verify_all, Malformed, Request, Tag, Verdict};

use crate::backend::BackendOptions;

/// Sign a batch of transactions, spoil some, verify them all, and report.
///
/// Transactions are signed by a pool of sender keys (senders repeat, as at a venue). One in
/// `--spoil-every` is altered: a flipped message bit (must come out `invalid`) or an S above L
/// (must come out `malformed`). The run fails if any verdict differs from the expected one.
#[derive(Debug, clap::Args)]
pub struct ThroughputArgs {
    /// Transactions to sign and verify.
    #[arg(long, default_value = "200000")]
    pub count: NonZeroUsize,
    /// Distinct sender keys.
    #[arg(long, default_value = "1000")]
    pub senders: NonZeroUsize,
    /// Spoil one transaction in this many.
    #[arg(long, default_value = "1000")]
    pub spoil_every: NonZeroUsize,
    /// Seed for the generated workload (the verifier's own randomness is never seeded).
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Which verifier, and how it is sized.
    #[command(flatten)]
    pub backend: BackendOptions,
}

/// Runs `verity throughput`.
pub fn run(args: &ThroughputArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let count = args.count.get();
    writeln!(
        out,
        "verity throughput: {count} transactions from {} senders, one in {} spoiled (seed {})",
        args.senders, args.spoil_every, args.seed
    )?;
    let started = Instant::now();
    let (requests, expected) = workload(args);
    writeln!(out, "  signed in {:.2} s", started.elapsed().as_secs_f64())?;

    let mut verifier = args.backend.open()?;
    let started = Instant::now();
    let responses = verify_all(verifier.as_mut(), requests).context("verifying")?;
    let seconds = started.elapsed().as_secs_f64();

    let mut tally = [0usize; 3];
    let mut wrong = 0usize;
    for (response, want) in responses.iter().zip(&expected) {
        tally[match response.verdict {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Malformed(_) => 2,
        }] += 1;
        wrong += usize::from(response.verdict != *want);
    }
    let threads = args.backend.threads();
    writeln!(
        out,
        "  backend {}: {}",
        verifier.backend(),
        args.backend.describe()
    )?;
    writeln!(
        out,
        "  verdicts: {} valid, {} invalid, {} malformed",
        tally[0], tally[1], tally[2]
    )?;
    writeln!(
        out,
        "  verified in {:.3} s: {:.0} signatures/s ({:.0} per thread)",
        seconds,
        count as f64 / seconds,
        count as f64 / seconds / threads as f64
    )?;
    anyhow::ensure!(
        responses.len() == count,
        "{} responses for {count} requests",
        responses.len()
    );
    anyhow::ensure!(wrong == 0, "{wrong} verdicts differ from the expected ones");
    writeln!(out, "  every verdict is the expected one")?;
    Ok(())
}

/// The signed transactions and the verdict each must get.
fn workload(args: &ThroughputArgs) -> (Vec<Request>, Vec<Verdict>) {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let keys: Vec<ed25519_dalek::SigningKey> = (0..args.senders.get())
        .map(|_| ed25519_dalek::SigningKey::generate(&mut rng))
        .collect();
    let plan: Vec<(usize, Vec<u8>, u8)> = (0..args.count.get())
        .map(|i| {
            let sender = rng.gen_range(0..keys.len());
            let message = format!(
                "transfer {i}: {} units of asset {} to account {}",
                rng.gen_range(1..1_000_000u32),
                rng.gen_range(0..16u8),
                rng.gen::<u64>()
            )
            .into_bytes();
            let spoil = if i % args.spoil_every.get() == args.spoil_every.get() - 1 {
                rng.gen_range(1..=2)
            } else {
                0
            };
            (sender, message, spoil)
        })
        .collect();
    // Signing is the slow part of making the workload: spread it over the cores.
    let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let chunk = plan.len().div_ceil(workers).max(1);
    let signed: Vec<(Request, Verdict)> = std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let keys = &keys;
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, (sender, message, spoil))| {
                            sign_one(&keys[*sender], (c * chunk + j) as u64, message, *spoil)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    signed.into_iter().unzip()
}

fn sign_one(
    key: &ed25519_dalek::SigningKey,
    tag: u64,
    message: &[u8],
    spoil: u8,
) -> (Request, Verdict) {
    let mut request = Request::new(
        Tag::new(tag),
        key.verifying_key().to_bytes(),
        key.sign(message).to_bytes(),
        message.to_vec(),
    );
    let verdict = match spoil {
        0 => Verdict::Valid,
        1 => {
            request.message[0] ^= 1;
            Verdict::Invalid
        }
        _ => {
            // S = 2²⁵⁵ − 1, far above L.
            request.signature[32..].fill(0xff);
            request.signature[63] = 0x7f;
            Verdict::Malformed(Malformed::NonCanonicalS)
        }
    };
    (request, verdict)
}
