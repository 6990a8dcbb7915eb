//! The layout check: a layout version names one layout on every node, for the whole
//! run.
//!
//! Membership changes choose the layout of each version by Paxos
//! (`core/src/node/membership/paxos.rs`), and everything after relies on that: the
//! epoch a data message carries names the layouts its sender used, joint quorums are
//! computed from them, and a node adopts a layout a majority reports. Two layouts for
//! one version (one node running v3 with members {n1, n2, n4}, another v3 with {n1,
//! n2, n3, n5}) break all of it, and a register history of a few seconds need not show
//! it. So the event loop hands this check what each node holds whenever that changes
//! (`SimNode::take_layouts`, after every step and boot; committed and pending layouts
//! alike): the first layout seen for a version is that version's, and any other is a
//! conflict, reported once per (version, layout). It looks only at what the nodes
//! hold, never at how they were built (a mutation switch, say).

use std::collections::{BTreeMap, BTreeSet};

use super::api::{LayoutSeen, Name, NodeIndex};
use super::trace::{Line, Scope, Trace};

/// A node holding a layout, from a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub node: NodeIndex,
    pub time_ms: u64,
    pub layout: LayoutSeen,
}

impl std::fmt::Display for Holding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} held {} at {} ms",
            Name(self.node),
            self.layout.summary,
            self.time_ms
        )
    }
}

/// Two different layouts of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutConflict {
    pub version: u64,
    /// The first node seen holding the version.
    pub first: Holding,
    /// A node holding another layout of it, later.
    pub other: Holding,
}

impl LayoutConflict {
    pub fn explanation(&self) -> String {
        format!(
            "two layouts chosen for version {}: {}; {}",
            self.version, self.first, self.other
        )
    }
}

/// Every layout version seen in a run, and the conflicts.
#[derive(Debug, Default)]
pub struct LayoutBook {
    first: BTreeMap<u64, Holding>,
    /// `(version, full)` of the other layouts already reported: each conflict once,
    /// not again for every node that adopts the same wrong layout.
    reported: BTreeSet<(u64, String)>,
    conflicts: Vec<LayoutConflict>,
}

impl LayoutBook {
    /// `node` holds `layouts` at `time_ms`. Returns a trace line per new conflict.
    pub fn observe(
        &mut self,
        node: NodeIndex,
        time_ms: u64,
        layouts: Vec<LayoutSeen>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for layout in layouts {
            let holding = Holding {
                node,
                time_ms,
                layout,
            };
            let version = holding.layout.version;
            let Some(first) = self.first.get(&version) else {
                self.first.insert(version, holding);
                continue;
            };
            if first.layout.full == holding.layout.full
                || !self.reported.insert((version, holding.layout.full.clone()))
            {
                continue;
            }
            let conflict = LayoutConflict {
                version,
                first: first.clone(),
                other: holding,
            };
            lines.push(format!("LAYOUT CONFLICT: {}", conflict.explanation()));
            self.conflicts.push(conflict);
        }
        lines
    }

    pub fn conflicts(&self) -> &[LayoutConflict] {
        &self.conflicts
    }

    /// Versions seen so far.
    pub fn versions(&self) -> usize {
        self.first.len()
    }
}

/// A conflict as a seed's finding: what and the trace that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutFinding {
    pub conflict: LayoutConflict,
    /// Faults and membership messages from shortly before the first holding to the
    /// other one.
    pub trace: Vec<String>,
}

/// What trace lines of Paxos messages and operator requests contain.
const PAXOS_WORDS: [&str; 5] = [
    "LayoutPrepare",
    "LayoutPromise",
    "LayoutAccept",
    "LayoutNack",
    "operator",
];

/// How far before the first holding the finding's trace starts: the proposal that
/// chose it began at most a few request timeouts earlier.
const TRACE_LEAD_MS: u64 = 1_000;

impl LayoutFinding {
    pub fn new(conflict: &LayoutConflict, trace: &Trace, lines_max: usize) -> Self {
        let from = conflict
            .first
            .time_ms
            .min(conflict.other.time_ms)
            .saturating_sub(TRACE_LEAD_MS);
        // The Paxos messages and the operator's requests; not the layout reports and
        // pulls (long, and only spreading what was chosen).
        let about_layouts = |line: &Line| {
            line.scope == Scope::Global || PAXOS_WORDS.iter().any(|word| line.text.contains(word))
        };
        let lines = trace.matching(from, conflict.other.time_ms, lines_max, about_layouts);
        LayoutFinding {
            conflict: conflict.clone(),
            trace: lines.iter().map(|l| l.to_string()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(version: u64, members: &str) -> LayoutSeen {
        LayoutSeen {
            version,
            summary: format!("v{version} {{{members}}}"),
            full: format!("{version}:{members}"),
        }
    }

    #[test]
    fn one_layout_per_version_and_each_conflict_once() {
        let mut book = LayoutBook::default();
        assert!(book.observe(0, 1, vec![seen(1, "n1, n2, n3")]).is_empty());
        // Everyone agreeing, committed and pending: nothing to report.
        let both = vec![seen(1, "n1, n2, n3"), seen(2, "n1, n2, n3, n4")];
        assert!(book.observe(1, 5, both.clone()).is_empty());
        assert!(book.observe(2, 6, both).is_empty());
        assert_eq!(book.versions(), 2);
        // Another layout of version 2: reported once, whoever else adopts it.
        let lines = book.observe(2, 9, vec![seen(2, "n1, n2")]);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("version 2"), "{}", lines[0]);
        assert!(book.observe(0, 10, vec![seen(2, "n1, n2")]).is_empty());
        let conflict = &book.conflicts()[0];
        assert_eq!((conflict.first.node, conflict.other.node), (1, 2));
        assert_eq!(
            conflict.explanation(),
            "two layouts chosen for version 2: n2 held v2 {n1, n2, n3, n4} at 5 ms; \
             n3 held v2 {n1, n2} at 9 ms"
        );
        // A third layout of it is another conflict.
        assert_eq!(book.observe(0, 11, vec![seen(2, "n2, n3")]).len(), 1);
        assert_eq!(book.conflicts().len(), 2);
    }

    #[test]
    fn findings_show_membership_lines_of_the_window() {
        let mut trace = Trace::new(100, false);
        trace.record(
            10,
            Scope::Other,
            "n1 -> n2 m1 +3ms LayoutPrepare { .. }".into(),
        );
        trace.record(11, Scope::Other, "n2 tick".into());
        trace.record(
            11,
            Scope::Other,
            "n2 -> n1 m2 +1ms Layout(LayoutReport { .. })".into(),
        );
        trace.record(12, Scope::Global, "FAULT crash n3".into());
        trace.record(5_000, Scope::Global, "FAULT heal network".into());
        let mut book = LayoutBook::default();
        book.observe(0, 20, vec![seen(2, "n1")]);
        book.observe(1, 30, vec![seen(2, "n2")]);
        let finding = LayoutFinding::new(&book.conflicts()[0], &trace, 10);
        assert_eq!(finding.trace.len(), 2, "{:?}", finding.trace);
        assert!(finding.trace[0].contains("LayoutPrepare"));
        assert!(finding.trace[1].contains("crash n3"));
    }
}
