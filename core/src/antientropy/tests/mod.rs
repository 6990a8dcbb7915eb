//! Anti-entropy tests: trees, the exchange end to end, malformed input, sets over real
//! layouts. Deterministic (seeded keys) except the proptests' own case generation.

mod exchange;
mod malformed;
#[cfg(not(target_arch = "wasm32"))]
mod proptests;
mod set;
mod tree;
#[cfg(not(target_arch = "wasm32"))]
mod wire;

use std::collections::{BTreeMap, BTreeSet};

use crate::rand::SplitMix64;
use crate::ring::TokenRange;

use super::{Exchange, ExchangeRequest, ExchangeStep, MerkleTree, MAX_HASHES_PER_MESSAGE};

/// `count` distinct keys `key-<seed>-<i>` with random digests.
pub(super) fn entries(seed: u64, count: usize) -> BTreeMap<Vec<u8>, u64> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|i| (format!("key-{seed}-{i}").into_bytes(), rng.next_u64()))
        .collect()
}

pub(super) fn tree_of(
    range: TokenRange,
    depth: u8,
    entries: &BTreeMap<Vec<u8>, u64>,
) -> MerkleTree {
    let mut tree = MerkleTree::new(range, depth).expect("depth within bounds");
    for (key, digest) in entries {
        tree.insert(key, *digest)
            .expect("full range holds every key");
    }
    tree
}

/// Buckets that truly differ: those holding a key present on one side only or with
/// different digests.
pub(super) fn true_diff(
    tree: &MerkleTree,
    a: &BTreeMap<Vec<u8>, u64>,
    b: &BTreeMap<Vec<u8>, u64>,
) -> Vec<u64> {
    let keys: BTreeSet<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    let buckets: BTreeSet<u64> = keys
        .into_iter()
        .filter(|key| a.get(*key) != b.get(*key))
        .filter_map(|key| tree.bucket_of_key(key))
        .collect();
    buckets.into_iter().collect()
}

/// What one exchange between two trees cost.
#[derive(Debug)]
pub(super) struct Outcome {
    pub buckets: Vec<u64>,
    pub round_trips: u32,
    pub requests: usize,
    pub total_hashes: usize,
    pub max_request_hashes: usize,
    pub max_response_offsets: usize,
}

/// Runs an exchange from `initiator` against `responder` to completion, answering each
/// round's requests in reverse order (responses may arrive in any order).
pub(super) fn run_exchange(
    initiator: &MerkleTree,
    responder: &MerkleTree,
    fanout_log2: u8,
) -> Outcome {
    let (mut exchange, root) = Exchange::start(initiator, 7, fanout_log2);
    let mut outcome = Outcome {
        buckets: Vec::new(),
        round_trips: 0,
        requests: 0,
        total_hashes: 0,
        max_request_hashes: 0,
        max_response_offsets: 0,
    };
    let mut in_flight = vec![root];
    loop {
        assert!(!in_flight.is_empty(), "exchange stalled");
        let mut next = Vec::new();
        for request in in_flight.iter().rev() {
            outcome.requests += 1;
            outcome.total_hashes += request.hash_count();
            outcome.max_request_hashes = outcome.max_request_hashes.max(request.hash_count());
            let response = responder.respond(request).expect("well-formed request");
            if let super::ExchangeResponse::Level { differing, .. } = &response {
                outcome.max_response_offsets = outcome.max_response_offsets.max(differing.len());
            }
            match exchange
                .on_response(initiator, &response)
                .expect("valid response")
            {
                ExchangeStep::Wait => {}
                ExchangeStep::Send(requests) => next = requests,
                ExchangeStep::Done(buckets) => {
                    assert!(exchange.is_finished());
                    outcome.buckets = buckets;
                    outcome.round_trips = exchange.round_trips();
                    return outcome;
                }
            }
        }
        in_flight = next;
    }
}

pub(super) fn assert_bounded(outcome: &Outcome) {
    assert!(
        outcome.max_request_hashes <= MAX_HASHES_PER_MESSAGE,
        "{outcome:?}"
    );
    assert!(
        outcome.max_response_offsets <= MAX_HASHES_PER_MESSAGE,
        "{outcome:?}"
    );
}

/// A `Level` request of one run, for hand-made message tests.
pub(super) fn level_request(
    tree: &MerkleTree,
    level: u8,
    index_start: u64,
    hashes: Vec<u64>,
) -> ExchangeRequest {
    ExchangeRequest::Level {
        id: 1,
        range: tree.range(),
        depth: tree.depth(),
        level,
        part: 0,
        runs: vec![super::HashRun {
            index_start,
            hashes,
        }],
    }
}
