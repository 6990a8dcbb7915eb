//! Bad input on either side yields typed errors, never panics; duplicates are ignored.

use super::super::{
    AntiEntropyError, Exchange, ExchangeRequest, ExchangeResponse, ExchangeStep, HashRun,
    MerkleTree, RejectReason, MAX_HASHES_PER_MESSAGE,
};
use super::{entries, level_request, tree_of};
use crate::ring::TokenRange;

fn trees() -> (MerkleTree, MerkleTree) {
    let data = entries(20, 300);
    let a = tree_of(TokenRange::FULL, 8, &data);
    let mut b = a.clone();
    b.insert(b"only-in-b", 9).expect("in range");
    (a, b)
}

#[test]
fn responder_rejects_bad_requests() {
    let (a, _) = trees();
    let other_range = TokenRange::new(1, 2);
    let root = |range, depth| ExchangeRequest::Root {
        id: 1,
        range,
        depth,
        hash: 0,
    };
    assert_eq!(
        a.respond(&root(other_range, 8)),
        Err(AntiEntropyError::UnknownRange(other_range))
    );
    assert_eq!(
        a.respond(&root(TokenRange::FULL, 9)),
        Err(AntiEntropyError::DepthMismatch { ours: 8, theirs: 9 })
    );
    assert_eq!(
        a.respond(&level_request(&a, 9, 0, vec![0])),
        Err(AntiEntropyError::LevelOutOfRange { level: 9, depth: 8 })
    );
    assert!(matches!(
        a.respond(&level_request(&a, 3, 7, vec![0, 0])),
        Err(AntiEntropyError::RunOutOfBounds { .. })
    ));
    assert!(matches!(
        a.respond(&level_request(&a, 3, u64::MAX, vec![0])),
        Err(AntiEntropyError::RunOutOfBounds { .. })
    ));
    assert_eq!(
        a.respond(&level_request(
            &a,
            8,
            0,
            vec![0; MAX_HASHES_PER_MESSAGE + 1]
        )),
        Err(AntiEntropyError::TooManyHashes {
            count: MAX_HASHES_PER_MESSAGE + 1
        })
    );
    // Many small runs add up too.
    let many_runs = ExchangeRequest::Level {
        id: 1,
        range: a.range(),
        depth: 8,
        level: 8,
        part: 0,
        runs: (0..200)
            .map(|index_start| HashRun {
                index_start,
                hashes: vec![0, 0],
            })
            .collect(),
    };
    assert!(matches!(
        a.respond(&many_runs),
        Err(AntiEntropyError::TooManyHashes { count: 400 })
    ));
    let error = a.respond(&root(TokenRange::FULL, 9)).expect_err("mismatch");
    assert_eq!(
        error.reject_reason(),
        RejectReason::DepthMismatch { ours: 8 }
    );
}

#[test]
fn initiator_rejects_bad_responses() {
    let (a, b) = trees();
    let start = || Exchange::start(&a, 5, 4);
    let descend = |exchange: &mut Exchange, root: &ExchangeRequest| match exchange
        .on_response(&a, &b.respond(root).expect("valid"))
    {
        Ok(ExchangeStep::Send(requests)) => requests,
        other => panic!("expected a descent, got {other:?}"),
    };

    let (mut exchange, root) = start();
    let wrong_id = ExchangeResponse::Root {
        id: 6,
        range: a.range(),
        equal: true,
    };
    assert!(matches!(
        exchange.on_response(&a, &wrong_id),
        Err(AntiEntropyError::WrongExchange {
            expected: 5,
            got: 6
        })
    ));
    assert!(!exchange.is_finished(), "foreign responses do not abort");

    // Offsets past the hashes sent, or not ascending.
    let requests = descend(&mut exchange, &root);
    assert_eq!(requests.len(), 1);
    for differing in [vec![16u16], vec![3, 3], vec![4, 2], vec![u16::MAX]] {
        let (mut exchange, root) = start();
        descend(&mut exchange, &root);
        let response = ExchangeResponse::Level {
            id: 5,
            range: a.range(),
            level: 4,
            part: 0,
            differing,
        };
        assert_eq!(
            exchange.on_response(&a, &response),
            Err(AntiEntropyError::BadOffsets { sent: 16 })
        );
        assert!(exchange.is_finished());
    }

    // A part or level never requested.
    let (mut exchange, root) = start();
    descend(&mut exchange, &root);
    for (level, part) in [(4u8, 1u32), (8, 0)] {
        let mut probe = exchange.clone();
        let response = ExchangeResponse::Level {
            id: 5,
            range: a.range(),
            level,
            part,
            differing: vec![],
        };
        assert_eq!(
            probe.on_response(&a, &response),
            Err(AntiEntropyError::UnrequestedPart { level, part })
        );
    }

    // A level response before the root was answered.
    let (mut exchange, _) = start();
    let early = ExchangeResponse::Level {
        id: 5,
        range: a.range(),
        level: 0,
        part: 0,
        differing: vec![],
    };
    assert!(exchange.on_response(&a, &early).is_err());

    // A tree of another shape.
    let (mut exchange, root) = start();
    let other = MerkleTree::new(a.range(), 7).expect("depth ok");
    assert!(matches!(
        exchange.on_response(&other, &b.respond(&root).expect("valid")),
        Err(AntiEntropyError::TreeMismatch { .. })
    ));
}

#[test]
fn rejection_finishes_and_duplicates_are_ignored() {
    let (a, b) = trees();
    let (mut exchange, root) = Exchange::start(&a, 5, 4);
    let rejected = root.rejection(RejectReason::UnknownRange);
    assert_eq!(
        exchange.on_response(&a, &rejected),
        Err(AntiEntropyError::Rejected(RejectReason::UnknownRange))
    );
    assert!(exchange.is_finished());
    assert_eq!(exchange.on_response(&a, &rejected), Ok(ExchangeStep::Wait));

    let (mut exchange, root) = Exchange::start(&a, 5, 4);
    let root_answer = b.respond(&root).expect("valid");
    let Ok(ExchangeStep::Send(requests)) = exchange.on_response(&a, &root_answer) else {
        panic!("expected a descent");
    };
    assert_eq!(
        exchange.on_response(&a, &root_answer),
        Ok(ExchangeStep::Wait)
    );
    let first = b.respond(&requests[0]).expect("valid");
    let Ok(ExchangeStep::Send(next)) = exchange.on_response(&a, &first) else {
        panic!("expected the next level");
    };
    // The same level-4 answer again is stale now.
    assert_eq!(exchange.on_response(&a, &first), Ok(ExchangeStep::Wait));
    let last = b.respond(&next[0]).expect("valid");
    let Ok(ExchangeStep::Done(buckets)) = exchange.on_response(&a, &last) else {
        panic!("expected the leaves");
    };
    assert_eq!(
        buckets,
        vec![b.bucket_of_key(b"only-in-b").expect("full range")]
    );
    assert_eq!(exchange.on_response(&a, &last), Ok(ExchangeStep::Wait));
}
