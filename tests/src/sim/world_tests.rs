//! Event-loop mechanics with a trivial node: timers under skew, pauses, crashes.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::sim::workload::WorkloadConfig;

/// What nodes observed: `(node, local now, input)`.
type Log = Rc<RefCell<Vec<(NodeIndex, u64, String)>>>;

/// Every 100 ms of its own clock, pings the next node.
struct Pinger {
    me: NodeIndex,
    nodes: usize,
    next_tick: u64,
    log: Log,
    out: Vec<Output<u64>>,
}

impl SimNode for Pinger {
    type Message = u64;

    fn handle(&mut self, now: u64, input: Input<u64>) {
        let what = match input {
            Input::Tick if now >= self.next_tick => {
                self.next_tick += 100;
                let to = (self.me + 1) % self.nodes;
                self.out.push(Output::Send { to, message: now });
                "tick".to_string()
            }
            Input::Tick => "early tick".to_string(),
            Input::Peer { from, .. } => format!("ping from {from}"),
            Input::Client { .. } | Input::Admin { .. } => "client".to_string(),
        };
        self.log.borrow_mut().push((self.me, now, what));
    }

    fn poll_output(&mut self) -> Option<Output<u64>> {
        self.out.pop()
    }

    fn poll_timeout(&self) -> Option<u64> {
        Some(self.next_tick)
    }
}

struct Rack {
    nodes: usize,
    log: Log,
}

impl Hardware for Rack {
    type Node = Pinger;

    fn nodes(&self) -> usize {
        self.nodes
    }

    fn replicas(&self) -> usize {
        1
    }

    fn boot(&mut self, me: NodeIndex, now_ms: u64, _seed: u64) -> Result<Pinger, SimError> {
        Ok(Pinger {
            me,
            nodes: self.nodes,
            next_tick: now_ms + 100,
            log: self.log.clone(),
            out: Vec::new(),
        })
    }

    fn power_loss(&mut self, _: NodeIndex, _: u64) {}

    fn replica_version(&self, _: NodeIndex, _: &[u8]) -> Result<Option<Vec<u8>>, SimError> {
        Ok(None)
    }

    fn message_key(&mut self, _: &u64) -> Option<Vec<u8>> {
        None
    }
}

/// Two nodes, a perfect network, no clients and no scheduled faults.
fn world(skew_permille: u64) -> (World<Rack>, Log) {
    let log = Log::default();
    let config = SimConfig {
        nodes: 2,
        replicas: 1,
        workload_ms: 0,
        skew_permille: (skew_permille, skew_permille),
        net: NetConfig {
            delay_ms_min: 5,
            delay_ms_max: 5,
            loss_pct: 0,
            duplicate_pct: 0,
        },
        workload: WorkloadConfig::default(),
        ..SimConfig::default()
    };
    let rack = Rack {
        nodes: 2,
        log: log.clone(),
    };
    (World::new(rack, config, 1).unwrap(), log)
}

fn events(log: &Log, node: NodeIndex, what: &str) -> Vec<u64> {
    let log = log.borrow();
    log.iter()
        .filter(|(n, _, w)| *n == node && w.starts_with(what))
        .map(|(_, t, _)| *t)
        .collect()
}

#[test]
fn timers_fire_on_the_nodes_own_clock() {
    let (mut w, log) = world(2000);
    w.run_until(300).unwrap();
    // Local time runs twice as fast: ticks at local 100, 200, ... = every 50 ms.
    assert_eq!(events(&log, 0, "tick"), [100, 200, 300, 400, 500, 600]);
    assert!(events(&log, 0, "early tick").is_empty());
    // Pings take 5 ms = 10 local ms.
    assert_eq!(events(&log, 1, "ping")[..2], [110, 210]);
}

#[test]
fn a_paused_node_handles_everything_late_and_in_order() {
    let (mut w, log) = world(1000);
    w.run_until(150).unwrap();
    w.apply(Fault::Pause { node: 1, ms: 300 }).unwrap();
    w.run_until(1000).unwrap();
    let seen = events(&log, 1, "");
    assert!(seen.iter().all(|&t| t <= 150 || t >= 450), "{seen:?}");
    // The pings and ticks held back all arrive at the resume, then life goes on.
    assert!(seen.iter().filter(|&&t| t == 450).count() >= 4, "{seen:?}");
    assert!(seen.windows(2).all(|p| p[0] <= p[1]));
}

#[test]
fn a_crashed_node_loses_its_messages_until_it_boots() {
    let (mut w, log) = world(1000);
    w.run_until(150).unwrap();
    w.crash(1);
    w.run_until(500).unwrap();
    assert!(events(&log, 1, "").iter().all(|&t| t <= 150));
    assert!(events(&log, 0, "tick").len() >= 5, "node 0 carries on");
    let text: Vec<String> = w
        .trace
        .about(b"", 0, 500, 100)
        .iter()
        .map(|l| l.text.clone())
        .collect();
    assert!(
        text.iter().any(|t| t == "n2 CRASHES (power loss)"),
        "{text:?}"
    );
    w.boot(1).unwrap();
    w.run_until(800).unwrap();
    let pings = events(&log, 1, "ping");
    assert!(pings.iter().any(|&t| t > 500), "{pings:?}");
    // The rebooted node's own timer starts from its boot.
    assert!(events(&log, 1, "tick").contains(&600));
}
