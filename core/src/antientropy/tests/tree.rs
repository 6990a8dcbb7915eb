//! Tree contents: order independence, incremental updates, bounds.

use super::super::{AntiEntropyError, MerkleTree, MAX_DEPTH};
use super::{entries, tree_of};
use crate::ring::{key_position, TokenRange};

#[test]
fn equal_content_gives_equal_roots_whatever_the_insertion_order() {
    let data = entries(1, 500);
    let forward = tree_of(TokenRange::FULL, 12, &data);
    let mut backward = MerkleTree::new(TokenRange::FULL, 12).expect("depth ok");
    for (key, digest) in data.iter().rev() {
        backward.insert(key, *digest).expect("in range");
    }
    assert_eq!(forward.root(), backward.root());
    assert_eq!(forward, backward, "every node, not only the root");
    assert_ne!(forward.root(), 0);
}

#[test]
fn remove_and_update_undo_exactly() {
    let data = entries(2, 200);
    let mut tree = tree_of(TokenRange::FULL, 8, &data);
    let snapshot = tree.clone();
    let (key, digest) = data.iter().next().expect("non-empty");
    tree.update(key, *digest, digest ^ 1).expect("in range");
    assert_ne!(tree.root(), snapshot.root());
    tree.update(key, digest ^ 1, *digest).expect("in range");
    assert_eq!(tree, snapshot);
    for (key, digest) in &data {
        tree.remove(key, *digest).expect("in range");
    }
    assert_eq!(
        tree,
        MerkleTree::new(TokenRange::FULL, 8).expect("depth ok")
    );
}

#[test]
fn a_duplicated_insert_is_visible_not_cancelled() {
    let mut tree = MerkleTree::new(TokenRange::FULL, 4).expect("depth ok");
    tree.insert(b"k", 5).expect("in range");
    let once = tree.root();
    tree.insert(b"k", 5).expect("in range");
    assert_ne!(tree.root(), once);
    assert_ne!(tree.root(), 0);
}

#[test]
fn bulk_build_equals_incremental_and_skips_foreign_keys() {
    let data = entries(3, 1000);
    // A range holding roughly half of the keys, wrapping past u64::MAX.
    let range = TokenRange::new(u64::MAX / 4 * 3, u64::MAX / 4);
    let (bulk, skipped) =
        MerkleTree::from_entries(range, 10, data.iter().map(|(k, d)| (k, *d))).expect("depth ok");
    let mut incremental = MerkleTree::new(range, 10).expect("depth ok");
    let mut outside = 0;
    for (key, digest) in &data {
        match incremental.insert(key, *digest) {
            Ok(()) => assert!(range.contains(key_position(key))),
            Err(AntiEntropyError::KeyOutsideRange { position, .. }) => {
                assert_eq!(position, key_position(key));
                outside += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(bulk, incremental);
    assert_eq!(skipped, outside);
    assert!(outside > 300 && outside < 700, "{outside}");
}

#[test]
fn keys_land_in_the_bucket_whose_key_range_holds_them() {
    let range = TokenRange::new(1 << 60, 1 << 62);
    let tree = MerkleTree::new(range, 9).expect("depth ok");
    for (key, _) in entries(4, 2000) {
        let Some(bucket) = tree.bucket_of_key(&key) else {
            continue;
        };
        let arc = tree.bucket_key_range(bucket).expect("bucket exists");
        assert!(arc.contains(key_position(&key)));
    }
}

#[test]
fn shape_is_bounded() {
    assert_eq!(
        MerkleTree::new(TokenRange::FULL, MAX_DEPTH + 1),
        Err(AntiEntropyError::DepthTooLarge {
            depth: MAX_DEPTH + 1
        })
    );
    let tree = MerkleTree::new(TokenRange::FULL, 12).expect("depth ok");
    assert_eq!(tree.leaf_count(), 4096);
    assert_eq!(tree.memory_bytes(), 2 * 4096 * 8);
    assert_eq!(tree.node_hash(13, 0), None);
    assert_eq!(tree.node_hash(3, 8), None);
    assert_eq!(tree.level_hashes(3, 7, 2), None);
    assert_eq!(tree.level_hashes(3, u64::MAX, 2), None);
    assert_eq!(tree.level_hashes(3, 6, 2).map(<[u64]>::len), Some(2));
    let flat = MerkleTree::new(TokenRange::FULL, 0).expect("depth ok");
    assert_eq!(flat.leaf_count(), 1);
    assert_eq!(flat.node_hash(0, 0), Some(0));
}
