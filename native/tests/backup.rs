//! Backup and restore on real processes: `ringkv backup` of a 3-node cluster under
//! write load, restored with `ringkv restore` into a fresh 3-node cluster, where every
//! write acknowledged before the backup started must be found (deleted keys stay
//! deleted, eventual keys come back); a second restore into the now non-empty cluster
//! is refused; truncated, bit-flipped, incomplete and newer-format backups are refused
//! before anything is written; a backup with one member down goes on (naming it), with
//! two down it is refused, naming the ranges.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{ringkv_bin, Cluster, Resp, Value};

const WRITERS: usize = 3;
const PRELOAD: usize = 20_000;

/// Damages a copy of a backup directory.
type Damage = Box<dyn Fn(&Path)>;

fn ringkv(args: &[&str]) -> Output {
    Command::new(ringkv_bin())
        .args(args)
        .output()
        .expect("run ringkv")
}

fn text(output: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What one writer saw: per key, the acknowledged writes as (value, when acknowledged).
#[derive(Default)]
struct Writes {
    acked: BTreeMap<String, Vec<(u64, Instant)>>,
}

/// Writes fresh keys `w{t}-{seq}` = `{seq}` and overwrites `o{t}` = `{seq}` (seq rising)
/// through node `t % 3` until `stop`.
fn writer(t: usize, resp: String, stop: Arc<AtomicBool>) -> Writes {
    let mut conn = Resp::connect(&resp);
    let mut writes = Writes::default();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        for key in [format!("w{t}-{seq}"), format!("o{t}")] {
            let value = seq.to_string();
            match conn.try_call(&["SET", &key, &value]) {
                Some(Value::Simple(ok)) if ok == "OK" => {
                    writes
                        .acked
                        .entry(key)
                        .or_default()
                        .push((seq, Instant::now()));
                }
                Some(Value::Error(e))
                    if e.starts_with("UNAVAILABLE") || e.starts_with("INDETERMINATE") => {}
                other => panic!("SET {key}: {other:?}"),
            }
        }
    }
    writes
}

