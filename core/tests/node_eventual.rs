//! Eventual mode on real `Node`s: the shared harness (`common/`: a message
//! queue, one manual clock with per-node skew, `MemoryStore`/`FaultStore` + `LsmEngine`)
//! drives siblings and contexts, sloppy quorums with hinted handoff, read repair, hint
//! durability, and a set-union workload under message loss and partitions.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ringkv_core::node::eventual::stored::{eventual_key, hint_key, EventualRecord, HintRecord};
use ringkv_core::node::{
    ClientError, ClientReply, ClientRequest, Consistency, MemberState, RequestId,
};
use ringkv_core::protocol::SiblingState;
use ringkv_core::rand::SplitMix64;
use ringkv_core::ring::NodeId;
use ringkv_core::storage::blockstore::FaultStore;
use ringkv_core::storage::Engine;

mod common;
use common::*;

impl Cluster {
    /// The sibling state node `i` holds for `key`, read straight from its engine.
    fn state(&self, i: usize, key: &str) -> Option<SiblingState> {
        let bytes = self.engines[i]
            .get(&eventual_key(key.as_bytes()))
            .expect("engine get")?;
        Some(
            EventualRecord::decode(&bytes)
                .expect("decodes")
                .into_state(),
        )
    }

    /// The hint node `i` holds for `target` about `key`.
    fn hint(&self, i: usize, target: usize, key: &str) -> Option<SiblingState> {
        let bytes = self.engines[i]
            .get(&hint_key(nid(target), key.as_bytes()))
            .expect("engine get")?;
        Some(HintRecord::decode(&bytes).expect("decodes").into_state())
    }

    fn get(&mut self, at: usize, key: &str) -> Siblings {
        match self.call(at, get(key)) {
            ClientReply::Siblings { values, context } => Siblings { values, context },
            other => panic!("eventual get of {key} via {at}: {other:?}"),
        }
    }

    fn put(&mut self, at: usize, key: &str, value: &str, context: Option<&[u8]>) -> ClientReply {
        self.call(at, put(key, value, context))
    }
}

/// A get's answer, values sorted for comparison.
#[derive(Debug, Clone)]
struct Siblings {
    values: Vec<Option<Vec<u8>>>,
    context: Vec<u8>,
}

