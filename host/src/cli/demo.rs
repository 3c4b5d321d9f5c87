//! `verity demo`: the appliance's main job on its embedded defaults — a cluster of replicas
//! (or one) started, loaded and stopped, in a temporary directory, with no card and no
//! external server.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::api::Block;
use crate::backend::BackendKind;
use crate::block::ROOT_EPOCH;
use crate::cli::client::Client;
use crate::cli::cluster::{self, ClusterArgs, Replica};
use crate::cli::init::{self, InitArgs};
use crate::cli::load::{self, LoadArgs, Mix};

/// Run the appliance end to end: four replicas (`verity cluster` in a temporary directory,
/// one `verityd` process each, ordering by BFT consensus on loopback), signed transfers sent
/// through all of them with `verity load`, the end table, the state root every replica
/// holds at the same height, and a clean stop. `--replicas 1` runs one replica alone
/// (`verity init`, no consensus). `--mix trading` sends option trades and the oracles'
/// prices instead, with a 40 % price shock that liquidates the call writers.
///
/// Signatures are verified by the simulated card (its functional model, driven through the
/// card's ABI as a card is) unless `--backend` says otherwise; the verifier's state is
/// printed as the daemons report it. The default rate is about half of what the simulated
/// cards sustain on two cores beside the daemons and the load (each replica checks every
/// transaction of every block it did not propose).
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value_t = BackendKind::Sim)]
    pub backend: BackendKind,
    /// Replicas; 4 tolerate one faulty, 1 runs without consensus.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// Transactions per second [default: on `sim`, 4,000 for one replica, 1,000 for a
    /// cluster; otherwise five times that].
    #[arg(long)]
    pub rate: Option<u32>,
    /// Seconds of load.
    #[arg(long, default_value = "10")]
    pub duration: u32,
    /// Funded accounts sending to each other.
    #[arg(long, default_value = "1000")]
    pub accounts: u32,
    /// Keep the directory (configuration, genesis, keys, stores, logs) instead of removing it
    /// (a failed run always keeps it).
    #[arg(long)]
    pub keep: bool,
    /// What the load sends (`verity load --mix`).
    #[arg(long, value_enum, default_value_t = Mix::Transfers)]
    pub mix: Mix,
}

