//! `verity pcap`: capture files for tests, demos and benchmarks (`gen`), and a replica's
//! ingress recording switched at run time (`record`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cli::client::Client;
use crate::cli::init::{read_accounts, GENESIS_FILE};
use crate::cli::load::sign_all;
use crate::config::Listen;
use crate::genesis::Genesis;
use crate::traffic::file::Writer;
use crate::traffic::recorder::{RecordStatus, RecordSwitch};
use crate::traffic::synth::{self, Streams};
use crate::traffic::{Timestamp, Transport};

/// Capture files: write one, or switch a replica's recording.
#[derive(Debug, clap::Subcommand)]
pub enum PcapCommand {
    /// Write a capture of signed transactions (valid, invalid and malformed).
    Gen(GenArgs),
    /// Switch a replica's ingress recording on or off, or show it.
    Record(RecordArgs),
}

/// Write a capture file of `--count` transactions as UDP or TCP traffic to a replica.
///
/// Valid transactions are 1-unit transfers round-robin over the accounts, each account's
/// nonces in order (from the accounts' next nonces as a fresh chain has them); invalid ones
/// carry a broken signature; malformed ones are random bytes. Timestamps start at
/// 2026-01-01T00:00:00Z and step at `--rate`. The same arguments write the same file.
#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// Transactions in the capture.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub count: u64,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Sign with the accounts of this `verity init` directory, for its chain [default: keys
    /// from `--seed`, for `--chain-id`, unfunded].
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// The chain id without `--keys`.
    #[arg(long, default_value = "1")]
    pub chain_id: u32,
    /// Accounts to send from [default: every key of `--keys`; 1,000 without].
    #[arg(long)]
    pub accounts: Option<usize>,
    /// UDP datagrams or TCP frames.
    #[arg(long, default_value = "udp")]
    pub transport: Transport,
    /// The server the traffic goes to [default: 127.0.0.1 and the default UDP or TCP port].
    #[arg(long)]
    pub target: Option<SocketAddr>,
    /// Client connections (TCP) or sockets (UDP); each account sends from one.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub connections: u16,
    /// Transactions per second of capture time.
    #[arg(long, default_value = "10000", value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub rate: u64,
    /// Percent of transactions with a broken signature.
    #[arg(long, default_value = "0", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub invalid: u8,
    /// Percent of malformed transactions (random bytes).
    #[arg(long, default_value = "0", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub malformed: u8,
    /// Seed of the mix and of the keys without `--keys`.
    #[arg(long, default_value = "1")]
    pub seed: u64,
}

/// Switch ingress recording of a running replica (`[pcap]` in its configuration).
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// `on`, `off` or `status`.
    #[arg(value_parser = ["on", "off", "status"])]
    pub action: String,
    /// The replica's HTTP API.
    #[arg(long, default_value_t = Listen::default().http)]
    pub http: SocketAddr,
}

/// 2026-01-01T00:00:00Z, where generated captures start.
const EPOCH: u64 = 1_767_225_600_000_000_000;

/// What `gen` wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Generated {
    /// Valid transfers.
    pub valid: u64,
    /// With a broken signature.
    pub invalid: u64,
    /// Random bytes.
    pub malformed: u64,
    /// Packets in the file.
    pub packets: u64,
}

