//! Codec round trips and robustness against arbitrary bytes.

use proptest::prelude::*;

use super::*;
use crate::ring::NodeId;
use crate::versioning::Tag;

fn arb_op_id() -> impl Strategy<Value = OpId> {
    (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(node, incarnation, seq)| OpId {
        coordinator: NodeId(node),
        incarnation,
        seq,
    })
}

fn arb_tag() -> impl Strategy<Value = Tag> {
    (any::<u64>(), any::<u64>()).prop_map(|(counter, node)| Tag {
        counter,
        node: NodeId(node),
    })
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..64)
}

fn arb_state() -> impl Strategy<Value = SiblingState> {
    prop::collection::vec((0u64..4, prop::option::of(arb_bytes())), 0..4).prop_map(|writes| {
        let mut state = SiblingState::new();
        for (node, value) in writes {
            let context = state.context();
            // Every other write supersedes what came before; the rest are concurrent.
            let context = if node % 2 == 0 {
                context
            } else {
                Default::default()
            };
            let _ = state.update(&context, NodeId(node), value);
        }
        state
    })
}

fn arb_refusal() -> impl Strategy<Value = EventualRefusal> {
    prop_oneof![
        any::<u64>().prop_map(|hints_queued_max| EventualRefusal::HintsFull { hints_queued_max }),
        (any::<u64>(), any::<u64>()).prop_map(|(size_bytes, limit_bytes)| {
            EventualRefusal::TooLarge {
                size_bytes,
                limit_bytes,
            }
        }),
        Just(EventualRefusal::CounterExhausted),
    ]
}

fn arb_eventual_message() -> impl Strategy<Value = PeerMessage> {
    let hint = prop::option::of(any::<u64>().prop_map(NodeId));
    prop_oneof![
        (arb_op_id(), arb_bytes()).prop_map(|(req, key)| PeerMessage::EventualRead { req, key }),
        (arb_op_id(), arb_state())
            .prop_map(|(req, state)| PeerMessage::EventualReadAck { req, state }),
        (
            arb_op_id(),
            arb_bytes(),
            arb_state(),
            prop::option::of(arb_bytes()),
            hint.clone()
        )
            .prop_map(|(req, key, state, value, hint_for)| {
                PeerMessage::EventualUpdate {
                    req,
                    key,
                    context: state.context(),
                    value,
                    hint_for,
                }
            }),
        (arb_op_id(), arb_state())
            .prop_map(|(req, state)| PeerMessage::EventualUpdateAck { req, state }),
        (arb_op_id(), arb_bytes(), arb_state(), hint).prop_map(|(req, key, state, hint_for)| {
            PeerMessage::EventualMerge {
                req,
                key,
                state,
                hint_for,
            }
        }),
        arb_op_id().prop_map(|req| PeerMessage::EventualMergeAck { req }),
        (arb_op_id(), arb_refusal())
            .prop_map(|(req, reason)| PeerMessage::EventualRefused { req, reason }),
    ]
}

fn arb_layout() -> impl Strategy<Value = crate::ring::RingLayout> {
    (1u64..50, prop::collection::btree_set(1u64..20, 1..5)).prop_map(|(version, ids)| {
        crate::ring::RingLayout::from_parts(
            version,
            3,
            2,
            ids.into_iter().map(|id| {
                let spec = crate::ring::NodeSpec::new(id, "z", 1).with_address("h:1");
                if id % 2 == 0 {
                    spec.with_identity(crate::ring::IdentityDigest::of(&id.to_le_bytes()))
                } else {
                    spec
                }
            }),
        )
        .expect("small layouts are valid")
    })
}

fn arb_ballot() -> impl Strategy<Value = Ballot> {
    (any::<u64>(), any::<u64>()).prop_map(|(round, node)| Ballot {
        round,
        node: NodeId(node),
    })
}

