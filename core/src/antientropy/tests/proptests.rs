//! Properties over random contents, operation sequences and messages.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::{diff_trees, Exchange, ExchangeRequest, ExchangeResponse, HashRun, MerkleTree};
use super::{assert_bounded, run_exchange, true_diff};
use crate::ring::TokenRange;

fn arb_range() -> impl Strategy<Value = TokenRange> {
    prop_oneof![
        Just(TokenRange::FULL),
        (any::<u64>(), any::<u64>()).prop_map(|(start, end)| TokenRange::new(start, end)),
    ]
}

/// A key from a small space (so operations hit the same keys) and a digest.
fn arb_entry() -> impl Strategy<Value = (Vec<u8>, u64)> {
    (0u16..400, 0u64..4).prop_map(|(key, digest)| (key.to_le_bytes().to_vec(), digest))
}

fn arb_request() -> impl Strategy<Value = ExchangeRequest> {
    let runs = prop::collection::vec(
        (any::<u64>(), prop::collection::vec(any::<u64>(), 0..40)).prop_map(
            |(index_start, hashes)| HashRun {
                index_start: index_start % 300,
                hashes,
            },
        ),
        0..12,
    );
    prop_oneof![
        (arb_range(), 0u8..20, any::<u64>()).prop_map(|(range, depth, hash)| {
            ExchangeRequest::Root {
                id: 1,
                range,
                depth,
                hash,
            }
        }),
        (0u8..20, 0u8..20, any::<u32>(), runs).prop_map(|(depth, level, part, runs)| {
            ExchangeRequest::Level {
                id: 1,
                range: TokenRange::FULL,
                depth,
                level,
                part,
                runs,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of insert / update / remove (kept consistent with a model map)
    /// leaves the same tree as building the final contents from scratch.
    #[test]
    fn incremental_updates_equal_a_full_rebuild(
        range in arb_range(),
        depth in 0u8..11,
        ops in prop::collection::vec(arb_entry(), 0..300),
    ) {
        let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut tree = MerkleTree::new(range, depth).expect("depth ok");
        for (key, digest) in ops {
            let in_range = tree.bucket_of_key(&key).is_some();
            let result = match model.get(&key).copied() {
                // Same digest again: delete; another digest: update.
                Some(old) if old == digest => { model.remove(&key); tree.remove(&key, old) }
                Some(old) => { model.insert(key.clone(), digest); tree.update(&key, old, digest) }
                None => { model.insert(key.clone(), digest); tree.insert(&key, digest) }
            };
            prop_assert_eq!(result.is_ok(), in_range);
            if !in_range {
                model.remove(&key);
            }
        }
        let (rebuilt, skipped) =
            MerkleTree::from_entries(range, depth, model.iter().map(|(k, d)| (k, *d)))
                .expect("depth ok");
        prop_assert_eq!(skipped, 0);
        prop_assert_eq!(&tree, &rebuilt);
    }

    /// The exchange reports exactly the buckets whose contents differ.
    #[test]
    fn exchange_finds_exactly_the_differing_buckets(
        depth in 0u8..13,
        fanout_log2 in 1u8..9,
        common in prop::collection::btree_map(any::<u32>(), any::<u64>(), 0..200),
        only_a in prop::collection::btree_map(any::<u32>(), any::<u64>(), 0..20),
        changed in prop::collection::btree_map(any::<u32>(), any::<u64>(), 0..20),
    ) {
        let to_bytes = |m: &BTreeMap<u32, u64>| -> BTreeMap<Vec<u8>, u64> {
            m.iter().map(|(k, d)| (k.to_le_bytes().to_vec(), *d)).collect()
        };
        let mut a = to_bytes(&common);
        let mut b = a.clone();
        a.extend(to_bytes(&only_a));
        for (key, digest) in to_bytes(&changed) {
            b.insert(key, digest);
        }
        let tree_a = super::tree_of(TokenRange::FULL, depth, &a);
        let tree_b = super::tree_of(TokenRange::FULL, depth, &b);
        let expected = true_diff(&tree_a, &a, &b);
        let outcome = run_exchange(&tree_a, &tree_b, fanout_log2);
        prop_assert_eq!(&outcome.buckets, &expected);
        prop_assert!(outcome.round_trips <= Exchange::max_round_trips(depth, fanout_log2));
        assert_bounded(&outcome);
        prop_assert_eq!(diff_trees(&tree_a, &tree_b).expect("same shape"), expected);
    }

    /// Arbitrary requests get an answer or a typed error; answers stay within bounds.
    #[test]
    fn arbitrary_requests_never_panic(request in arb_request(), depth in 0u8..10) {
        let tree = MerkleTree::new(TokenRange::FULL, depth).expect("depth ok");
        if let Ok(ExchangeResponse::Level { differing, .. }) = tree.respond(&request) {
            prop_assert!(differing.len() <= request.hash_count());
        }
    }

    /// Arbitrary responses fed to an exchange in progress never panic.
    #[test]
    fn arbitrary_responses_never_panic(
        level in any::<u8>(), part in 0u32..4,
        differing in prop::collection::vec(any::<u16>(), 0..40),
    ) {
        let mut a = MerkleTree::new(TokenRange::FULL, 8).expect("depth ok");
        a.insert(b"k", 1).expect("in range");
        let b = MerkleTree::new(TokenRange::FULL, 8).expect("depth ok");
        let (mut exchange, root) = Exchange::start(&a, 3, 2);
        let answer = b.respond(&root).expect("valid");
        let _ = exchange.on_response(&a, &answer);
        let response = ExchangeResponse::Level { id: 3, range: a.range(), level, part, differing };
        let _ = exchange.on_response(&a, &response);
        let _ = exchange.on_response(&a, &response);
    }
}
