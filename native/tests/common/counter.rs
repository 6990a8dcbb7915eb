//! The counter workload of the chaos test: clients `INCR` one shared key through
//! kills, pauses and partitions. Afterwards the counter must equal the acknowledged
//! increments plus at most the indeterminate ones (an increment that may have landed),
//! and no two acknowledged increments may have returned the same value (each one
//! is linearized at its own count).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::load::{read_until_available, Rng, CLIENT_TIMEOUT};
use super::{Resp, Value};

/// The key the counter clients increment.
pub const COUNTER_KEY: &str = "counter";

#[derive(Debug, Default)]
pub struct CounterLog {
    /// The value each acknowledged `INCR` returned.
    pub acked: Vec<i64>,
    /// No answer, or `INDETERMINATE`: the increment may or may not have happened.
    pub indeterminate: u64,
    /// `UNAVAILABLE`, `OVERLOADED` or `CONTENTION`: it did not happen.
    pub refused: u64,
}

/// One counter client: until `stop`, `INCR` on a random node, 10 per connection.
pub fn counter_client(resp: Vec<String>, stop: Arc<AtomicBool>, seed: u64) -> CounterLog {
    let mut rng = Rng(seed | 1);
    let mut log = CounterLog::default();
    while !stop.load(Ordering::Relaxed) {
        let node = rng.below(resp.len() as u64) as usize;
        let Some(mut conn) = Resp::try_connect(&resp[node], CLIENT_TIMEOUT) else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        for _ in 0..10 {
            let reply = conn.try_call(&["INCR", COUNTER_KEY]);
            match &reply {
                Some(Value::Int(n)) => log.acked.push(*n),
                Some(Value::Error(e))
                    if e.starts_with("UNAVAILABLE")
                        || e.starts_with("OVERLOADED")
                        || e.starts_with("CONTENTION") =>
                {
                    log.refused += 1
                }
                Some(Value::Error(e)) if e.starts_with("INDETERMINATE") => log.indeterminate += 1,
                None => log.indeterminate += 1,
                Some(other) => panic!("INCR answered {other:?}"),
            }
            if reply.is_none() {
                break;
            }
            thread::sleep(Duration::from_millis(15));
        }
    }
    log
}

/// What the counter check found.
#[derive(Debug)]
pub struct CounterEnd {
    pub acked: usize,
    pub indeterminate: u64,
    pub refused: u64,
    pub final_value: i64,
    /// Values two acknowledged increments both returned (must be empty).
    pub duplicates: Vec<i64>,
}

impl CounterEnd {
    /// Every acknowledged increment counted, no more than the maybe-applied ones on
    /// top, and each acknowledged one at its own count.
    pub fn holds(&self) -> bool {
        let acked = self.acked as i64;
        self.duplicates.is_empty()
            && self.final_value >= acked
            && self.final_value <= acked + self.indeterminate as i64
    }
}

/// Reads the counter once the faults are healed and checks the logs against it.
pub fn finish_counter(resp: &[String], logs: &[CounterLog]) -> CounterEnd {
    let final_value = match read_until_available(resp, COUNTER_KEY) {
        Some(Value::Bulk(Some(bytes))) => String::from_utf8_lossy(&bytes)
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("the counter reads {bytes:?}")),
        Some(Value::Bulk(None)) => 0,
        other => panic!("the counter could not be read: {other:?}"),
    };
    let mut all: Vec<i64> = logs
        .iter()
        .flat_map(|log| log.acked.iter().copied())
        .collect();
    all.sort_unstable();
    let duplicates = all
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    CounterEnd {
        acked: all.len(),
        indeterminate: logs.iter().map(|log| log.indeterminate).sum(),
        refused: logs.iter().map(|log| log.refused).sum(),
        final_value,
        duplicates,
    }
}