fn arb_membership_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        (
            arb_layout(),
            prop::option::of((any::<u64>(), arb_ballot(), arb_layout()))
        )
            .prop_map(|(layout, vote)| PeerMessage::Layout(Box::new(LayoutReport {
                history: crate::ring::LayoutHistory::new(layout),
                vote,
            }))),
        (arb_op_id(), arb_layout()).prop_map(|(req, layout)| PeerMessage::Stale {
            req,
            history: Box::new(crate::ring::LayoutHistory::new(layout)),
        }),
        any::<u64>().prop_map(|epoch| PeerMessage::LayoutPull { epoch }),
        (any::<u64>(), arb_ballot())
            .prop_map(|(version, ballot)| PeerMessage::LayoutPrepare { version, ballot }),
        (arb_ballot(), prop::option::of((arb_ballot(), arb_layout()))).prop_map(
            |(ballot, accepted)| PeerMessage::LayoutPromise {
                version: 2,
                ballot,
                accepted,
            }
        ),
        (arb_ballot(), arb_layout()).prop_map(|(ballot, layout)| PeerMessage::LayoutAccept {
            version: layout.version(),
            ballot,
            layout,
        }),
        (any::<u64>(), arb_ballot())
            .prop_map(|(version, ballot)| PeerMessage::LayoutAccepted { version, ballot }),
        (arb_ballot(), arb_ballot()).prop_map(|(ballot, promised)| PeerMessage::LayoutNack {
            version: 3,
            ballot,
            promised,
        }),
        (any::<u64>(), prop::option::of(arb_bytes())).prop_map(|(epoch, after)| {
            PeerMessage::SyncPull {
                epoch,
                cursor: Some(SyncCursor::Registers { span: 3, after }),
            }
        }),
        (arb_bytes(), arb_tag(), prop::option::of(arb_bytes())).prop_map(|(key, tag, value)| {
            PeerMessage::SyncPage(SyncPage {
                epoch: 4,
                cursor: 0,
                entries: vec![SyncEntry::Register { key, tag, value }],
                next: Some(SyncCursor::Eventual { after: None }),
            })
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(epoch, source_epoch)| PeerMessage::SyncBehind {
            epoch,
            source_epoch
        }),
    ]
}

fn arb_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        arb_eventual_message(),
        arb_membership_message(),
        (arb_op_id(), any::<u64>(), arb_bytes())
            .prop_map(|(req, epoch, key)| PeerMessage::ReadTag { req, epoch, key }),
        (arb_op_id(), arb_tag()).prop_map(|(req, tag)| PeerMessage::ReadTagAck { req, tag }),
        (arb_op_id(), any::<u64>(), arb_bytes()).prop_map(|(req, epoch, key)| PeerMessage::Read {
            req,
            epoch,
            key
        }),
        (arb_op_id(), arb_tag(), prop::option::of(arb_bytes()))
            .prop_map(|(req, tag, value)| PeerMessage::ReadAck { req, tag, value }),
        (
            arb_op_id(),
            arb_bytes(),
            arb_tag(),
            prop::option::of(arb_bytes())
        )
            .prop_map(|(req, key, tag, value)| PeerMessage::Write {
                req,
                epoch: tag.counter ^ 5,
                key,
                tag,
                value
            }),
        arb_op_id().prop_map(|req| PeerMessage::WriteAck { req }),
        (
            any::<u64>(),
            prop::collection::vec((any::<u64>(), any::<u64>(), any::<u64>()), 0..8)
        )
            .prop_map(|(layout_version, entries)| PeerMessage::Gossip {
                layout_version,
                members: entries
                    .into_iter()
                    .map(|(id, incarnation, heartbeat)| GossipEntry {
                        id: NodeId(id),
                        incarnation,
                        heartbeat,
                    })
                    .collect(),
            }),
    ]
}

/// Bytes a decoded message may hold per byte of its frame (struct and map overheads of
/// small fields: a 2-byte node spec becomes a few dozen bytes of `BTreeMap` node).
const ALLOC_PER_BYTE: usize = 64;
/// What serde preallocates for a sequence before reading its elements (`size_hint::
/// cautious`: 1 MiB), for the few nesting levels a frame has.
const SEQUENCE_PREALLOC_BYTES_MAX: usize = 4 << 20;

