//! Totals over many seeds, as text and as one JSON line.

use super::error::SimError;
use super::run::SeedReport;
use super::sets::SetCounts;
use super::workload::OpCounts;
use super::world::MembershipCounts;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub seeds: u64,
    pub histories: u64,
    pub counts: OpCounts,
    pub violations: u64,
    pub lost_acked: u64,
    /// The set workload's requests; `set_counts.acked` is `set_elements_acked`.
    pub set_counts: SetCounts,
    pub set_elements_lost: u64,
    /// Seeds whose sets were read before hints drained (settle cap passed).
    pub set_unsettled: u64,
    /// Layout versions that named two layouts (`layouts.rs`).
    pub layout_conflicts: u64,
    /// Delete-heavy seeds checked for purge, and tombstones their members still held
    /// after the settle (0 expected).
    pub purge_checked: u64,
    pub tombstones_left: u64,
    pub inconclusive: u64,
    pub verify_failures: u64,
    /// Convergence times of the seeds that converged within the cap.
    pub converge_ms: Vec<u64>,
    pub not_converged: u64,
    /// The seeds that did not converge within the cap (to rerun with `--trace`).
    pub not_converged_seeds: Vec<u64>,
    /// Seeds that show a bug, and seeds whose run itself failed.
    pub failed_seeds: Vec<u64>,
    pub errors: Vec<(u64, SimError)>,
    pub membership: MembershipCounts,
    /// Seeds of the shard mix (processes of several shards) and the whole-process
    /// power losses they ran.
    pub shard_seeds: u64,
    pub process_crashes: u64,
    /// The scan mix: seeds in it, scans completed and checked, pages asked, and what
    /// the checks found (`scans.rs`).
    pub scan_seeds: u64,
    pub scans: u64,
    pub scan_pages: u64,
    pub scan_violations: u64,
    /// Seeds that ran the update mix (`updates.rs`); its counts are in `counts`.
    pub update_seeds: u64,
}

impl Summary {
    pub fn add(&mut self, report: &SeedReport) {
        self.seeds += 1;
        self.histories += report.histories as u64;
        self.counts.add(&report.counts);
        self.violations += report.violations() as u64;
        self.lost_acked += report.lost_acked() as u64;
        self.set_counts.add(&report.set_counts);
        self.set_elements_lost += report.set_elements_lost;
        self.set_unsettled += u64::from(report.set_unsettled);
        self.layout_conflicts += report.layout_findings.len() as u64;
        if let Some(left) = report.tombstones_left {
            self.purge_checked += 1;
            self.tombstones_left += left;
        }
        self.inconclusive += report.inconclusive as u64;
        self.verify_failures += report.verify_failures as u64;
        let m = &report.membership;
        self.membership.asked += m.asked;
        self.membership.chosen += m.chosen;
        self.membership.refused += m.refused;
        self.membership.unknown += m.unknown;
        self.membership.lost += m.lost;
        self.membership.force_removed += m.force_removed;
        self.membership.aborted += m.aborted;
        self.shard_seeds += u64::from(report.shard_processes > 0);
        self.scan_seeds += u64::from(report.scan_counts.pages > 0);
        self.scans += report.scan_counts.completed;
        self.scan_pages += report.scan_counts.pages;
        self.scan_violations += report.scan_findings.len() as u64;
        self.update_seeds += u64::from(report.counts.updates + report.counts.adds > 0);
        self.process_crashes += report.process_crashes;
        match report.converge_ms {
            Some(ms) => self.converge_ms.push(ms),
            None => {
                self.not_converged += 1;
                self.not_converged_seeds.push(report.seed);
            }
        }
        if report.failed() {
            self.failed_seeds.push(report.seed);
        }
    }

    pub fn add_error(&mut self, seed: u64, error: SimError) {
        self.seeds += 1;
        self.failed_seeds.push(seed);
        self.errors.push((seed, error));
    }

    /// Median convergence time (the lower median) over all seeds, a seed that did not
    /// converge counting as infinite: `None` if more than half did not.
    pub fn converge_ms_p50(&self) -> Option<u64> {
        let mut v = self.converge_ms.clone();
        v.sort_unstable();
        let seeds = v.len() + self.not_converged as usize;
        v.get(seeds.checked_sub(1)? / 2).copied()
    }

    /// Slowest convergence, once every seed converged within the cap (`None` otherwise
    /// or with no seeds): the tail the median hides.
    pub fn converge_ms_max(&self) -> Option<u64> {
        if self.not_converged > 0 {
            return None;
        }
        self.converge_ms.iter().max().copied()
    }

    /// Whether any seed shows a bug or failed to run.
    pub fn failed(&self) -> bool {
        !self.failed_seeds.is_empty()
    }

