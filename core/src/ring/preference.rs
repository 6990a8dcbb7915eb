//! Preference lists: which N physical nodes hold a key.

use super::layout::RingLayout;
use super::node::NodeId;
use super::token::{key_position, Position};

impl RingLayout {
    /// The replicas of `key`, in preference order (first = primary, the natural
    /// coordinator). See [`RingLayout::owners_at`].
    pub fn preference_list(&self, key: &[u8]) -> Vec<NodeId> {
        self.owners_at(key_position(key))
    }

    /// The replicas of ring position `position`.
    ///
    /// Walk clockwise from the first token at or after `position` (wrapping), taking each
    /// physical node the first time it is met:
    /// 1. while fewer than `min(N, zone_count)` zones are used, a node whose zone is
    ///    unused is *picked*; any other node is *skipped* (remembered in walk order);
    /// 2. once zones run out, the list is completed with skipped and then further nodes,
    ///    in walk order.
    ///
    /// Result: picks (distinct zones, clockwise) then fillers (clockwise). So with at
    /// least N zones the N replicas are in N distinct zones; the primary is always the
    /// owner of the key's successor token, whatever the zones. Fewer than N token-holding
    /// nodes: all of them. Empty ring: empty list.
    pub fn owners_at(&self, position: Position) -> Vec<NodeId> {
        let start = self
            .tokens()
            .partition_point(|(token, _)| *token < position);
        self.walk_from(start)
    }

    /// The walk of [`RingLayout::owners_at`] starting at token index `start` (taken
    /// modulo the token count). Every position of the arc ending at that token has this
    /// preference list, which is what the range functions rely on.
    pub(crate) fn walk_from(&self, start: usize) -> Vec<NodeId> {
        let tokens = self.tokens();
        let wanted = self.replicas().min(self.token_holder_count());
        let zones_wanted = wanted.min(self.zone_count());
        let mut picked: Vec<NodeId> = Vec::with_capacity(wanted);
        let mut picked_zones: Vec<&str> = Vec::with_capacity(zones_wanted);
        let mut skipped: Vec<NodeId> = Vec::new();
        if tokens.is_empty() || wanted == 0 {
            return picked;
        }
        for step in 0..tokens.len() {
            let (_, node) = tokens[(start + step) % tokens.len()];
            if picked.contains(&node) || skipped.contains(&node) {
                continue;
            }
            // Tokens only name members; a missing spec would be a broken invariant, and
            // skipping it is the harmless choice.
            let Some(spec) = self.node(node) else {
                continue;
            };
            let zone = spec.zone.as_str();
            if picked_zones.len() < zones_wanted && !picked_zones.contains(&zone) {
                picked.push(node);
                picked_zones.push(zone);
            } else {
                skipped.push(node);
            }
            if picked_zones.len() == zones_wanted && picked.len() + skipped.len() >= wanted {
                break;
            }
        }
        let fillers = wanted.saturating_sub(picked.len());
        picked.extend(skipped.into_iter().take(fillers));
        picked
    }
}
