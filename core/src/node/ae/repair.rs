//! Repair pages, the pure part: checking a peer's page or reply, and merging two
//! replicas' entry lists into what each side must push.
//!
//! Both lists are in range order and complete from the page's cursor up to their last
//! entry, or to the last span's end if flagged complete. So both are known exactly up to
//! the smaller last entry of the truncated lists (`covered`), and only that prefix is
//! compared; the next page starts after it. Every page covers at least one entry of a
//! truncated list, so repair always progresses.

use std::cmp::Ordering;

use crate::protocol::antientropy::{
    EntryVersion, KeyPage, KeyPageReply, KeyVersion, KEY_PAGE_ENTRIES_MAX, KEY_PAGE_KEY_BYTES_MAX,
    KEY_PAGE_SPANS_MAX,
};
use crate::ring::{key_position, Position, TokenRange};

use super::index::IndexEntry;
use super::span;

/// What to do about one key of the compared prefix, from the responder's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Same tag on both sides.
    Same,
    /// The responder's register is newer, or the initiator lacks the key: push it.
    Push,
    /// The initiator's entry at this offset of its page is newer, or the responder
    /// lacks it: ask for it.
    Want(u16),
    /// Eventual states that differ (they are not ordered): push this side's state and
    /// ask for the initiator's, at this offset of its page; each side merges.
    Both(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    pub key: &'a [u8],
    pub action: Action,
}

/// The positions of a page's entries if the page is well-formed: 1 to
/// [`KEY_PAGE_SPANS_MAX`] disjoint spans inside its range in range order, the cursor
/// in the first span, at most [`KEY_PAGE_ENTRIES_MAX`] entries and
/// [`KEY_PAGE_KEY_BYTES_MAX`] key bytes (or a single entry), keys within
/// `key_size_max`, each in a span, strictly ascending in range order after the cursor,
/// all of the page's kind, and non-empty unless complete. `None`: ignore the page.
pub(crate) fn check_page(page: &KeyPage, key_size_max: usize) -> Option<Vec<Position>> {
    let range = &page.range;
    if page.spans.len() > KEY_PAGE_SPANS_MAX
        || !span::ascending_within(range, &page.spans)
        || page.entries.len() > KEY_PAGE_ENTRIES_MAX
        || (!page.complete && page.entries.is_empty())
        || page
            .entries
            .iter()
            .any(|entry| matches!(entry.version, EntryVersion::Eventual { .. }) != page.eventual)
    {
        return None;
    }
    let mut previous = match (&page.after, page.spans.first()) {
        (Some(key), Some(first)) => Some((in_span(first, key, key_size_max)?, key.as_slice())),
        _ => None,
    };
    let mut key_bytes = 0usize;
    let mut positions = Vec::with_capacity(page.entries.len());
    // Entries and spans both ascend in range order: one pass over each.
    let mut spans = page.spans.iter();
    let mut current = spans.next()?;
    for entry in &page.entries {
        let position = loop {
            match in_span(current, &entry.key, key_size_max) {
                Some(position) => break position,
                None => current = spans.next()?,
            }
        };
        if let Some(before) = previous {
            if span::compare(range, before, (position, &entry.key)) != Ordering::Less {
                return None;
            }
        }
        key_bytes = key_bytes.saturating_add(entry.key.len());
        previous = Some((position, &entry.key));
        positions.push(position);
    }
    if key_bytes > KEY_PAGE_KEY_BYTES_MAX && page.entries.len() > 1 {
        return None;
    }
    Some(positions)
}

/// The key's position if the key is within the size limit and inside the span.
fn in_span(span_arc: &TokenRange, key: &[u8], key_size_max: usize) -> Option<Position> {
    let position = key_position(key);
    (key.len() <= key_size_max && span_arc.contains(position)).then_some(position)
}

