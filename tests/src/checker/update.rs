//! The sequential specification of conditional sets and adds.
//!
//! An answered update is an observation as well as a write: its `previous` must be
//! what the register held where it is placed, and `applied` must say whether its
//! condition held there. An answered "not an integer" observes a present value that
//! is not an integer (or an overflowing sum). An update without its answer may be placed
//! anywhere after its invoke, where it applies iff its condition holds, or be left out.

use super::model::State;

/// [`super::Condition`] with the expected value interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cond {
    Always,
    Absent,
    Present,
    Equals(State),
}

impl Cond {
    pub fn holds(self, state: State) -> bool {
        match self {
            Cond::Always => true,
            Cond::Absent => state == State::Absent,
            Cond::Present => state != State::Absent,
            Cond::Equals(expected) => state == expected,
        }
    }
}

/// What the client learned of an update's or add's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Nothing (no answer, or an answer without the result).
    Unknown,
    Found {
        applied: bool,
        previous: State,
    },
    /// An add's "not an integer".
    NotAnInteger,
}

/// `bytes` as an integer if they are one in canonical decimal form (`-12`, not `+12`,
/// `012` or `-0`): exactly the values `i64::to_string` prints, so interning by value
/// and by integer agree. Written here again rather than taken from the core on purpose:
/// the checker is the specification the node is held to.
pub fn integer(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

/// The sum an add of `delta` stores in `state`, or `None` if it answers "not an
/// integer": a value that is not an integer, or an overflow.
pub(crate) fn sum(state: State, delta: i64) -> Option<i64> {
    match state {
        State::Absent => Some(delta),
        State::Int(n) => n.checked_add(delta),
        State::Value(_) => None,
    }
}

/// A conditional set in `state`: the state after it, or `None` if what was seen of
/// it cannot happen there.
pub(crate) fn set(state: State, cond: Cond, value: State, seen: Seen) -> Option<State> {
    let holds = cond.holds(state);
    let after = if holds { value } else { state };
    match seen {
        Seen::Unknown => Some(after),
        Seen::Found { applied, previous } => {
            (previous == state && applied == holds).then_some(after)
        }
        Seen::NotAnInteger => None,
    }
}

/// An add of `delta` in `state`, likewise.
pub(crate) fn add(state: State, delta: i64, seen: Seen) -> Option<State> {
    match (seen, sum(state, delta)) {
        // Unanswered: it stored the sum, or failed as not an integer.
        (Seen::Unknown, Some(n)) => Some(State::Int(n)),
        (Seen::Unknown, None) => Some(state),
        (
            Seen::Found {
                applied: true,
                previous,
            },
            Some(n),
        ) if previous == state => Some(State::Int(n)),
        (Seen::NotAnInteger, None) => Some(state),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_decimal_is_an_integer() {
        assert_eq!(integer(b"-12"), Some(-12));
        assert_eq!(integer(b"0"), Some(0));
        assert_eq!(integer(b"9223372036854775807"), Some(i64::MAX));
        for not in [
            &b"+12"[..],
            b"012",
            b"-0",
            b" 1",
            b"1.0",
            b"c1-5",
            b"",
            b"99999999999999999999",
        ] {
            assert_eq!(integer(not), None, "{not:?}");
        }
    }

    #[test]
    fn sets_apply_iff_their_condition_holds_and_must_report_the_state() {
        let (a, b) = (State::Value(0), State::Value(1));
        let found = |applied, previous| Seen::Found { applied, previous };
        assert_eq!(set(a, Cond::Equals(a), b, found(true, a)), Some(b));
        assert_eq!(set(a, Cond::Equals(b), b, found(false, a)), Some(a));
        // Claims applied where the condition fails, or a previous that is not the state.
        assert_eq!(set(a, Cond::Equals(b), b, found(true, a)), None);
        assert_eq!(set(a, Cond::Always, b, found(true, b)), None);
        assert_eq!(set(State::Absent, Cond::Absent, a, Seen::Unknown), Some(a));
        assert_eq!(set(b, Cond::Absent, a, Seen::Unknown), Some(b));
        assert_eq!(
            set(b, Cond::Present, State::Absent, Seen::Unknown),
            Some(State::Absent)
        );
    }

    #[test]
    fn adds_count_from_zero_and_refuse_non_integers() {
        let found = |previous| Seen::Found {
            applied: true,
            previous,
        };
        assert_eq!(
            add(State::Absent, 3, found(State::Absent)),
            Some(State::Int(3))
        );
        assert_eq!(
            add(State::Int(3), -5, found(State::Int(3))),
            Some(State::Int(-2))
        );
        assert_eq!(add(State::Int(3), 1, found(State::Absent)), None);
        assert_eq!(
            add(State::Value(0), 1, Seen::NotAnInteger),
            Some(State::Value(0))
        );
        assert_eq!(
            add(State::Int(i64::MAX), 1, Seen::NotAnInteger),
            Some(State::Int(i64::MAX))
        );
        assert_eq!(add(State::Int(1), 1, Seen::NotAnInteger), None);
        assert_eq!(add(State::Absent, 1, Seen::NotAnInteger), None);
        assert_eq!(
            add(State::Value(0), 1, Seen::Unknown),
            Some(State::Value(0))
        );
    }
}
