//! Client load for process tests checked for linearizability (the chaos and rolling
//! restart tests): RESP clients on shared registers and write-once keys, and final
//! reads that retry until a quorum answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringkv_tests::checker::{self, CheckOptions, Op, Operation, Outcome, Verdict};

use super::{Resp, Value};

/// A client's read and write timeout.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// xorshift64*: the test's own randomness (seed printed).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
pub struct ClientLog {
    pub ops: Vec<Operation>,
    /// Write-once keys whose SET was acknowledged.
    pub acked_once: Vec<String>,
    /// `OVERLOADED` replies (in `ops` as refused writes/reads).
    pub overloaded: u64,
}

pub fn outcome_of(reply: Option<&Value>, at: u64, read: bool) -> Outcome {
    match reply {
        Some(Value::Simple(s)) if s == "OK" && !read => Outcome::done(at),
        Some(Value::Bulk(value)) if read => Outcome::read(at, value.as_deref()),
        Some(Value::Error(e)) if e.starts_with("UNAVAILABLE") || e.starts_with("OVERLOADED") => {
            Outcome::Failed
        }
        Some(Value::Error(e)) if e.starts_with("INDETERMINATE") => Outcome::Unknown,
        None => Outcome::Unknown,
        Some(other) => panic!("unexpected reply {other:?}"),
    }
}

/// One load client: until `stop`, connects to a random node of `resp` and runs 10
/// operations on it: 45% GET and 40% SET of `register_keys` shared registers (unique
/// values), 15% SET of a fresh write-once key. Every operation goes into the history
/// with its outcome; an operation with no answer leaves its client id open forever.
pub fn client(
    index: u64,
    resp: Vec<String>,
    start: Instant,
    stop: Arc<AtomicBool>,
    seed: u64,
    register_keys: u64,
) -> ClientLog {
    let now = || start.elapsed().as_micros() as u64;
    let mut rng = Rng(seed | 1);
    let mut log = ClientLog::default();
    let mut client_id = index * 1_000_000;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let node = rng.below(resp.len() as u64) as usize;
        let Some(mut conn) = Resp::try_connect(&resp[node], CLIENT_TIMEOUT) else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        for _ in 0..10 {
            seq += 1;
            let dice = rng.below(100);
            let (key, op, args): (String, Op, Vec<String>) = if dice < 45 {
                let key = format!("r{}", rng.below(register_keys));
                (key.clone(), Op::Read, vec!["GET".into(), key])
            } else if dice < 85 {
                let key = format!("r{}", rng.below(register_keys));
                let value = format!("c{index}-{seq}");
                (
                    key.clone(),
                    Op::Write(value.clone().into_bytes()),
                    vec!["SET".into(), key, value],
                )
            } else {
                let key = format!("once-{index}-{seq}");
                (
                    key.clone(),
                    Op::Write(b"x".to_vec()),
                    vec!["SET".into(), key, "x".into()],
                )
            };
            let invoke = now();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let reply = conn.try_call(&args);
            if matches!(&reply, Some(Value::Error(e)) if e.starts_with("OVERLOADED")) {
                log.overloaded += 1;
            }
            let outcome = outcome_of(reply.as_ref(), now(), op == Op::Read);
            if key.starts_with("once-") && matches!(outcome, Outcome::Ok { .. }) {
                log.acked_once.push(key.clone());
            }
            let unknown = outcome == Outcome::Unknown;
            log.ops.push(Operation {
                client: client_id,
                key: key.into_bytes(),
                op,
                invoke,
                outcome,
            });
            if unknown {
                // An op that may still take effect stays open forever: later ops of this
                // thread belong to a fresh client.
                client_id += 1;
            }
            if reply.is_none() {
                break;
            }
            thread::sleep(Duration::from_millis(15));
        }
    }
    log
}

pub fn read_until_available(resp: &[String], key: &str) -> Option<Value> {
    for attempt in 0..200 {
        let node = &resp[attempt % resp.len()];
        if let Some(mut c) = Resp::try_connect(node, CLIENT_TIMEOUT) {
            match c.try_call(&["GET", key]) {
                Some(Value::Error(e)) if e.starts_with("UNAVAILABLE") => {}
                Some(value) => return Some(value),
                None => {}
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

/// What `finish_run` found.
pub struct RunEnd {
    /// Operations by outcome, the final reads included.
    pub ok: usize,
    pub refused: usize,
    pub unknown: usize,
    /// Keys whose history was checked, and how many were not linearizable (each
    /// printed with the checker's explanation).
    pub keys: usize,
    pub violations: usize,
    pub undecided: Vec<Vec<u8>>,
    /// Acknowledged write-once keys that could not be read back.
    pub lost: Vec<String>,
}

/// The end of a run, once the faults are healed: reads every register once more (into
/// the history, so a lost write shows as a violation), reads back every acknowledged
/// write-once key, and checks every key's history.
pub fn finish_run(
    resp: &[String],
    start: Instant,
    register_keys: u64,
    ops: &mut Vec<Operation>,
    acked_once: &[String],
) -> RunEnd {
    for k in 0..register_keys {
        let key = format!("r{k}");
        let invoke = start.elapsed().as_micros() as u64;
        let reply = read_until_available(resp, &key);
        let at = start.elapsed().as_micros() as u64;
        ops.push(Operation {
            client: 99_000_000 + k,
            key: key.into_bytes(),
            op: Op::Read,
            invoke,
            outcome: outcome_of(reply.as_ref(), at, true),
        });
    }
    let lost = acked_once
        .iter()
        .filter(|key| read_until_available(resp, key) != Some(Value::bulk("x")))
        .cloned()
        .collect();
    let verdicts = checker::check_history(ops, &CheckOptions::default());
    let mut violations = 0;
    let mut undecided = Vec::new();
    for (key, verdict) in &verdicts {
        match verdict {
            Verdict::Violation(v) => {
                violations += 1;
                println!(
                    "violation on {}:\n{}",
                    String::from_utf8_lossy(key),
                    v.explanation
                );
            }
            Verdict::Unknown(_) => undecided.push(key.clone()),
            _ => {}
        }
    }
    let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|o| f(&o.outcome)).count();
    RunEnd {
        ok: count(|o| matches!(o, Outcome::Ok { .. })),
        refused: count(|o| *o == Outcome::Failed),
        unknown: count(|o| *o == Outcome::Unknown),
        keys: verdicts.len(),
        violations,
        undecided,
        lost,
    }
}
