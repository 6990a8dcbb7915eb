//! Positions on the ring: where a key lands and where a node's virtual nodes sit.
//!
//! The ring is the `u64` circle. Both maps are fixed SipHash-2-4 functions with
//! distinct constant keys (domain separation: a key can never be crafted to collide
//! with token derivation by construction of its bytes). Changing any constant here
//! moves every key in every deployed cluster: treat them as part of the on-disk format.

use super::node::NodeId;
use crate::hash::siphash24;

/// Position of the ring, a point of the `u64` circle.
pub type Position = u64;

const KEY_HASH_K0: u64 = 0x7269_6e67_6b76_2d6b; // "ringkv-k"
const KEY_HASH_K1: u64 = 0x6579_2d70_6f73_2d31; // "ey-pos-1"
const TOKEN_HASH_K0: u64 = 0x7269_6e67_6b76_2d74; // "ringkv-t"
const TOKEN_HASH_K1: u64 = 0x6f6b_656e_2d76_3031; // "oken-v01"

/// Where `key` lands on the ring.
pub fn key_position(key: &[u8]) -> Position {
    siphash24(KEY_HASH_K0, KEY_HASH_K1, key)
}

/// Position of virtual node `vnode_index` of `node`: a pure function of the two, so
/// every member derives the same ring from the same member list without coordination,
/// and a node's first `k` tokens do not move when its capacity grows beyond `k`.
pub fn token_position(node: NodeId, vnode_index: u32) -> Position {
    let mut input = [0u8; 12];
    input[..8].copy_from_slice(&node.0.to_le_bytes());
    input[8..].copy_from_slice(&vnode_index.to_le_bytes());
    siphash24(TOKEN_HASH_K0, TOKEN_HASH_K1, &input)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned outputs: if these change, every deployed ring moves. Never "fix" the
    /// expected values; fix the code.
    #[test]
    fn positions_are_pinned() {
        assert_eq!(key_position(b""), PINNED_EMPTY_KEY);
        assert_eq!(key_position(b"key-0"), PINNED_KEY_0);
        assert_eq!(token_position(NodeId(1), 0), PINNED_TOKEN_1_0);
    }

    const PINNED_EMPTY_KEY: u64 = 0x4008_603d_f0bc_3330;
    const PINNED_KEY_0: u64 = 0x670e_c2f0_ceeb_d2f2;
    const PINNED_TOKEN_1_0: u64 = 0xacb2_40b1_8fd3_fd61;
}
