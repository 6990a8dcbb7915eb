//! A rolling restart under load: a 3-node cluster of real processes, clients reading
//! and writing through every node (the chaos test's clients), and every node in turn
//! shut down cleanly (SIGTERM), restarted on its data, and waited for (healthy, every
//! member alive in every node's view, its anti-entropy has compared every range since
//! it came back) before the next. Afterwards every key's history must be linearizable,
//! every acknowledged write-once key readable, and the only errors clients saw
//! `UNAVAILABLE` or `INDETERMINATE` (any other reply fails a client).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::load::{client, finish_run};
use common::{http_get, Cluster, NodeProc};

const CLIENTS: u64 = 3;
const REGISTER_KEYS: u64 = 12;

fn status(node: &NodeProc) -> Option<serde_json::Value> {
    let response = http_get(&node.http, "/status")?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Every node sees every member alive, and `restarted` has exchanged every range with a
/// co-replica since it opened (what it missed while down is repaired or being read).
fn wait_synced(nodes: &[NodeProc], restarted: usize) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(45) {
        let views: Vec<_> = nodes.iter().map(status).collect();
        let all_alive = views.iter().all(|view| {
            view.as_ref().is_some_and(|v| {
                v["members"].as_array().is_some_and(|members| {
                    members.len() == nodes.len() && members.iter().all(|m| m["state"] == "alive")
                })
            })
        });
        let exchanged = views[restarted].as_ref().is_some_and(|v| {
            let ae = &v["anti_entropy"];
            ae["ranges"].as_u64().is_some() && ae["ranges_exchanged"] == ae["ranges"]
        });
        if all_alive && exchanged {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "n{} never synced after its restart; status: {:?}",
        restarted + 1,
        status(&nodes[restarted])
    );
}

#[test]
fn a_rolling_restart_under_load_loses_nothing_and_stays_linearizable() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start(3, &[]);
    let resp: Vec<String> = cluster.nodes.iter().map(|n| n.resp.clone()).collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(11);
    println!("rolling restart seed {seed}");
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let resp = resp.clone();
            let stop = stop.clone();
            let seed = seed.wrapping_add(i * 0x9e37_79b9);
            thread::spawn(move || client(i, resp, start, stop, seed, REGISTER_KEYS))
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    let mut restarts = Vec::new();
    for i in 0..cluster.nodes.len() {
        let began = Instant::now();
        let exit = cluster.nodes[i].terminate();
        assert!(
            exit.success(),
            "n{} did not shut down cleanly ({exit}); log:\n{}",
            i + 1,
            cluster.nodes[i].log()
        );
        thread::sleep(Duration::from_millis(300));
        cluster.nodes[i].start();
        cluster.nodes[i].wait_healthy();
        wait_synced(&cluster.nodes, i);
        restarts.push(began.elapsed());
        thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let mut ops = Vec::new();
    let mut acked_once = Vec::new();
    let mut overloaded = 0;
    for handle in clients {
        // A client panics on any reply but OK, a value, UNAVAILABLE, OVERLOADED or
        // INDETERMINATE.
        let log = handle.join().expect("a client saw an unexpected reply");
        ops.extend(log.ops);
        acked_once.extend(log.acked_once);
        overloaded += log.overloaded;
    }
    let end = finish_run(&resp, start, REGISTER_KEYS, &mut ops, &acked_once);
    println!(
        "rolling restart: {} operations ({} ok, {} unavailable, {} indeterminate/timed out, \
         {overloaded} overloaded), restarts took {:?}, keys checked {}, violations = {}, \
         undecided = {}, acknowledged write-once keys {}, acknowledged writes lost = {}, \
         {:.1} s",
        ops.len(),
        end.ok,
        end.refused - overloaded as usize,
        end.unknown,
        restarts,
        end.keys,
        end.violations,
        end.undecided.len(),
        acked_once.len(),
        end.lost.len(),
        test_start.elapsed().as_secs_f64()
    );
    assert_eq!(
        end.violations, 0,
        "linearizability violations (seed {seed})"
    );
    assert!(
        end.undecided.is_empty(),
        "the checker could not decide {:?}",
        end.undecided
    );
    assert!(
        end.lost.is_empty(),
        "acknowledged writes lost: {:?}",
        end.lost
    );
    assert_eq!(overloaded, 0, "OVERLOADED replies during the restart");
    assert!(!acked_once.is_empty(), "no write succeeded at all");
}