/// Merges the initiator's page (`theirs`, with `their_positions` from [`check_page`])
/// and the responder's own entries of the same spans from the same cursor (`mine`).
/// Returns the items of the compared prefix in range order and how far it reaches
/// (`None`: the last span's end). A register tombstone at or below `purge_floor` that
/// one side holds and the other does not is no difference: the other side purged it
/// (`node/purge/`), and absent reads and shadows the same as such a tombstone.
pub(crate) fn merge<'a>(
    range: &TokenRange,
    theirs: &'a [KeyVersion],
    their_positions: &[Position],
    their_complete: bool,
    mine: &'a [IndexEntry],
    my_complete: bool,
    purge_floor: u64,
) -> (Vec<Item<'a>>, Option<&'a [u8]>) {
    let purged = |version: &EntryVersion| is_purgeable(version, purge_floor);
    let their_last = if their_complete {
        None
    } else {
        theirs
            .last()
            .zip(their_positions.last())
            .map(|(entry, position)| (*position, entry.key.as_slice()))
    };
    let my_last = if my_complete {
        None
    } else {
        mine.last()
            .map(|entry| (entry.position, entry.key.as_slice()))
    };
    let covered = match (their_last, my_last) {
        (Some(a), Some(b)) => Some(if span::compare(range, a, b) == Ordering::Greater {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    };
    let mut items = Vec::new();
    let (mut i, mut j) = (0usize, 0usize);
    loop {
        let their = theirs
            .get(i)
            .zip(their_positions.get(i))
            .map(|(entry, position)| (entry, (*position, entry.key.as_slice())));
        let my = mine
            .get(j)
            .map(|entry| (entry, (entry.position, entry.key.as_slice())));
        let order = match (their, my) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((_, a)), Some((_, b))) => span::compare(range, a, b),
        };
        // (key, action, consumes the initiator's entry, consumes mine)
        let (at, action, step_theirs, step_mine) = match (order, their, my) {
            (Ordering::Less, Some((their_entry, a)), _) if purged(&their_entry.version) => {
                (a, Action::Same, true, false)
            }
            (Ordering::Less, Some((_, a)), _) => (a, want(i), true, false),
            (Ordering::Greater, _, Some((my_entry, b))) if purged(&my_entry.version) => {
                (b, Action::Same, false, true)
            }
            (Ordering::Greater, _, Some((_, b))) => (b, Action::Push, false, true),
            (Ordering::Equal, Some((their_entry, a)), Some((my_entry, _))) => (
                a,
                compare(&my_entry.version, &their_entry.version, i),
                true,
                true,
            ),
            _ => break, // unreachable: `order` was derived from the same pair
        };
        if covered.is_some_and(|bound| span::compare(range, at, bound) == Ordering::Greater) {
            break;
        }
        i += usize::from(step_theirs);
        j += usize::from(step_mine);
        items.push(Item { key: at.1, action });
    }
    (items, covered.map(|(_, key)| key))
}

/// What the responder does about a key both sides hold (`mine` vs the initiator's
/// entry at `offset`).
fn compare(mine: &EntryVersion, theirs: &EntryVersion, offset: usize) -> Action {
    match (mine, theirs) {
        (EntryVersion::Register { tag: my_tag, .. }, EntryVersion::Register { tag, .. }) => {
            match my_tag.cmp(tag) {
                Ordering::Greater => Action::Push,
                Ordering::Less => want(offset),
                // Equal tags name the same write: same value, same tombstone flag.
                Ordering::Equal => Action::Same,
            }
        }
        (EntryVersion::Eventual { digest: mine }, EntryVersion::Eventual { digest }) => {
            if mine == digest {
                Action::Same
            } else {
                Action::Both(offset_u16(offset))
            }
        }
        // Kinds never mix in a page (`check_page`, and both sides scan one index).
        _ => Action::Same,
    }
}

/// A register tombstone at or below `purge_floor`: purged or about to be, everywhere.
pub(crate) fn is_purgeable(version: &EntryVersion, purge_floor: u64) -> bool {
    matches!(version, EntryVersion::Register { tag, tombstone: true } if tag.counter <= purge_floor)
}

fn want(offset: usize) -> Action {
    Action::Want(offset_u16(offset))
}

fn offset_u16(offset: usize) -> u16 {
    // Offsets are < KEY_PAGE_ENTRIES_MAX (checked), so they fit u16.
    u16::try_from(offset).unwrap_or(u16::MAX)
}