impl Siblings {
    fn sorted(&self) -> Vec<Option<String>> {
        let mut values: Vec<Option<String>> = self
            .values
            .iter()
            .map(|v| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect();
        values.sort();
        values
    }
}

fn get(key: &str) -> ClientRequest {
    ClientRequest::Get {
        key: key.into(),
        consistency: Consistency::Eventual,
    }
}

fn put(key: &str, value: &str, context: Option<&[u8]>) -> ClientRequest {
    ClientRequest::PutEventual {
        key: key.into(),
        value: value.into(),
        context: context.map(<[u8]>::to_vec),
    }
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

fn values_of(state: &SiblingState) -> Vec<Option<Vec<u8>>> {
    state.values().cloned().collect()
}

/// The key's preference list as node indexes.
fn replicas_of(cluster: &Cluster, key: &str) -> Vec<usize> {
    cluster
        .node(0)
        .status()
        .layout
        .preference_list(key.as_bytes())
        .into_iter()
        .map(index)
        .collect()
}

/// Every node index believes `ids` dead (after enough silent time).
fn assert_dead_everywhere(cluster: &Cluster, ids: &[usize]) {
    for i in 0..cluster.nodes.len() {
        if ids.contains(&i) {
            continue;
        }
        for id in ids {
            assert_eq!(
                cluster.node(i).status().member(nid(*id)).map(|m| m.state),
                Some(MemberState::Dead),
                "node {i} about {id}"
            );
        }
    }
}

#[test]
fn concurrent_puts_without_context_become_siblings() {
    let mut cluster = Cluster::new(3);
    let empty = cluster.get(0, "k");
    assert!(empty.values.is_empty());
    // Two blind writes in flight at once through different coordinators.
    let a = cluster.request(0, put("k", "a", None));
    let b = cluster.request(1, put("k", "b", None));
    assert_eq!(cluster.wait(a, 10_000), ClientReply::Done);
    assert_eq!(cluster.wait(b, 10_000), ClientReply::Done);
    cluster.settle();
    for at in 0..3 {
        assert_eq!(cluster.get(at, "k").sorted(), some(&["a", "b"]), "via {at}");
    }
    // Even blind writes through the same coordinator are concurrent.
    assert_eq!(cluster.put(2, "k", "c", None), ClientReply::Done);
    assert_eq!(cluster.get(0, "k").sorted(), some(&["a", "b", "c"]));
}

#[test]
fn put_with_read_context_supersedes_exactly_what_was_read() {
    let mut cluster = Cluster::new(3);
    assert_eq!(cluster.put(0, "k", "a", None), ClientReply::Done);
    let read = cluster.get(1, "k");
    assert_eq!(read.sorted(), some(&["a"]));
    // Two clients write back with the same context: both supersede "a", and are
    // concurrent with each other.
    assert_eq!(
        cluster.put(2, "k", "b", Some(&read.context)),
        ClientReply::Done
    );
    assert_eq!(
        cluster.put(0, "k", "c", Some(&read.context)),
        ClientReply::Done
    );
    let both = cluster.get(1, "k");
    assert_eq!(both.sorted(), some(&["b", "c"]));
    // Resolving with the context of that read leaves one value.
    assert_eq!(
        cluster.put(1, "k", "bc", Some(&both.context)),
        ClientReply::Done
    );
    cluster.settle();
    for at in 0..3 {
        assert_eq!(cluster.get(at, "k").sorted(), some(&["bc"]), "via {at}");
    }
    // A delete with the context leaves a tombstone sibling.
    let latest = cluster.get(2, "k");
    let reply = cluster.call(
        0,
        ClientRequest::DeleteEventual {
            key: "k".into(),
            context: Some(latest.context.clone()),
        },
    );
    assert_eq!(reply, ClientReply::Done);
    assert_eq!(cluster.get(1, "k").values, vec![None]);
    // A context this cluster never produced is refused; nothing changes.
    for garbage in [vec![], vec![1, 5], vec![7, 0], latest.context[..1].to_vec()] {
        let reply = cluster.put(0, "k", "x", Some(&garbage));
        assert!(
            matches!(
                reply,
                ClientReply::Error(ClientError::InvalidContext { .. })
            ),
            "{garbage:?}: {reply:?}"
        );
    }
    assert_eq!(cluster.get(1, "k").values, vec![None]);
}

#[test]
fn modes_use_separate_keyspaces() {
    let mut cluster = Cluster::new(3);
    let lin_put = ClientRequest::Put {
        key: "k".into(),
        value: "lin".into(),
        consistency: Consistency::Linearizable,
    };
    assert_eq!(cluster.call(0, lin_put), ClientReply::Done);
    let plain_eventual_put = ClientRequest::Put {
        key: "k".into(),
        value: "ev".into(),
        consistency: Consistency::Eventual,
    };
    assert_eq!(cluster.call(1, plain_eventual_put), ClientReply::Done);
    let lin_get = ClientRequest::Get {
        key: "k".into(),
        consistency: Consistency::Linearizable,
    };
    assert_eq!(
        cluster.call(2, lin_get),
        ClientReply::Value(Some("lin".into()))
    );
    assert_eq!(cluster.get(2, "k").sorted(), some(&["ev"]));
}

#[test]
fn a_coordinator_outside_the_quorum_has_a_replica_issue_the_dot() {
    let mut cluster = Cluster::new(5);
    cluster.chaos.duplicate_percent = 40;
    let key = "forwarded";
    let owners = replicas_of(&cluster, key);
    let outsider = (0..5).find(|i| !owners.contains(i)).expect("5 > 3");
    for round in 0..5 {
        let before = cluster.get(outsider, key);
        assert_eq!(
            cluster.put(outsider, key, &format!("v{round}"), Some(&before.context)),
            ClientReply::Done
        );
        cluster.settle();
        // Duplicated `EventualUpdate`s were answered, not applied twice.
        assert_eq!(
            cluster.get(outsider, key).sorted(),
            some(&[&format!("v{round}")])
        );
    }
    assert_eq!(
        cluster.state(outsider, key),
        None,
        "the outsider keeps no copy"
    );
    let issuer = owners[0];
    let state = cluster.state(issuer, key).expect("issuer holds it");
    assert_eq!(state.context().get(nid(issuer)), 5, "one dot per put");
}

#[test]
fn writes_succeed_with_two_owners_down_and_hints_are_handed_off() {
    let mut cluster = Cluster::new(5);
    let key = "k";
    let owners = replicas_of(&cluster, key);
    let (live, down) = (owners[0], [owners[1], owners[2]]);
    cluster.blocked.extend(down.map(nid));
    cluster.run_for(3_000);
    assert_dead_everywhere(&cluster, &down);
    assert_eq!(cluster.put(live, key, "v", None), ClientReply::Done);
    cluster.settle();
    // The two other nodes stood in, each for one owner, with a copy and a hint.
    let fallbacks: Vec<usize> = (0..5).filter(|i| !owners.contains(i)).collect();
    let mut stood_in_for = BTreeSet::new();
    for &f in &fallbacks {
        assert_eq!(
            cluster.state(f, key).map(|s| values_of(&s)),
            Some(vec![Some(b"v".to_vec())])
        );
        let hints: Vec<usize> = down
            .iter()
            .copied()
            .filter(|d| cluster.hint(f, *d, key).is_some())
            .collect();
        assert_eq!(hints.len(), 1, "fallback {f}: {hints:?}");
        stood_in_for.insert(hints[0]);
        let queues = cluster.node(f).status().hint_queues;
        assert_eq!(queues, BTreeMap::from([(nid(hints[0]), 1)]));
        assert_eq!(cluster.node(f).status().counters.hints_queued, 1);
    }
    assert_eq!(stood_in_for, BTreeSet::from(down));
    assert_eq!(cluster.get(live, key).sorted(), some(&["v"]));
    for d in down {
        assert_eq!(cluster.state(d, key), None);
    }

    // The first owner comes back: its fallback hands the hint off, then deletes it.
    cluster.blocked.remove(&nid(down[0]));
    cluster.run_for(3_000);
    assert_eq!(
        cluster.state(down[0], key).map(|s| values_of(&s)),
        Some(vec![Some(b"v".to_vec())])
    );
    for &f in &fallbacks {
        assert_eq!(cluster.hint(f, down[0], key), None, "fallback {f}");
        assert!(!cluster
            .node(f)
            .status()
            .hint_queues
            .contains_key(&nid(down[0])));
    }
    let remaining: u64 = fallbacks
        .iter()
        .map(|f| cluster.node(*f).status().hint_queues.values().sum::<u64>())
        .sum();
    assert_eq!(remaining, 1, "the other owner is still down");
    cluster.blocked.clear();
    cluster.run_for(3_000);
    let delivered: u64 = fallbacks
        .iter()
        .map(|f| cluster.node(*f).status().counters.hints_delivered)
        .sum();
    assert_eq!(delivered, 2);
    for &f in &fallbacks {
        assert!(cluster.node(f).status().hint_queues.is_empty());
    }
    for owner in owners {
        assert_eq!(
            cluster.state(owner, key).map(|s| values_of(&s)),
            Some(vec![Some(b"v".to_vec())]),
            "owner {owner}"
        );
    }
}

#[test]
fn quorums_of_one_still_replicate_to_every_node() {
    let mut cluster = Cluster::with(3, |c| {
        c.eventual_r = 1;
        c.eventual_w = 1;
    });
    assert_eq!(cluster.put(0, "k", "v", None), ClientReply::Done);
    cluster.settle();
    for i in 0..3 {
        assert_eq!(
            cluster.state(i, "k").map(|s| values_of(&s)),
            Some(vec![Some(b"v".to_vec())]),
            "node {i}"
        );
    }
    assert_eq!(cluster.get(2, "k").sorted(), some(&["v"]));
}

#[test]
fn too_few_live_nodes_are_refused_at_once() {
    let mut cluster = Cluster::new(3);
    cluster.blocked.extend([NodeId(2), NodeId(3)]);
    cluster.run_for(3_000);
    let reply = cluster.put(0, "k", "v", None);
    assert!(
        matches!(reply, ClientReply::Error(ClientError::Unavailable { .. })),
        "{reply:?}"
    );
    assert!(matches!(
        cluster.call(0, get("k")),
        ClientReply::Error(ClientError::Unavailable { .. })
    ));
    assert_eq!(cluster.state(0, "k"), None);
    assert_eq!(cluster.node(0).status().counters.refused_unreachable, 2);
}

#[test]
fn a_full_hint_queue_is_a_clear_error() {
    // 4 nodes, N = 3: with two owners of a key down, its only fallback is the one
    // node outside its preference list, which may hold one hint.
    let mut cluster = Cluster::with(4, |c| c.hints_queued_max = 1);
    let (down_a, down_b) = (2, 3);
    cluster.blocked.extend([nid(down_a), nid(down_b)]);
    cluster.run_for(3_000);
    let keys: Vec<String> = (0..200)
        .map(|i| format!("key{i}"))
        .filter(|k| {
            let owners = replicas_of(&cluster, k);
            owners.contains(&down_a) && owners.contains(&down_b) && owners[0] == 0
        })
        .take(3)
        .collect();
    assert_eq!(keys.len(), 3);
    // Owner 0 coordinates, node 1 stands in: the first hint fits.
    assert_eq!(cluster.put(0, &keys[0], "v", None), ClientReply::Done);
    assert_eq!(cluster.node(1).status().hint_queues.len(), 1);
    // The second does not: node 0 applied it, node 1 refused, W = 2 cannot be met.
    let reply = cluster.put(0, &keys[1], "v", None);
    assert!(
        matches!(&reply, ClientReply::Error(ClientError::Indeterminate { reason }) if reason.contains("hint queue full")),
        "{reply:?}"
    );
    // Coordinated by the fallback itself, it is its own dot issuer: refused before
    // anything was written anywhere.
    let reply = cluster.put(1, &keys[2], "v", None);
    assert!(
        matches!(&reply, ClientReply::Error(ClientError::Unavailable { reason }) if reason.contains("hints")),
        "{reply:?}"
    );
    assert_eq!(cluster.state(1, &keys[2]), None);
    assert_eq!(cluster.state(0, &keys[2]), None);
    assert_eq!(cluster.node(1).status().counters.hints_refused, 2);
}

#[test]
fn reads_repair_replicas_that_are_behind() {
    let mut cluster = Cluster::new(3);
    let owners = replicas_of(&cluster, "k");
    let (a, c) = (owners[0], owners[2]);
    cluster.blocked.insert(nid(c));
    assert_eq!(cluster.put(a, "k", "v1", None), ClientReply::Done);
    cluster.settle();
    assert_eq!(cluster.state(c, "k"), None);
    cluster.blocked.clear();
    // c coordinates: its own (empty) answer and one other make R = 2.
    assert_eq!(cluster.get(c, "k").sorted(), some(&["v1"]));
    cluster.settle();
    assert_eq!(cluster.state(c, "k"), cluster.state(a, "k"));
    assert!(cluster.node(c).status().counters.read_repairs >= 1);
    // Up to date everywhere: no more repairs.
    let repairs = cluster.node(a).status().counters.read_repairs;
    assert_eq!(cluster.get(a, "k").sorted(), some(&["v1"]));
    cluster.settle();
    assert_eq!(cluster.node(a).status().counters.read_repairs, repairs);
}

#[test]
fn hints_survive_a_crash_of_their_holder() {
    let mut cluster = Cluster::new(5);
    let faulty: Vec<FaultStore> = (0..5).map(|_| FaultStore::new()).collect();
    for (i, store) in faulty.iter().enumerate() {
        cluster.crash(i);
        cluster.restart_on(i, Arc::new(store.clone()));
    }
    // Five keys with the same preference list.
    let owners = replicas_of(&cluster, "durable0");
    let keys: Vec<String> = (0..1000)
        .map(|n| format!("durable{n}"))
        .filter(|k| replicas_of(&cluster, k) == owners)
        .take(5)
        .collect();
    assert_eq!(keys.len(), 5);
    let down = [owners[1], owners[2]];
    cluster.blocked.extend(down.map(nid));
    cluster.run_for(3_000);
    for key in &keys {
        assert_eq!(cluster.put(owners[0], key, "v", None), ClientReply::Done);
    }
    cluster.settle();
    let holders: Vec<usize> = (0..5).filter(|i| !owners.contains(i)).collect();
    let before: Vec<BTreeMap<NodeId, u64>> = holders
        .iter()
        .map(|h| cluster.node(*h).status().hint_queues)
        .collect();
    assert!(before.iter().all(|q| !q.is_empty()));
    // Power loss at every fallback: only synced bytes survive.
    for &h in &holders {
        cluster.crash(h);
        cluster.restart_on(h, Arc::new(faulty[h].crash_image(h as u64)));
    }
    let after: Vec<BTreeMap<NodeId, u64>> = holders
        .iter()
        .map(|h| cluster.node(*h).status().hint_queues)
        .collect();
    assert_eq!(after, before);
    cluster.blocked.clear();
    cluster.run_for(5_000);
    for &h in &holders {
        assert!(cluster.node(h).status().hint_queues.is_empty(), "{h}");
    }
    for key in &keys {
        for owner in &owners {
            assert!(cluster.state(*owner, key).is_some(), "owner {owner}, {key}");
        }
    }
}

/// One client of the set workload: adds its elements one by one by read-modify-write.
struct SetClient {
    elements: VecDeque<String>,
    pending: Option<(RequestId, Pending)>,
    /// Think time: the next read starts no earlier than this.
    next_at_ms: u64,
}

enum Pending {
    Read,
    Write(String),
}

fn parse_set(values: &[Option<Vec<u8>>]) -> BTreeSet<String> {
    values
        .iter()
        .flatten()
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn unique_element_set_survives_loss_partitions_and_handoff() {
    let mut hints_delivered = 0;
    for seed in 0..4 {
        hints_delivered += set_workload(seed);
    }
    assert!(
        hints_delivered >= 4,
        "partitions made fallbacks take writes"
    );
}

/// Clients add unique elements to one key by read-modify-write with contexts (merging
/// siblings as set union) under loss, duplication, reordering and partitions; after
/// healing and handoff every acknowledged element is present. Returns hints delivered.
fn set_workload(seed: u64) -> u64 {
    let mut cluster = Cluster::new(5);
    cluster.rng = SplitMix64::new(seed);
    cluster.chaos = Chaos {
        duplicate_percent: 5,
        reorder: true,
        loss_percent: 5,
        ..Chaos::default()
    };
    let key = "set";
    let mut rng = SplitMix64::new(seed + 1000);
    let mut clients: Vec<SetClient> = (0..8)
        .map(|c| SetClient {
            elements: (0..15).map(|e| format!("c{c}e{e}")).collect(),
            pending: None,
            next_at_ms: 0,
        })
        .collect();
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut indeterminate = 0;
    let mut failed = 0;
    // Cut-off node sets, in turn: owners of the key (their stand-ins take writes and
    // queue hints), other nodes, and healed periods.
    let owners = replicas_of(&cluster, key);
    let others: Vec<usize> = (0..5).filter(|i| !owners.contains(i)).collect();
    let partitions: Vec<Vec<usize>> = vec![
        vec![owners[1]],
        vec![owners[1], owners[2]],
        vec![],
        vec![owners[0], others[0]],
        vec![owners[2]],
        vec![],
        vec![others[1]],
        vec![owners[0], owners[1]],
    ];
    let mut partition = 0;
    let mut next_partition_ms = cluster.now_ms + 500;
    let deadline_ms = cluster.now_ms + 600_000;
    while clients
        .iter()
        .any(|c| !c.elements.is_empty() || c.pending.is_some())
    {
        assert!(cluster.now_ms < deadline_ms, "workload did not finish");
        if cluster.now_ms >= next_partition_ms {
            next_partition_ms = cluster.now_ms + 2_500 + rng.below(3_000);
            cluster.blocked = partitions[partition % partitions.len()]
                .iter()
                .map(|i| nid(*i))
                .collect();
            partition += 1;
        }
        for client in clients.iter_mut() {
            if client.pending.is_none() {
                if client.elements.is_empty() || cluster.now_ms < client.next_at_ms {
                    continue;
                }
                let at = rng.below(5) as usize;
                let id = cluster.request(at, get(key));
                client.pending = Some((id, Pending::Read));
            }
            let Some((id, _)) = &client.pending else {
                continue;
            };
            let Some(reply) = cluster.replies.remove(id) else {
                continue;
            };
            let Some((_, pending)) = client.pending.take() else {
                continue;
            };
            match (pending, reply) {
                (Pending::Read, ClientReply::Siblings { values, context }) => {
                    let Some(element) = client.elements.front().cloned() else {
                        continue;
                    };
                    let mut set = parse_set(&values);
                    set.insert(element.clone());
                    let joined = set.into_iter().collect::<Vec<_>>().join(",");
                    let at = rng.below(5) as usize;
                    let id = cluster.request(at, put(key, &joined, Some(&context)));
                    client.pending = Some((id, Pending::Write(element)));
                }
                (Pending::Read, _) => client.next_at_ms = cluster.now_ms + 100, // read again
                (Pending::Write(element), ClientReply::Done) => {
                    acknowledged.insert(element);
                    client.elements.pop_front();
                    client.next_at_ms = cluster.now_ms + rng.below(1_500);
                }
                (Pending::Write(_), ClientReply::Error(ClientError::Indeterminate { .. })) => {
                    indeterminate += 1;
                    client.elements.pop_front();
                    client.next_at_ms = cluster.now_ms + rng.below(1_500);
                }
                (Pending::Write(_), ClientReply::Error(ClientError::Unavailable { .. })) => {
                    failed += 1; // did not take effect: read and try again
                }
                (Pending::Write(element), other) => panic!("put of {element}: {other:?}"),
            }
        }
        if !cluster.step() {
            cluster.advance();
        }
    }
    // Last writes while two owners are down: only stand-ins (and their hints) hold the
    // second copy of these.
    cluster.blocked = BTreeSet::from([nid(owners[1]), nid(owners[2])]);
    cluster.run_for(3_000);
    for n in 0..3 {
        let element = format!("last{n}");
        let read = cluster.get(owners[0], key);
        let mut set = parse_set(&read.values);
        set.insert(element.clone());
        let joined = set.into_iter().collect::<Vec<_>>().join(",");
        if cluster.put(owners[0], key, &joined, Some(&read.context)) == ClientReply::Done {
            acknowledged.insert(element);
        }
    }
    // Heal, stop the chaos, let gossip recover and hints drain.
    cluster.blocked.clear();
    cluster.chaos = Chaos::default();
    cluster.run_for(10_000);
    for i in 0..5 {
        assert!(
            cluster.node(i).status().hint_queues.is_empty(),
            "node {i}: {:?}",
            cluster.node(i).status().hint_queues
        );
    }
    let delivered: u64 = (0..5)
        .map(|i| cluster.node(i).status().counters.hints_delivered)
        .sum();
    let queued: u64 = (0..5)
        .map(|i| cluster.node(i).status().counters.hints_queued)
        .sum();
    eprintln!(
        "set workload {seed}: {} acknowledged, {indeterminate} indeterminate, {failed} \
         unavailable, {queued} hints queued, {delivered} delivered, {} ms",
        acknowledged.len(),
        cluster.now_ms
    );
    assert_eq!(delivered, queued, "every hint was handed off");
    assert!(
        acknowledged.len() >= 60,
        "{} acknowledged, {indeterminate} indeterminate, {failed} unavailable",
        acknowledged.len()
    );
    // Before any read can repair: W = 2 durable copies per acknowledged write, each at an
    // owner or at a stand-in whose hint has been handed off, so each element is at two
    // owners or more (later writes carry it along: they supersede only what they read).
    for element in &acknowledged {
        let holders = owners
            .iter()
            .filter(|o| {
                cluster
                    .state(**o, key)
                    .is_some_and(|s| parse_set(&values_of(&s)).contains(element))
            })
            .count();
        assert!(holders >= 2, "{element} is at {holders} owners");
    }
    for at in 0..5 {
        let read = cluster.get(at, key);
        let present = parse_set(&read.values);
        let lost: Vec<&String> = acknowledged.difference(&present).collect();
        assert!(lost.is_empty(), "via {at}: lost {lost:?}");
    }
    // After the reads' repairs the owners agree.
    cluster.settle();
    let first = cluster.state(owners[0], key);
    for owner in &owners[1..] {
        assert_eq!(cluster.state(*owner, key), first, "owner {owner}");
    }
    delivered
}
