//! Crashes that land mid-phase: power loss while a node is sending one step's writes.
//!
//! A node hands the network a batch of messages per step (`World::drain`): a put's
//! phase-2 `Write` to every replica, a read's write-back, an eventual update. A process
//! that dies between two socket writes sends some of them and not the rest. That is
//! the crash that exposes a coordinator's mistakes: a write that reached some replicas
//! but not a quorum, its coordinator gone (no resends, its client never answered),
//! then back soon after with whatever its disk kept, and asked to write again.
//!
//! A `Fault::CrashMidSend` *arms* a node; the next step in which it sends two or more
//! replica writes (`Hardware::is_replica_write`) to other nodes is cut (see [`cut`]):
//! the node crashes between two of them, and everything after that point in the step
//! (messages, client replies) is lost with the process. It boots again `downtime_ms`
//! later. A crash or the heal disarms the node.

/// A node armed to crash in the middle of its next multi-message step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed {
    pub downtime_ms: u64,
    /// Picks how many of the batch's messages about keys go out.
    pub choice: u64,
}

/// Where to cut a step's outputs: `writes[j]` says whether output `j` asks another node
/// to store a value. `Some(j)`: outputs `0..j` go out, the node crashes before output
/// `j`. `None` when the step sends fewer than two such messages (the node stays armed
/// for a later step).
///
/// The cut leaves the write on a minority, and somewhere: of `n` writes, at least one
/// and fewer than half go out (`1 + choice % (ceil(n / 2) - 1)`), except with `n = 2`,
/// where none do. A write that reached a majority is as good as done, one that reached
/// nobody is a crash before the phase; the crash that matters is in between. (A
/// coordinator that is one of the key's replicas stored its own copy before sending,
/// so it sends `n = N - 1` writes: with N = 3 it keeps the only copy.)
pub fn cut(armed: Armed, writes: &[bool]) -> Option<usize> {
    let n = writes.iter().filter(|w| **w).count() as u64;
    if n < 2 {
        return None;
    }
    let sent = match n.div_ceil(2) - 1 {
        0 => 0,
        choices => 1 + armed.choice % choices,
    };
    writes
        .iter()
        .enumerate()
        .filter(|(_, w)| **w)
        .nth(sent as usize)
        .map(|(j, _)| j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed(choice: u64) -> Armed {
        Armed {
            downtime_ms: 5,
            choice,
        }
    }

    #[test]
    fn cuts_after_some_but_fewer_than_half_of_the_writes() {
        // A gossip message (not a write), then three writes, then a client reply.
        let writes = [false, true, true, true, false];
        for choice in 0..4 {
            assert_eq!(
                cut(armed(choice), &writes),
                Some(2),
                "one of three goes out"
            );
        }
        assert_eq!(cut(armed(5), &[true, true]), Some(0), "none of two");
        assert_eq!(cut(armed(1), &[true; 4]), Some(1), "one of four");
        let five = [true; 5];
        assert_eq!(cut(armed(0), &five), Some(1), "one of five");
        assert_eq!(cut(armed(1), &five), Some(2), "two of five");
        assert_eq!(cut(armed(7), &[true, false]), None, "one write: wait");
        assert_eq!(cut(armed(7), &[]), None);
    }
}