fn get(resp: &[String], key: &str) -> Option<Vec<u8>> {
    for attempt in 0..50 {
        let mut conn = Resp::connect(&resp[attempt % resp.len()]);
        match conn.call(&["GET", key]) {
            Value::Bulk(value) => return value,
            Value::Error(e) if e.starts_with("UNAVAILABLE") => {
                thread::sleep(Duration::from_millis(100))
            }
            other => panic!("GET {key}: {other:?}"),
        }
    }
    panic!("GET {key} never answered");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn a_backup_under_load_restores_every_acknowledged_write_and_corruption_is_refused() {
    let test_start = Instant::now();
    let mut source = Cluster::start(3, &[]);
    let resp: Vec<String> = source.nodes.iter().map(|n| n.resp.clone()).collect();
    let scratch = tempfile::tempdir().expect("tempdir");
    let backup_dir = scratch.path().join("backup");
    let backup = backup_dir.to_str().expect("utf-8").to_string();

    // Before the load: deleted keys (their tombstones go into the backup) and eventual
    // keys (their sibling states do).
    let mut conn = Resp::connect(&resp[0]);
    // Bulk keys, pipelined, so the backup streams many pages while the writers run.
    let filler = "f".repeat(200);
    for chunk in 0..PRELOAD / 1000 {
        let mut burst = Vec::new();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let key = format!("bulk-{i}");
            burst.extend(common::encode(&[b"SET", key.as_bytes(), filler.as_bytes()]));
        }
        conn.send_raw(&burst).expect("send");
        for _ in 0..1000 {
            assert_eq!(conn.read(), Some(Value::ok()));
        }
    }
    for i in 0..20 {
        assert_eq!(
            conn.call(&["SET", &format!("del-{i}"), "gone"]),
            Value::ok()
        );
        assert_eq!(conn.call(&["DEL", &format!("del-{i}")]), Value::Int(1));
    }
    for i in 0..3 {
        let out = ringkv(&[
            "put",
            &format!("ev-{i}"),
            &format!("eventual-{i}"),
            "--consistency",
            "eventual",
            "--node",
            &source.nodes[0].ws,
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let resp = resp[t % resp.len()].clone();
            let stop = stop.clone();
            thread::spawn(move || writer(t, resp, stop))
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    let backup_start = Instant::now();
    let out = ringkv(&["backup", "--to", &backup, "--node", &source.nodes[1].ws]);
    let backup_took = backup_start.elapsed();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert!(out.status.success(), "backup: {}", text(&out));
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let writes: Vec<Writes> = writers
        .into_iter()
        .map(|h| h.join().expect("writer"))
        .collect();

    // Restore into a fresh cluster.
    let target = Cluster::start(3, &[]);
    let target_resp: Vec<String> = target.nodes.iter().map(|n| n.resp.clone()).collect();
    let out = ringkv(&["restore", "--from", &backup, "--node", &target.nodes[2].ws]);
    assert!(out.status.success(), "restore: {}", text(&out));
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());

    // Every write acknowledged before the backup started is there: fresh keys with
    // their value, overwritten keys with that value or a later one.
    let mut checked = 0;
    let mut after_start = 0;
    for w in &writes {
        for (key, acks) in &w.acked {
            let before: Vec<u64> = acks
                .iter()
                .filter(|(_, at)| *at < backup_start)
                .map(|(seq, _)| *seq)
                .collect();
            let Some(&newest) = before.iter().max() else {
                after_start += 1;
                continue;
            };
            let found = get(&target_resp, key)
                .unwrap_or_else(|| panic!("{key} (acknowledged before the backup) is missing"));
            let found: u64 = String::from_utf8_lossy(&found).parse().expect("a seq");
            assert!(
                found >= newest,
                "{key}: restored {found}, but {newest} was acknowledged before the backup"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "only {checked} keys were acknowledged before the backup"
    );
    for i in 0..20 {
        assert_eq!(
            get(&target_resp, &format!("del-{i}")),
            None,
            "a deleted key came back"
        );
    }
    for i in (0..PRELOAD).step_by(97) {
        let value = get(&target_resp, &format!("bulk-{i}")).expect("a bulk key is missing");
        assert_eq!(value.len(), 200);
    }
    for i in 0..3 {
        let out = ringkv(&[
            "get",
            &format!("ev-{i}"),
            "--consistency",
            "eventual",
            "--node",
            &target.nodes[0].ws,
        ]);
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains(&format!("eventual-{i}")),
            "eventual key ev-{i}: {}",
            text(&out)
        );
    }

    // The target now holds keys: restoring again is refused without --force.
    let out = ringkv(&["restore", "--from", &backup, "--node", &target.nodes[0].ws]);
    assert!(
        !out.status.success(),
        "restore into a non-empty cluster: {}",
        text(&out)
    );
    assert!(text(&out).contains("not empty"), "{}", text(&out));

    // Damaged backups are refused before anything is written, even with --force: a
    // key of the backup changed on the target keeps its new value.
    let probe = "w0-1";
    assert_eq!(
        Resp::connect(&target_resp[0]).call(&["SET", probe, "changed"]),
        Value::ok()
    );
    const DATA: &str = "data-000001.rkvb";
    let damaged: Vec<(&str, Damage, &str)> = vec![
        (
            "truncated",
            Box::new(|dir: &Path| {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join(DATA))
                    .expect("open");
                let len = file.metadata().expect("len").len();
                file.set_len(len - 1).expect("truncate");
            }),
            "truncated or altered",
        ),
        (
            "bit-flipped",
            Box::new(|dir: &Path| {
                let path = dir.join(DATA);
                let mut bytes = std::fs::read(&path).expect("read");
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x10;
                std::fs::write(&path, bytes).expect("write");
            }),
            "data-000001.rkvb",
        ),
        (
            "missing file",
            Box::new(|dir: &Path| std::fs::remove_file(dir.join(DATA)).expect("rm")),
            "incomplete",
        ),
        (
            "newer format",
            Box::new(|dir: &Path| {
                let path = dir.join("manifest.json");
                let manifest = std::fs::read_to_string(&path).expect("read");
                let newer = manifest.replace("\"format_version\": 1", "\"format_version\": 2");
                assert_ne!(newer, manifest);
                std::fs::write(&path, newer).expect("write");
            }),
            "format version 2",
        ),
        (
            "no manifest",
            Box::new(|dir: &Path| std::fs::remove_file(dir.join("manifest.json")).expect("rm")),
            "never finished",
        ),
    ];
    for (what, damage, says) in &damaged {
        let dir = scratch.path().join(what.replace(' ', "-"));
        copy_dir(&backup_dir, &dir);
        damage(&dir);
        let out = ringkv(&[
            "restore",
            "--force",
            "--from",
            dir.to_str().expect("utf-8"),
            "--node",
            &target.nodes[0].ws,
        ]);
        assert!(
            !out.status.success(),
            "a {what} backup was restored: {}",
            text(&out)
        );
        assert!(
            text(&out).contains(says),
            "{what}: expected {says:?} in {}",
            text(&out)
        );
        println!(
            "{what} backup refused: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    assert_eq!(
        get(&target_resp, probe).as_deref(),
        Some(&b"changed"[..]),
        "a refused restore wrote"
    );

    // One member of three down: the other two hold a majority of every range.
    source.nodes[2].kill9();
    let partial = scratch.path().join("partial");
    let out = ringkv(&[
        "backup",
        "--to",
        partial.to_str().expect("utf-8"),
        "--node",
        &source.nodes[0].ws,
    ]);
    assert!(out.status.success(), "backup with n3 down: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("n3"),
        "n3 is named: {}",
        text(&out)
    );
    // Two down: refused, naming the ranges, and nothing that looks like a backup left.
    source.nodes[1].kill9();
    let refused = scratch.path().join("refused");
    let out = ringkv(&[
        "backup",
        "--to",
        refused.to_str().expect("utf-8"),
        "--node",
        &source.nodes[0].ws,
    ]);
    assert!(
        !out.status.success(),
        "backup with two of three down: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("have no majority of their replicas read") && text(&out).contains("n2"),
        "{}",
        text(&out)
    );
    assert!(!refused.join("manifest.json").exists());
    println!(
        "backup test: {checked} keys acknowledged before the backup found after restore \
         ({after_start} first acknowledged after it), backup took {:.2} s, test {:.1} s",
        backup_took.as_secs_f64(),
        test_start.elapsed().as_secs_f64()
    );
}
