//! The network between nodes: who can reach whom, and what happens to each message.
//!
//! Links are checked when a message *arrives*: a partition that starts while a message
//! is in flight loses it, as a cut cable or a firewall rule would.

use ringkv_core::rand::SplitMix64;

use super::api::{Name, NodeIndex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// One-way delay, uniform in `delay_ms_min..=delay_ms_max`: random delays also
    /// reorder messages.
    pub delay_ms_min: u64,
    pub delay_ms_max: u64,
    pub loss_pct: u64,
    pub duplicate_pct: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            delay_ms_min: 1,
            delay_ms_max: 20,
            loss_pct: 2,
            duplicate_pct: 2,
        }
    }
}

/// A network topology fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partition {
    /// Nodes only reach nodes of their own group.
    Groups(Vec<Vec<NodeIndex>>),
    /// `left` and `right` cannot reach each other; both reach `bridge`.
    Bridge {
        left: Vec<NodeIndex>,
        bridge: NodeIndex,
        right: Vec<NodeIndex>,
    },
    /// Messages from `from` to `to` are lost; the other direction works.
    OneWay {
        from: Vec<NodeIndex>,
        to: Vec<NodeIndex>,
    },
}

fn names(nodes: &[NodeIndex]) -> String {
    let names: Vec<String> = nodes.iter().map(|&i| Name(i).to_string()).collect();
    format!("{{{}}}", names.join(" "))
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partition::Groups(groups) => {
                let groups: Vec<String> = groups.iter().map(|g| names(g)).collect();
                write!(f, "{}", groups.join(" | "))
            }
            Partition::Bridge {
                left,
                bridge,
                right,
            } => write!(
                f,
                "{} | {} | {} (bridge {})",
                names(left),
                Name(*bridge),
                names(right),
                Name(*bridge)
            ),
            Partition::OneWay { from, to } => {
                write!(f, "{} -/-> {} (one-way)", names(from), names(to))
            }
        }
    }
}

/// What becomes of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Lost,
    /// Arrives after this many ms.
    Delivered(u64),
    /// Arrives twice, after each delay.
    Duplicated(u64, u64),
}

#[derive(Debug, Clone)]
pub struct Network {
    nodes: usize,
    /// `blocked[from * nodes + to]`.
    blocked: Vec<bool>,
    config: NetConfig,
}

impl Network {
    pub fn new(nodes: usize, config: NetConfig) -> Self {
        Network {
            nodes,
            blocked: vec![false; nodes * nodes],
            config,
        }
    }

    pub fn heal(&mut self) {
        self.blocked.fill(false);
    }

    fn block(&mut self, from: NodeIndex, to: NodeIndex) {
        if from < self.nodes && to < self.nodes && from != to {
            self.blocked[from * self.nodes + to] = true;
        }
    }

    /// Replaces the topology by `partition` (on top of a healed network).
    pub fn apply(&mut self, partition: &Partition) {
        self.heal();
        match partition {
            Partition::Groups(groups) => {
                let group_of = |n: NodeIndex| groups.iter().position(|g| g.contains(&n));
                for a in 0..self.nodes {
                    for b in 0..self.nodes {
                        if group_of(a) != group_of(b) {
                            self.block(a, b);
                        }
                    }
                }
            }
            Partition::Bridge { left, right, .. } => {
                for &a in left {
                    for &b in right {
                        self.block(a, b);
                        self.block(b, a);
                    }
                }
            }
            Partition::OneWay { from, to } => {
                for &a in from {
                    for &b in to {
                        self.block(a, b);
                    }
                }
            }
        }
    }

    /// Whether a message from `from` arriving at `to` now gets through the topology.
    pub fn connected(&self, from: NodeIndex, to: NodeIndex) -> bool {
        from == to
            || !self
                .blocked
                .get(from * self.nodes + to)
                .copied()
                .unwrap_or(true)
    }

    /// Draws loss, duplication and delay for one message.
    pub fn fate(&self, rng: &mut SplitMix64) -> Fate {
        let c = &self.config;
        if rng.chance(c.loss_pct) {
            return Fate::Lost;
        }
        let delay = rng.range(c.delay_ms_min, c.delay_ms_max);
        if rng.chance(c.duplicate_pct) {
            return Fate::Duplicated(delay, rng.range(c.delay_ms_min, c.delay_ms_max));
        }
        Fate::Delivered(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_block_the_right_links() {
        let mut net = Network::new(5, NetConfig::default());
        net.apply(&Partition::Groups(vec![vec![0, 1], vec![2, 3, 4]]));
        assert!(net.connected(0, 1) && net.connected(2, 4));
        assert!(!net.connected(0, 2) && !net.connected(3, 1));

        net.apply(&Partition::Bridge {
            left: vec![0, 1],
            bridge: 2,
            right: vec![3, 4],
        });
        assert!(net.connected(0, 2) && net.connected(2, 4) && net.connected(4, 2));
        assert!(!net.connected(0, 3) && !net.connected(4, 1));

        net.apply(&Partition::OneWay {
            from: vec![0],
            to: vec![1, 2, 3, 4],
        });
        assert!(!net.connected(0, 1) && net.connected(1, 0));

        assert_eq!(
            Partition::Bridge {
                left: vec![0],
                bridge: 2,
                right: vec![3, 4]
            }
            .to_string(),
            "{n1} | n3 | {n4 n5} (bridge n3)"
        );
        net.heal();
        assert!((0..5).all(|a| (0..5).all(|b| net.connected(a, b))));
        // A node always reaches itself.
        net.apply(&Partition::Groups(vec![vec![0], vec![1]]));
        assert!(net.connected(0, 0) && !net.connected(0, 1));
    }

    #[test]
    fn fates_follow_the_configured_rates() {
        let net = Network::new(
            2,
            NetConfig {
                loss_pct: 10,
                duplicate_pct: 10,
                ..NetConfig::default()
            },
        );
        let mut rng = SplitMix64::new(7);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..10_000 {
            match net.fate(&mut rng) {
                Fate::Lost => lost += 1,
                Fate::Duplicated(a, b) => {
                    dup += 1;
                    assert!((1..=20).contains(&a) && (1..=20).contains(&b));
                }
                Fate::Delivered(d) => assert!((1..=20).contains(&d)),
            }
        }
        assert!((800..1200).contains(&lost), "{lost}");
        assert!((700..1100).contains(&dup), "{dup}");
    }
}
