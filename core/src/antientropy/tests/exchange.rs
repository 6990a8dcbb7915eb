//! The exchange end to end between two trees: exactly the differing buckets, within the
//! round-trip and message-size bounds.

use super::super::{diff_trees, Exchange, ExchangeStep, MerkleTree, MAX_HASHES_PER_MESSAGE};
use super::{assert_bounded, entries, run_exchange, tree_of, true_diff};
use crate::rand::SplitMix64;
use crate::ring::{key_position, TokenRange};

#[test]
fn identical_trees_finish_after_the_root() {
    let data = entries(10, 300);
    let a = tree_of(TokenRange::FULL, 12, &data);
    let b = tree_of(TokenRange::FULL, 12, &data);
    let outcome = run_exchange(&a, &b, 4);
    assert!(outcome.buckets.is_empty());
    assert_eq!((outcome.round_trips, outcome.requests), (1, 1));
    assert_eq!(outcome.total_hashes, 1);
}

#[test]
fn one_differing_key_is_found_in_exactly_its_bucket() {
    let data = entries(11, 1000);
    let a = tree_of(TokenRange::FULL, 12, &data);
    for (key, digest) in data.iter().step_by(97) {
        let mut changed = data.clone();
        changed.insert(key.clone(), digest.wrapping_add(1));
        let b = tree_of(TokenRange::FULL, 12, &changed);
        let outcome = run_exchange(&a, &b, 4);
        let bucket = a.bucket_of_key(key).expect("full range");
        assert_eq!(outcome.buckets, vec![bucket]);
        let arc = a.bucket_key_range(bucket).expect("bucket exists");
        assert!(arc.contains(key_position(key)));
        // 1 root + 12 levels / 4 per round trip.
        assert_eq!(outcome.round_trips, 4);
        assert_eq!(outcome.round_trips, Exchange::max_round_trips(12, 4));
        // Root, then 16 children per level on the one differing path.
        assert_eq!(outcome.total_hashes, 1 + 3 * 16);
        assert_bounded(&outcome);
    }
}

