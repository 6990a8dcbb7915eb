//! Sets over real layouts: co-replicas build identically shaped trees for shared ranges,
//! keys are tracked exactly where the node replicates them, exchanges work set to set.

use super::super::{
    ExchangeRequest, ExchangeResponse, MerkleConfig, MerkleSet, RebuildStats, RejectReason,
};
use super::{entries, run_exchange};
use crate::ring::{key_position, NodeId, NodeSpec, RingLayout};

fn layout(nodes: u64, vnodes: u32) -> RingLayout {
    RingLayout::from_parts(
        1,
        3,
        vnodes,
        (1..=nodes).map(|id| NodeSpec::new(id, format!("zone-{id}"), 1)),
    )
    .expect("valid layout")
}

#[test]
fn keys_are_tracked_exactly_where_the_node_replicates_them() {
    let layout = layout(5, 16);
    let data = entries(30, 3000);
    let mut set = MerkleSet::new(&layout, NodeId(2), MerkleConfig::default());
    let stats = set.rebuild_from(data.iter().map(|(key, digest)| (key, *digest)));
    let mut expected = RebuildStats::default();
    for key in data.keys() {
        let replicated = layout.preference_list(key).contains(&NodeId(2));
        assert_eq!(set.tree_for_key(key).is_some(), replicated);
        if replicated {
            expected.tracked += 1;
        } else {
            expected.untracked += 1;
        }
    }
    assert_eq!(stats, expected);
    assert!(!set.is_empty());
    for (tree, replicas) in set.iter() {
        assert!(replicas.contains(&NodeId(2)));
        assert_eq!(set.tree(&tree.range()), Some(tree));
        assert_eq!(set.replicas(&tree.range()), Some(replicas));
        assert_eq!(
            tree.depth(),
            MerkleConfig::default().depth_for(&tree.range())
        );
    }
    assert!(!set.insert(b"x", 1) || layout.preference_list(b"x").contains(&NodeId(2)));
}

#[test]
fn co_replicas_share_ranges_and_converge_through_exchanges() {
    let layout = layout(4, 8);
    let data = entries(31, 2000);
    let load = |node| {
        let mut set = MerkleSet::new(&layout, NodeId(node), MerkleConfig::default());
        set.rebuild_from(data.iter().map(|(key, digest)| (key, *digest)));
        set
    };
    let (one, mut two) = (load(1), load(2));
    // Node 2 misses a write on one key it shares with node 1.
    let (key, digest) = data
        .iter()
        .find(|(key, _)| {
            let owners = layout.preference_list(key);
            owners.contains(&NodeId(1)) && owners.contains(&NodeId(2))
        })
        .expect("shared key");
    assert!(two.update(key, *digest, digest ^ 0xff));

    let mut shared = 0;
    for (tree, replicas) in one.iter() {
        if !replicas.contains(&NodeId(2)) {
            let probe = ExchangeRequest::Root {
                id: 1,
                range: tree.range(),
                depth: tree.depth(),
                hash: tree.root(),
            };
            assert!(matches!(
                two.respond(&probe),
                ExchangeResponse::Rejected {
                    reason: RejectReason::UnknownRange,
                    ..
                }
            ));
            continue;
        }
        shared += 1;
        let theirs = two
            .tree(&tree.range())
            .expect("same segments on both nodes");
        let outcome = run_exchange(tree, theirs, 4);
        if tree.range().contains(key_position(key)) {
            let bucket = tree.bucket_of_key(key).expect("in range");
            assert_eq!(outcome.buckets, vec![bucket]);
        } else {
            assert!(outcome.buckets.is_empty());
        }
    }
    assert!(shared > 0);
}

#[test]
fn memory_stays_bounded_for_realistic_layouts() {
    // Default vnodes (512 per node): thousands of segments per node.
    for nodes in [5u64, 20] {
        let layout = layout(nodes, 512);
        let set = MerkleSet::new(&layout, NodeId(1), MerkleConfig::default());
        let mib = set.memory_bytes() as f64 / f64::from(1 << 20);
        eprintln!("{nodes} nodes: {} trees, {mib:.2} MiB", set.len());
        assert!(
            mib < 24.0,
            "{nodes} nodes: {} trees, {mib:.1} MiB",
            set.len()
        );
    }
}