proptest! {
    #[test]
    fn relay_envelopes_are_recognised_without_decoding(message in arb_message()) {
        let frame = encode(&message).expect("encodes");
        let relayed = matches!(message, PeerMessage::Relayed { .. });
        prop_assert_eq!(is_relay_envelope(&frame), relayed);
        let envelope = PeerMessage::Relayed { from: NodeId(1), to: NodeId(2), frame };
        prop_assert!(is_relay_envelope(&encode(&envelope).expect("encodes")));
    }

    #[test]
    fn round_trips(message in arb_message()) {
        let frame = encode(&message).expect("small message encodes");
        prop_assert_eq!(&frame[..2], &FORMAT_VERSION.to_le_bytes());
        prop_assert_eq!(decode(&frame).expect("own frame decodes"), message);
    }

    /// Whatever the bytes: an error or a message, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let mut framed = FORMAT_VERSION.to_le_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        let _ = decode(&framed);
    }

    /// Decoding allocates in proportion to the frame: at most `ALLOC_PER_BYTE` bytes per
    /// frame byte, plus serde's fixed preallocation for a sequence whose length prefix
    /// claims more than the frame holds (1 MiB at most per nesting level). A layout's
    /// ring is never derived while decoding.
    #[test]
    fn decoding_allocates_in_proportion_to_the_frame(
        message in arb_message(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
        noise in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let frame = encode(&message).expect("encodes");
        let mut flipped = frame.clone();
        let i = at.index(flipped.len());
        flipped[i] ^= flip;
        let mut framed = FORMAT_VERSION.to_le_bytes().to_vec();
        framed.extend_from_slice(&noise);
        for bytes in [&frame, &flipped, &framed] {
            let (_, peak) = crate::alloc_count::peak_allocated(|| decode(bytes));
            let bound = ALLOC_PER_BYTE * bytes.len() + SEQUENCE_PREALLOC_BYTES_MAX;
            prop_assert!(peak <= bound, "{} byte frame: {peak} bytes allocated", bytes.len());
        }
    }

    /// A batch of any messages comes back as the same messages in the same order,
    /// whatever frames it was split into; damaged batch frames never panic and stay
    /// bounded like single frames.
    #[test]
    fn batches_round_trip_in_order(
        messages in prop::collection::vec(arb_message(), 0..24),
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let (frames, dropped) = encode_batch(&messages);
        prop_assert_eq!(dropped, 0);
        prop_assert!(frames.iter().all(|f| f.len() <= FRAME_SIZE_BYTES_MAX));
        let mut back = Vec::new();
        for frame in &frames {
            back.extend(decode_frame(frame).expect("own batch decodes"));
        }
        prop_assert_eq!(&back, &messages);
        if let Some(frame) = frames.first() {
            let mut damaged = frame.clone();
            let i = at.index(damaged.len());
            damaged[i] ^= flip;
            let (_, peak) = crate::alloc_count::peak_allocated(|| decode_frame(&damaged));
            prop_assert!(peak <= ALLOC_PER_BYTE * damaged.len() + SEQUENCE_PREALLOC_BYTES_MAX);
        }
    }

    /// Damaging a valid frame (flipped byte, cut tail) yields an error or some message,
    /// never a panic; a cut frame never decodes to the original.
    #[test]
    fn damaged_frames_never_panic(message in arb_message(), at in any::<prop::sample::Index>(), flip in 1u8..) {
        let frame = encode(&message).expect("encodes");
        let mut flipped = frame.clone();
        let i = at.index(flipped.len());
        flipped[i] ^= flip;
        let _ = decode(&flipped);
        let cut = &frame[..at.index(frame.len())];
        prop_assert_ne!(decode(cut).ok(), Some(message));
    }
}

