//! `verity`: the command-line front door of the Verity appliance.

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use verity_host::cli::{
    capture, client, cluster, demo, firmware, hdl, init, keygen, load, pcap, replay, sign, sim,
    throughput, verify, verify_block,
};

/// Verity: one ordered transaction log and one ledger for colocated replicas, with Ed25519
/// verification offloaded to an FPGA card (or done on the CPU with identical verdicts).
///
/// Every signature check uses one predicate, ZIP-215, on every backend.
#[derive(Debug, Parser)]
#[command(name = "verity", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Verify(verify::VerifyArgs),
    Keygen(keygen::KeygenArgs),
    Sign(sign::SignArgs),
    Demo(demo::DemoArgs),
    Cluster(cluster::ClusterArgs),
    Throughput(throughput::ThroughputArgs),
    Init(init::InitArgs),
    Load(load::LoadArgs),
    Submit(client::SubmitArgs),
    Account(client::AccountArgs),
    Block(client::BlockArgs),
    VerifyBlock(verify_block::VerifyBlockArgs),
    Replay(replay::ReplayArgs),
    Capture(capture::CaptureArgs),
    #[command(subcommand)]
    Pcap(pcap::PcapCommand),
    #[command(subcommand)]
    Firmware(firmware::FirmwareCommand),
    #[command(subcommand)]
    Hdl(hdl::HdlCommand),
    #[command(subcommand)]
    Sim(sim::SimCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("VERITY_LOG"))
        .with_writer(io::stderr)
        .init();
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match &cli.command {
        Command::Verify(args) => verify::run(args, &mut out).map(drop),
        Command::Keygen(args) => keygen::run(args, &mut out),
        Command::Sign(args) => sign::run(args, &mut out),
        Command::Demo(args) => demo::run(args, &mut out),
        Command::Cluster(args) => cluster::run(args, &mut out),
        Command::Throughput(args) => throughput::run(args, &mut out),
        Command::Init(args) => init::run(args, &mut out),
        Command::Load(args) => load::run(args, &mut out),
        Command::Submit(args) => client::submit(args, &mut out),
        Command::Account(args) => client::account(args, &mut out),
        Command::Block(args) => client::block(args, &mut out),
        Command::VerifyBlock(args) => verify_block::run(args, &mut out),
        Command::Replay(args) => replay::run(args, &mut out),
        Command::Capture(args) => capture::run(args, &mut out),
        Command::Pcap(command) => pcap::run(command, &mut out),
        Command::Firmware(command) => firmware::run(command, &mut out),
        Command::Hdl(command) => hdl::run(command, &mut out),
        Command::Sim(command) => sim::run(command, &mut out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            drop(out);
            eprintln!("verity: {error:#}");
            ExitCode::FAILURE
        }
    }
}
