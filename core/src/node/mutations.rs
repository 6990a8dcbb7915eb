//! Deliberate bugs in the node's real code paths, so tests can prove the simulator's
//! checks catch a wrong coordinator or membership change (docs/simulation.md,
//! "Mutations").
//!
//! Only the cargo feature `mutations` makes them reachable: with it, [`Mutations`] is a
//! set carried by the hidden `NodeConfig::mutations` field (empty by default). Only the
//! simulator crate (`ringkv-tests`, never published) enables the feature; the native
//! `ringkv` binary and the wasm build do not (`scripts/test` checks with `cargo tree`,
//! and `lib.rs` refuses the feature on wasm32). Without the feature, [`Mutations`] is a
//! zero-sized stand-in whose [`Mutations::has`] is a constant `false`, so every mutated
//! branch compiles away and the node is exactly the unmutated one.
//!
//! Adding a mutation is one line in the `mutations!` list below plus the branch in the
//! code path it breaks; the simulator's catch-rate command and tests iterate
//! [`Mutation::ALL`].

macro_rules! mutations {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, )+) => {
        /// One deliberate bug (see the list below for what each breaks).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Mutation {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl Mutation {
            /// Every mutation, in declaration order.
            pub const ALL: &'static [Mutation] = &[$(Mutation::$variant),+];

            /// Its command-line name (`sim --mutation NAME`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Mutation::$variant => $name,)+
                }
            }
        }
    };
}

mutations! {
    /// A get returns the largest tag's value as soon as a quorum answered, without
    /// writing it back to a quorum first (ABD's read write-back skipped): a value seen
    /// on a minority can be returned and then not returned by a later read.
    SkipReadWriteBack = "skip-write-back",
    /// A put or delete is acknowledged after one replica's `WriteAck` instead of a
    /// quorum's: an acknowledged write may sit on a minority.
    AckPutAfterOne = "ack-put-after-one",
    /// After a restart the tag issuer ignores the persisted lease floor and counts from
    /// the quorum's maximum alone: a tag issued before the crash (its write still in
    /// flight or on a minority) can be issued again for a different value.
    TagsWithoutLease = "tags-without-lease",
    /// The membership proposer counts a layout chosen after one acceptor's
    /// `LayoutAccepted` instead of a majority's: a later proposal's prepare majority
    /// need not meet that one vote, so two layouts can be chosen for one version.
    LayoutWithoutQuorum = "layout-without-quorum",
    /// A replica drops every register tombstone its purge scan meets, without the
    /// confirmation round and purge change (`node/purge/`): a replica that missed the
    /// delete, or an older write still in flight, brings the deleted value back.
    PurgeUnconfirmed = "purge-unconfirmed",
}

impl Mutation {
    /// Looks a mutation up by its [`Mutation::name`].
    pub fn from_name(name: &str) -> Option<Mutation> {
        Mutation::ALL.iter().copied().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The mutations a node runs with (feature `mutations`): empty by default.
#[cfg(feature = "mutations")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Bit `i` set: `Mutation::ALL[i]` is on.
    bits: u64,
}

#[cfg(feature = "mutations")]
impl Mutations {
    pub const NONE: Mutations = Mutations { bits: 0 };

    /// Just `mutation`.
    pub fn only(mutation: Mutation) -> Mutations {
        Mutations::NONE.with(mutation)
    }

    pub fn with(self, mutation: Mutation) -> Mutations {
        Mutations {
            bits: self.bits | Self::bit(mutation),
        }
    }

    #[inline]
    pub fn has(self, mutation: Mutation) -> bool {
        self.bits & Self::bit(mutation) != 0
    }

    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// The mutations that are on, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Mutation> {
        Mutation::ALL.iter().copied().filter(move |m| self.has(*m))
    }

    fn bit(mutation: Mutation) -> u64 {
        // At most 64 mutations; the list is far from that.
        1 << (mutation as u32 % 64)
    }

    /// The set a node configuration asks for.
    pub(crate) fn of(config: &super::NodeConfig) -> Mutations {
        config.mutations
    }
}

/// Without the feature: no mutation can be on, and `has` folds to `false`.
#[cfg(not(feature = "mutations"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Mutations;

#[cfg(not(feature = "mutations"))]
impl Mutations {
    pub const NONE: Mutations = Mutations;

    #[inline(always)]
    pub const fn has(self, _mutation: Mutation) -> bool {
        false
    }

    pub fn is_empty(self) -> bool {
        true
    }

    pub fn iter(self) -> impl Iterator<Item = Mutation> {
        std::iter::empty()
    }

    pub(crate) fn of(_config: &super::NodeConfig) -> Mutations {
        Mutations
    }
}

#[cfg(all(test, feature = "mutations"))]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_hold_what_was_added() {
        for &m in Mutation::ALL {
            assert_eq!(Mutation::from_name(m.name()), Some(m));
            assert!(Mutations::only(m).has(m));
        }
        assert_eq!(Mutation::from_name("nope"), None);
        let set = Mutations::only(Mutation::AckPutAfterOne).with(Mutation::TagsWithoutLease);
        assert!(!set.has(Mutation::SkipReadWriteBack));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Mutation::AckPutAfterOne, Mutation::TagsWithoutLease]
        );
        assert!(Mutations::NONE.is_empty() && !set.is_empty());
        assert_eq!(Mutations::default(), Mutations::NONE);
    }

    #[test]
    fn a_configuration_has_none_unless_a_test_sets_them() {
        let spec = crate::ring::NodeSpec::new(1, "z0", 1);
        let config = super::super::NodeConfig::for_member(&spec, vec![spec.clone()]);
        assert!(Mutations::of(&config).is_empty());
    }
}
