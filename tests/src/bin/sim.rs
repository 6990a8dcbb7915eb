//! `sim`: runs the deterministic cluster simulator over a range of seeds.
//!
//!   cargo run --release -p ringkv-tests --bin sim -- --seeds N [--start S] [--json]
//!       [--nodes N] [--trace]
//!       [--profile default|small|hot|membership|deletes|shards|updates]
//!       [--impl node|toy|broken-toy|broken-node|early-ack-node|w1-node|racy-update-node]
//!       [--mutation NAME] [--catch-rates]
//!
//! Prints totals (the last line is one JSON object with `--json`) and, for each failing
//! seed, its findings with a trace. Exits 1 if any seed shows a bug, 2 on bad usage.
//! Profiles (`--small`, `--hot`, `--membership` are short for `--profile NAME`): the
//! default, `small` (shorter), `hot` and `membership` (the mutation tests' sharp
//! profiles, `SimConfig::hot` and `SimConfig::membership`); `--nodes` overrides the
//! profile's member count (not the shard mix's: `SimConfig::shard_members`). `shards`:
//! every seed in the shard mix (`SimConfig::shards`). `updates`: every seed in the update
//! mix (`SimConfig::updates`; by default, one seed in three).
//!
//! `--mutation NAME` runs `Node` with that deliberate bug on (`skip-write-back`,
//! `ack-put-after-one`, `tags-without-lease`, `layout-without-quorum`;
//! docs/simulation.md, "Mutations"). `--catch-rates` runs every mutation (or just
//! `--mutation`'s) over the seeds and prints one row each: profile, seeds run, seeds
//! caught, rate, first catching seed (with `--json`, a last line of JSON with one
//! object per mutation); each on the profile its mutation test uses unless a profile
//! is given. Exits 1 if a mutation was never caught.

use std::process::ExitCode;

use ringkv_tests::sim::broken::{BrokenHardware, EarlyAckHardware};
use ringkv_tests::sim::mutations::{profile_of, CatchRate, Mutation};
use ringkv_tests::sim::racy::RacyUpdateHardware;
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
    /// Updates as a get then a put (`sim::racy`): lost updates for the checker.
    RacyUpdateNode,
}

