//! `sim`: runs the deterministic cluster simulator over a range of seeds.
//!
//!   cargo run --release -p ringkv-tests --bin sim -- --seeds N [--start S] [--json]
//!       [--nodes 5] [--trace] [--small] [--hot]
//!       [--impl node|toy|broken-toy|broken-node|early-ack-node|w1-node]
//!
//! Prints totals (the last line is one JSON object with `--json`) and, for each failing
//! seed, its findings with a trace. Exits 1 if any seed shows a bug, 2 on bad usage.

use std::process::ExitCode;

use ringkv_tests::sim::broken::{BrokenHardware, EarlyAckHardware};
use ringkv_tests::sim::toy::ToyHardware;
use ringkv_tests::sim::{run_seed, SeedReport, SimConfig, SimError, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Node,
    Toy,
    BrokenToy,
    BrokenNode,
    EarlyAckNode,
    W1Node,
}

struct Args {
    seeds: u64,
    start: u64,
    json: bool,
    trace: bool,
    small: bool,
    hot: bool,
    nodes: usize,
    which: Impl,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: 10,
        start: 0,
        json: false,
        trace: false,
        small: false,
        hot: false,
        nodes: 5,
        which: Impl::Node,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--seeds" => args.seeds = number(value("--seeds")?)?,
            "--start" => args.start = number(value("--start")?)?,
            "--nodes" => args.nodes = number(value("--nodes")?)? as usize,
            "--json" => args.json = true,
            "--trace" => args.trace = true,
            "--small" => args.small = true,
            "--hot" => args.hot = true,
            "--impl" => {
                args.which = match value("--impl")?.as_str() {
                    "node" => Impl::Node,
                    "toy" => Impl::Toy,
                    "broken-toy" => Impl::BrokenToy,
                    "broken-node" => Impl::BrokenNode,
                    "early-ack-node" => Impl::EarlyAckNode,
                    "w1-node" => Impl::W1Node,
                    other => return Err(format!("unknown --impl {other}")),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn run(which: Impl, config: &SimConfig, seed: u64) -> Result<SeedReport, SimError> {
    let toy = || ToyHardware::new(config.nodes, config.replicas, config.request_timeout_ms);
    let node = || ringkv_tests::sim::cluster::NodeHardware::new(config);
    match which {
        Impl::Toy => run_seed(toy(), config, seed),
        Impl::BrokenToy => run_seed(BrokenHardware::new(toy()), config, seed),
        Impl::Node => run_seed(node(), config, seed),
        Impl::BrokenNode => run_seed(BrokenHardware::new(node()), config, seed),
        Impl::EarlyAckNode => run_seed(EarlyAckHardware::new(node()), config, seed),
        Impl::W1Node => run_seed(node().eventual_quorums(2, 1), config, seed),
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sim: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = if args.hot {
        SimConfig::hot()
    } else if args.small {
        SimConfig::small()
    } else {
        SimConfig::default()
    };
    config.nodes = args.nodes;
    config.replicas = config.replicas.min(args.nodes);
    config.trace_echo = args.trace;
    let mut summary = Summary::default();
    println!(
        "impl: {:?}, nodes: {}, replicas: {}",
        args.which, config.nodes, config.replicas
    );
    for seed in args.start..args.start.saturating_add(args.seeds) {
        match run(args.which, &config, seed) {
            Ok(report) => {
                if report.failed() {
                    println!("{}", report.render_failure());
                }
                summary.add(&report);
            }
            Err(e @ SimError::Config(_)) => {
                eprintln!("sim: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                println!("seed {seed} ERROR: {e}");
                summary.add_error(seed, e);
            }
        }
    }
    println!("{}", summary.text());
    if summary.converge_ms.is_empty() {
        println!("(converge_ms_p50 is null: no seed's replicas all agreed within the cap)");
    }
    if args.json {
        println!("{}", summary.json());
    }
    if summary.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
