//! Preference lists: which N physical nodes hold a key.

use super::layout::RingLayout;
use super::node::{Domain, NodeId};
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
    /// process (failure domain, [`NodeSpec::domain`]) the first time one of its members
    /// is met, through that member; later members of a process already met are passed
    /// over, so **no two replicas share a process** (a hard rule):
    /// 1. while fewer than `min(wanted, zone_count)` zones are used, a member whose zone
    ///    is unused is *picked*; any other is *skipped* (remembered in walk order);
    /// 2. once zones run out, the list is completed with skipped and then further
    ///    members, in walk order.
    ///
    /// `wanted` is `min(N, domain_count)` ([`RingLayout::replicas_per_key`]). Result:
    /// picks (distinct zones, clockwise) then fillers (clockwise), all in distinct
    /// processes. With at least N zones the N replicas are in N distinct zones (the
    /// members of a process share its zone, `LayoutError::ProcessSpansZones`, so every
    /// zone holds a process to pick); the primary is always the owner of the key's
    /// successor token, whatever the zones. Fewer than N token-holding processes: one
    /// member of each, as fewer than N token-holding nodes has always meant all of them
    /// (the key has fewer replicas, and quorums are majorities of those). Empty ring:
    /// empty list. When every member is its own process this is exactly the walk of
    /// builds before processes (`ring/tests/preference.rs` pins it).
    ///
    /// [`NodeSpec::domain`]: super::node::NodeSpec::domain
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
        let wanted = self.replicas_per_key();
        let zones_wanted = wanted.min(self.zone_count());
        let mut picked: Vec<NodeId> = Vec::with_capacity(wanted);
        let mut picked_zones: Vec<&str> = Vec::with_capacity(zones_wanted);
        let mut skipped: Vec<NodeId> = Vec::new();
        // Processes of `picked` and `skipped`: a member's domain is met iff it or
        // another member of its process was picked or skipped.
        let mut met: Vec<Domain> = Vec::with_capacity(wanted);
        if tokens.is_empty() || wanted == 0 {
            return picked;
        }
        for step in 0..tokens.len() {
            let (_, node) = tokens[(start + step) % tokens.len()];
            // Tokens only name members; a missing spec would be a broken invariant, and
            // skipping it is the harmless choice.
            let Some(spec) = self.node(node) else {
                continue;
            };
            let domain = spec.domain();
            if met.contains(&domain) {
                continue;
            }
            met.push(domain);
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
