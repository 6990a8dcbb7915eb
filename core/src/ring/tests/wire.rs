//! Serde round trips through postcard (the planned wire encoding), and validation of
//! untrusted layouts on decode.

use serde::Serialize;

use super::super::{LayoutError, NodeSpec, RingLayout, TokenRange};
use super::equal_layout;

/// Mirrors the private wire form field by field, to forge inputs.
#[derive(Serialize)]
struct ForgedLayout {
    version: u64,
    replicas: u64,
    vnodes_per_capacity_unit: u32,
    nodes: Vec<NodeSpec>,
    purge_floor: u64,
}

#[test]
fn layouts_round_trip_and_rebuild_their_tokens() {
    let layout = equal_layout(4)
        .with_node(NodeSpec::new(9, "zone-x", 2))
        .expect("valid");
    let bytes = postcard::to_allocvec(&layout).expect("encode");
    assert!(
        bytes.len() < 200,
        "tokens are not sent: {} bytes",
        bytes.len()
    );
    let decoded: RingLayout = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(decoded, layout);
    let range = TokenRange::new(5, 3);
    let decoded_range: TokenRange =
        postcard::from_bytes(&postcard::to_allocvec(&range).expect("encode")).expect("decode");
    assert_eq!(decoded_range, range);
}

#[test]
fn forged_layouts_are_refused() {
    let forge = |replicas, vnodes, nodes: Vec<NodeSpec>| {
        let forged = ForgedLayout {
            version: 1,
            replicas,
            vnodes_per_capacity_unit: vnodes,
            nodes,
            purge_floor: 0,
        };
        postcard::from_bytes::<RingLayout>(&postcard::to_allocvec(&forged).expect("encode"))
    };
    assert!(forge(3, 8, vec![NodeSpec::new(1, "a", 1)]).is_ok());
    assert!(forge(0, 8, vec![]).is_err());
    assert!(forge(3, 0, vec![]).is_err());
    assert!(forge(3, 8, vec![NodeSpec::new(1, "a", u32::MAX)]).is_err());
    assert!(forge(
        3,
        8,
        vec![NodeSpec::new(1, "a", 1), NodeSpec::new(1, "b", 1)]
    )
    .is_err());
    // A process spread over two zones (its shards share one machine).
    let shard = |id, zone| NodeSpec::new(id, zone, 1).in_process(super::super::ProcessId(4));
    assert!(forge(3, 8, vec![shard(1, "a"), shard(2, "a")]).is_ok());
    assert!(matches!(
        forge(3, 8, vec![shard(1, "a"), shard(2, "b")]),
        Err(postcard::Error::SerdeDeCustom)
    ));
    // Same checks as the constructor.
    let direct = RingLayout::from_parts(1, 3, 8, [NodeSpec::new(1, "a", u32::MAX)]);
    assert!(matches!(direct, Err(LayoutError::TooManyTokens { .. })));
}