#[test]
fn k_random_differences_are_all_found_and_nothing_else() {
    let mut rng = SplitMix64::new(12);
    let base = entries(12, 5000);
    let range = TokenRange::new(u64::MAX / 3, u64::MAX / 3 * 2);
    for k in [1usize, 2, 5, 20, 100, 400] {
        let mut a = base.clone();
        let mut b = base.clone();
        let keys: Vec<Vec<u8>> = base.keys().cloned().collect();
        for _ in 0..k {
            let key = keys[rng.below(keys.len() as u64) as usize].clone();
            match rng.below(3) {
                0 => {
                    b.remove(&key);
                }
                1 => {
                    a.insert(key, rng.next_u64());
                }
                _ => {
                    b.insert(format!("new-{}", rng.next_u64()).into_bytes(), 1);
                }
            }
        }
        let in_range = |m: &std::collections::BTreeMap<Vec<u8>, u64>| {
            m.iter()
                .filter(|(key, _)| range.contains(key_position(key)))
                .map(|(key, digest)| (key.clone(), *digest))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (a, b) = (in_range(&a), in_range(&b));
        let tree_a = tree_of(range, 11, &a);
        let tree_b = tree_of(range, 11, &b);
        let expected = true_diff(&tree_a, &a, &b);
        for fanout_log2 in [1u8, 3, 4, 8] {
            let outcome = run_exchange(&tree_a, &tree_b, fanout_log2);
            assert_eq!(outcome.buckets, expected, "k {k} fanout 2^{fanout_log2}");
            assert!(outcome.round_trips <= Exchange::max_round_trips(11, fanout_log2));
            assert_bounded(&outcome);
        }
        assert_eq!(diff_trees(&tree_a, &tree_b).expect("same shape"), expected);
    }
}

#[test]
fn everything_differing_stays_within_message_bounds() {
    // An empty replica against a full one at the deepest default shape: every leaf
    // differs, so every level is sent in full, 256 hashes at most per message.
    let data = entries(13, 40_000);
    let full = tree_of(TokenRange::FULL, 14, &data);
    let empty = MerkleTree::new(TokenRange::FULL, 14).expect("depth ok");
    let outcome = run_exchange(&empty, &full, 4);
    let expected = true_diff(&full, &data, &Default::default());
    assert_eq!(outcome.buckets, expected);
    assert!(expected.len() > 14_000, "{}", expected.len());
    assert_eq!(outcome.max_request_hashes, MAX_HASHES_PER_MESSAGE);
    assert_bounded(&outcome);
    assert_eq!(outcome.round_trips, Exchange::max_round_trips(14, 4));
}

#[test]
fn depth_zero_and_narrow_ranges_work() {
    let data = entries(14, 50);
    let mut changed = data.clone();
    changed.insert(b"extra".to_vec(), 3);
    let a = tree_of(TokenRange::FULL, 0, &data);
    let b = tree_of(TokenRange::FULL, 0, &changed);
    let outcome = run_exchange(&a, &b, 4);
    assert_eq!((outcome.buckets, outcome.round_trips), (vec![0], 1));

    // A range of 3 positions at depth 4: buckets exist only where positions do.
    let narrow = TokenRange::new(100, 103);
    let a = MerkleTree::new(narrow, 4).expect("depth ok");
    let b = MerkleTree::new(narrow, 4).expect("depth ok");
    assert!(run_exchange(&a, &b, 4).buckets.is_empty());
}

#[test]
fn a_difference_that_vanishes_mid_exchange_ends_cleanly() {
    let data = entries(15, 100);
    let a = tree_of(TokenRange::FULL, 8, &data);
    let mut b = a.clone();
    b.insert(b"late", 1).expect("in range");
    let (mut exchange, root) = Exchange::start(&a, 1, 4);
    let response = b.respond(&root).expect("valid");
    b.remove(b"late", 1).expect("in range");
    let super::super::ExchangeStep::Send(requests) =
        exchange.on_response(&a, &response).expect("valid")
    else {
        panic!("roots differed: expected a descent");
    };
    let mut last = None;
    for request in &requests {
        last = Some(exchange.on_response(&a, &b.respond(request).expect("valid")));
    }
    assert_eq!(
        last.expect("one request").expect("valid"),
        super::super::ExchangeStep::Done(Vec::new())
    );
}

#[test]
fn lost_requests_are_resent_and_the_exchange_completes() {
    let data = entries(16, 2000);
    let a = tree_of(TokenRange::FULL, 12, &data);
    let mut changed = data.clone();
    for (key, digest) in data.iter().step_by(50) {
        changed.insert(key.clone(), digest ^ 1);
    }
    let b = tree_of(TokenRange::FULL, 12, &changed);
    let (mut exchange, root) = Exchange::start(&a, 9, 4);
    assert_eq!(exchange.unanswered(&a).expect("same tree"), vec![root]);
    let mut in_flight = exchange.unanswered(&a).expect("same tree");
    let mut dropped = 0;
    let buckets = loop {
        let mut done = None;
        for (i, request) in in_flight.iter().enumerate() {
            // Lose every third request.
            if i % 3 == 2 {
                dropped += 1;
                continue;
            }
            match exchange.on_response(&a, &b.respond(request).expect("valid")) {
                Ok(ExchangeStep::Done(buckets)) => done = Some(buckets),
                Ok(_) => {}
                Err(error) => panic!("{error}"),
            }
        }
        if let Some(buckets) = done {
            break buckets;
        }
        // Timeout: re-send whatever is unanswered (or the next level just produced).
        in_flight = exchange.unanswered(&a).expect("same tree");
    };
    assert!(dropped > 0);
    assert_eq!(buckets, diff_trees(&a, &b).expect("same shape"));
    assert!(exchange.unanswered(&a).expect("same tree").is_empty());
}
