//! The orchestrator's view of real `ringkv serve` processes: `/health/live` and
//! `/health/ready` (ARCHITECTURE.md, "HTTP"), and the pod-friendly start of a
//! StatefulSet (`--id-from-hostname`, `--seeds-dns`, `--advertise`).

mod common;

use std::time::{Duration, Instant};

use common::{
    free_port, http_json, restart_on_failing_disk, Cluster, NodeProc, Ports, Resp, Value,
};
use serde_json::Value as Json;

/// Polls `path` on `http` until `done(code, body)`; the last answer, or a panic naming
/// `what` with the node's log after 60 s.
fn wait_for(node: &NodeProc, path: &str, what: &str, done: impl Fn(u16, &Json) -> bool) -> Json {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(60) {
        if let Some((code, body)) = http_json(&node.http, path) {
            if done(code, &body) {
                return body;
            }
            last = Some((code, body));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "n{}: never {what}; last {path}: {last:?}; log:\n{}",
        node.id,
        node.log()
    );
}

fn wait_ready(node: &NodeProc) -> Json {
    wait_for(node, "/health/ready", "ready", |code, _| code == 200)
}

fn assert_live(node: &NodeProc) {
    let (code, body) = http_json(&node.http, "/health/live").expect("/health/live");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "live", "{body}");
    assert_eq!(body["node"], format!("n{}", node.id), "{body}");
}

fn ports() -> Ports {
    Ports {
        ws: free_port(),
        resp: free_port(),
        http: free_port(),
    }
}

#[test]
fn ready_on_a_healthy_cluster_not_on_a_joining_node_until_it_is_a_member() {
    let mut cluster = Cluster::start(3, &[]);
    for node in &cluster.nodes {
        let body = wait_ready(node);
        assert_eq!(body["ready"], true, "{body}");
        assert_eq!(body["failing"], serde_json::json!([]), "{body}");
        for check in ["serving", "member", "not_leaving", "storage", "synced"] {
            assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
        }
        assert_live(node);
    }

    // n4 starts with an empty data directory and a seed nobody listens on: it waits in
    // the joining role, live but not ready, and says why.
    let dead_seed = format!("127.0.0.1:{}", free_port());
    let joiner_ports = ports();
    let joiner_dir = cluster.dir.path().join("n4");
    let mut joiner = NodeProc::new(4, joiner_ports, joiner_dir.clone(), &["--seed", &dead_seed]);
    joiner.start();
    joiner.wait_healthy();
    assert_live(&joiner);
    let (code, body) = http_json(&joiner.http, "/health/ready").expect("/health/ready");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["status"], "not ready", "{body}");
    assert_eq!(
        body["failing"],
        serde_json::json!(["member", "synced"]),
        "{body}"
    );
    let detail = body["checks"]["member"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.starts_with("joining"), "{body}");
    assert_eq!(body["checks"]["storage"]["ok"], true, "{body}");
    // The old endpoint keeps its meaning: the process serves and storage is fine.
    let (health, _) = common::http_get(&joiner.http, "/health")
        .map(|r| (r.starts_with("HTTP/1.1 200"), r))
        .expect("/health");
    assert!(health, "/health stays 200 on a joining node");
    joiner.kill9();

    // The same node with real seeds joins, syncs its ranges, and only then is ready.
    let seeds: Vec<String> = cluster.nodes.iter().map(|n| n.ws.clone()).collect();
    let joiner = cluster.add_joiner(3, joiner_ports, &seeds, 4, &|_| None);
    let body = wait_ready(joiner);
    assert_eq!(body["node"], "n4", "{body}");
    let status = wait_for(joiner, "/status", "a member of 4", |_, s| {
        s["members"].as_array().map(Vec::len) == Some(4)
    });
    assert_eq!(status["role"], "member", "{status}");
    let mut resp = joiner.resp();
    assert_eq!(resp.call(&["SET", "k", "v"]), Value::ok());
    assert_eq!(
        cluster.nodes[0].resp().call(&["GET", "k"]),
        Value::bulk("v")
    );
}