#[test]
fn rejects_other_versions_short_and_oversized_frames() {
    let frame = encode(&PeerMessage::WriteAck {
        req: OpId::default(),
    })
    .expect("encodes");
    let mut other = frame.clone();
    other[0] = other[0].wrapping_add(1);
    assert!(matches!(
        decode(&other),
        Err(ProtocolError::UnsupportedVersion {
            supported: FORMAT_VERSION,
            ..
        })
    ));
    assert!(matches!(
        decode(&frame[..1]),
        Err(ProtocolError::Truncated { size_bytes: 1 })
    ));
    let mut trailing = frame.clone();
    trailing.push(0);
    assert_eq!(
        decode(&trailing),
        Err(ProtocolError::TrailingBytes { count: 1 })
    );
    let huge = vec![0u8; FRAME_SIZE_BYTES_MAX + 1];
    assert!(matches!(
        decode(&huge),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    let too_big = PeerMessage::Write {
        req: OpId::default(),
        epoch: 1,
        key: Vec::new(),
        tag: Tag::ZERO,
        value: Some(vec![7; FRAME_SIZE_BYTES_MAX]),
    };
    assert!(matches!(
        encode(&too_big),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
}

/// A length prefix claiming far more elements than the frame holds must fail without
/// allocating for the claim.
#[test]
fn huge_length_prefix_is_an_error() {
    let mut frame = FORMAT_VERSION.to_le_bytes().to_vec();
    frame.push(6); // Gossip
    frame.push(0); // layout_version
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // u32::MAX members
    assert!(matches!(
        decode(&frame),
        Err(ProtocolError::Malformed { .. })
    ));
}

/// Eventual mode only appended variants: what existed keeps its encoding.
#[test]
fn eventual_variants_are_appended() {
    let first_byte = |bytes: Vec<u8>| bytes[0];
    let request = |r: &ClientRequest| first_byte(postcard::to_allocvec(r).expect("encodes"));
    let reply = |r: &ClientReply| first_byte(postcard::to_allocvec(r).expect("encodes"));
    assert_eq!(
        request(&ClientRequest::Delete {
            key: vec![],
            consistency: Consistency::Linearizable
        }),
        2
    );
    assert_eq!(
        request(&ClientRequest::PutEventual {
            key: vec![],
            value: vec![],
            context: None
        }),
        3
    );
    assert_eq!(
        request(&ClientRequest::DeleteEventual {
            key: vec![],
            context: None
        }),
        4
    );
    assert_eq!(reply(&ClientReply::Error(ClientError::Overloaded)), 2);
    assert_eq!(
        reply(&ClientReply::Siblings {
            values: vec![],
            context: vec![]
        }),
        3
    );
    let frame = encode(&PeerMessage::EventualMergeAck {
        req: OpId::default(),
    })
    .expect("encodes");
    assert_eq!(frame[2], 12, "after the 7 ABD and gossip messages");
}

#[test]
fn a_batch_larger_than_a_frame_is_split_and_single_frames_stay_plain() {
    let big = |i: u64| PeerMessage::AntiEntropyPush {
        epoch: 1,
        key: i.to_le_bytes().to_vec(),
        tag: Tag {
            counter: i,
            node: NodeId(1),
        },
        value: Some(vec![7; 700 << 10]),
    };
    let messages: Vec<PeerMessage> = (0..5).map(big).collect();
    let (frames, dropped) = encode_batch(&messages);
    assert_eq!(dropped, 0);
    assert!(frames.len() >= 2, "{} frames", frames.len());
    let back: Vec<PeerMessage> = frames
        .iter()
        .flat_map(|f| decode_frame(f).expect("decodes"))
        .collect();
    assert_eq!(back, messages);
    // One message: a plain frame, which `decode` reads too.
    let (one, _) = encode_batch(&messages[..1]);
    assert_eq!(decode(&one[0]).expect("plain"), messages[0]);
    // A batch frame is not a relay envelope, and `decode` refuses it.
    let (batch, _) = encode_batch(&[big(1), big(2)][..]);
    assert!(!is_relay_envelope(&batch[0]));
    assert!(decode(&batch[0]).is_err());
}