/// Writes the capture `args` describe.
pub fn generate(args: &GenArgs) -> anyhow::Result<Generated> {
    anyhow::ensure!(
        u16::from(args.invalid) + u16::from(args.malformed) <= 100,
        "--invalid and --malformed add up to more than 100 percent"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let (mut keys, chain_id) = match &args.keys {
        Some(dir) => {
            let genesis = Genesis::read(&dir.join(GENESIS_FILE))
                .with_context(|| format!("{}", dir.join(GENESIS_FILE).display()))?;
            (read_accounts(dir)?, genesis.rules.chain_id)
        }
        None => (
            (0..args.accounts.unwrap_or(1000))
                .map(|_| SigningKey::from_bytes(&rng.gen()))
                .collect(),
            args.chain_id,
        ),
    };
    if let Some(n) = args.accounts {
        anyhow::ensure!(
            n >= 1 && n <= keys.len(),
            "--accounts {n}: 1 to {}",
            keys.len()
        );
        keys.truncate(n);
    }
    // Which transactions are which, drawn first so that signing can run on every core.
    let kinds: Vec<u8> = (0..args.count)
        .map(|_| {
            let r: u8 = rng.gen_range(0..100);
            if r < args.malformed {
                2
            } else if r < args.malformed + args.invalid {
                1
            } else {
                0
            }
        })
        .collect();
    let valid_count = kinds.iter().filter(|k| **k == 0).count();
    let nonces = vec![0u64; keys.len()];
    // Invalid ones are valid transfers signed, then broken: they take no nonce.
    let signed = sign_all(&keys, &nonces, chain_id, valid_count.max(1));
    let target = args.target.unwrap_or_else(|| match args.transport {
        Transport::Udp => Listen::default().udp,
        Transport::Tcp => Listen::default().tcp,
    });
    let client = |connection: usize| -> SocketAddr {
        let ip = if target.is_ipv4() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        };
        SocketAddr::new(ip, 40_000 + connection as u16)
    };
    let mut writer = Writer::create(&args.out)?;
    let mut streams = Streams::default();
    let step = 1_000_000_000 / args.rate;
    let mut generated = Generated::default();
    let mut next_valid = 0usize;
    for (i, kind) in kinds.iter().enumerate() {
        let at = Timestamp(EPOCH + i as u64 * step);
        // The sender a valid transfer at this point would have: invalid ones go with it.
        let sender = next_valid % keys.len();
        let connection = sender % usize::from(args.connections);
        let bytes: Vec<u8> = match kind {
            0 => {
                generated.valid += 1;
                next_valid += 1;
                signed[next_valid - 1].to_vec()
            }
            1 => {
                generated.invalid += 1;
                let mut tx = signed[next_valid.min(signed.len() - 1)].to_vec();
                let last = tx.len() - 1;
                tx[last] ^= 0x40;
                tx
            }
            _ => {
                generated.malformed += 1;
                let len = rng.gen_range(1..=200);
                (0..len).map(|_| rng.gen()).collect()
            }
        };
        match args.transport {
            Transport::Udp => writer.write(at, &synth::udp(client(connection), target, &bytes)),
            Transport::Tcp => {
                let frame = [&(bytes.len() as u32).to_le_bytes()[..], &bytes].concat();
                for packet in streams.data(client(connection), target, &frame) {
                    writer.write(at, &packet);
                }
            }
        }
    }
    if args.transport == Transport::Tcp {
        let end = Timestamp(EPOCH + args.count * step);
        for connection in 0..usize::from(args.connections) {
            if let Some(fin) = streams.close(client(connection), target) {
                writer.write(end, &fin);
            }
        }
    }
    writer.flush()?;
    generated.packets = writer.packets();
    Ok(generated)
}

/// Runs `verity pcap`.
pub fn run(command: &PcapCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        PcapCommand::Gen(args) => {
            let generated = generate(args)?;
            writeln!(
                out,
                "{}: {} packets, {} transactions over {} ({} valid, {} invalid signatures, {} malformed)",
                args.out.display(),
                generated.packets,
                args.count,
                args.transport,
                generated.valid,
                generated.invalid,
                generated.malformed
            )?;
        }
        PcapCommand::Record(args) => {
            let client = Client::new(args.http);
            let status: RecordStatus = match args.action.as_str() {
                "status" => client.get("/admin/pcap")?,
                on_off => client.post(
                    "/admin/pcap",
                    &RecordSwitch {
                        record: on_off == "on",
                    },
                )?,
            };
            let shown = |p: &Option<PathBuf>| {
                p.as_ref()
                    .map_or("-".to_owned(), |p| p.display().to_string())
            };
            writeln!(
                out,
                "recording {}: dir {}, file {}, {} packets in {} files, {} dropped, {} errors",
                if status.recording { "on" } else { "off" },
                shown(&status.dir),
                shown(&status.file),
                status.packets,
                status.files,
                status.dropped,
                status.errors
            )?;
        }
    }
    Ok(())
}