#[test]
fn empty_and_single_node_layouts() {
    let empty = MerkleSet::new(&RingLayout::new(3), NodeId(1), MerkleConfig::default());
    assert!(empty.is_empty());
    let single = layout(1, 4);
    let mut set = MerkleSet::new(&single, NodeId(1), MerkleConfig::fixed(6));
    assert_eq!(set.len(), 1);
    let (tree, _) = set.iter().next().expect("one tree");
    assert!(tree.range().is_full());
    assert!(set.insert(b"anything", 1));
}

#[test]
fn root_batches_report_differing_and_unknown_ranges_and_descents_find_the_buckets() {
    use super::super::{Exchange, ExchangeStep, RootBatch, RootEntry, MAX_ROOTS_PER_MESSAGE};
    let layout = layout(5, 16);
    let data = entries(31, 2000);
    let build = |node: u64, skip: Option<&[u8]>| {
        let mut set = MerkleSet::new(&layout, NodeId(node), MerkleConfig::default());
        set.rebuild_from(
            data.iter()
                .filter(|(key, _)| Some(key.as_slice()) != skip)
                .map(|(key, digest)| (key, *digest)),
        );
        set
    };
    // A key replicated by nodes a and b; b misses it.
    let (missing, replicas) = data
        .keys()
        .map(|key| (key.clone(), layout.preference_list(key)))
        .next()
        .expect("keys");
    let (a, b) = (replicas[0], replicas[1]);
    let set_a = build(a.0, None);
    let set_b = build(b.0, Some(&missing));
    let roots: Vec<RootEntry> = set_a
        .iter()
        .map(|(tree, _)| RootEntry {
            range: tree.range(),
            depth: tree.depth(),
            root: tree.root(),
        })
        .take(MAX_ROOTS_PER_MESSAGE)
        .collect();
    let batch = RootBatch {
        id: 9,
        part: 3,
        roots: roots.clone(),
    };
    let reply = set_b.compare_roots(a, &batch).expect("answered");
    assert_eq!((reply.id, reply.part), (9, 3));
    // Ranges b does not replicate are unknown; the one holding the key differs.
    for (offset, entry) in (0u16..).zip(&roots) {
        let shared = set_b.replicas(&entry.range).is_some();
        assert_eq!(reply.unknown.contains(&offset), !shared, "{offset}");
        let holds = entry.range.contains(key_position(&missing));
        assert_eq!(reply.differing.contains(&offset), holds, "{offset}");
    }
    // Stateless: a duplicate gets the same answer; the same batch from b itself or
    // from a non-replica compares nothing.
    assert_eq!(set_b.compare_roots(a, &batch).expect("answered"), reply);
    let all: Vec<u16> = (0..roots.len() as u16).collect();
    assert_eq!(
        set_b.compare_roots(b, &batch).expect("answered").unknown,
        all
    );
    // Oversized: refused.
    let oversized = RootBatch {
        id: 1,
        part: 0,
        roots: vec![roots[0]; MAX_ROOTS_PER_MESSAGE + 1],
    };
    assert!(set_b.compare_roots(a, &oversized).is_err());
    // The differing range's descent (no Root step) ends at the key's bucket.
    let range = roots[usize::from(reply.differing[0])].range;
    let (tree_a, tree_b) = (
        set_a.tree(&range).expect("a"),
        set_b.tree(&range).expect("b"),
    );
    let (mut exchange, mut step) = Exchange::start_descent(tree_a, 5, 4).expect("own tree");
    let buckets = loop {
        match step {
            ExchangeStep::Send(requests) => {
                let mut next = ExchangeStep::Wait;
                for request in requests {
                    let response = tree_b.respond(&request).expect("same shape");
                    next = exchange.on_response(tree_a, &response).expect("progress");
                }
                step = next;
            }
            ExchangeStep::Done(buckets) => break buckets,
            ExchangeStep::Wait => panic!("every request was answered"),
        }
    };
    let bucket = crate::antientropy::bucket_of(&range, tree_a.depth(), key_position(&missing));
    assert_eq!(Some(buckets), bucket.map(|b| vec![b]));
    assert!(exchange.round_trips() <= Exchange::max_round_trips(tree_a.depth(), 4));
}
