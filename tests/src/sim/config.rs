//! Everything a run is parameterised by, besides its seed.

use super::error::SimError;
use super::faults::FaultConfig;
use super::network::NetConfig;
use super::sets::SetConfig;
use super::workload::WorkloadConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Initial members.
    pub nodes: usize,
    /// Machines started with no member list, for membership changes to add (only
    /// implementations with membership changes use them).
    pub spare_nodes: usize,
    /// Replicas per key (N); quorums are N/2 + 1.
    pub replicas: usize,
    pub workload: WorkloadConfig,
    /// The eventual-mode set workload, run alongside where the nodes support it.
    pub sets: SetConfig,
    pub net: NetConfig,
    pub faults: FaultConfig,
    /// Clients issue requests and faults happen during this long.
    pub workload_ms: u64,
    /// Per-node timer rate, per mille, drawn uniformly from this range.
    pub skew_permille: (u64, u64),
    /// Client <-> node message delay: clients are not partitioned, only slow.
    pub client_delay_ms: (u64, u64),
    /// Passed to the nodes: a quorum phase's timeout.
    pub request_timeout_ms: u64,
    pub gossip_interval_ms: u64,
    /// After the heal, how long to wait for every key's replicas to agree.
    pub converge_cap_ms: u64,
    /// Post-run reads of every key: attempts and the pause between them (a node that
    /// just restarted may still believe its peers dead).
    pub verify_attempts: u32,
    pub verify_retry_ms: u64,
    /// Events per run before the run is declared stuck.
    pub events_max: u64,
    /// Trace lines kept for failure reports (the hash covers all of them).
    pub trace_lines_max: usize,
    /// Lines of a key's trace shown per finding.
    pub trace_lines_shown: usize,
    /// Print every trace line as it happens.
    pub trace_echo: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            spare_nodes: 1,
            replicas: 3,
            workload: WorkloadConfig::default(),
            sets: SetConfig::default(),
            net: NetConfig::default(),
            faults: FaultConfig::default(),
            workload_ms: 8_000,
            skew_permille: (900, 1100),
            client_delay_ms: (1, 3),
            request_timeout_ms: 500,
            gossip_interval_ms: 100,
            converge_cap_ms: 10_000,
            verify_attempts: 20,
            verify_retry_ms: 250,
            events_max: 20_000_000,
            trace_lines_max: 200_000,
            trace_lines_shown: 60,
            trace_echo: false,
        }
    }
}

impl SimConfig {
    /// A shorter run, for debug-build test suites.
    pub fn small() -> Self {
        SimConfig {
            workload_ms: 4_000,
            workload: WorkloadConfig {
                ops_per_client: 40,
                ..WorkloadConfig::default()
            },
            converge_cap_ms: 5_000,
            ..SimConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let fail = |m: &str| Err(SimError::Config(m.to_string()));
        if self.nodes == 0 || self.replicas == 0 || self.replicas > self.nodes {
            return fail("need 1 <= replicas <= nodes");
        }
        if self.workload.clients == 0 || self.workload.keys == 0 {
            return fail("need at least one client and one key");
        }
        if self.sets.clients > 0 && self.sets.keys == 0 {
            return fail("set clients need at least one set key");
        }
        if self.net.delay_ms_min > self.net.delay_ms_max
            || self.client_delay_ms.0 > self.client_delay_ms.1
            || self.faults.epoch_ms_min > self.faults.epoch_ms_max
            || self.skew_permille.0 == 0
            || self.skew_permille.0 > self.skew_permille.1
        {
            return fail("a range has min > max (or a zero skew)");
        }
        if self.workload.client_timeout_ms <= 2 * self.request_timeout_ms {
            return fail("client_timeout_ms must exceed two request timeouts");
        }
        Ok(())
    }
}
