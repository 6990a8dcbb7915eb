//! Ring tests. Everything is deterministic (fixed hashes, fixed key samples), so the
//! measured thresholds here cannot flake: a failure means the placement changed.

mod balance_targets;
mod layout_changes;
mod ownership;
mod preference;
#[cfg(not(target_arch = "wasm32"))]
mod proptests;
#[cfg(not(target_arch = "wasm32"))]
mod wire;

use super::{NodeSpec, RingLayout};

/// `count` nodes with ids `1..=count`, one zone each, capacity 1, N = 3.
pub(super) fn equal_layout(count: u64) -> RingLayout {
    layout_of((1..=count).map(|id| NodeSpec::new(id, format!("zone-{id}"), 1)))
}

pub(super) fn layout_of(specs: impl IntoIterator<Item = NodeSpec>) -> RingLayout {
    let mut layout = RingLayout::new(3);
    for spec in specs {
        layout = layout.with_node(spec).expect("valid spec");
    }
    layout
}
