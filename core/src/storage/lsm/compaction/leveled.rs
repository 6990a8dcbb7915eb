use std::sync::Arc;

use crate::storage::lsm::options::LsmOptions;
use crate::storage::lsm::version::{TableHandle, Version};

/// Tables to merge from `input_level` into `output_level`. Normally
/// `output_level == input_level + 1`; equal levels rewrite one table in place (see
/// [`Plan::rewrite`]).
#[derive(Debug)]
pub struct Plan {
    pub input_level: usize,
    pub output_level: usize,
    /// Input-level tables; for L0, newest first.
    pub upper: Vec<Arc<TableHandle>>,
    /// Output-level tables overlapping the upper range, sorted by key.
    pub lower: Vec<Arc<TableHandle>>,
    /// No table below the output level overlaps the range, so tombstones have nothing
    /// left to shadow and can be dropped.
    pub drop_tombstones: bool,
}

impl Plan {
    /// Rewrites one table of `level` in its place, dropping its tombstones. Only valid
    /// when no deeper level overlaps the table: then its tombstones shadow nothing.
    pub fn rewrite(level: usize, table: Arc<TableHandle>) -> Self {
        Self {
            input_level: level,
            output_level: level,
            upper: vec![table],
            lower: Vec::new(),
            drop_tombstones: true,
        }
    }

    /// One table that overlaps nothing below can change level without being rewritten.
    /// A rewrite in place is never a move: it exists to drop the table's tombstones.
    pub fn is_trivial_move(&self) -> bool {
        self.input_level > 0
            && self.output_level > self.input_level
            && self.upper.len() == 1
            && self.lower.is_empty()
    }

    pub fn input_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.upper
            .iter()
            .chain(self.lower.iter())
            .map(|t| t.meta.table_id)
    }

    pub fn input_bytes(&self) -> u64 {
        self.upper
            .iter()
            .chain(self.lower.iter())
            .map(|t| t.meta.size_bytes)
            .sum()
    }
}

/// Chooses the next compaction, if any is due: by L0 table count and level sizes first,
/// else a table dense with tombstones ([`super::tombstones`]). `cursors[level]` is the
/// largest key of the last table compacted out of `level` by size, so tables are taken
/// round-robin through the key space and no range starves.
pub fn pick(version: &Version, options: &LsmOptions, cursors: &mut [Vec<u8>]) -> Option<Plan> {
    pick_by_size(version, options, cursors).or_else(|| super::tombstones::pick(version, options))
}

fn pick_by_size(version: &Version, options: &LsmOptions, cursors: &mut [Vec<u8>]) -> Option<Plan> {
    let levels = version.levels.len();
    if levels < 2 {
        return None;
    }
    if version.levels[0].len() >= options.l0_compaction_trigger {
        let upper = version.levels[0].clone();
        return Some(plan(version, 0, upper));
    }
    let mut best: Option<(usize, f64)> = None;
    // The last level has nowhere to go.
    for level in 1..levels - 1 {
        let target = options.level_target_bytes(level as u32).max(1);
        let score = version.level_size_bytes(level) as f64 / target as f64;
        if score >= 1.0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((level, score));
        }
    }
    let (level, _) = best?;
    let tables = &version.levels[level];
    let cursor = cursors.get(level).cloned().unwrap_or_default();
    let index = tables.partition_point(|t| t.meta.smallest_key <= cursor);
    let table = tables.get(index).or_else(|| tables.first())?.clone();
    if let Some(c) = cursors.get_mut(level) {
        *c = table.meta.largest_key.clone();
    }
    Some(plan(version, level, vec![table]))
}

/// Merges `upper` (tables of `input_level`; all of L0 when it is 0) into the next level.
pub(super) fn plan(version: &Version, input_level: usize, upper: Vec<Arc<TableHandle>>) -> Plan {
    let output_level = input_level + 1;
    let (smallest, largest) = key_range(&upper);
    let lower = version.overlapping(output_level, &smallest, &largest);
    // Lower tables may reach past the upper range, and their tombstones are rewritten
    // too: check the whole output range against the deeper levels.
    let (smallest, largest) = key_range(upper.iter().chain(lower.iter()));
    let drop_tombstones = (output_level + 1..version.levels.len())
        .all(|l| version.overlapping(l, &smallest, &largest).is_empty());
    Plan {
        input_level,
        output_level,
        upper,
        lower,
        drop_tombstones,
    }
}

/// Smallest and largest key over `tables`.
fn key_range<'a>(tables: impl IntoIterator<Item = &'a Arc<TableHandle>>) -> (Vec<u8>, Vec<u8>) {
    let mut range: Option<(&[u8], &[u8])> = None;
    for t in tables {
        let (s, l) = (
            t.meta.smallest_key.as_slice(),
            t.meta.largest_key.as_slice(),
        );
        range = Some(match range {
            Some((rs, rl)) => (rs.min(s), rl.max(l)),
            None => (s, l),
        });
    }
    let (s, l) = range.unwrap_or_default();
    (s.to_vec(), l.to_vec())
}
