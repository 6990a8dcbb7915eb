//! `ringkv status`: one node's view of the cluster.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{Client, ConnectOptions};
use crate::cli::ClientArgs;
use crate::error::Result;

pub fn run(args: ClientArgs) -> Result<ExitCode> {
    let status = super::block_on(async {
        let mut client = Client::connect(&args.node, &ConnectOptions::from_args(&args)?).await?;
        client.status().await
    })??;
    if args.json {
        println!("{status:#}");
    } else {
        print_human(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(s: &Value) {
    println!(
        "node {} ({}, incarnation {}), layout v{}, replicas {}",
        s["name"].as_str().unwrap_or("?"),
        s["role"].as_str().unwrap_or("?"),
        s["incarnation"],
        s["layout_version"],
        s["replicas"]
    );
    let m = &s["membership"];
    if !m["pending_version"].is_null() {
        let age_s = m["pending_age_ms"].as_u64().unwrap_or(0) / 1_000;
        println!(
            "change to layout v{} in progress for {age_s} s: joining {}, leaving {}, synced {}",
            m["pending_version"], m["joining"], m["leaving"], m["synced"]
        );
        let fenced = m["fenced"].as_array().map_or(0, Vec::len);
        if fenced > 0 {
            println!(
                "  being aborted: fenced by {} (it ends once the fences prove it can never \
                 commit; `ringkv remove --force` a joiner that is gone for good)",
                m["fenced"]
            );
        } else if age_s >= 60 {
            println!(
                "  stuck? a node it adds may be dead: `ringkv abort` ends it (automatic \
                 after --change-timeout-ms with a dead joiner)"
            );
        }
    }
    println!(
        "{:<6} {:<22} {:<10} {:<8} {:>9} {:>8}",
        "member", "address", "zone", "state", "ownership", "hints"
    );
    for m in s["members"].as_array().into_iter().flatten() {
        println!(
            "{:<6} {:<22} {:<10} {:<8} {:>8.1}% {:>8}",
            m["name"].as_str().unwrap_or("?"),
            m["address"].as_str().unwrap_or("-"),
            m["zone"].as_str().unwrap_or("-"),
            m["state"].as_str().unwrap_or("?"),
            m["primary_ownership"].as_f64().unwrap_or(0.0) * 100.0,
            m["hints_held_for"]
        );
    }
    let ae = &s["anti_entropy"];
    println!(
        "anti-entropy: {}/{} ranges exchanged, {} in flight, {} keys pushed",
        ae["ranges_exchanged"], ae["ranges"], ae["exchanges_in_flight"], ae["keys_pushed"]
    );
    let p = &s["purge"];
    println!(
        "tombstones: {} held at the last scan ({} written before its epoch), {} purged \
         since start; purge round at epoch {} {}",
        p["tombstones_held"],
        p["tombstones_purgeable"],
        p["tombstones_purged"],
        p["round_epoch"],
        p["round_state"].as_str().unwrap_or("?")
    );
    let c = &s["counters"];
    println!(
        "requests {} (ok {}, unavailable {}, indeterminate {}, overloaded {})",
        c["requests"], c["succeeded"], c["unavailable"], c["indeterminate"], c["overloaded"]
    );
    if let Some(error) = s["last_storage_error"].as_str() {
        println!("last storage error: {error}");
    }
}