    pub fn text(&self) -> String {
        let c = &self.counts;
        let p50 = self
            .converge_ms_p50()
            .map_or("null".to_string(), |v| v.to_string());
        let max = self
            .converge_ms_max()
            .map_or("null".to_string(), |v| v.to_string());
        format!(
            "seeds: {}\nhistories checked: {}\noperations: {} (ok {}, unavailable {}, indeterminate {}, timed out {}, rejected {})\nviolations: {}\nlost_acked: {}\nset_elements_acked: {} (set writes {}: failed {}, unknown {}; set reads {}, ok {})\nset_elements_lost: {}\nset seeds unsettled before the final read: {}\nlayout conflicts: {}\ndelete-heavy seeds checked for purge: {}, tombstones left: {}\ninconclusive: {}\nunreadable after heal: {}\nprotocol errors: {}\nmembership changes: asked {}, chosen {}, refused {}, unknown {}; aborted {}; machines lost for good {}, force-removed {}\nshard seeds: {}, whole-process crashes: {}\nscan seeds: {}, scans checked: {} ({} pages), scan violations: {}\nupdate seeds: {}, conditional sets: {}, adds: {} (applied {}, not applied {}, not an integer {}, contention {})\nconverge_ms_p50: {} (max {}; {} seeds did not converge within the cap, counted as infinite: {:?})\nerrors: {}\nfailed seeds: {:?}",
            self.seeds,
            self.histories,
            c.issued,
            c.ok,
            c.unavailable,
            c.indeterminate,
            c.timed_out,
            c.rejected,
            self.violations,
            self.lost_acked,
            self.set_counts.acked,
            self.set_counts.writes,
            self.set_counts.failed,
            self.set_counts.unknown,
            self.set_counts.reads,
            self.set_counts.reads_ok,
            self.set_elements_lost,
            self.set_unsettled,
            self.layout_conflicts,
            self.purge_checked,
            self.tombstones_left,
            self.inconclusive,
            self.verify_failures,
            c.protocol_errors + self.set_counts.protocol_errors,
            self.membership.asked,
            self.membership.chosen,
            self.membership.refused,
            self.membership.unknown,
            self.membership.aborted,
            self.membership.lost,
            self.membership.force_removed,
            self.shard_seeds,
            self.process_crashes,
            self.scan_seeds,
            self.scans,
            self.scan_pages,
            self.scan_violations,
            self.update_seeds,
            c.updates,
            c.adds,
            c.applied,
            c.not_applied,
            c.not_an_integer,
            c.contention,
            p50,
            max,
            self.not_converged,
            self.not_converged_seeds,
            self.errors.len(),
            self.failed_seeds
        )
    }

    /// One line of JSON (numbers and `null` only, so no serializer is needed).
    pub fn json(&self) -> String {
        let c = &self.counts;
        let p50 = self
            .converge_ms_p50()
            .map_or("null".to_string(), |v| v.to_string());
        let max = self
            .converge_ms_max()
            .map_or("null".to_string(), |v| v.to_string());
        let seeds: Vec<String> = self.failed_seeds.iter().map(u64::to_string).collect();
        format!(
            "{{\"seeds\":{},\"histories\":{},\"operations\":{},\"ok\":{},\"violations\":{},\"lost_acked\":{},\"set_elements_acked\":{},\"set_elements_lost\":{},\"set_writes\":{},\"set_unsettled\":{},\"layout_conflicts\":{},\"purge_checked\":{},\"tombstones_left\":{},\"indeterminate\":{},\"timed_out\":{},\"unavailable\":{},\"rejected\":{},\"inconclusive\":{},\"verify_failures\":{},\"protocol_errors\":{},\"membership_asked\":{},\"membership_chosen\":{},\"membership_aborted\":{},\"machines_lost\":{},\"force_removed\":{},\"shard_seeds\":{},\"process_crashes\":{},\"scan_seeds\":{},\"scans\":{},\"scan_violations\":{},\"update_seeds\":{},\"updates\":{},\"adds\":{},\"updates_applied\":{},\"updates_not_applied\":{},\"not_an_integer\":{},\"contention\":{},\"converge_ms_p50\":{},\"converge_ms_max\":{},\"not_converged\":{},\"errors\":{},\"failed_seeds\":[{}]}}",
            self.seeds,
            self.histories,
            c.issued,
            c.ok,
            self.violations,
            self.lost_acked,
            self.set_counts.acked,
            self.set_elements_lost,
            self.set_counts.writes,
            self.set_unsettled,
            self.layout_conflicts,
            self.purge_checked,
            self.tombstones_left,
            c.indeterminate,
            c.timed_out,
            c.unavailable,
            c.rejected,
            self.inconclusive,
            self.verify_failures,
            c.protocol_errors + self.set_counts.protocol_errors,
            self.membership.asked,
            self.membership.chosen,
            self.membership.aborted,
            self.membership.lost,
            self.membership.force_removed,
            self.shard_seeds,
            self.process_crashes,
            self.scan_seeds,
            self.scans,
            self.scan_violations,
            self.update_seeds,
            c.updates,
            c.adds,
            c.applied,
            c.not_applied,
            c.not_an_integer,
            c.contention,
            p50,
            max,
            self.not_converged,
            self.errors.len(),
            seeds.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_json() {
        let mut s = Summary::default();
        assert_eq!(s.converge_ms_p50(), None);
        assert!(s.json().contains("\"converge_ms_p50\":null"));
        s.converge_ms = vec![30, 10, 20, 40];
        assert_eq!(s.converge_ms_p50(), Some(20));
        assert_eq!(s.converge_ms_max(), Some(40));
        assert!(s
            .json()
            .contains("\"converge_ms_p50\":20,\"converge_ms_max\":40,"));
        s.not_converged = 2;
        assert_eq!(s.converge_ms_max(), None);
        assert_eq!(s.converge_ms_p50(), Some(30));
        s.not_converged = 4;
        assert_eq!(s.converge_ms_p50(), Some(40));
        s.not_converged = 5;
        assert_eq!(s.converge_ms_p50(), None);
        s.not_converged = 0;
        s.seeds = 4;
        s.add_error(9, SimError::EventBudget(1));
        let json = s.json();
        assert!(json.starts_with("{\"seeds\":5,\"histories\":0,"), "{json}");
        assert!(
            json.ends_with("\"errors\":1,\"failed_seeds\":[9]}"),
            "{json}"
        );
        assert!(s.failed());
    }
}