struct Args {
    seeds: u64,
    start: u64,
    json: bool,
    trace: bool,
    /// `--profile NAME` (or `--NAME`): the profile's name and config.
    profile: Option<(&'static str, SimConfig)>,
    nodes: Option<usize>,
    which: Impl,
    mutation: Option<Mutation>,
    catch_rates: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: 10,
        start: 0,
        json: false,
        trace: false,
        profile: None,
        nodes: None,
        which: Impl::Node,
        mutation: None,
        catch_rates: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--seeds" => args.seeds = number(value("--seeds")?)?,
            "--start" => args.start = number(value("--start")?)?,
            "--nodes" => args.nodes = Some(number(value("--nodes")?)? as usize),
            "--json" => args.json = true,
            "--trace" => args.trace = true,
            "--small" | "--hot" | "--membership" => {
                args.profile = profile(flag.trim_start_matches("--"))
            }
            "--profile" => {
                let name = value("--profile")?;
                args.profile = Some(profile(&name).ok_or(format!(
                    "unknown --profile {name} (known: default, small, hot, membership, deletes, shards, updates)"
                ))?);
            }
            "--impl" => {
                args.which = match value("--impl")?.as_str() {
                    "node" => Impl::Node,
                    "toy" => Impl::Toy,
                    "broken-toy" => Impl::BrokenToy,
                    "broken-node" => Impl::BrokenNode,
                    "early-ack-node" => Impl::EarlyAckNode,
                    "w1-node" => Impl::W1Node,
                    "racy-update-node" => Impl::RacyUpdateNode,
                    other => return Err(format!("unknown --impl {other}")),
                }
            }
            "--mutation" => {
                let name = value("--mutation")?;
                let known: Vec<&str> = Mutation::ALL.iter().map(|m| m.name()).collect();
                args.mutation = Some(Mutation::from_name(&name).ok_or(format!(
                    "unknown --mutation {name} (known: {})",
                    known.join(", ")
                ))?);
            }
            "--catch-rates" => args.catch_rates = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if (args.mutation.is_some() || args.catch_rates) && args.which != Impl::Node {
        return Err("--mutation and --catch-rates run --impl node only".into());
    }
    Ok(args)
}

/// A profile by name, with its name as a static string.
fn profile(name: &str) -> Option<(&'static str, SimConfig)> {
    Some(match name {
        "default" => ("default", SimConfig::default()),
        "small" => ("small", SimConfig::small()),
        "hot" => ("hot", SimConfig::hot()),
        "membership" => ("membership", SimConfig::membership()),
        "deletes" => ("deletes", SimConfig::deletes()),
        "shards" => ("shards", SimConfig::shards()),
        "updates" => ("updates", SimConfig::updates()),
        _ => return None,
    })
}

fn run(args: &Args, config: &SimConfig, seed: u64) -> Result<SeedReport, SimError> {
    // The seed's own shape (`SimConfig::for_hardware`): the hardware is built for it.
    // The toy places no replicas by process, so it never runs the shard mix.
    let plain = config.for_hardware(seed, false);
    let toy = || ToyHardware::new(plain.nodes, plain.replicas, plain.request_timeout_ms);
    let shaped = config.for_hardware(seed, true);
    let node = || ringkv_tests::sim::cluster::NodeHardware::new(&shaped);
    if let Some(mutation) = args.mutation {
        return run_seed(node().with_mutation(mutation), config, seed);
    }
    match args.which {
        Impl::Toy => run_seed(toy(), config, seed),
        Impl::BrokenToy => run_seed(BrokenHardware::new(toy()), config, seed),
        Impl::Node => run_seed(node(), config, seed),
        Impl::BrokenNode => run_seed(BrokenHardware::new(node()), config, seed),
        Impl::EarlyAckNode => run_seed(EarlyAckHardware::new(node()), config, seed),
        Impl::W1Node => run_seed(node().eventual_quorums(2, 1), config, seed),
        Impl::RacyUpdateNode => run_seed(RacyUpdateHardware::new(node()), config, seed),
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
    if args.catch_rates {
        return catch_rates(&args);
    }
    let (profile, config) = args
        .profile
        .clone()
        .unwrap_or(("default", SimConfig::default()));
    let config = adjusted(&args, config);
    let mut summary = Summary::default();
    println!(
        "impl: {:?}{}, profile: {profile}, nodes: {}, replicas: {}",
        args.which,
        args.mutation
            .map_or(String::new(), |m| format!(" with mutation {m}")),
        config.nodes,
        config.replicas
    );
    for seed in args.start..args.start.saturating_add(args.seeds) {
        match run(&args, &config, seed) {
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

/// `config` with the command line's `--nodes` and `--trace`.
fn adjusted(args: &Args, mut config: SimConfig) -> SimConfig {
    if let Some(nodes) = args.nodes {
        config.nodes = nodes;
        config.replicas = config.replicas.min(nodes);
    }
    config.trace_echo = args.trace;
    config
}

/// Every mutation (or `--mutation`'s) over the seeds: one row each, as it finishes.
fn catch_rates(args: &Args) -> ExitCode {
    let mutations: Vec<Mutation> = match args.mutation {
        Some(m) => vec![m],
        None => Mutation::ALL.to_vec(),
    };
    let seeds = args.start..args.start.saturating_add(args.seeds);
    println!(
        "catch rates: seeds {}..{}, profile {}",
        seeds.start,
        seeds.end,
        args.profile
            .as_ref()
            .map_or("per mutation (its test's)", |(name, _)| name)
    );
    println!("{}", CatchRate::header());
    let started = std::time::Instant::now();
    let mut rates = Vec::new();
    for mutation in mutations {
        let (profile, config) = args.profile.clone().unwrap_or_else(|| profile_of(mutation));
        let config = adjusted(args, config);
        let rate = CatchRate::measure(mutation, profile, &config, seeds.clone());
        println!("{}", rate.row());
        for (seed, error) in &rate.errors {
            println!("  seed {seed} ERROR: {error}");
        }
        rates.push(rate);
    }
    println!("took {} s", started.elapsed().as_secs());
    if args.json {
        let rows: Vec<String> = rates.iter().map(CatchRate::json).collect();
        println!(
            "{{\"start\":{},\"seeds\":{},\"mutations\":[{}]}}",
            seeds.start,
            args.seeds,
            rows.join(",")
        );
    }
    if rates.iter().any(|r| r.caught() == 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