/// Runs `verity demo`.
pub fn run(args: &DemoArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("verity-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = demo(args, &dir, out);
    if args.keep || result.is_err() {
        // A failed run keeps its logs (verityd.log in each replica's directory).
        writeln!(out, "kept {}", dir.display())?;
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The rate the demo sends at unless told (a trade costs two signature checks).
fn default_rate(args: &DemoArgs) -> u32 {
    let on_sim = if args.replicas == 1 { 4_000 } else { 1_000 };
    let rate = match args.backend {
        BackendKind::Sim => on_sim,
        _ => on_sim * 5,
    };
    match args.mix {
        Mix::Transfers => rate,
        Mix::Trading => rate / 2,
    }
}

/// What the load is called in the demo's lines.
fn sending(mix: Mix) -> &'static str {
    match mix {
        Mix::Transfers => "transfers",
        Mix::Trading => "trades and prices",
    }
}

fn demo(args: &DemoArgs, dir: &std::path::Path, out: &mut impl Write) -> anyhow::Result<()> {
    if args.replicas > 1 {
        return demo_cluster(args, dir, out);
    }
    writeln!(out, "verity demo: one replica in {}", dir.display())?;
    init::run(
        &InitArgs {
            dir: dir.to_owned(),
            http_port: 0,
            tcp_port: 0,
            udp_port: 0,
            accounts: args.accounts,
            balance: 1_000_000_000,
            chain_id: 1,
            backend: args.backend,
        },
        &mut std::io::sink(),
    )?;
    let daemon = Replica::start(&cluster::verityd()?, dir)?;
    let ready = daemon.ready.clone();
    writeln!(
        out,
        "  verityd: http {}, tcp {}; card: {}",
        ready.http, ready.tcp, ready.verifier
    )?;
    let rate = args.rate.unwrap_or_else(|| default_rate(args));
    writeln!(
        out,
        "  verity load: {rate} {}/s for {} s from {} accounts",
        sending(args.mix),
        args.duration,
        args.accounts
    )?;
    out.flush()?;
    let report = load::load(&LoadArgs {
        keys: dir.to_owned(),
        target: vec![ready.tcp],
        http: Some(ready.http),
        rate,
        duration: args.duration,
        accounts: None,
        connections: 4,
        drain: 30,
        mix: args.mix,
        shock: 40,
        seed: 1,
    })?;
    report.table(out)?;
    let stopped = daemon.stop()?;
    writeln!(
        out,
        "  verityd stopped cleanly at height {}; final state root {}",
        stopped.height,
        hex::encode(stopped.state_root)
    )?;
    anyhow::ensure!(
        report.committed() > 0 && report.unanswered == 0,
        "the run did not commit every transaction"
    );
    Ok(())
}

fn demo_cluster(
    args: &DemoArgs,
    dir: &std::path::Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "verity demo: {} replicas ordering by consensus, in {}",
        args.replicas,
        dir.display()
    )?;
    cluster::write(&ClusterArgs {
        dir: dir.to_owned(),
        replicas: args.replicas,
        base_port: cluster::free_base_port(args.replicas)?,
        accounts: args.accounts,
        chain_id: 1,
        backend: args.backend,
        no_start: true,
    })?;
    let verityd = cluster::verityd()?;
    let mut replicas = Vec::new();
    for replica_dir in cluster::replicas(dir)? {
        let replica = Replica::start(&verityd, &replica_dir)?;
        writeln!(
            out,
            "  replica {}: http {}, tcp {}; card: {}",
            replicas.len(),
            replica.ready.http,
            replica.ready.tcp,
            replica.ready.verifier
        )?;
        replicas.push(replica);
    }
    let rate = args.rate.unwrap_or_else(|| default_rate(args));
    writeln!(
        out,
        "  verity load: {rate} {}/s for {} s from {} accounts, through every replica",
        sending(args.mix),
        args.duration,
        args.accounts
    )?;
    out.flush()?;
    let report = load::load(&LoadArgs {
        keys: dir.to_owned(),
        target: replicas.iter().map(|r| r.ready.tcp).collect(),
        http: Some(replicas[0].ready.http),
        rate,
        duration: args.duration,
        accounts: None,
        connections: 4 * args.replicas,
        drain: 30,
        mix: args.mix,
        shock: 40,
        seed: 1,
    })?;
    report.table(out)?;
    // Every replica at one height whose root headers carry (each replica keeps those), and
    // what it holds there.
    let clients: Vec<Client> = replicas.iter().map(|r| Client::new(r.ready.http)).collect();
    let height = clients[0].status()?.height / ROOT_EPOCH * ROOT_EPOCH;
    let mut roots = Vec::new();
    for client in &clients {
        let deadline = Instant::now() + Duration::from_secs(30);
        let root = loop {
            if client.status()?.height >= height {
                let block: Block = client.get(&format!("/v1/blocks/{height}"))?;
                if let Some(root) = block.state_root {
                    break root;
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "a replica did not commit the state of height {height}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        roots.push(root);
    }
    let agree = roots.iter().all(|r| *r == roots[0]);
    if agree {
        writeln!(
            out,
            "  at height {height} every replica holds state root {}",
            roots[0]
        )?;
    } else {
        writeln!(
            out,
            "  at height {height} the replicas DISAGREE: {}",
            roots.join(", ")
        )?;
    }
    for (i, replica) in replicas.into_iter().enumerate() {
        let stopped = replica.stop()?;
        writeln!(
            out,
            "  replica {i} stopped cleanly at height {}",
            stopped.height
        )?;
    }
    anyhow::ensure!(agree, "the replicas disagree at height {height}");
    anyhow::ensure!(
        report.committed() > 0 && report.unanswered == 0,
        "the run did not commit every transaction"
    );
    Ok(())
}