/// Where a reply's `covered_to` lies: the index (into the page's spans) of its span.
/// Checks the reply against the page it answers (`spans`, `after`, `entries`,
/// `complete` as sent): `covered_to` in one of the spans, after the cursor, and not
/// past a truncated page's last entry; `want` strictly ascending offsets of entries up
/// to `covered_to`. `None`: the reply is malformed.
pub(crate) fn check_reply(
    range: &TokenRange,
    spans: &[TokenRange],
    after: Option<&[u8]>,
    entries: &[IndexEntry],
    complete: bool,
    reply: &KeyPageReply,
) -> Option<Option<usize>> {
    let mut covered_span = None;
    let covered = match &reply.covered_to {
        Some(key) => {
            let at = (key_position(key), key.as_slice());
            covered_span = Some(spans.iter().position(|arc| arc.contains(at.0))?);
            if after.is_some_and(|after| {
                span::compare(range, (key_position(after), after), at) != Ordering::Less
            }) {
                return None;
            }
            Some(at)
        }
        // Only a complete page can be covered to the last span's end.
        None if !complete => return None,
        None => None,
    };
    if let (Some(at), Some(last), false) = (covered, entries.last(), complete) {
        if span::compare(range, at, (last.position, &last.key)) == Ordering::Greater {
            return None;
        }
    }
    let mut previous: Option<u16> = None;
    let wants_ok = reply.want.iter().all(|offset| {
        let ascending = previous.is_none_or(|p| p < *offset);
        previous = Some(*offset);
        ascending
            && entries.get(usize::from(*offset)).is_some_and(|entry| {
                covered.is_none_or(|at| {
                    span::compare(range, (entry.position, &entry.key), at) != Ordering::Greater
                })
            })
    });
    wants_ok.then_some(covered_span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::ae::version::RegisterVersion;
    use crate::ring::NodeId;
    use crate::versioning::Tag;

    fn tag(counter: u64) -> Tag {
        Tag {
            counter,
            node: NodeId(1),
        }
    }

    /// Keys `k0..` sorted in the order of the full-ring span starting at 0.
    fn sorted_keys(n: usize) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = (0..n).map(|i| format!("k{i}").into_bytes()).collect();
        keys.sort_by(|a, b| span::compare_keys(&TokenRange::FULL, a, b));
        keys
    }

    fn theirs(keys: &[Vec<u8>], tags: &[u64]) -> Vec<KeyVersion> {
        keys.iter()
            .zip(tags)
            .map(|(key, counter)| KeyVersion {
                key: key.clone(),
                version: EntryVersion::Register {
                    tag: tag(*counter),
                    tombstone: false,
                },
            })
            .collect()
    }

    fn mine(keys: &[Vec<u8>], tags: &[u64]) -> Vec<IndexEntry> {
        keys.iter()
            .zip(tags)
            .map(|(key, counter)| IndexEntry {
                position: key_position(key),
                key: key.clone(),
                version: RegisterVersion::of(tag(*counter), Some(b"v")).into(),
            })
            .collect()
    }

    fn page(entries: Vec<KeyVersion>, complete: bool) -> KeyPage {
        KeyPage {
            id: 1,
            range: TokenRange::FULL,
            page: 1,
            spans: vec![TokenRange::FULL],
            after: None,
            entries,
            complete,
            eventual: false,
        }
    }

    #[test]
    fn differing_eventual_states_go_both_ways_and_kinds_never_mix() {
        let k = sorted_keys(3);
        let eventual = |key: &Vec<u8>, digest: u64| KeyVersion {
            key: key.clone(),
            version: EntryVersion::Eventual { digest },
        };
        let their = vec![eventual(&k[0], 7), eventual(&k[1], 8)];
        let mut their_page = page(their.clone(), true);
        // A page must be of one kind: eventual entries in a register page are refused.
        assert!(check_page(&their_page, 100).is_none());
        their_page.eventual = true;
        let positions = check_page(&their_page, 100).expect("valid");
        let my: Vec<IndexEntry> = [(&k[0], 7), (&k[1], 9), (&k[2], 1)]
            .into_iter()
            .map(|(key, digest)| IndexEntry {
                position: key_position(key),
                key: key.clone(),
                version: EntryVersion::Eventual { digest },
            })
            .collect();
        let (items, covered) = merge(&TokenRange::FULL, &their, &positions, true, &my, true, 0);
        assert_eq!(covered, None);
        let actions: Vec<Action> = items.iter().map(|i| i.action).collect();
        assert_eq!(actions, vec![Action::Same, Action::Both(1), Action::Push]);
        // And a register entry in an eventual page is refused too.
        their_page.entries.push(KeyVersion {
            key: k[2].clone(),
            version: EntryVersion::Register {
                tag: tag(1),
                tombstone: false,
            },
        });
        assert!(check_page(&their_page, 100).is_none());
    }

    #[test]
    fn merge_classifies_and_stops_at_the_covered_prefix() {
        let k = sorted_keys(6);
        // Initiator: k0(5) k1(1) k3(2) k4(9), truncated after k4.
        let their = theirs(
            &[k[0].clone(), k[1].clone(), k[3].clone(), k[4].clone()],
            &[5, 1, 2, 9],
        );
        let their_page = page(their.clone(), false);
        let positions = check_page(&their_page, 100).expect("valid");
        // Responder: k0(5) k1(3) k2(1) k5(1), complete.
        let my = mine(
            &[k[0].clone(), k[1].clone(), k[2].clone(), k[5].clone()],
            &[5, 3, 1, 1],
        );
        let (items, covered) = merge(&TokenRange::FULL, &their, &positions, false, &my, true, 0);
        assert_eq!(covered, Some(k[4].as_slice()));
        let actions: Vec<(&[u8], Action)> = items.iter().map(|i| (i.key, i.action)).collect();
        assert_eq!(
            actions,
            vec![
                (k[0].as_slice(), Action::Same),
                (k[1].as_slice(), Action::Push),
                (k[2].as_slice(), Action::Push),
                (k[3].as_slice(), Action::Want(2)),
                (k[4].as_slice(), Action::Want(3)),
            ]
        );
        // Both complete: everything, including k5 only the responder has.
        let (items, covered) = merge(&TokenRange::FULL, &their, &positions, true, &my, true, 0);
        assert_eq!(covered, None);
        assert_eq!(items.last().map(|i| i.action), Some(Action::Push));
        assert_eq!(items.len(), 6);
        // Responder truncated earlier than the initiator: stop at its last entry.
        let (items, covered) = merge(
            &TokenRange::FULL,
            &their,
            &positions,
            false,
            &my[..2],
            false,
            0,
        );
        assert_eq!(covered, Some(k[1].as_slice()));
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn malformed_pages_and_replies_are_refused() {
        let k = sorted_keys(4);
        let good = page(theirs(&k, &[1, 1, 1, 1]), false);
        assert!(check_page(&good, 100).is_some());
        let mut unsorted = good.clone();
        unsorted.entries.swap(0, 1);
        assert!(check_page(&unsorted, 100).is_none());
        let mut duplicate = good.clone();
        duplicate.entries[1] = duplicate.entries[0].clone();
        assert!(check_page(&duplicate, 100).is_none());
        assert!(check_page(&good, 1).is_none()); // keys over the limit
        let mut before_cursor = good.clone();
        before_cursor.after = Some(k[2].clone());
        assert!(check_page(&before_cursor, 100).is_none());
        assert!(check_page(&page(Vec::new(), false), 100).is_none());
        let mut outside = good.clone();
        outside.range = TokenRange::new(1, 2);
        assert!(check_page(&outside, 100).is_none());
        let mut no_spans = good.clone();
        no_spans.spans.clear();
        assert!(check_page(&no_spans, 100).is_none());
        // Split the ring into two spans around k[2]: entries fall in either.
        let cut = key_position(&k[1]);
        let mut split = good.clone();
        split.spans = vec![TokenRange::new(0, cut), TokenRange::new(cut, 0)];
        assert!(check_page(&split, 100).is_some());
        // With a gap where k[2] lies, the page is refused.
        let mut gap = good.clone();
        gap.spans = vec![
            TokenRange::new(0, cut),
            TokenRange::new(key_position(&k[2]), 0),
        ];
        assert!(check_page(&gap, 100).is_none());

        let entries = mine(&k, &[1, 1, 1, 1]);
        let reply = |covered_to: Option<&Vec<u8>>, want: Vec<u16>| KeyPageReply {
            id: 1,
            range: TokenRange::FULL,
            page: 1,
            covered_to: covered_to.cloned(),
            want,
        };
        let full = TokenRange::FULL;
        let spans = [full];
        let check = |after: Option<&[u8]>, complete: bool, reply: &KeyPageReply| {
            check_reply(&full, &spans, after, &entries, complete, reply)
        };
        assert_eq!(
            check(None, false, &reply(Some(&k[2]), vec![0, 2])),
            Some(Some(0))
        );
        assert_eq!(check(None, false, &reply(Some(&k[2]), vec![0, 3])), None);
        assert_eq!(check(None, false, &reply(Some(&k[2]), vec![1, 1])), None);
        assert_eq!(check(None, false, &reply(None, vec![])), None);
        assert_eq!(check(None, true, &reply(None, vec![3])), Some(None));
        assert_eq!(check(None, true, &reply(None, vec![4])), None);
        assert_eq!(check(Some(&k[2]), true, &reply(Some(&k[1]), vec![])), None);
        // covered_to in the second of two spans.
        let cut = key_position(&k[1]);
        let two = [TokenRange::new(0, cut), TokenRange::new(cut, 0)];
        assert_eq!(
            check_reply(
                &full,
                &two,
                None,
                &entries,
                false,
                &reply(Some(&k[2]), vec![])
            ),
            Some(Some(1))
        );
        assert_eq!(
            check_reply(
                &full,
                &two,
                None,
                &entries,
                false,
                &reply(Some(&k[1]), vec![])
            ),
            Some(Some(0))
        );
    }
}