#[test]
fn a_node_whose_fsync_failed_is_live_but_not_ready_and_says_storage() {
    let mut cluster = Cluster::start(1, &[]);
    let dir = cluster.dir.path().to_path_buf();
    let node = &mut cluster.nodes[0];
    let trigger = restart_on_failing_disk(node, &dir);
    wait_ready(node);

    std::fs::write(&trigger, b"").expect("trigger");
    // A write syncs, the sync fails, the node fail-stops.
    let mut resp = Resp::connect(&node.resp);
    let reply = resp.call(&["SET", "k", "v"]);
    assert!(matches!(reply, Value::Error(_)), "{reply:?}");
    let body = wait_for(node, "/health/ready", "not ready", |code, _| code == 503);
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["storage"]), "{body}");
    let detail = body["checks"]["storage"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("storage failed"), "{body}");
    // Live on purpose (health.rs): it keeps telling why it failed.
    assert_live(node);
}

/// `unshare -u` gives the process its own hostname, as a pod has (root; the CI and
/// developer machines run as root).
fn as_pod(node: &mut NodeProc, hostname: &str) {
    node.wrapper = vec![
        "unshare".into(),
        "-u".into(),
        "sh".into(),
        "-c".into(),
        format!("hostname {hostname} && exec \"$0\" \"$@\""),
    ];
    // The id comes from the hostname, not --node-id.
    let at = node
        .args
        .iter()
        .position(|a| a == "--node-id")
        .expect("--node-id");
    node.args.drain(at..at + 2);
    node.args.push("--id-from-hostname".into());
}

#[test]
fn statefulset_pods_find_each_other_by_hostname_ordinal_and_dns_seeds() {
    // Every pod gets the same flags but its hostname: the id from the ordinal, the
    // seeds from one DNS name (here localhost at ringkv-0's port, as a headless
    // Service would answer with the pods' addresses), its own advertised address.
    let dir = tempfile::tempdir().expect("tempdir");
    let plan: Vec<Ports> = (0..3).map(|_| ports()).collect();
    let seeds_dns = format!("localhost:{}", plan[0].ws);
    let mut nodes: Vec<NodeProc> = Vec::new();
    // Started in reverse: pods of a Parallel StatefulSet come up in any order, and the
    // later ones keep resolving and asking until ringkv-0 has founded the cluster.
    for ordinal in (0..3).rev() {
        let id = ordinal as u64 + 1;
        let mut node = NodeProc::new(
            id,
            plan[ordinal],
            dir.path().join(format!("n{id}")),
            &[
                "--seeds-dns",
                &seeds_dns,
                "--advertise",
                &format!("127.0.0.1:{}", plan[ordinal].ws),
            ],
        );
        as_pod(&mut node, &format!("ringkv-{ordinal}"));
        node.start();
        nodes.push(node);
    }
    for node in &mut nodes {
        node.wait_healthy();
        wait_ready(node);
        node.wait_member_of(3);
        let status = wait_for(node, "/status", "answering /status", |code, _| code == 200);
        assert_eq!(status["name"], format!("n{}", node.id), "{status}");
    }
    let mut resp = nodes[0].resp();
    assert_eq!(resp.call(&["SET", "pod", "ok"]), Value::ok());
    assert_eq!(nodes[2].resp().call(&["GET", "pod"]), Value::bulk("ok"));

    // A hostname without an ordinal is refused at start, naming the flag.
    let mut stray = NodeProc::new(9, ports(), dir.path().join("stray"), &[]);
    as_pod(&mut stray, "ringkv");
    stray.start();
    let start = Instant::now();
    while stray.alive() {
        assert!(start.elapsed() < Duration::from_secs(30), "still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = stray.log();
    assert!(
        log.contains("--id-from-hostname") && log.contains("does not end in -ORDINAL"),
        "{log}"
    );
}
