//! Run bookkeeping for the initiator: packing the nodes to compare into bounded
//! messages, and mapping a response's offsets back to node indices.

use super::config::MAX_HASHES_PER_MESSAGE;
use super::error::AntiEntropyError;

/// The children `shift` levels below each of `parents` (ascending), as runs
/// `(index_start, len)` grouped into parts of at most `MAX_HASHES_PER_MESSAGE` hashes.
/// Adjacent parents' children are contiguous, so they share a run.
pub(super) fn pack_children(parents: &[u64], shift: u8) -> Vec<Vec<(u64, usize)>> {
    let block = 1usize << shift;
    let mut parts: Vec<Vec<(u64, usize)>> = Vec::new();
    let mut current: Vec<(u64, usize)> = Vec::new();
    let mut current_len = 0usize;
    for &parent in parents {
        let mut start = parent << shift;
        let mut remaining = block;
        while remaining > 0 {
            let take = remaining.min(MAX_HASHES_PER_MESSAGE - current_len);
            match current.last_mut() {
                Some((run_start, run_len)) if *run_start + *run_len as u64 == start => {
                    *run_len += take
                }
                _ => current.push((start, take)),
            }
            current_len += take;
            start += take as u64;
            remaining -= take;
            if current_len == MAX_HASHES_PER_MESSAGE {
                parts.push(std::mem::take(&mut current));
                current_len = 0;
            }
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// Maps a response's offsets back to node indices through the runs that were sent.
/// Offsets must be strictly ascending and within the hashes sent.
pub(super) fn offsets_to_indices(
    runs: &[(u64, usize)],
    offsets: &[u16],
) -> Result<Vec<u64>, AntiEntropyError> {
    let sent: usize = runs.iter().map(|(_, len)| len).sum();
    let bad = AntiEntropyError::BadOffsets { sent };
    let mut indices = Vec::with_capacity(offsets.len());
    let mut run_iter = runs.iter();
    let mut run = run_iter.next();
    // Offset of the first hash of `run` among all hashes sent.
    let mut run_first = 0usize;
    let mut previous: Option<u16> = None;
    for &offset in offsets {
        if previous.is_some_and(|p| p >= offset) {
            return Err(bad);
        }
        previous = Some(offset);
        let offset = usize::from(offset);
        loop {
            let &(start, len) = run.ok_or_else(|| bad.clone())?;
            if offset < run_first + len {
                indices.push(start + (offset - run_first) as u64);
                break;
            }
            run_first += len;
            run = run_iter.next();
        }
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_pack_into_full_messages_with_merged_runs() {
        // Parents 0, 1 (adjacent: one run) and 5, 16 children each.
        assert_eq!(pack_children(&[0, 1, 5], 4), vec![vec![(0, 32), (80, 16)]]);
        // 40 parents × 16 children = 640 hashes: 256 + 256 + 128, runs split at the cut.
        let parents: Vec<u64> = (0..40).map(|p| p * 2).collect();
        let parts = pack_children(&parents, 4);
        let sizes: Vec<usize> = parts
            .iter()
            .map(|runs| runs.iter().map(|(_, len)| len).sum())
            .collect();
        assert_eq!(sizes, vec![256, 256, 128]);
        // A full 256-child block on its own.
        assert_eq!(pack_children(&[3], 8), vec![vec![(768, 256)]]);
        assert!(pack_children(&[], 4).is_empty());
    }

    #[test]
    fn offsets_map_through_runs() {
        let runs = [(10u64, 2usize), (50, 3)];
        assert_eq!(
            offsets_to_indices(&runs, &[0, 1, 2, 4]),
            Ok(vec![10, 11, 50, 52])
        );
        assert_eq!(offsets_to_indices(&runs, &[]), Ok(vec![]));
        let bad = Err(AntiEntropyError::BadOffsets { sent: 5 });
        assert_eq!(offsets_to_indices(&runs, &[5]), bad);
        assert_eq!(offsets_to_indices(&runs, &[1, 1]), bad);
        assert_eq!(offsets_to_indices(&runs, &[2, 1]), bad);
    }
}
